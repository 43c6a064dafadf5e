"""YouTube-8M metrics: GAP@k, Hit@1, PERR and mAP, as google/youtube-8m's
eval_util computes them, vectorised.

Definitions (predictions P [N, C], labels Y [N, C] in {0, 1}):

* top-k: each video keeps its k highest-scoring classes (k = min(k, C)).
* GAP@k: pool the N*k kept (score, label) pairs of all videos, rank them
  by score, and sum precision@i at every positive, divided by the number
  of positives in the WHOLE set (positives outside a top-k count as
  misses). 0 when there are no positives.
* mAP: the same per class, over the kept pairs of that class, divided by
  that class's positives; the mean over classes with at least one
  positive (a class with positives but no kept pair scores 0).
* Hit@1: the fraction of videos whose top class is a label.
* PERR: per video with L labels, the fraction of labels among its L
  top-scoring classes, counting a class only when its score is > 0; a
  video without labels scores 0; the mean over videos.

Ties. The reference breaks ties between equal scores of the pooled list
with a fixed random shuffle, i.e. it reports one draw of a random tie
order. Here the AP of a tie group is its EXPECTED value over all orders of
the group (exact, deterministic, and what the shuffle estimates); without
ties the two are the same number. Within a video, equal scores compete for
the top-k (and top-L, and top-1) places in class-index order, lowest first.
"""

from __future__ import annotations

import numpy as np

from triptych.errors import UserError


