"""Evaluation that keeps per video only what the metrics need.

GAP@k and mAP read each video's top-k (class, score) pairs and whether
each is a label; Hit@1 and PERR are per-video numbers; the denominators
are label counts. So a streamed evaluation holds O(videos x k), not the
[videos, classes] matrix (3,862 floats a video), and gives the very numbers
`metrics.evaluate` gives on the full matrix (tested equal). For 2019
segment-rated data it also keeps each rated segment's score for its class.
"""

from __future__ import annotations

import numpy as np

from triptych.video import metrics as M


class TopKScores:
    """Accumulates batches of (probabilities [b, C], labels [b, C]) into metrics."""

    def __init__(self, num_classes: int, top_k: int = 20):
        self.C, self.k = num_classes, min(top_k, num_classes)
        self.idx: list[np.ndarray] = []
        self.vals: list[np.ndarray] = []
        self.kept: list[np.ndarray] = []
        self.per_class = np.zeros(num_classes, np.float64)
        self.hits = self.perr = 0.0
        self.videos = 0

    def add(self, probs: np.ndarray, labels: np.ndarray) -> None:
        idx, vals = M.topk_classes(probs, self.k)
        self.idx.append(idx.astype(np.int32))
        self.vals.append(vals.astype(np.float32))
        self.kept.append(np.take_along_axis(labels, idx, 1) > 0)
        self.per_class += (labels > 0).sum(0)
        self.hits += M.hit_at_one(probs, labels) * len(probs)
        self.perr += M.perr(probs, labels) * len(probs)
        self.videos += len(probs)

    def nbytes(self) -> int:
        return sum(a.nbytes for part in (self.idx, self.vals, self.kept) for a in part)

    def result(self) -> dict[str, float]:
        from triptych.errors import UserError

        if not self.videos:
            raise UserError("no videos to score")
        idx = np.concatenate(self.idx).ravel()  # int32
        scores = np.concatenate(self.vals).ravel()  # float32
        kept = np.concatenate(self.kept).ravel()
        positives = self.per_class.sum()
        order = np.argsort(-scores, kind="stable")
        gap_sum = _ap_sum_sorted(scores[order], kept[order])
        by_class = np.lexsort((-scores, idx))
        cls, s, y = idx[by_class], scores[by_class], kept[by_class]
        del order, by_class
        bounds = np.flatnonzero(np.r_[True, cls[1:] != cls[:-1], True])
        sums = np.zeros(self.C)
        for a, b in zip(bounds[:-1], bounds[1:]):
            sums[cls[a]] = _ap_sum_sorted(s[a:b], y[a:b])
        has = self.per_class > 0
        return {
            "gap": float(gap_sum / positives) if positives else 0.0,
            "hit_at_one": self.hits / self.videos,
            "perr": self.perr / self.videos,
            "map": float(np.mean(sums[has] / self.per_class[has])) if has.any() else 0.0,
        }


def _ap_sum_sorted(s: np.ndarray, y: np.ndarray, chunk: int = 1 << 18) -> float:
    """Sum over places of precision@i at the positives, for scores `s` sorted
    descending, each tie group at its expected value over all its orders
    (metrics._expected_ap_sums' formula), in chunks cut at group ends so the
    temporaries stay ~ 12 x chunk x 8 bytes however many pairs there are."""
    total, before_chunk, start, M = 0.0, 0.0, 0, len(s)
    while start < M:
        stop = min(M, start + chunk)
        if stop < M:  # move the cut to the end of the tie group it falls in
            stop = start + int(np.searchsorted(-s[start:], -s[stop - 1], side="right"))
        ss, yy = s[start:stop], y[start:stop].astype(np.float64)
        ar = np.arange(len(ss))
        new = np.r_[True, ss[1:] != ss[:-1]]
        first = np.maximum.accumulate(np.where(new, ar, 0))
        gid = np.cumsum(new) - 1
        n = np.bincount(gid)[gid].astype(np.float64)
        p = np.bincount(gid, weights=yy)[gid]
        before = np.cumsum(yy) - yy
        c = before[first] + before_chunk
        j = ar - first
        term = (p / n) * (c + 1 + j * (p - 1) / np.maximum(n - 1, 1)) / (start + ar + 1)
        total += float(term.sum())
        before_chunk += float(yy.sum())
        start = stop
    return total


