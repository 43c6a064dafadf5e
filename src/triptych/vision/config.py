"""The vision domain's config: one dataclass a section, mirrored by configs/vision/*.yaml."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from triptych.config import TrainConfig


@dataclass
class DataConfig:
    # "digits": scikit-learn's 1,797 real 8x8 handwritten digits, with a fixed
    # stratified 70/10/20 train/valid/test split. "folder": ImageFolder trees
    # (train/CLASS/*.png|jpg), given by `train`, `valid` (else a held-out
    # `valid_fraction` of train) and `test`. "fashion": Fashion-MNIST's IDX
    # files in `root` (default: Debian's /usr/share/datasets/fashion-mnist),
    # valid = a fixed seeded `valid_fraction` of the 60,000, test = the 10,000.
    name: str = "digits"
    root: str | None = None
    train: str | None = None
    valid: str | None = None
    test: str | None = None
    valid_fraction: float = 0.1
    image_size: int = 8  # side of the square the model sees (digits are resized to it)
    channels: int | None = None  # 1 (grey) or 3 (RGB); default: 1 for digits, 3 for folders
    # A grey image fed to an RGB model (or the reverse) is an error naming the
    # file, unless `convert` is on: then grey is replicated to 3 channels and
    # RGB is turned to luminance.
    convert: bool = False
    # Folder photos are decoded and augmented in this many DataLoader worker
    # processes, ahead of the training step (0: in the training process).
    workers: int = 2
    max_pixels: int = 40_000_000  # a larger image is refused before it is decoded
    batch_size: int = 64
    augment: bool = True
    # Folder augmentation: random crop of this fraction of the area, then flip.
    crop_scale: tuple[float, float] = (0.35, 1.0)
    hflip: bool = True
    # Fashion-MNIST augmentation: random crop of the image zero-padded by this many pixels, then flip.
    crop_padding: int = 4
    # Digit augmentation (random affine): degrees, scale range, shift (fraction of the side).
    rotate: float = 10.0
    zoom: tuple[float, float] = (0.9, 1.1)
    shift: float = 0.1
    # Per-channel normalisation; null = measured on the training images when the run starts.
    mean: list[float] | None = None
    std: list[float] | None = None
    limit_train: int | None = None  # use only the first N training images (tests, smoke runs)


@dataclass
class VisionConfig:
    task: str = "vision"
    seed: int = 1
    # A vision checkpoint whose weights start the run (vision/finetune.py): a new
    # head when its classes differ; freeze_backbone trains the head alone.
    init_from: str | None = None
    freeze_backbone: bool = False
    label_smoothing: float = 0.0
    aux_weight: float = 0.3  # GoogLeNet's auxiliary losses, as in the paper
    data: DataConfig = field(default_factory=DataConfig)
    # `name` is a registered model (triptych vision models); the other keys
    # are its builder's options: small_input, hidden, dropout, aux_logits, ...
    # num_classes and in_channels come from the data.
    model: dict[str, Any] = field(default_factory=lambda: {"name": "lenet5"})
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            metric="accuracy", metric_mode="max", warmup_steps=50, max_steps=2000,
            eval_every=100, save_every=500, log_every=20, weight_decay=0.05,
        )
    )

    def __post_init__(self):
        from triptych.schema import check_metric

        check_metric(self.train.metric, ("valid_loss", "accuracy", "top5"))  # what VisionTask.evaluate reports
