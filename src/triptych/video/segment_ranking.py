"""The 2019 submission's ranking: per class, the K best-scored segments.

The submission lists, for each class, its first K segments by score (K =
100,000 in the Kaggle 2019 challenge). Every 5-frame segment of every
video is scored, and each keeps its `top_k` classes; a class's list is cut
at K. So nothing past the K best of a class can ever be written, and
`ClassTopSegments` keeps no more: new candidates gather in a pending
buffer, and when the buffer is as large as what is kept (or `buffer`
entries, whichever is more) the two are merged and each class cut back to
its K best. Memory is O(classes x K) at worst (at most 2 x classes x K +
buffer + one batch entries are ever held), whatever the number of videos;
the merges cost O(log) a candidate, amortised.

Order: score descending, then the video's place in the data, then the
segment's start: the in-memory set's order (shard, then record) whichever
order a stream's workers deliver the videos in, so a streamed submission
and an in-memory one are the same file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from triptych.errors import UserError
from triptych.files import atomic_path

# cls int32, score float32, video key int64, start int32, name object ("<video id>:<start>")
_FIELDS = (np.int32, np.float32, np.int64, np.int32, object)


class ClassTopSegments:
    """Each class's k best (segment, score) pairs over every segment added."""

    def __init__(self, num_classes: int, k: int, top_k: int = 20, classes: np.ndarray | None = None,
                 buffer: int = 1 << 16):
        self.k, self.top_k, self.buffer = k, top_k, buffer
        self.allowed = None
        if classes is not None:  # only these classes may be written (the challenge's segment_label_ids.csv)
            self.allowed = np.zeros(num_classes, bool)
            self.allowed[classes[(classes >= 0) & (classes < num_classes)]] = True
        self.kept = tuple(np.zeros(0, t) for t in _FIELDS)  # sorted, <= k a class
        self.pending: list[tuple] = []
        self.pending_size = 0
        self.segments = 0  # segments scored
        self.max_held = 0  # the most entries held at once (kept + pending)

    def held(self) -> int:
        return len(self.kept[0]) + self.pending_size

    def add(self, probs: np.ndarray, keys: np.ndarray, starts: np.ndarray, names: np.ndarray) -> None:
        """probs [b, C] of b segments; keys [b] the videos' places in the data,
        starts [b] the segments' first frames, names [b] "<video id>:<start>"."""
        from triptych.video.metrics import topk_classes

        if self.allowed is not None:
            probs = np.where(self.allowed, probs, -1.0).astype(np.float32)
        idx, vals = topk_classes(probs, self.top_k)  # [b, t]
        row = np.repeat(np.arange(len(probs)), idx.shape[1])
        cls, score = idx.ravel(), vals.ravel()
        valid = score >= 0  # a class left out by `classes` scores -1
        row = row[valid]
        self.pending.append((cls[valid].astype(np.int32), score[valid].astype(np.float32),
                             np.asarray(keys, np.int64)[row], np.asarray(starts, np.int32)[row],
                             np.asarray(names, object)[row]))
        self.pending_size += len(row)
        self.segments += len(probs)
        self.max_held = max(self.max_held, self.held())
        if self.pending_size >= max(self.buffer, len(self.kept[0])):
            self._merge()

    def _merge(self) -> None:
        if not self.pending:
            return
        cls, score, key, start, name = (np.concatenate([kept, *(p[i] for p in self.pending)])
                                        for i, kept in enumerate(self.kept))
        self.pending, self.pending_size = [], 0
        order = np.lexsort((start, key, -score.astype(np.float64), cls))
        sorted_cls = cls[order]
        first = np.r_[True, sorted_cls[1:] != sorted_cls[:-1]]
        begin = np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))
        keep = order[np.arange(len(order)) - begin < self.k]  # the first k of each class, in order
        self.kept = (cls[keep], score[keep], key[keep], start[keep], name[keep])

    def rows(self):
        """(class, [names]) for each class with a segment, classes ascending, best first."""
        self._merge()
        cls, name = self.kept[0], self.kept[4]
        bounds = np.flatnonzero(np.r_[True, cls[1:] != cls[:-1], True]) if len(cls) else [0]
        for a, b in zip(bounds[:-1], bounds[1:]):
            yield int(cls[a]), name[a:b].tolist()


def write_ranking(path: str | Path, ranking: ClassTopSegments) -> int:
    """The 2019 submission (`Class,Segments`, then `class,<id>:<start> ...`),
    atomically; returns the number of classes written."""
    n = 0
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            fh.write("Class,Segments\n")
            for cls, names in ranking.rows():
                fh.write(f"{cls}," + " ".join(names) + "\n")
                n += 1
    return n


def rank_video_segments(models: list, videos, indices, keys: np.ndarray, ranking: ClassTopSegments,
                        batch_size: int, device="cpu") -> None:
    """Score every 5-frame segment of `videos[indices]` (a VideoSet) and add
    them to `ranking`; keys[j] is indices[j]'s place in the data."""
    from triptych.video.generations import SEGMENT_FRAMES
    from triptych.video.segments import score_segments

    starts = [np.arange(0, videos.num_frames(i), SEGMENT_FRAMES, dtype=np.int32) for i in indices]
    if not sum(len(s) for s in starts):
        return
    pairs = [(i, int(s)) for i, ss in zip(indices, starts) for s in ss]
    key = np.repeat(np.asarray(keys, np.int64), [len(s) for s in starts])
    start = np.concatenate(starts)
    name = np.array([f"{videos.ids[i]}:{s}" for i, s in pairs], object)

    def keep(lo, probs):
        part = slice(lo, lo + len(probs))
        ranking.add(probs, key[part], start[part], name[part])

    score_segments(models, videos, pairs, batch_size, device, keep)


def write_segment_submission(path, models: list, videos, *, k: int = 100_000, top_k: int = 20,
                             classes: np.ndarray | None = None, batch_size: int = 256, device="cpu") -> dict:
    """Score every 5-frame segment of every video, keep each segment's top_k
    classes (those in `classes` when given), and write per class its k best
    segments as the 2019 submission. Videos are scored `batch_size` at a
    time, as a stream takes them (so both score the same batches).
    Returns {"classes", "segments"}."""
    ranking = ClassTopSegments(videos.num_classes, k, top_k, classes)
    for lo in range(0, len(videos), batch_size):
        group = range(lo, min(len(videos), lo + batch_size))
        rank_video_segments(models, videos, group, np.asarray(group), ranking, batch_size, device)
    if not ranking.segments:
        raise UserError("no frames to score: every video is empty")
    return {"classes": write_ranking(path, ranking), "segments": ranking.segments}
