"""The video domain's config: one dataclass a section, mirrored by configs/video/*.yaml."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from triptych.config import TrainConfig


@dataclass
class VideoDataConfig:
    # TFRecord files: paths, directories or globs (several separated by ",").
    train: str = ""
    valid: str | None = None
    level: str = "frame"  # frame | video: which records the files hold
    # Which official files: auto (read off the records), 2017 (`video_id`,
    # 4,716 classes), 2018 (`id`, 3,862) or 2019-segments (2018 + rated segments).
    generation: str = "auto"
    num_classes: int | None = None  # None: the generation's (4716 for 2017, 3862 after)
    # Frames a training video shows the model: "all" (up to 300), "random"
    # (`frames` drawn with replacement, as DBoF and the 2017 winners trained)
    # or "window" (a random run of `frames`). Evaluation uses `eval_sampling`,
    # deterministically (evenly spaced / centred for random / window).
    sampling: str = "random"
    frames: int = 300
    eval_sampling: str = "all"
    max_frames: int = 300  # the official reader keeps the first 300
    batch_size: int = 80
    eval_batch_size: int = 256
    verify: bool = True  # check TFRecord CRCs
    skip_bad_records: bool = False
    limit_train: int | None = None  # only the first N training videos (tests, smoke runs)
    # Streaming (video/streaming.py): read the shards as streams instead of
    # holding them in memory. None: stream when the files exceed stream_above_mb.
    stream: bool | None = None
    stream_above_mb: int = 2048
    workers: int = 2  # DataLoader worker processes a rank when streaming (0: in this process)
    shuffle_buffer: int = 256  # records a worker shuffles among (raw payloads, ~0.35 MB each at frame level)


@dataclass
class VideoConfig:
    task: str = "video"
    seed: int = 1
    init_from: str | None = None  # a video checkpoint whose weights start the run
    top_k: int = 20  # GAP@k
    data: VideoDataConfig = field(default_factory=VideoDataConfig)
    # `name` is a registered model (`triptych video models`); the other keys
    # override its preset (clusters, hidden, num_mixtures, hidden_gating, ...).
    # num_classes and level come from the data section.
    model: dict[str, Any] = field(default_factory=lambda: {"name": "gated-netvlad"})
    # Miech et al.: Adam, lr 2e-4, batch 80 (their decay of 0.8 every 4M
    # examples is approximated by the engine's schedules, see the recipes).
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            lr=2e-4, weight_decay=0.0, betas=(0.9, 0.999), warmup_steps=100, schedule="constant",
            metric="gap", metric_mode="max", max_steps=10_000, eval_every=500, save_every=500,
            clip_norm=None, log_every=20,
        )
    )
