"""Training images/s of triptych's ResNet-18 against torchvision's resnet18, 3x32x32 inputs.

Both models are the same network (ImageNet stem, 10 classes, 11.18M
parameters) trained by the same plain loop: forward, cross-entropy,
backward, AdamW step, on the same fixed random batch, with the same number
of threads. torchvision 0.29.1 needs torch 2.14.1 while triptych's venv has
2.13.0, so the peer runs in its own venv (benchmarks/.peers/tv, created on
first use from the local package index) as a subprocess of this script; the
two sides alternate round by round so that load on the machine hits both
alike, and each side's figure is its median round.

    .venv/bin/python benchmarks/vision_train.py [--rounds 5] [--steps 8] [--threads 2]

The last line is one JSON object; "ratio" = ours / torchvision (> 1: ours faster).
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


def images_per_second(model, batch: int, steps: int, warmup: int, threads: int, size: int = 32) -> float:
    """Plain training loop on one fixed batch; returns images/s over the timed steps."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, 10, (batch,))
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

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


def peer_main(args) -> None:
    """Runs inside the torchvision venv: one round, prints images/s."""
    import torch
    import torchvision

    model = torchvision.models.resnet18(num_classes=10)
    ips = images_per_second(model, args.batch, args.steps, args.warmup, args.threads)
    print(json.dumps({"img_s": ips, "torch": torch.__version__, "torchvision": torchvision.__version__,
                      "params": sum(p.numel() for p in model.parameters())}))


def ensure_peer() -> Path | None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from peer_venv import ensure_venv

    return ensure_venv(PEER, PEER_PACKAGES)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peer", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    args = p.parse_args()
    if args.peer:
        peer_main(args)
        return

    import torch

    sys.path.insert(0, str(ROOT / "src"))
    from triptych.vision.models import get_model

    model = get_model("resnet18", num_classes=10)  # the ImageNet stem, as torchvision's
    python = ensure_peer()
    ours, peer, peer_info = [], [], {}
    cmd = [str(python), __file__, "--peer", "--steps", str(args.steps), "--warmup", str(args.warmup),
           "--batch", str(args.batch), "--threads", str(args.threads)] if python else None
    for r in range(args.rounds):
        ours.append(images_per_second(model, args.batch, args.steps, args.warmup, args.threads))
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
        print(line, file=sys.stderr)
    ours_med = statistics.median(ours)
    result = {
        "benchmark": "vision_train", "model": "resnet18", "input": [3, 32, 32], "batch": args.batch,
        "threads": args.threads, "rounds": args.rounds, "steps": args.steps,
        "triptych_img_s": round(ours_med, 2), "triptych_torch": torch.__version__,
        "params": sum(p.numel() for p in model.parameters()),
    }
    if peer:
        peer_med = statistics.median(peer)
        result.update({"torchvision_img_s": round(peer_med, 2), "torchvision": peer_info.get("torchvision"),
                       "torchvision_torch": peer_info.get("torch"), "torchvision_params": peer_info.get("params"),
                       "ratio": round(ours_med / peer_med, 3)})
    else:
        result.update({"ratio": None, "note": "torchvision could not be run; no ratio"})
    print(f"triptych {ours_med:.1f} img/s" + (f" vs torchvision {result['torchvision_img_s']:.1f} img/s: "
                                               f"ratio {result['ratio']}" if peer else ""), file=sys.stderr)
    from triptych.hardware import counted_flops, describe, mfu_report

    x, y = torch.randn(args.batch, 3, 32, 32), torch.randint(0, 10, (args.batch,))
    flops = counted_flops(lambda: torch.nn.functional.cross_entropy(model(x), y).backward())  # one step
    model.zero_grad(set_to_none=True)
    result.update(mfu_report(flops, args.batch / ours_med, "float32"))  # a step: batch / (images a second)
    print(json.dumps({**result, "machine": describe()}))


if __name__ == "__main__":
    main()
