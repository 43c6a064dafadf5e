"""Corpus figures from per-pair ROUGE scores: the mean, and how far it can be trusted.

Kept apart from `rouge.py` (which scores pairs) because these only need the
scores: evaluation, `text rouge --bootstrap` and the benchmarks aggregate
whatever engine scored the pairs.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from triptych.text.metrics.rouge import Score, score_pairs


def mean_scores(per_pair: Sequence[dict[str, Score]]) -> dict[str, Score]:
    """Mean precision, recall and F1 over pairs (each pair weighs the same)."""
    if not per_pair:
        raise ValueError("no pairs to average")
    out = {}
    for t in per_pair[0]:
        m = np.array([s[t] for s in per_pair], dtype=np.float64).mean(axis=0)
        out[t] = Score(float(m[0]), float(m[1]), float(m[2]))
    return out


def bootstrap_intervals(per_pair: Sequence[dict[str, Score]], *, samples: int = 1000,
                        confidence: float = 0.95, seed: int = 0) -> dict[str, dict]:
    """Percentile-bootstrap confidence interval of the mean F1 of each type.

    Resamples the pairs with replacement `samples` times (numpy, in chunks
    that keep memory small) and takes the (1-confidence)/2 and
    (1+confidence)/2 percentiles of the resampled means. Returns, per type,
    ``{"mean", "low", "high"}``, all fractions (callers scale them alike).
    Deterministic for a given seed.
    """
    if not per_pair or samples < 1 or not 0 < confidence < 1:
        raise ValueError("bootstrap needs pairs, samples >= 1 and 0 < confidence < 1")
    types = list(per_pair[0])
    f1 = np.array([[s[t].fmeasure for t in types] for s in per_pair], dtype=np.float64)  # (N, T)
    n = len(f1)
    rng = np.random.default_rng(seed)
    means = np.empty((samples, len(types)))
    chunk = max(1, 4_000_000 // (n * len(types)))
    for start in range(0, samples, chunk):
        stop = min(samples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = f1[idx].mean(axis=1)  # (chunk, N, T) -> (chunk, T)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(means, [tail, 100 - tail], axis=0)
    point = f1.mean(axis=0)
    return {
        t: {"mean": float(point[k]), "low": float(low[k]), "high": float(high[k])}
        for k, t in enumerate(types)
    }


def rouge_f1_x100(predictions: Sequence[str], references: Sequence[str], **kw) -> dict[str, float]:
    """Mean F1 x 100 per type: the figures `triptych text rouge --json` prints."""
    means = mean_scores(score_pairs(predictions, references, **kw))
    return {t: 100.0 * s.fmeasure for t, s in means.items()}
