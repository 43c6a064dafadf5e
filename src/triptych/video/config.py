"""The video domain's config: one dataclass a section, mirrored by configs/video/*.yaml."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from triptych.config import TrainConfig
from triptych.schema import bounded
from triptych.video.generations import CHOICES as GENERATIONS

SAMPLINGS = ("all", "random", "window")  # io/yt8m.py sample_frames


@dataclass
class VideoDataConfig:
    # TFRecord files: paths, directories or globs (several separated by ",").
    train: str = ""
    valid: str | None = None
    level: str = bounded("frame", choices=("frame", "video"))  # which records the files hold
    # Which official files: auto (read off the records), 2017 (`video_id`,
    # 4,716 classes), 2018 (`id`, 3,862) or 2019-segments (2018 + rated segments).
    generation: str = bounded("auto", choices=GENERATIONS)
    num_classes: int | None = bounded(None, ge=1)  # None: the generation's (4716 for 2017, 3862 after)
    # Frames a training video shows the model: "all" (up to 300), "random"
    # (`frames` drawn with replacement, as DBoF and the 2017 winners trained)
    # or "window" (a random run of `frames`). Evaluation uses `eval_sampling`,
    # deterministically (evenly spaced / centred for random / window).
    sampling: str = bounded("random", choices=SAMPLINGS)
    frames: int = bounded(300, ge=1)
    eval_sampling: str = bounded("all", choices=SAMPLINGS)
    max_frames: int = bounded(300, ge=1)  # the official reader keeps the first 300
    batch_size: int = bounded(80, ge=1)
    eval_batch_size: int = bounded(256, ge=1)
    verify: bool = True  # check TFRecord CRCs
    skip_bad_records: bool = False
    limit_train: int | None = bounded(None, ge=1)  # only the first N training videos (tests, smoke runs)
    # Streaming (video/streaming.py): read the shards as streams instead of
    # holding them in memory. None: stream when the files exceed stream_above_mb.
    stream: bool | None = None
    stream_above_mb: int = bounded(2048, ge=0)
    workers: int = bounded(2, ge=0, le=256)  # DataLoader worker processes a rank when streaming (0: in this process)
    shuffle_buffer: int = bounded(256, ge=0)  # records a worker shuffles among (raw payloads, ~0.35 MB each at frame level)


@dataclass
class VideoConfig:
    task: str = "video"
    seed: int = bounded(1, ge=0, lt=2**32)
    init_from: str | None = None  # a video checkpoint whose weights start the run
    top_k: int = bounded(20, ge=1)  # GAP@k
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

    def __post_init__(self):
        from triptych.schema import check_metric
        from triptych.video.models import resolve_model

        # The model section is a preset's overrides: resolved here, so a bad
        # option or a level that does not match the data is named before the run.
        resolve_model(self)
        # what VideoTask.evaluate reports; segment_map only for rated segments (2019)
        segments = self.data.generation in ("auto", "2019-segments")
        check_metric(self.train.metric, ("valid_loss", "gap", "hit_at_one", "perr", "map")
                     + (("segment_map",) if segments else ()),
                     "" if segments else f"segment_map is measured only with data.generation 2019-segments")
