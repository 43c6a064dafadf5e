"""Training images/s of triptych's ResNet-18 or VGG-11 against torchvision's, at 3x32x32 or 3x224x224.

Both models are the same network (ResNet-18: ImageNet stem, 10 classes,
11.18M parameters; VGG-11: 128.8M at 10 classes) trained by the same plain
loop: forward, cross-entropy, backward, fused AdamW step (as the engine
builds it), on the same fixed random batch, with the same number of
threads. torchvision 0.29.1 needs torch 2.14.1 while triptych's venv has
2.13.0, so the peer runs in its own venv (benchmarks/.peers/tv, created on
first use from the local package index) as a subprocess of this script; the
two sides alternate round by round so that load on the machine hits both
alike, and each side's figure is its median round.

    .venv/bin/python benchmarks/vision_train.py [--rounds 5] [--steps 8] [--threads 2]
    .venv/bin/python benchmarks/vision_train.py --size 224 --model vgg11   # batch 8, 3 steps a round

The last line is one JSON object; "ratio" = ours / torchvision (> 1: ours
faster); MFU is each side's counted model FLOP/s (one training step, by
torch's FLOP counter: the two networks are the same, so one count serves
both) over this CPU's float32 GEMM rate measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEER = ROOT / "benchmarks" / ".peers" / "tv"
PEER_PACKAGES = ["torch==2.14.1", "torchvision==0.29.1"]


MODELS = ("resnet18", "vgg11")
DEFAULTS = {32: {"batch": 64, "steps": 8, "warmup": 2}, 224: {"batch": 8, "steps": 3, "warmup": 1}}


def images_per_second(model, batch: int, steps: int, warmup: int, threads: int, size: int) -> float:
    """Plain training loop on one fixed batch; returns images/s over the timed steps."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, 10, (batch,))
    model.train()
    # Fused AdamW, as the engine builds it (engine/state.py): the per-tensor
    # loop costs VGG's 129M parameters about a second a step on this CPU,
    # more than the difference between the two networks.
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - t0)


def conv_peak_gflops(threads: int, seconds: float = 1.0) -> float:
    """Best rate of one 3x3 convolution (256 -> 256 channels, 28x28, batch 8) in GFLOP/s.

    A second denominator beside the GEMM peak: on AMD EPYC the 2048^3 matrix
    product (MKL) runs at about half the rate oneDNN's direct 3x3 convolutions
    reach (measured 83 vs 160-178 GFLOP/s on one thread), so a CNN's MFU
    against the GEMM peak can exceed 1.
    """
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    x, w = torch.randn(8, 256, 28, 28), torch.randn(256, 256, 3, 3)
    F.conv2d(x, w, padding=1)
    best, deadline = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        F.conv2d(x, w, padding=1)
        best = min(best, time.perf_counter() - t0)
    return 2 * 8 * 256 * 256 * 9 * 28 * 28 / best / 1e9


def peer_main(args) -> None:
    """Runs inside the torchvision venv: one round of torchvision's model (or,
    `--side triptych`, of ours under the peer's torch), prints images/s."""
    import torch
    import torchvision

    if args.side == "triptych":
        sys.path.insert(0, str(ROOT / "src"))
        from triptych.vision.models import get_model

        model = get_model(args.model, num_classes=10)
    else:
        model = getattr(torchvision.models, args.model)(num_classes=10)
    ips = images_per_second(model, args.batch, args.steps, args.warmup, args.threads, args.size)
    print(json.dumps({"img_s": ips, "torch": torch.__version__, "torchvision": torchvision.__version__,
                      "params": sum(p.numel() for p in model.parameters())}))


