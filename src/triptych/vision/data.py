"""Image data: the embedded digits, ImageFolder trees, and careful image opening.

Two sources, one interface (`ImageSet`: `classes`, `labels`, `batch(indices,
train)` -> images in [0, 1] and labels):

- `digits_splits()`: scikit-learn's `load_digits`, 1,797 real 8x8 scans of
  handwritten digits by 43 writers (UCI "optdigits"), shipped inside
  scikit-learn. The split is fixed (stratified per class, 70/10/20, seed
  2017), so every run and every report uses the same 359 test images.
- `FolderImages`: the ImageFolder layout, ROOT/CLASS/IMAGE with PNG or JPEG
  images, classes in sorted order. Every file is opened (header only) when
  the set is built, so a bad file stops the run before anything is written.

Bad input is a `UserError` naming the file: not an image, unreadable,
larger than `max_pixels`, grey into an RGB model (or RGB into a grey one)
unless `convert` is set, a folder without images.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from triptych.errors import UserError
from triptych.vision import transforms as T
from triptych.vision.config import DataConfig
from triptych.vision.jpeg import decode_scaled
from triptych.vision.images import ImageSet  # noqa: F401  (re-exported: the sources below and their users)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
DIGITS_SPLIT_SEED = 2017
DIGITS_FRACTIONS = (0.7, 0.1, 0.2)  # train, valid, test
_GREY_MODES = ("1", "L", "LA", "I", "F")


def _is_grey(mode: str) -> bool:
    return mode in _GREY_MODES or mode.startswith("I;")


def open_image(path: str | Path, channels: int, *, convert: bool = False, max_pixels: int = 40_000_000,
               load: bool = True, draft: Callable | None = None):
    """Open an image file as a PIL image of mode L (channels 1) or RGB (channels 3).

    With `load=False` only the header is read (size and mode are checked):
    cheap enough to check a whole folder before training. `draft(w, h)`, for
    a JPEG, gives the smallest size the caller still needs: the decoder then
    skips detail by a power of two (libjpeg's DCT scaling), which is most of
    a 224-pixel crop's decoding time on a large photo.
    """
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.exists():
        raise UserError(f"{p}: no such image file")
    if p.is_dir():
        raise UserError(f"{p}: is a directory, expected an image file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(p)
    except UnidentifiedImageError:
        raise UserError(f"{p}: not an image (expected PNG or JPEG)") from None
    except Image.DecompressionBombError:
        raise UserError(f"{p}: image too large (more than {max_pixels:,} pixels, data.max_pixels)") from None
    except OSError as e:
        raise UserError(f"{p}: cannot read image ({e.strerror or e})") from None
    w, h = img.size
    if w * h > max_pixels:
        raise UserError(f"{p}: image is {w}x{h} = {w * h:,} pixels, more than the {max_pixels:,} allowed (data.max_pixels)")
    if w < 1 or h < 1:
        raise UserError(f"{p}: empty image ({w}x{h})")
    grey = _is_grey(img.mode)
    if channels == 3 and grey and not convert:
        raise UserError(f"{p}: grayscale image (mode {img.mode}) but the model takes RGB; "
                        "use --convert (data.convert: true) to replicate it to 3 channels")
    if channels == 1 and not grey and not convert:
        raise UserError(f"{p}: colour image (mode {img.mode}) but the model takes grayscale; "
                        "use --convert (data.convert: true) to convert it to luminance")
    if not load:
        return img
    mode = "L" if channels == 1 else "RGB"
    if draft is not None and img.format == "JPEG":
        asked = draft(w, h)  # once: a training crop draws its box here
        fast = decode_scaled(p, img, mode, asked)  # simplejpeg where installed: the same pixels, faster
        if fast is not None:
            img.close()
            return fast
        img.draft(mode, asked)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img.load()
    except (OSError, SyntaxError, ValueError) as e:
        raise UserError(f"{p}: corrupt or truncated image ({e})") from None
    if img.mode in ("I", "F") or img.mode.startswith("I;"):
        # 16/32-bit grey: scale to 8 bits by the image's own range, not by clipping.
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(arr)
        img = Image.fromarray(arr.astype(np.uint8), mode="L")
    return img if img.mode == mode else img.convert(mode)  # convert() would copy even an RGB image


class TensorImages(ImageSet):
    """Images held in memory as one tensor (the digits), augmented by random affine."""

    def __init__(self, images: torch.Tensor, labels: list[int], classes: list[str], name: str, cfg: DataConfig):
        if images.shape[-1] != cfg.image_size:
            images = F.interpolate(images, size=(cfg.image_size, cfg.image_size), mode="bilinear",
                                   align_corners=False).clamp_(0, 1)
        self.images, self.labels, self.classes, self.name = images, list(labels), classes, name
        self.channels = images.shape[1]
        self.cfg = cfg

    def batch(self, indices, train):
        x = self.images[indices]
        if train and self.cfg.augment:
            x = T.random_affine(x, self.cfg.rotate, tuple(self.cfg.zoom), self.cfg.shift)
        return x, torch.tensor([self.labels[i] for i in indices], dtype=torch.long)


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(1797, 8, 8) floats in [0, 1] and (1797,) labels 0-9."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images / 16.0).astype(np.float32), d.target.astype(np.int64)


def digits_split_indices() -> dict[str, np.ndarray]:
    """The fixed stratified split: {'train': ..., 'valid': ..., 'test': ...} indices (1259/179/359)."""
    _, labels = digits_arrays()
    rng = np.random.default_rng(DIGITS_SPLIT_SEED)
    parts: dict[str, list[int]] = {"train": [], "valid": [], "test": []}
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = int(round(len(idx) * DIGITS_FRACTIONS[2]))
        n_valid = int(round(len(idx) * DIGITS_FRACTIONS[1]))
        parts["test"] += idx[:n_test].tolist()
        parts["valid"] += idx[n_test:n_test + n_valid].tolist()
        parts["train"] += idx[n_test + n_valid:].tolist()
    return {k: np.array(sorted(v)) for k, v in parts.items()}


def digits_set(split: str, cfg: DataConfig) -> TensorImages:
    images, labels = digits_arrays()
    idx = digits_split_indices()[split]
    x = torch.from_numpy(images[idx]).unsqueeze(1)  # (N, 1, 8, 8)
    if (cfg.channels or 1) == 3:
        x = x.expand(-1, 3, -1, -1).contiguous()
    return TensorImages(x, labels[idx].tolist(), [str(d) for d in range(10)], f"digits:{split}", cfg)


class FolderImages(ImageSet):
    """ROOT/CLASS/IMAGE trees; `classes` fixes the label order (default: sorted folders)."""

    def __init__(self, root: str | Path, cfg: DataConfig, classes: list[str] | None = None,
                 files: list[tuple[Path, int]] | None = None):
        self.root, self.cfg = Path(root), cfg
        self.name = str(root)
        self.channels = cfg.channels or 3
        if files is None:
            found_classes, files = scan_folder(self.root, classes)
            classes = classes or found_classes
            for path, _ in files:  # header only: fails fast on a bad file, before any output
                open_image(path, self.channels, convert=cfg.convert, max_pixels=cfg.max_pixels, load=False)
        self.classes = list(classes)
        self.files = [p for p, _ in files]
        self.labels = [y for _, y in files]

    def subset(self, indices) -> "FolderImages":
        return FolderImages(self.root, self.cfg, self.classes, [(self.files[i], self.labels[i]) for i in indices])

    def load(self, i: int, train: bool) -> torch.Tensor:
        cfg = self.cfg
        if train and cfg.augment:
            crop = T.CropPlan(cfg.image_size, tuple(cfg.crop_scale))  # draws the box once the size is known
            img = open_image(self.files[i], self.channels, convert=cfg.convert, max_pixels=cfg.max_pixels,
                             draft=crop.draft)
            img = T.train_transform(img, cfg.image_size, tuple(cfg.crop_scale), cfg.hflip, box=crop.box_for(img))
        else:
            img = open_image(self.files[i], self.channels, convert=cfg.convert, max_pixels=cfg.max_pixels,
                             draft=lambda w, h: T.eval_draft(w, h, cfg.image_size))
            img = T.eval_transform(img, cfg.image_size)
        return T.to_tensor(img)

    def batch(self, indices, train):
        x = torch.stack([self.load(i, train) for i in indices])
        return x, torch.tensor([self.labels[i] for i in indices], dtype=torch.long)


def scan_folder(root: Path, classes: list[str] | None = None) -> tuple[list[str], list[tuple[Path, int]]]:
    """(class names, [(image path, label)]) of an ImageFolder tree."""
    if not root.exists():
        raise UserError(f"{root}: no such directory")
    if not root.is_dir():
        raise UserError(f"{root}: not a directory (expected ROOT/CLASS/IMAGE folders)")
    dirs = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if classes is not None:
        unknown = [d for d in dirs if d not in classes]
        if unknown:
            raise UserError(f"{root}: class folder '{unknown[0]}' is not one of the model's {len(classes)} classes")
    names = list(classes) if classes is not None else dirs
    files: list[tuple[Path, int]] = []
    for label, name in enumerate(names):
        folder = root / name
        if not folder.is_dir():
            continue
        found = [p for p in sorted(folder.rglob("*"))
                 if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")]
        if not found:  # a class the model would have to predict but never sees
            raise UserError(f"{folder}: empty class folder (no .png, .jpg or .jpeg images)")
        files += [(p, label) for p in found]
    if not files:
        raise UserError(f"{root}: no images (.png, .jpg, .jpeg) in class folders (expected {root}/CLASS/IMAGE)")
    return names, files


@dataclass
class Splits:
    train: ImageSet
    valid: ImageSet
    test: ImageSet | None
    classes: list[str]


def _stratified_holdout(labels: list[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    rng = np.random.default_rng(seed)
    labels_arr = np.asarray(labels)
    keep, held = [], []
    for c in np.unique(labels_arr):
        idx = rng.permutation(np.flatnonzero(labels_arr == c))
        n = int(round(len(idx) * fraction)) if len(idx) > 1 else 0
        held += idx[:n].tolist()
        keep += idx[n:].tolist()
    return sorted(keep), sorted(held)


def build_splits(cfg: DataConfig, *, need_train: bool = True) -> Splits:
    """The train/valid/test sets a config names."""
    if cfg.channels not in (None, 1, 3):
        raise UserError(f"data.channels: expected 1 or 3, got {cfg.channels}")
    if cfg.image_size < 4:
        raise UserError(f"data.image_size: must be >= 4, got {cfg.image_size}")
    if cfg.name == "digits":
        train, valid, test = (digits_set(s, cfg) for s in ("train", "valid", "test"))
    elif cfg.name == "folder":
        if not cfg.train:
            raise UserError("data.train: an ImageFolder directory is required when data.name is 'folder'")
        train = FolderImages(cfg.train, cfg)
        if cfg.valid:
            valid = FolderImages(cfg.valid, cfg, classes=train.classes)
        else:
            keep, held = _stratified_holdout(train.labels, cfg.valid_fraction, DIGITS_SPLIT_SEED)
            if not held:
                raise UserError(f"{cfg.train}: too few images to hold out a validation set; give data.valid")
            train, valid = train.subset(keep), train.subset(held)
        test = FolderImages(cfg.test, cfg, classes=train.classes) if cfg.test else None
    elif cfg.name == "fashion":
        from triptych.vision.fashion import fashion_set, train_valid

        train, valid = train_valid(cfg)
        test = fashion_set("test", cfg)
    else:
        raise UserError(f"data.name: expected 'digits', 'folder' or 'fashion', got '{cfg.name}'")
    if cfg.limit_train:
        if isinstance(train, TensorImages):
            n = cfg.limit_train
            train = TensorImages(train.images[:n], train.labels[:n], train.classes, train.name, cfg)
        else:
            train = train.subset(range(min(cfg.limit_train, len(train))))
    return Splits(train, valid, test, train.classes)


def measure_normalization(images: ImageSet, sample: int = 512) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of (up to `sample`) un-augmented training images."""
    n = len(images)
    idx = np.linspace(0, n - 1, num=min(n, sample)).round().astype(int).tolist()
    x, _ = images.batch(idx, train=False)
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return [round(float(v), 4) for v in mean], [round(float(v), 4) for v in std]
