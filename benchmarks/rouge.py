"""Pairs/s of triptych's ROUGE against `rouge-score` 0.1.2 and `rouge-score-rs`, same pairs, same run.

The pairs are real: the Lead baseline (first sentence cut to 10 words) of
10,000 training documents of the Debian descriptions corpus against their
human one-line summaries — what a ROUGE reward scores during training.
All score ROUGE-1/2/L/Lsum with stemming; every score must be identical
(to 1e-9) or the benchmark fails. Each side is timed `--repeats` times
(alternating) and its best time kept. Times are CPU times of this process
(`time.process_time`), on ONE thread: RAYON_NUM_THREADS=1 is set before
rouge-score-rs loads, because on a shared machine wall time mostly measures
the neighbours.

  triptych            `rouge.score_pairs` as users get it: English batches
                      go to rouge-score-rs where installed (see rouge.py)
  triptych-python     our own engine (TRIPTYCH_ROUGE_ENGINE=python), cold:
                      word and stem caches emptied before each run
  triptych-python-warm  the same, warm caches: the steady state of a long
                      run where every word has been seen (an RL reward loop)
  rouge-score         the reference, one pair at a time
  rouge-score-rs      `RougeScorer.score_batch`, the peer's fastest call

Usage: python benchmarks/rouge.py [--pairs N] [--repeats R] [--no-stem]
Prints a human line per measure on stderr and one JSON line last on stdout:
"ratio" = triptych pairs/s over rouge-score's, "rs_ratio" = triptych over
rouge-score-rs, "python_rs_ratio" = our own warm engine over rouge-score-rs.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path

os.environ["RAYON_NUM_THREADS"] = "1"  # before rouge-score-rs starts its pool

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from rouge_score import rouge_scorer  # noqa: E402
from rouge_score_rs import RougeScorer as RsScorer  # noqa: E402

from triptych.hardware import describe  # noqa: E402
from triptych.text.metrics import rouge  # noqa: E402
from triptych.text.baselines.extractive import lead  # noqa: E402

TYPES = ["rouge1", "rouge2", "rougeL", "rougeLsum"]


def load_pairs(n: int) -> tuple[list[str], list[str]]:
    predictions, references = [], []
    with gzip.open(ROOT / "data/debian-descriptions/train.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            predictions.append(lead(row["document"]))
            references.append(row["summary"])
            if len(predictions) == n:
                break
    return predictions, references


def python_engine(fn):
    """Run fn with triptych's own engine forced."""
    def run(*a):
        os.environ["TRIPTYCH_ROUGE_ENGINE"] = "python"
        try:
            return fn(*a)
        finally:
            del os.environ["TRIPTYCH_ROUGE_ENGINE"]
    return run


def timed(fn, *a):
    start = time.process_time()
    out = fn(*a)
    return time.process_time() - start, out


def ours(predictions, references, stem):
    return rouge.score_pairs(predictions, references, stem=stem, types=TYPES)


def ours_cold(predictions, references, stem):
    for cache in (*rouge._CACHES.values(), *rouge._WORDS.values()):  # cold start:
        cache.clear()  # stemming and tokenising every new word is part of the cost
    return ours(predictions, references, stem)


def peer(predictions, references, stem):
    scorer = rouge_scorer.RougeScorer(TYPES, use_stemmer=stem)
    return [scorer.score(r, p) for p, r in zip(predictions, references)]  # (target, prediction)


def peer_rs(predictions, references, stem):
    return RsScorer(TYPES, use_stemmer=stem).score_batch(references, predictions)


def max_diff(a_rows, b_rows) -> float:
    return max((abs(x - y) for a, b in zip(a_rows, b_rows) for k in TYPES for x, y in zip(a[k], b[k])), default=0.0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-stem", dest="stem", action="store_false")
    args = ap.parse_args()

    predictions, references = load_pairs(args.pairs)
    runs = {
        "triptych": ours,
        "triptych-python": python_engine(ours_cold),
        "triptych-python-warm": python_engine(ours),
        "rouge-score": peer,
        "rouge-score-rs": peer_rs,
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    scores = {}
    for _ in range(args.repeats):
        for name, fn in runs.items():
            t, scores[name] = timed(fn, predictions, references, args.stem)
            times[name].append(t)

    worst = max(max_diff(scores[name], scores["rouge-score"]) for name in runs)
    if worst > 1e-9:
        print(f"scores differ: max |diff| = {worst}", file=sys.stderr)
        return 1

    n = len(predictions)
    rate = {name: n / min(ts) for name, ts in times.items()}
    for name, ts in times.items():
        print(f"{name:21s} {rate[name]:10.0f} pairs/s  (best of {args.repeats}: {min(ts):.3f} s CPU)", file=sys.stderr)
    print(json.dumps({
        "benchmark": "rouge", "pairs": n, "stem": args.stem, "types": TYPES, "engine": rouge.rouge_engine(),
        **{f"{name.replace('-', '_')}_pairs_per_s": round(r, 1) for name, r in rate.items()},
        "max_abs_diff": worst,
        "python_rs_ratio": round(rate["triptych-python-warm"] / rate["rouge-score-rs"], 2),
        "rs_ratio": round(rate["triptych"] / rate["rouge-score-rs"], 2),
        "ratio": round(rate["triptych"] / rate["rouge-score"], 2),
        "machine": describe(),
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
