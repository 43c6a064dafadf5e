"""Training img/s of the Fashion-MNIST recipes' models with and without the
patch-product weight gradient (`triptych.vision.models.conv`), same process.

Each model as its recipe trains it: 1x28x28 inputs, batch 64, channels-last,
bf16 autocast, Nesterov SGD, random data (the step's cost does not depend on
it). Rounds of `--steps` steps alternate the two paths; each side's median
round is reported, the ratio of the medians, and each side's MFU: the model
FLOPs of a step (counted once, by torch's FLOP counter, on the oneDNN path)
per second over the bf16 GEMM peak measured in the same run. The path is forced on for
the measure whatever the CPU (on a CPU without AMX it is off by default:
this is how to measure whether it should be on there).

Usage: python benchmarks/vision_conv_grad.py [--models resnet18,vgg16_bn,...] [--rounds 6] [--steps 8]
Prints a line per model on stderr and one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
from triptych.hardware import counted_flops, describe, gemm_peak_gflops  # noqa: E402
from triptych.vision.models import conv, get_model  # noqa: E402

RECIPES = {  # the `model` sections of configs/vision/*-fashion.yaml
    "resnet18": dict(small_input=True),
    "vgg16_bn": dict(small_input=True, hidden=512, width=0.5),
    "zfnet": dict(small_input=True, hidden=512),
    "alexnet": dict(small_input=True, hidden=512),
    "googlenet": dict(small_input=True, aux_logits=True, width=0.5),
}


def rounds_for(name: str, rounds: int, steps: int) -> tuple[dict[bool, list[float]], int]:
    """({patch product on: [img/s a round]}, model FLOPs of one step)."""
    torch.manual_seed(0)
    model = get_model(name, num_classes=10, in_channels=1, **RECIPES[name]).to(memory_format=torch.channels_last)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    x = torch.randn(64, 1, 28, 28).to(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (64,))

    def images_per_second(on: bool, n: int) -> float:
        conv.FORCE = on
        start = time.perf_counter()
        for _ in range(n):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                if hasattr(model, "forward_with_aux"):  # GoogLeNet: its auxiliary heads weigh 0.3, as trained
                    logits, aux = model.forward_with_aux(x)
                else:
                    logits, aux = model(x), []
                loss = sum((0.3 * F.cross_entropy(a, y) for a in aux), F.cross_entropy(logits, y))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return 64 * n / (time.perf_counter() - start)

    for on in (True, False):
        images_per_second(on, 3)  # warm-up of each path
    conv.FORCE = False
    step_flops = counted_flops(lambda: images_per_second(False, 1))
    speeds: dict[bool, list[float]] = {True: [], False: []}
    for r in range(rounds):
        for on in (True, False) if r % 2 == 0 else (False, True):
            speeds[on].append(images_per_second(on, steps))
    conv.FORCE = None
    return speeds, step_flops


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="resnet18,vgg16_bn,zfnet,alexnet,googlenet")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    result = {"benchmark": "vision_conv_grad", "threads": args.threads, "batch": 64, "precision": "bf16"}
    peak = gemm_peak_gflops("bfloat16")
    result["peak_gflop_per_s"] = round(peak, 1)
    for name in args.models.split(","):
        if name not in RECIPES:
            sys.exit(f"vision_conv_grad.py: --models: unknown model {name!r} (one of {', '.join(RECIPES)})")
        speeds, step_flops = rounds_for(name, args.rounds, args.steps)
        on, off = statistics.median(speeds[True]), statistics.median(speeds[False])
        mfu = {side: step_flops * speed / 64 / 1e9 / peak for side, speed in (("on", on), ("off", off))}
        result[name] = {"patch_product_img_per_s": round(on, 1), "onednn_img_per_s": round(off, 1),
                        "ratio": round(on / off, 3), "step_gflop": round(step_flops / 1e9, 2),
                        "patch_product_mfu": round(mfu["on"], 4), "onednn_mfu": round(mfu["off"], 4)}  # fmt: skip
        print(f"{name:10s} patch product {on:7.1f} img/s  oneDNN {off:7.1f} img/s  ratio {on / off:.3f}"
              f"  (medians of {args.rounds}); MFU {mfu['on']:.3f} vs {mfu['off']:.3f} of {peak:.0f} GFLOP/s",
              file=sys.stderr)  # fmt: skip
    result["machine"] = describe()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
