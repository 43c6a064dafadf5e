"""Peak resident memory of the Transformer recipe's first training steps: heap trimming, kernel cache.

Each policy runs in its own process (peak RSS is per process): the recipe's
model, data, batches and bf16 autocast, `--steps` optimiser steps on one
thread, with `engine.memory.HeapTrimmer` off or at `--slack` MiB, and
oneDNN's kernel cache at its default (1,024) or at the trainer's cap
(`engine.memory.cap_kernel_cache`). "live" is the RSS after a final
`malloc_trim`: the memory still in use, not held by the heap. The
tokenizer is trained on the first 20,000 training pairs to keep start-up
short. Prints a human line per policy on stderr and one JSON line last, with
"ratio" = peak RSS with neither / peak RSS with both (> 1: they help).

Usage: python benchmarks/text_memory.py [--steps N] [--slack MB]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_policy(steps: int, slack: float, kernel_cache: int) -> dict:
    import os

    os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] = str(kernel_cache)  # before the first matmul
    import torch

    from triptych import config
    from triptych.engine import memory
    from triptych.text.config import TextConfig
    from triptych.text.task import TextTask

    torch.set_num_threads(1)
    cfg = config.load(TextConfig, ROOT / "configs/text/transformer-debian.yaml",
                      [f"data.train={ROOT / 'data/debian-descriptions/train.jsonl.gz'}",
                       f"data.valid={ROOT / 'data/debian-descriptions/valid.jsonl.gz'}", "data.limit_train=20000"])
    task = TextTask(cfg, None)
    model, opt = task.model, torch.optim.AdamW(task.model.parameters(), lr=1e-3)
    trimmer = memory.HeapTrimmer(slack) if slack > 0 else None
    start = time.perf_counter()
    for indices in task.batch_plan(0)[:steps]:
        batch = task.collate(indices, "cpu")
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss, _ = task.loss(model, batch)
        (loss.float() / 1000).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if trimmer is not None:
            trimmer.maybe_trim()
    seconds = round(time.perf_counter() - start, 1)
    at_end = round(memory.current_rss_mb() or 0)
    trim = memory._glibc_malloc_trim()
    if trim is not None:
        trim()
    return {"slack_mb": slack, "kernel_cache": kernel_cache, "steps": steps, "peak_rss_mb": round(memory.peak_rss_mb()),
            "rss_mb_at_end": at_end, "live_mb": round(memory.current_rss_mb() or 0),
            "trims": trimmer.trims if trimmer else 0, "seconds": seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--slack", type=float, default=384.0)
    ap.add_argument("--child", type=float, nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        print(json.dumps(one_policy(args.steps, args.child[0], int(args.child[1]))))
        return
    from triptych.engine.memory import KERNEL_CACHE_ENTRIES
    from triptych.hardware import describe

    results = {}
    policies = (("neither", 0.0, 1024), ("trim", args.slack, 1024), ("trim+cap", args.slack, KERNEL_CACHE_ENTRIES))
    for name, slack, cache in policies:
        out = subprocess.run([sys.executable, __file__, "--steps", str(args.steps), "--child", str(slack), str(cache)],
                             check=True, capture_output=True, text=True).stdout
        results[name] = json.loads(out.strip().splitlines()[-1])
        r = results[name]
        print(f"{name:8s} peak {r['peak_rss_mb']} MB, at end {r['rss_mb_at_end']} MB, live {r['live_mb']} MB, "
              f"{r['trims']} trims, {r['seconds']} s", file=sys.stderr)
    ratio = results["neither"]["peak_rss_mb"] / results["trim+cap"]["peak_rss_mb"]
    print(json.dumps({"benchmark": "text_memory", **results, "ratio": round(ratio, 3), "machine": describe()}))


if __name__ == "__main__":
    main()
