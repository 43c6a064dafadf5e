"""The captioning config: one dataclass a section, mirrored by configs/caption/*.yaml."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from triptych.config import TrainConfig
from triptych.caption.decoders import DECODERS
from triptych.schema import bounded
from triptych.text.config import MAX_VOCAB, DecodeConfig

SCENES = "data/digit-scenes"


@dataclass
class CaptionDataConfig:
    # A captions file: JSON list or JSONL of {"image": path relative to the
    # file's folder, "caption": text}; several records may share an image.
    train: str = f"{SCENES}/train.jsonl"
    valid: str = f"{SCENES}/valid.jsonl"
    test: str = f"{SCENES}/test.jsonl"
    image_size: int = bounded(32, ge=1, le=4096)  # images are resized to this square side
    channels: int = bounded(1, choices=(1, 3))  # 1 grey, 3 RGB (other images are converted)
    batch_size: int = bounded(32, ge=1)  # (image, caption) pairs per micro-batch
    max_caption_len: int = bounded(24, ge=2)  # word tokens, eos included; longer captions are truncated (counted)
    vocab_size: int = bounded(2000, ge=1, le=MAX_VOCAB)  # the word vocabulary (every other word is <unk>)
    lowercase: bool = True
    limit_train: int | None = bounded(None, ge=1)  # the first N training records only (tests, smoke runs)


@dataclass
class CaptionModelConfig:
    backbone: str = "resnet18"  # any registered vision model (triptych vision models)
    # Options of the backbone's builder (e.g. {small_input: true}); in_channels comes from the data.
    backbone_options: dict[str, Any] = field(default_factory=lambda: {"small_input": True})
    backbone_checkpoint: str | None = None  # a vision run's checkpoint (e.g. runs/vision/x/best) to start from
    freeze_backbone: bool = False  # true: only the decoder (and the projection) learn
    decoder: str = bounded("rnn", choices=DECODERS)  # rnn (Show, Attend and Tell) | transformer
    # The text family's own `model:` keys (RNNConfig / TransformerConfig), e.g. attention, hidden.
    decoder_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class CaptionConfig:
    task: str = "caption"
    seed: int = bounded(1, ge=0, lt=2**32)
    init_from: str | None = None  # a caption checkpoint whose weights start the run
    label_smoothing: float = bounded(0.0, ge=0, lt=1)
    data: CaptionDataConfig = field(default_factory=CaptionDataConfig)
    model: CaptionModelConfig = field(default_factory=CaptionModelConfig)
    decode: DecodeConfig = field(default_factory=lambda: DecodeConfig(beam=3, max_len=24, length_penalty=0.0, no_repeat_ngram=0))
    valid_bleu_samples: int = bounded(200, ge=0)  # greedy-captioned valid images scored at each evaluation
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(metric="bleu", metric_mode="max", warmup_steps=50, max_steps=1500,
                                            eval_every=250, save_every=250, log_every=20)
    )

    def __post_init__(self):
        from triptych.schema import check_metric

        scored = self.valid_bleu_samples > 0
        check_metric(self.train.metric, ("valid_loss", "bleu", "rougeL") if scored else ("valid_loss",),
                     "" if scored else "valid_bleu_samples is 0: no BLEU or ROUGE is measured")
        check_backbone_input(self)


def check_backbone_input(cfg: CaptionConfig) -> None:
    """data.image_size must give the backbone a feature map (the decoder attends over its grid)."""
    from triptych.caption.models import build_backbone
    from triptych.vision.config import check_fits

    m = cfg.model
    bare = dataclasses.replace(m, backbone_checkpoint=None)  # the shape alone: no weights read here
    check_fits(lambda: build_backbone(bare, cfg.data.channels), cfg.data.channels, cfg.data.image_size,
               f"model.backbone {m.backbone} with these backbone_options", "model.backbone_options", trunk_only=True)
