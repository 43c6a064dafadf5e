"""The 2019 challenge: temporal localisation in 5-frame segments.

A frame-level model scores a segment as it scores a video: its 5 frames
(fewer at a video's end) go through the model, giving class probabilities
(the starter code's inference.py does the same with `--segment_labels`).

The metric (Kaggle "YouTube-8M 2019", the starter's segment_eval_inference.py):
for each class c, the submission ranks segments by score and is cut at its
first K (100,000 on the real set). Only segments a rater scored for c count:
the others are dropped from the ranking after the cut. AP_c is the sum of
precision@i at every positive (score 1) in the kept ranking, divided by
ALL positives of c in the rated data (a positive never ranked is a miss);
the metric is the mean of AP_c over classes with at least one positive.

Here the ranking is over the rated segments only (an evaluation does not
hold every segment's 3,862 scores), so an unrated segment can never push a
rated one out of the first K: with K at least the rated segments of a
class, as on the real set (K = 100,000, ~250 rated segments a class), the
two are the same number. Ties between equal scores keep record order.

The submission (`Class,Segments` header, then per class
`class,<video id>:<start> <video id>:<start> ...` by score descending) is
the format the challenge took; segment_ranking.py keeps only what it can
list (each class's K best), so a streamed set needs no more memory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from triptych.errors import UserError
from triptych.video.generations import SEGMENT_FRAMES
from triptych.video.io.yt8m import AUDIO_DIM, RGB_DIM, VideoSet, dequantize_into

DEFAULT_K = 100_000


def segment_batch(videos: VideoSet, pairs: list[tuple[int, int]]) -> dict:
    """A model batch of segments: (video index, start frame) -> rgb [B, 5, 1024],
    audio [B, 5, 128], mask [B, 5], num_frames [B] (fewer frames at the end)."""
    B = len(pairs)
    rgb = np.zeros((B, SEGMENT_FRAMES, RGB_DIM), np.float32)
    audio = np.zeros((B, SEGMENT_FRAMES, AUDIO_DIM), np.float32)
    mask = np.zeros((B, SEGMENT_FRAMES), np.float32)
    for row, (i, start) in enumerate(pairs):
        lo = int(videos.offsets[i]) + start
        hi = min(int(videos.offsets[i + 1]), lo + SEGMENT_FRAMES)
        n = max(0, hi - lo)
        dequantize_into(videos.rgb[lo:hi], rgb[row, :n])
        dequantize_into(videos.audio[lo:hi], audio[row, :n])
        mask[row, :n] = 1.0
    return {"rgb": rgb, "audio": audio, "mask": mask, "num_frames": mask.sum(1).astype(np.int64)}


def score_segments(models: list, videos: VideoSet, pairs: list[tuple[int, int]], batch_size: int = 256,
                   device="cpu", keep=None):
    """The members' mean probabilities of each segment, chunk by chunk:
    `keep(lo, probs [b, C])` receives them (so all segments' scores need
    never be held at once); returns nothing."""
    import torch

    if videos.level != "frame":
        raise UserError("segment scores need frame-level records (the 2019 data is frame level)")
    with torch.no_grad():
        for lo in range(0, len(pairs), batch_size):
            batch = {k: torch.from_numpy(v).to(device) for k, v in segment_batch(videos, pairs[lo:lo + batch_size]).items()}
            probs = np.mean([m(batch)["probs"].float().cpu().numpy() for m in models], axis=0, dtype=np.float64)
            keep(lo, probs.astype(np.float32))


def rated_pairs(videos: VideoSet) -> tuple[list[tuple[int, int]], np.ndarray, np.ndarray]:
    """Every rated segment of a 2019 set: (video, start) pairs, their class and rating."""
    pairs, label, rating = [], [], []
    for i, seg in enumerate(videos.segments):
        if seg is None:
            continue
        pairs += [(i, int(s)) for s in seg.start]
        label.append(seg.label)
        rating.append(seg.score)
    if not pairs:
        raise UserError("no rated segments in the data (2019 segment-rated files hold segment_labels)")
    return pairs, np.concatenate(label), np.concatenate(rating)


def segment_map(scores: np.ndarray, labels: np.ndarray, ratings: np.ndarray, k: int = DEFAULT_K) -> float:
    """The 2019 metric from rated (segment, class) pairs: their predicted
    score for the class [M], the class [M], the rating 0/1 [M]."""
    if k < 1:
        raise UserError(f"--segment-k {k}: must be >= 1")
    scores = np.asarray(scores, np.float64)
    order = np.lexsort((np.arange(len(scores)), -scores, labels))  # by class, score desc, record order
    cls, pos = labels[order], ratings[order] > 0
    first = np.r_[True, cls[1:] != cls[:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(len(cls)), 0))
    rank = np.arange(len(cls)) - start + 1  # 1-based rank within the class
    hits = np.cumsum(pos) - (np.cumsum(pos) - pos)[start]  # positives up to and including each place
    kept = pos & (rank <= k)
    classes, inverse = np.unique(cls, return_inverse=True)
    ap = np.bincount(inverse, weights=np.where(kept, hits / rank, 0.0), minlength=len(classes))
    positives = np.bincount(inverse, weights=pos.astype(np.float64), minlength=len(classes))
    has = positives > 0
    if not has.any():
        return 0.0
    return float(np.mean(ap[has] / positives[has]))


def evaluate_segments(models: list, videos: VideoSet, k: int = DEFAULT_K, batch_size: int = 256,
                      device="cpu") -> dict:
    """{"segment_map", "segment_k", "rated_segments"} of a 2019 segment-rated set."""
    pairs, labels, ratings = rated_pairs(videos)
    scores = np.empty(len(pairs), np.float32)

    def keep(lo, probs):  # only the rated class's score of each segment is kept
        scores[lo:lo + len(probs)] = probs[np.arange(len(probs)), labels[lo:lo + len(probs)]]

    score_segments(models, videos, pairs, batch_size, device, keep)
    return {"segment_map": segment_map(scores, labels, ratings, k), "segment_k": k, "rated_segments": len(pairs)}


def read_class_list(path: str | Path) -> np.ndarray:
    """Class ids, one a line (other lines such as a header are skipped, as the
    starter code reads segment_label_ids.csv)."""
    from triptych.files import require_file

    ids = []
    for line in require_file(path).read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            ids.append(int(line.strip()))
        except ValueError:
            continue
    if not ids:
        raise UserError(f"{path}: no class ids (one integer a line)")
    return np.array(sorted(set(ids)), np.int64)
