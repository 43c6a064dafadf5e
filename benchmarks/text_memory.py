"""Peak resident memory of the Transformer recipe's first training steps, heap trimming off vs on.

Each policy runs in its own process (peak RSS is per process): the recipe's
model, data, batches and bf16 autocast, `--steps` optimiser steps on one
thread, with `engine.memory.HeapTrimmer` off or at `--slack` MiB. The
tokenizer is trained on the first 20,000 training pairs to keep start-up
short. Prints a human line per policy on stderr and one JSON line last, with
"ratio" = peak RSS without trimming / peak RSS with it (> 1: trimming helps).

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


def one_policy(steps: int, slack: float) -> dict:
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
    return {"slack_mb": slack, "steps": steps, "peak_rss_mb": round(memory.peak_rss_mb()),
            "rss_mb_at_end": round(memory.current_rss_mb() or 0), "trims": trimmer.trims if trimmer else 0,
            "seconds": round(time.perf_counter() - start, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--slack", type=float, default=384.0)
    ap.add_argument("--child", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        print(json.dumps(one_policy(args.steps, args.child)))
        return
    results = {}
    for name, slack in (("off", 0.0), ("trim", args.slack)):
        out = subprocess.run([sys.executable, __file__, "--steps", str(args.steps), "--child", str(slack)],
                             check=True, capture_output=True, text=True).stdout
        results[name] = json.loads(out.strip().splitlines()[-1])
        r = results[name]
        print(f"{name:4s} peak {r['peak_rss_mb']} MB, at end {r['rss_mb_at_end']} MB, {r['trims']} trims, {r['seconds']} s",
              file=sys.stderr)
    ratio = results["off"]["peak_rss_mb"] / results["trim"]["peak_rss_mb"]
    print(json.dumps({"benchmark": "text_memory", **results, "ratio": round(ratio, 3)}))


if __name__ == "__main__":
    main()