def topk_classes(predictions: np.ndarray, k: int, chunk_bytes: int = 8 << 20) -> tuple[np.ndarray, np.ndarray]:
    """Indices [N, k] and scores [N, k] of each row's k best classes,
    ordered by (score descending, class index ascending); NaN ranks last.
    Rows go to the compiled pass (`video.topk`) about `chunk_bytes` at a
    time, so a memory-mapped or strided input is copied a chunk at a time,
    never whole."""
    from triptych.video.topk import rows_top_k

    if not np.issubdtype(predictions.dtype, np.floating):
        predictions = predictions.astype(np.float64)
    N, C = predictions.shape
    k = min(k, C)
    work = predictions.dtype if predictions.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    chunk = max(1, chunk_bytes // max(1, C * work.itemsize))
    idx_out = np.empty((N, k), np.int64)
    val_out = np.empty((N, k), predictions.dtype)
    for lo in range(0, N, chunk):
        rows = predictions[lo : lo + chunk]
        vals, idx = rows_top_k(np.ascontiguousarray(rows, dtype=work), k)
        idx_out[lo : lo + len(rows)] = idx
        val_out[lo : lo + len(rows)] = vals if work == predictions.dtype else np.take_along_axis(rows, idx, 1)
    return idx_out, val_out


def _expected_ap_sums(segment: np.ndarray, scores: np.ndarray, positive: np.ndarray, num_segments: int) -> np.ndarray:
    """Per segment, the sum of precision@i over positives in score order,
    averaged over all orders of tied scores.

    Input sorted by (segment, score descending). For a tie group at ranks
    a+1..a+n holding p positives after c earlier positives, the j-th place
    (0-based) is positive with probability p/n and then has, on average,
    c + 1 + j(p-1)/(n-1) positives up to and including it.
    """
    M = len(scores)
    if M == 0:
        return np.zeros(num_segments)
    y = positive.astype(np.float64)
    ar = np.arange(M)
    seg_new = np.ones(M, bool)
    seg_new[1:] = segment[1:] != segment[:-1]
    grp_new = seg_new.copy()
    grp_new[1:] |= scores[1:] != scores[:-1]
    seg_first = np.maximum.accumulate(np.where(seg_new, ar, 0))
    grp_first = np.maximum.accumulate(np.where(grp_new, ar, 0))
    gid = np.cumsum(grp_new) - 1
    n = np.bincount(gid)[gid].astype(np.float64)
    p = np.bincount(gid, weights=y)[gid]
    before = np.cumsum(y) - y  # positives strictly before each place
    c = before[grp_first] - before[seg_first]
    j = ar - grp_first
    rank = ar - seg_first + 1
    term = (p / n) * (c + 1 + j * (p - 1) / np.maximum(n - 1, 1)) / rank
    return np.bincount(segment, weights=term, minlength=num_segments)


def _check(predictions: np.ndarray, labels: np.ndarray, top_k_: int) -> None:
    if predictions.ndim != 2 or predictions.shape != labels.shape:
        raise UserError(f"predictions {predictions.shape} and labels {labels.shape} must be equal 2-D shapes")
    if top_k_ <= 0:
        raise UserError("--top-k must be a positive integer")


def _kept_labels(labels: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """labels[n, idx[n, j]] > 0, flattened [N*k]: one flat take, not take_along_axis's index grid."""
    labels = np.ascontiguousarray(labels)
    flat = idx + (np.arange(len(idx)) * labels.shape[1])[:, None]
    return labels.reshape(-1)[flat.ravel()] > 0


def gap(predictions: np.ndarray, labels: np.ndarray, top_k: int = 20, *, _kept=None) -> float:
    """Global Average Precision of the top-k predictions of every video."""
    _check(predictions, labels, top_k)
    idx, vals = _kept if _kept is not None else topk_classes(predictions, top_k)
    positives = float(np.count_nonzero(labels))  # labels are 0/1
    if positives == 0:
        return 0.0
    kept_labels = _kept_labels(labels, idx)
    scores = vals.ravel().astype(np.float64, copy=False)
    ascending = np.sort(scores)  # a value sort is many times faster than an argsort
    if len(ascending) and not (ascending[1:] == ascending[:-1]).any():
        # No ties: the i-th best positive sits at rank 1 + (scores above it).
        hits = np.sort(scores[kept_labels])[::-1]
        rank = len(scores) - np.searchsorted(ascending, hits, side="right") + 1
        return float(np.sum(np.arange(1, len(hits) + 1) / rank) / positives)
    order = np.argsort(-scores, kind="stable")
    total = _expected_ap_sums(np.zeros(len(order), np.int64), scores[order], kept_labels[order], 1)[0]
    return float(total / positives)


def mean_ap(predictions: np.ndarray, labels: np.ndarray, top_k: int = 20, *, _kept=None) -> float:
    """Mean over classes with positives of each class's AP over the kept pairs."""
    _check(predictions, labels, top_k)
    idx, vals = _kept if _kept is not None else topk_classes(predictions, top_k)
    C = labels.shape[1]
    per_class = (labels > 0).sum(0).astype(np.float64)
    has = per_class > 0
    if not has.any():
        return 0.0
    cls = idx.ravel()
    scores = vals.ravel().astype(np.float64, copy=False)
    kept_labels = _kept_labels(labels, idx)
    order = np.lexsort((-scores, cls))
    sums = _expected_ap_sums(cls[order], scores[order], kept_labels[order], C)
    return float(np.mean(sums[has] / per_class[has]))


def hit_at_one(predictions: np.ndarray, labels: np.ndarray) -> float:
    top = np.argmax(predictions, axis=1)  # first maximum: lowest class index
    return float(np.mean(labels[np.arange(len(labels)), top]))


def perr(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Precision at equal recall rate, averaged over videos."""
    N, C = labels.shape
    if N == 0:
        return 0.0
    num = (labels > 0).sum(1)
    kmax = int(min(C, max(1, num.max())))
    idx, vals = topk_classes(predictions, kmax)
    hit = (np.take_along_axis(labels, idx, 1) > 0) & (vals > 0)
    within = np.arange(kmax)[None, :] < num[:, None]
    per_video = np.where(num > 0, (hit & within).sum(1) / np.maximum(num, 1), 0.0)
    return float(per_video.mean())


def evaluate(predictions: np.ndarray, labels: np.ndarray, top_k: int = 20) -> dict[str, float]:
    """{"gap", "hit_at_one", "perr", "map"}: fractions in [0, 1]."""
    _check(predictions, labels, top_k)
    if len(predictions) == 0:
        raise UserError("no videos to score")
    kept = topk_classes(predictions, top_k)
    return {
        "gap": gap(predictions, labels, top_k, _kept=kept),
        "hit_at_one": hit_at_one(predictions, labels),
        "perr": perr(predictions, labels),
        "map": mean_ap(predictions, labels, top_k, _kept=kept),
    }


def load_predictions(path) -> tuple[np.ndarray, np.ndarray]:
    """`predictions` float [N, C] and `labels` 0/1 [N, C] of a saved .npz."""
    from triptych.files import require_file

    from triptych.video.npz import load_npz

    p = require_file(path)
    arrays = load_npz(p, ("predictions", "labels"))  # headers checked before anything is allocated
    predictions, labels = arrays["predictions"], arrays["labels"]
    if predictions.ndim != 2 or predictions.shape != labels.shape:
        raise UserError(f"{p}: predictions {predictions.shape} and labels {labels.shape} must be equal 2-D shapes")
    if not np.issubdtype(predictions.dtype, np.floating) or not np.isfinite(predictions).all():
        raise UserError(f"{p}: predictions must be finite floats")
    if not np.isin(labels, (0, 1)).all():
        raise UserError(f"{p}: labels must be 0 or 1")
    return predictions, labels