def ensure_peer() -> Path | None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from peer_venv import ensure_venv

    return ensure_venv(PEER, PEER_PACKAGES)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peer", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--side", default="torchvision", help=argparse.SUPPRESS)
    p.add_argument("--same-torch", action="store_true",
                   help="also time our model under the peer's torch: separates the network from the torch build")
    p.add_argument("--model", choices=MODELS, default="resnet18")
    p.add_argument("--size", type=int, choices=sorted(DEFAULTS), default=32, help="input side in pixels")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, help="timed steps a round (default 8 at 32 px, 3 at 224)")
    p.add_argument("--warmup", type=int, help="untimed steps a round (default 2 at 32 px, 1 at 224)")
    p.add_argument("--batch", type=int, help="images a step (default 64 at 32 px, 8 at 224)")
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    args = p.parse_args()
    for key, value in DEFAULTS[args.size].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.peer:
        peer_main(args)
        return

    import torch

    sys.path.insert(0, str(ROOT / "src"))
    from triptych.vision.models import get_model

    model = get_model(args.model, num_classes=10)  # the ImageNet configuration, as torchvision's
    python = ensure_peer()
    ours, peer, same, peer_info = [], [], [], {}
    cmd = [str(python), __file__, "--peer", "--model", args.model, "--size", str(args.size),
           "--steps", str(args.steps), "--warmup", str(args.warmup),
           "--batch", str(args.batch), "--threads", str(args.threads)] if python else None
    for r in range(args.rounds):
        ours.append(images_per_second(model, args.batch, args.steps, args.warmup, args.threads, args.size))
        line = f"round {r + 1}/{args.rounds}: triptych {ours[-1]:.1f} img/s"
        if cmd:
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                print(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "peer failed", file=sys.stderr)
                cmd = None
            else:
                peer_info = json.loads(done.stdout.strip().splitlines()[-1])
                peer.append(peer_info["img_s"])
                line += f", torchvision {peer[-1]:.1f} img/s"
        if cmd and args.same_torch:
            done = subprocess.run([*cmd, "--side", "triptych"], capture_output=True, text=True, check=True)
            same.append(json.loads(done.stdout.strip().splitlines()[-1])["img_s"])
            line += f", triptych under torch {peer_info['torch']} {same[-1]:.1f} img/s"
        print(line, file=sys.stderr)
    ours_med = statistics.median(ours)
    result = {
        "benchmark": "vision_train", "model": args.model, "input": [3, args.size, args.size], "batch": args.batch,
        "threads": args.threads, "rounds": args.rounds, "steps": args.steps,
        "triptych_img_s": round(ours_med, 2), "triptych_torch": torch.__version__,
        "params": sum(p.numel() for p in model.parameters()),
    }
    if peer:
        peer_med = statistics.median(peer)
        result.update({"torchvision_img_s": round(peer_med, 2), "torchvision": peer_info.get("torchvision"),
                       "torchvision_torch": peer_info.get("torch"), "torchvision_params": peer_info.get("params"),
                       "ratio": round(ours_med / peer_med, 3)})
        if same:  # the same torch on both sides: the networks alone
            result.update({"triptych_peer_torch_img_s": round(statistics.median(same), 2),
                           "same_torch_ratio": round(statistics.median(same) / peer_med, 3)})
    else:
        result.update({"ratio": None, "note": "torchvision could not be run; no ratio"})
    print(f"triptych {ours_med:.1f} img/s" + (f" vs torchvision {result['torchvision_img_s']:.1f} img/s: "
                                               f"ratio {result['ratio']}" if peer else ""), file=sys.stderr)
    from triptych.hardware import counted_flops, describe, gemm_peak_gflops, mfu_report

    x, y = torch.randn(args.batch, 3, args.size, args.size), torch.randint(0, 10, (args.batch,))
    flops = counted_flops(lambda: torch.nn.functional.cross_entropy(model(x), y).backward())  # one step
    model.zero_grad(set_to_none=True)
    peak = gemm_peak_gflops("float32")
    result["step_gflop"] = round(flops / 1e9, 2)
    result.update(mfu_report(flops, args.batch / ours_med, "float32", peak))  # a step: batch / (images a second)
    conv_peak = conv_peak_gflops(args.threads)
    result["conv3x3_peak_gflop_per_s"] = round(conv_peak, 1)
    result["mfu_conv3x3"] = round(result["model_gflop_per_s"] / conv_peak, 4)
    if peer:
        result["torchvision_mfu"] = mfu_report(flops, args.batch / statistics.median(peer), "float32", peak)["mfu"]
        result["torchvision_mfu_conv3x3"] = round(flops / (args.batch / statistics.median(peer)) / 1e9 / conv_peak, 4)
    print(f"MFU: triptych {result['mfu']:.3f}" + (f", torchvision {result['torchvision_mfu']:.3f}" if peer else "")
          + f" of the float32 GEMM peak {peak:.0f} GFLOP/s; of the 3x3 conv peak {conv_peak:.0f} GFLOP/s: "
          + f"triptych {result['mfu_conv3x3']:.3f}"
          + (f", torchvision {result['torchvision_mfu_conv3x3']:.3f}" if peer else ""), file=sys.stderr)
    print(json.dumps({**result, "machine": describe()}))


if __name__ == "__main__":
    main()
