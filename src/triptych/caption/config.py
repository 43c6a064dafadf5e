"""The captioning config: one dataclass a section, mirrored by configs/caption/*.yaml."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from triptych.config import TrainConfig
from triptych.text.config import DecodeConfig

SCENES = "data/digit-scenes"


@dataclass
class CaptionDataConfig:
    # A captions file: JSON list or JSONL of {"image": path relative to the
    # file's folder, "caption": text}; several records may share an image.
    train: str = f"{SCENES}/train.jsonl"
    valid: str = f"{SCENES}/valid.jsonl"
    test: str = f"{SCENES}/test.jsonl"
    image_size: int = 32  # images are resized to this square side
    channels: int = 1  # 1 grey, 3 RGB (other images are converted)
    batch_size: int = 32  # (image, caption) pairs per micro-batch
    max_caption_len: int = 24  # word tokens, eos included; longer captions are truncated (counted)
    vocab_size: int = 2000  # the word vocabulary (every other word is <unk>)
    lowercase: bool = True
    limit_train: int | None = None  # the first N training records only (tests, smoke runs)


@dataclass
class CaptionModelConfig:
    backbone: str = "resnet18"  # any registered vision model (triptych vision models)
    # Options of the backbone's builder (e.g. {small_input: true}); in_channels comes from the data.
    backbone_options: dict[str, Any] = field(default_factory=lambda: {"small_input": True})
    backbone_checkpoint: str | None = None  # a vision run's checkpoint (e.g. runs/vision/x/best) to start from
    freeze_backbone: bool = False  # true: only the decoder (and the projection) learn
    decoder: str = "rnn"  # rnn (Show, Attend and Tell) | transformer
    # The text family's own `model:` keys (RNNConfig / TransformerConfig), e.g. attention, hidden.
    decoder_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class CaptionConfig:
    task: str = "caption"
    seed: int = 1
    init_from: str | None = None  # a caption checkpoint whose weights start the run
    label_smoothing: float = 0.0
    data: CaptionDataConfig = field(default_factory=CaptionDataConfig)
    model: CaptionModelConfig = field(default_factory=CaptionModelConfig)
    decode: DecodeConfig = field(default_factory=lambda: DecodeConfig(beam=3, max_len=24, length_penalty=0.0, no_repeat_ngram=0))
    valid_bleu_samples: int = 200  # greedy-captioned valid images scored at each evaluation
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(metric="bleu", metric_mode="max", warmup_steps=50, max_steps=1500,
                                            eval_every=250, save_every=250, log_every=20)
    )

    def __post_init__(self):
        from triptych.schema import check_metric

        scored = self.valid_bleu_samples > 0
        check_metric(self.train.metric, ("valid_loss", "bleu", "rougeL") if scored else ("valid_loss",),
                     "" if scored else "valid_bleu_samples is 0: no BLEU or ROUGE is measured")
