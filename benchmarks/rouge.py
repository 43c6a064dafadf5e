"""Pairs/s of triptych's ROUGE against `rouge-score` 0.1.2, same pairs, same run.

The pairs are real: the Lead baseline (first sentence cut to 10 words) of
10,000 training documents of the Debian descriptions corpus against their
human one-line summaries — what a ROUGE reward scores during training.
Both score ROUGE-1/2/L/Lsum with stemming; every score must be identical
(to 1e-9) or the benchmark fails. Each side is timed `--repeats` times
(alternating) and its best time kept; triptych's word and stem caches are emptied
before each of its runs, so no run profits from an earlier one. Times are
CPU times of this process (`time.process_time`; both sides are single-
threaded), because on a shared machine wall time mostly measures the
neighbours. "warm_ratio" is the steady state of a long run (e.g. ROUGE as a
training reward), where every word has been seen before; "ratio" is the
cold, one-shot figure.

Usage: python benchmarks/rouge.py [--pairs N] [--repeats R] [--no-stem]
Prints a human line per measure on stderr and one JSON line last on stdout,
with "ratio" = triptych pairs/s over rouge-score pairs/s.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from rouge_score import rouge_scorer  # noqa: E402

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


def run_ours(predictions, references, stem):
    for cache in (*rouge._CACHES.values(), *rouge._WORDS.values()):  # cold start:
        cache.clear()  # stemming and tokenising every new word is part of the cost
    start = time.process_time()
    scores = rouge.score_pairs(predictions, references, stem=stem, types=TYPES)
    return time.process_time() - start, scores


def run_peer(predictions, references, stem):
    start = time.process_time()
    scorer = rouge_scorer.RougeScorer(TYPES, use_stemmer=stem)
    scores = [scorer.score(r, p) for p, r in zip(predictions, references)]  # (target, prediction)
    return time.process_time() - start, scores


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-stem", dest="stem", action="store_false")
    args = ap.parse_args()

    predictions, references = load_pairs(args.pairs)
    ours_t, peer_t, warm_t = [], [], []
    for _ in range(args.repeats):
        t, ours = run_ours(predictions, references, args.stem)
        ours_t.append(t)
        start = time.process_time()
        rouge.score_pairs(predictions, references, stem=args.stem, types=TYPES)
        warm_t.append(time.process_time() - start)
        t, peer = run_peer(predictions, references, args.stem)
        peer_t.append(t)

    worst = 0.0
    for a, b in zip(ours, peer):
        for k in TYPES:
            worst = max(worst, *(abs(x - y) for x, y in zip(a[k], b[k])))
    if worst > 1e-9:
        print(f"scores differ: max |diff| = {worst}", file=sys.stderr)
        return 1

    n = len(predictions)
    ours_ps, peer_ps, warm_ps = n / min(ours_t), n / min(peer_t), n / min(warm_t)
    print(f"triptych    {ours_ps:10.0f} pairs/s  (best of {args.repeats}: {min(ours_t):.3f} s CPU, cold caches)", file=sys.stderr)
    print(f"triptych    {warm_ps:10.0f} pairs/s  (best of {args.repeats}: {min(warm_t):.3f} s CPU, warm caches)", file=sys.stderr)
    print(f"rouge-score {peer_ps:10.0f} pairs/s  (best of {args.repeats}: {min(peer_t):.3f} s CPU)", file=sys.stderr)
    print(json.dumps({
        "benchmark": "rouge", "pairs": n, "stem": args.stem, "types": TYPES,
        "triptych_pairs_per_s": round(ours_ps, 1), "triptych_warm_pairs_per_s": round(warm_ps, 1),
        "rouge_score_pairs_per_s": round(peer_ps, 1), "max_abs_diff": worst,
        "warm_ratio": round(warm_ps / peer_ps, 2), "ratio": round(ours_ps / peer_ps, 2),
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
