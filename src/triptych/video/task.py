"""Where video classification meets the engine: data, model, loss, metrics.

`VideoTask` reads the TFRecords into memory (uint8 frames), builds the model
from its registered preset plus the config's overrides, plans shuffled
batches (a pure function of seed and epoch), and validates with GAP@20,
Hit@1, PERR, mAP and the loss. Frame sampling for a training batch is
seeded by the batch's own indices, so a resumed run sees the same frames.

Loss: binary cross-entropy summed over classes (the reference's
CrossEntropyLoss sums over classes and averages over videos; the engine
divides the sum by the videos of the step). Heads with logits use the
exact logit form; MoE heads give probabilities, and their loss adds
epsilon = 1e-5 inside the logs as the reference does.
"""

from __future__ import annotations


import numpy as np
import torch

from triptych.errors import UserError
from triptych.video import metrics as M
from triptych.video.config import VideoConfig
from triptych.video.generations import check_choice, default_classes, same_label_space
from triptych.video.models import VideoModel, resolve_model
from triptych.video.io.tfrecord import RecordStats
from triptych.video.io.yt8m import VideoSet
from triptych.video.loss import bce_sum, to_device



def split_paths(text: str) -> list[str]:
    return [p.strip() for p in str(text).split(",") if p.strip()]


def load_set(paths: str, cfg: VideoConfig, stats: RecordStats | None = None, limit: int | None = None) -> VideoSet:
    import itertools

    from triptych.video.io.yt8m import read_videos

    d = cfg.data
    videos = read_videos(split_paths(paths), num_classes=d.num_classes, level=d.level, verify=d.verify,
                         skip_bad=d.skip_bad_records, stats=stats, max_frames=d.max_frames, generation=d.generation)
    if limit is not None:
        videos = itertools.islice(videos, limit)
    return VideoSet(videos, d.num_classes)


def streamed(d, paths: str) -> bool:
    """Whether to read `paths` as a stream: data.stream, or by size when it is unset."""
    if d.stream is not None:
        return bool(d.stream)
    from triptych.video.streaming import size_of

    return size_of(split_paths(paths)) > d.stream_above_mb * (1 << 20)


@torch.no_grad()
def predict(model: VideoModel, videos: VideoSet, cfg: VideoConfig, device="cpu") -> tuple[np.ndarray, float]:
    """Probabilities [N, C] (float32) of every video, and the mean loss a video."""
    model.eval()
    d = cfg.data
    out, loss = [], 0.0
    n = d.frames if d.eval_sampling != "all" else 0
    for lo in range(0, len(videos), d.eval_batch_size):
        idx = list(range(lo, min(len(videos), lo + d.eval_batch_size)))
        batch = to_device(videos.batch(idx, d.eval_sampling, n, None), device)
        res = model(batch)
        loss += float(bce_sum(res, batch["labels"]))
        out.append(res["probs"].float().cpu().numpy())
    return np.concatenate(out), loss / max(1, len(videos))