class RatedSegments:
    """The 2019 rated segments of streamed videos: their class, rating and score."""

    def __init__(self):
        self.scores: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []
        self.ratings: list[np.ndarray] = []

    def add(self, models: list, items: list[dict], device) -> None:
        from triptych.video.segments import score_segments
        from triptych.video.io.yt8m import VideoSet, Video

        rated = [it for it in items if it.get("segments") is not None and len(it["segments"])]
        if not rated:
            return
        videos = VideoSet([Video(str(i), it["labels"], it["rgb"], it["audio"], "frame") for i, it in enumerate(rated)],
                          None)
        pairs = [(i, int(s)) for i, it in enumerate(rated) for s in it["segments"].start]
        labels = np.concatenate([it["segments"].label for it in rated])
        out = np.empty(len(pairs), np.float32)

        def keep(lo, probs):
            out[lo:lo + len(probs)] = probs[np.arange(len(probs)), labels[lo:lo + len(probs)]]

        score_segments(models, videos, pairs, 256, device, keep)
        self.scores.append(out)
        self.labels.append(labels)
        self.ratings.append(np.concatenate([it["segments"].score for it in rated]))

    def result(self, k: int) -> dict:
        from triptych.video.segments import segment_map

        if not self.scores:
            return {}
        scores, labels, ratings = (np.concatenate(x) for x in (self.scores, self.labels, self.ratings))
        return {"segment_map": segment_map(scores, labels, ratings, k), "segment_k": k, "rated_segments": len(scores)}


def eval_batches(files, counts, cfg, stats, workers: int | None = None):
    """The shards' items, data.eval_batch_size at a time: every record once, in
    file order with 0 workers (interleaved across shards with more)."""
    from triptych.video.streaming import ShardStream, loader, take

    d = cfg.data
    ds = ShardStream(files, counts, epoch=0, seed=cfg.seed, rank=0, world=1,
                     workers=d.workers if workers is None else workers, train=False, buffer=0,
                     sampling=d.eval_sampling, frames=d.frames, max_frames=d.max_frames,
                     num_classes=d.num_classes, level=d.level, verify=d.verify, skip_bad=d.skip_bad_records)
    it = loader(ds)
    while True:
        items = take(it, d.eval_batch_size, stats)
        if not items:
            return
        yield items


def items_as_set(items: list[dict], level: str, num_classes: int):
    """A VideoSet of a batch of stream items (frames stay uint8), and each video's
    place in the data (shard << 32 | record: the in-memory set's order)."""
    from triptych.video.io.yt8m import Video, VideoSet

    videos = VideoSet([Video(it["id"], it["labels"], it["rgb"], it["audio"], level) for it in items], num_classes)
    return videos, np.array([(f << 32) | ri for f, ri in (it["key"] for it in items)], np.int64)


def rank_stream_segments(models: list, files, counts, cfg, device, stats, ranking) -> int:
    """Every segment of the streamed shards into `ranking` (a ClassTopSegments):
    the 2019 submission without holding the set. Returns the videos read."""
    from triptych.video.segment_ranking import rank_video_segments

    for m in models:
        m.eval()
    n = 0
    for items in eval_batches(files, counts, cfg, stats):
        videos, keys = items_as_set(items, cfg.data.level, cfg.data.num_classes)
        rank_video_segments(models, videos, range(len(items)), keys, ranking, cfg.data.eval_batch_size, device)
        n += len(items)
    return n


def evaluate_stream(model, files, counts, cfg, device, stats, workers: int | None = None,
                    segment_k: int | None = None, each=None) -> dict:
    """Metrics, mean loss (and the 2019 segment metric) of `model` (or a list
    of models, whose probabilities are averaged) on streamed shards.
    `each(ids, probs)` sees every batch's probabilities (a submission writer)."""
    import torch

    from triptych.video.segments import DEFAULT_K
    from triptych.video.streaming import collate_items
    from triptych.video.loss import bce_sum, to_device

    d = cfg.data
    acc, segs, loss = TopKScores(d.num_classes, cfg.top_k), RatedSegments(), 0.0
    models = model if isinstance(model, (list, tuple)) else [model]
    for m in models:
        m.eval()
    with torch.no_grad():
        for items in eval_batches(files, counts, cfg, stats, workers):
            batch = collate_items(items, d.num_classes, d.level, d.max_frames)
            if d.eval_sampling != "all" and d.level == "frame":
                from triptych.video.io.yt8m import sample_frames

                sampled = list(items)  # the segments below are scored on every frame
                for row, item in enumerate(items):  # deterministic sampling, as in memory
                    n = int(batch["num_frames"][row])
                    pick = sample_frames(n, d.eval_sampling, d.frames, None)
                    sampled[row] = dict(item, rgb=item["rgb"][:n][pick], audio=item["audio"][:n][pick])
                batch = collate_items(sampled, d.num_classes, d.level, None)
            tensors = to_device(batch, device)
            outs = [m(tensors) for m in models]
            loss += float(np.mean([float(bce_sum(o, tensors["labels"])) for o in outs]))
            probs = np.mean([o["probs"].float().cpu().numpy() for o in outs], axis=0, dtype=np.float64)
            probs = probs.astype(np.float32)
            acc.add(probs, batch["labels"])
            if each is not None:
                each([it["id"] for it in items], probs)
            segs.add(models, items, device)
    result = {**acc.result(), "valid_loss": loss / max(1, acc.videos), "videos": acc.videos,
              **segs.result(segment_k or DEFAULT_K)}
    if segment_k is None:  # validation during training: the keys the in-memory set reports
        result.pop("rated_segments", None)
        result.pop("segment_k", None)
        result.pop("videos")
    return result
