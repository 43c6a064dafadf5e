"""The vision domain's config: one dataclass a section, mirrored by configs/vision/*.yaml."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from triptych.config import TrainConfig
from triptych.errors import UserError
from triptych.schema import bounded


@dataclass
class DataConfig:
    # "digits": scikit-learn's 1,797 real 8x8 handwritten digits, with a fixed
    # stratified 70/10/20 train/valid/test split. "folder": ImageFolder trees
    # (train/CLASS/*.png|jpg), given by `train`, `valid` (else a held-out
    # `valid_fraction` of train) and `test`. "fashion": Fashion-MNIST's IDX
    # files in `root` (default: Debian's /usr/share/datasets/fashion-mnist),
    # valid = a fixed seeded `valid_fraction` of the 60,000, test = the 10,000.
    name: str = bounded("digits", choices=("digits", "folder", "fashion"))
    root: str | None = None
    train: str | None = None
    valid: str | None = None
    test: str | None = None
    valid_fraction: float = bounded(0.1, ge=0, lt=1)
    # Side of the square the model sees (the 8x8 digits are resized to it); the
    # default is LeNet-5's (the default model), the smallest it takes without small_input.
    image_size: int = bounded(32, ge=1, le=4096)
    channels: int | None = bounded(None, choices=(1, 3))  # 1 (grey) or 3 (RGB); default: 1 for digits, 3 for folders
    # A grey image fed to an RGB model (or the reverse) is an error naming the
    # file, unless `convert` is on: then grey is replicated to 3 channels and
    # RGB is turned to luminance.
    convert: bool = False
    # Folder photos are decoded and augmented in this many DataLoader worker
    # processes, ahead of the training step (0: in the training process).
    workers: int = bounded(2, ge=0, le=256)
    max_pixels: int = bounded(40_000_000, ge=1)  # a larger image is refused before it is decoded
    batch_size: int = bounded(64, ge=1)
    augment: bool = True
    # Folder augmentation: random crop of this fraction of the area, then flip.
    crop_scale: tuple[float, float] = bounded((0.35, 1.0), gt=0, le=1)
    hflip: bool = True
    # Fashion-MNIST augmentation: random crop of the image zero-padded by this many pixels, then flip.
    crop_padding: int = bounded(4, ge=0)
    # Fashion-MNIST: the chance that a training image gets one rectangle of noise (random erasing; 0: off).
    random_erasing: float = bounded(0.0, ge=0, le=1)
    # Digit augmentation (random affine): degrees, scale range, shift (fraction of the side).
    rotate: float = bounded(10.0, ge=0, le=180)
    zoom: tuple[float, float] = bounded((0.9, 1.1), gt=0)
    shift: float = bounded(0.1, ge=0, lt=1)
    # Per-channel normalisation; null = measured on the training images when the run starts.
    mean: list[float] | None = None
    std: list[float] | None = bounded(None, gt=0)
    limit_train: int | None = bounded(None, ge=1)  # use only the first N training images (tests, smoke runs)

    def __post_init__(self):
        for key in ("crop_scale", "zoom"):
            lo, hi = getattr(self, key)
            if lo > hi:
                raise UserError(f"data.{key}: [{lo}, {hi}] is not a range (allowed: low <= high)")


@dataclass
class VisionConfig:
    task: str = "vision"
    seed: int = bounded(1, ge=0, lt=2**32)
    # A vision checkpoint whose weights start the run (vision/finetune.py): a new
    # head when its classes differ; freeze_backbone trains the head alone.
    init_from: str | None = None
    freeze_backbone: bool = False
    label_smoothing: float = bounded(0.0, ge=0, lt=1)
    aux_weight: float = bounded(0.3, ge=0)  # GoogLeNet's auxiliary losses, as in the paper
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
        check_input_size(self)


def check_input_size(cfg: VisionConfig) -> None:
    """A model that cannot take `data.image_size` (LeNet-5's 5x5 convolutions
    and pools need 32 pixels without small_input) is named when the config is
    read, not by a shape traceback at the first step."""
    name = cfg.model.get("name") if isinstance(cfg.model, dict) else None
    if not name:
        return  # build_classifier names a missing model.name
    from triptych.vision.build import build_classifier

    channels = cfg.data.channels or (3 if cfg.data.name == "folder" else 1)
    check_fits(lambda: build_classifier(cfg, num_classes=10, in_channels=channels), channels, cfg.data.image_size,
               f"model.name {name} with these options", "model")


def check_fits(build, channels: int, size: int, model: str, options: str, trunk_only: bool = False) -> None:
    """Build a vision model with `build()` on torch's meta device (no memory,
    no arithmetic) and show it one batch of `size`-pixel images, in training
    mode (GoogLeNet's auxiliary heads too) or, `trunk_only`, to its feature map
    alone; a shape error becomes one line naming data.image_size and `model`,
    a builder's refusal of an option's value one naming the `options` key."""
    import torch

    with torch.device("meta"):
        try:
            net = build().train()
        except UserError:
            raise
        except (TypeError, ValueError, KeyError, RuntimeError) as e:  # e.g. hidden: -1, a negative layer size
            raise UserError(f"{options}: {_first_line(e)}") from None
        images = torch.zeros(2, channels, size, size)  # (B, C, H, W); 2: batch norm's batch statistics
        try:
            net.feature_map(images) if trunk_only else net(images)
        except (RuntimeError, ValueError) as e:
            raise UserError(f"data.image_size: {size} is too small for {model} ({_first_line(e)})") from None


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
