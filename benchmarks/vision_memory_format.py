"""Training and evaluation images/s of each Fashion-MNIST recipe's model in NCHW vs channels-last memory.

The rule `train.memory_format: auto` and the inference loader follow
(`hardware.conv_memory_format`) is whatever this prints on each CPU kind:
every recipe's model, built as its config builds it (family, width,
small-input stem, auxiliary heads), is trained on one fixed batch of the
recipe's size by a plain step (the vision task's summed loss, with
GoogLeNet's auxiliary losses, backward, fused AdamW), and evaluated
(forward without gradients, batches of 256, as `vision eval`), once as it
comes (NCHW) and once converted to channels-last. The input is NCHW both
times: channels-last weights carry the network into NHWC. The two layouts
alternate round by round, so load on the machine hits both alike; each
figure is the median round.

    .venv/bin/python benchmarks/vision_memory_format.py [--rounds 3] [--threads 2] [--precision fp32|bf16]
    .venv/bin/python benchmarks/vision_memory_format.py --recipe googlenet-fashion --recipe resnet18-fashion

The last line is one JSON object with the CPU model, the torch paths, and
per recipe both rates and "ratio" = channels-last / NCHW (> 1: channels-last faster),
for training and for evaluation ("eval_").
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

RECIPES = ("lenet5-fashion", "alexnet-fashion", "zfnet-fashion", "vgg11_bn-fashion", "vgg16_bn-fashion",
           "googlenet-fashion", "resnet18-fashion")


def build(recipe: str, overrides: list[str]):
    from triptych.vision.build import build_classifier
    from triptych.vision.train import load_config

    cfg = load_config(str(ROOT / "configs" / "vision" / f"{recipe}.yaml"), overrides)
    return cfg, build_classifier(cfg, 10, 1)


def step_rate(model, x, y, aux_weight: float, precision: str, steps: int, warmup: int) -> float:
    """Images/s of the training step on one fixed batch."""
    import torch

    from triptych.vision.task import summed_loss

    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    has_aux = getattr(model, "aux1", None) is not None
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")

    def step():
        opt.zero_grad(set_to_none=True)
        with autocast:
            loss, _ = summed_loss(model, x, y, has_aux, aux_weight)
        loss.backward()
        opt.step()

    model.train()
    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return x.shape[0] * steps / (time.perf_counter() - t0)


def eval_rate(model, x, batches: int) -> float:
    """Images/s of the forward pass without gradients, eval mode."""
    import torch

    model.eval()
    with torch.no_grad():
        model(x)  # oneDNN builds its kernels on the first call
        t0 = time.perf_counter()
        for _ in range(batches):
            model(x)
    model.train()
    return x.shape[0] * batches / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", action="append", choices=RECIPES, help="default: all")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a config override for every recipe")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=6, help="timed steps a round")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--eval-batches", type=int, default=2, help="timed evaluation batches of 256 a round")
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    args = p.parse_args()

    import torch

    from triptych.hardware import describe, require_bf16_kernels

    if args.precision == "bf16":
        require_bf16_kernels("--precision bf16")
    torch.set_num_threads(args.threads)
    rows = []
    for recipe in args.recipe or RECIPES:
        cfg, model = build(recipe, args.set)
        size, batch = cfg.data.image_size, cfg.data.batch_size
        torch.manual_seed(0)
        x, y = torch.randn(batch, 1, size, size), torch.randint(0, 10, (batch,))
        _, cl_model = build(recipe, args.set)
        cl_model.load_state_dict(model.state_dict())
        cl_model = cl_model.to(memory_format=torch.channels_last)
        eval_x = torch.randn(256, 1, size, size)
        nchw, cl, eval_nchw, eval_cl = [], [], [], []
        autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16")
        for r in range(args.rounds):
            nchw.append(step_rate(model, x, y, cfg.aux_weight, args.precision, args.steps, args.warmup))
            cl.append(step_rate(cl_model, x, y, cfg.aux_weight, args.precision, args.steps, args.warmup))
            with autocast:
                eval_nchw.append(eval_rate(model, eval_x, args.eval_batches))
                eval_cl.append(eval_rate(cl_model, eval_x, args.eval_batches))
            print(f"{recipe} round {r + 1}/{args.rounds}: training NCHW {nchw[-1]:.1f} img/s, channels-last "
                  f"{cl[-1]:.1f}; evaluation {eval_nchw[-1]:.0f} / {eval_cl[-1]:.0f}", file=sys.stderr)
        row = {"recipe": recipe, "model": cfg.model.get("name"), "input": [batch, 1, size, size]}
        for prefix, a_runs, b_runs in (("", nchw, cl), ("eval_", eval_nchw, eval_cl)):
            a, b = statistics.median(a_runs), statistics.median(b_runs)
            row.update({f"{prefix}nchw_img_s": round(a, 1), f"{prefix}channels_last_img_s": round(b, 1),
                        f"{prefix}ratio": round(b / a, 3),
                        f"{prefix}ratio_rounds": [round(c / n, 3) for n, c in zip(a_runs, b_runs)]})
        rows.append(row)
        print(f"{recipe}: channels-last / NCHW = {row['ratio']:.3f} training, {row['eval_ratio']:.3f} evaluation",
              file=sys.stderr)
    print(json.dumps({"benchmark": "vision_memory_format", "precision": args.precision, "threads": args.threads,
                      "rounds": args.rounds, "steps": args.steps, "overrides": args.set, **describe(),
                      "torch": torch.__version__, "recipes": rows}))


if __name__ == "__main__":
    main()