class VideoTask:
    domain = "video"
    unit_name = "video"

    def __init__(self, cfg: VideoConfig, train_set: VideoSet | None = None, valid_set: VideoSet | None = None):
        self.cfg = cfg
        d = cfg.data
        if d.batch_size < 2:
            raise UserError(f"data.batch_size: must be >= 2 (batch norm), got {d.batch_size}")
        if not train_set and not d.train:
            raise UserError("data.train: no training files given")
        self.stats = RecordStats()
        check_choice(d.generation)
        self.train_stream = self.valid_stream = None
        if train_set is None and streamed(d, d.train):
            from triptych.video.stream_task import TrainStream

            if d.limit_train is not None:
                raise UserError("data.limit_train: only for a set held in memory (set data.stream: false)")
            self.train_stream = TrainStream(split_paths(d.train), cfg, self.stats)
            d.num_classes = d.num_classes or default_classes(self.train_stream.generation)
        self.train_set = train_set or (None if self.train_stream else load_set(d.train, cfg, self.stats, d.limit_train))
        if d.num_classes is None:  # from the records: 4716 for 2017, 3862 after
            d.num_classes = self.train_set.num_classes
        if valid_set is None and d.valid and streamed(d, d.valid):
            from triptych.video.streaming import scan

            self.valid_stream = scan(split_paths(d.valid), d.verify)
        self.valid_set = valid_set or (load_set(d.valid, cfg, self.stats) if d.valid and not self.valid_stream else None)
        train_gen = self.train_stream.generation if self.train_stream else self.train_set.generation
        valid_gen = self.valid_stream[2] if self.valid_stream else getattr(self.valid_set, "generation", None)
        same_label_space(train_gen, valid_gen, d.train, d.valid)
        if self.train_set is not None and self.train_set.level != d.level:
            raise UserError(f"{d.train}: holds {self.train_set.level}-level records but data.level is {d.level}")
        self.model_cfg = resolve_model(cfg)
        cfg.model = {k: v for k, v in self.model_cfg.__dict__.items() if k not in ("num_classes", "level")}
        self.model = VideoModel(self.model_cfg)
        if self.model_cfg.centre_init not in ("random", "data"):
            raise UserError(f"model.centre_init: '{self.model_cfg.centre_init}' is not random or data")
        if self.model_cfg.centre_init == "data":
            from triptych.video.classical import init_centres

            sample = self.train_set or load_set(d.train, cfg, RecordStats(), limit=2000)
            self.centre_init = init_centres(self.model, sample, seed=cfg.seed)

    # --- the engine's contract ------------------------------------------------

    def batch_plan(self, epoch: int) -> list[list[int]]:
        if self.train_stream is not None:
            return self.train_stream.plan(epoch)
        g = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + epoch)
        order = torch.randperm(len(self.train_set), generator=g).tolist()
        size = self.cfg.data.batch_size
        plan = [order[i : i + size] for i in range(0, len(order), size)]
        if len(plan) > 1 and len(plan[-1]) < max(2, size // 2):  # a runt batch upsets batch norm
            plan.pop()
        return plan

    def collate(self, indices: list[int], device) -> dict | None:
        d = self.cfg.data
        if self.train_stream is not None:
            from triptych.video.streaming import collate_items

            items = self.train_stream.take(indices)
            return to_device(collate_items(items, d.num_classes, d.level), device) if items else None
        rng = np.random.default_rng([self.cfg.seed, *indices])
        n = d.frames if d.sampling != "all" else 0
        return to_device(self.train_set.batch(indices, d.sampling, n, rng), device)

    def batch_units(self, batch: dict) -> int:
        return int(batch["labels"].shape[0])

    def loss(self, model, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        return bce_sum(model(batch), batch["labels"]), {}

    def evaluate(self, model) -> dict[str, float]:
        device = next(model.parameters()).device
        if self.valid_stream is not None:
            from triptych.video.stream_eval import evaluate_stream

            files, counts, _ = self.valid_stream
            return evaluate_stream(model, files, counts, self.cfg, device, self.stats)
        if self.valid_set is None:
            raise UserError("data.valid: no validation files, so there is nothing to evaluate")
        probs, loss = predict(model, self.valid_set, self.cfg, device)
        labels = self.valid_set.multi_hot(range(len(self.valid_set)))
        scores = M.evaluate(probs, labels, top_k=self.cfg.top_k)
        if self.valid_set.generation == "2019-segments":  # the 2019 metric beside GAP
            from triptych.video.segments import evaluate_segments

            seg = evaluate_segments([model], self.valid_set, batch_size=self.cfg.data.eval_batch_size, device=device)
            scores["segment_map"] = seg["segment_map"]
        return {**scores, "valid_loss": loss}

    def save_artifacts(self, directory) -> None:
        """Nothing beyond config.yaml: the model is rebuilt from it."""
