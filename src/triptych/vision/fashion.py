"""Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017): 70,000 real 28x28 grey product photos, 10 classes.

The four official IDX files (`train-images-idx3-ubyte[.gz]`, ... ,
`t10k-labels-idx1-ubyte[.gz]`) are read from `data.root`, by default where
Debian's `dataset-fashion-mnist` package puts them (`make fashion` installs
it). The split is fixed:

- valid: `data.valid_fraction` of the 60,000 training images, stratified per
  class with seed 2017 (6,000 at the default 0.1): the only images that
  pick `best/`;
- train: the rest of the 60,000;
- test: the official 10,000, read only for the final evaluation.

Images stay uint8 in memory (47 MB for the 60,000) and become floats one
batch at a time. A model size above 28 is reached by zero padding (32 is
LeNet-5's input, MNIST's original framing: the 28x28 image centred in 32x32);
a smaller one by bilinear resizing. Training augmentation is the anchors'
(the dataset's own benchmark and the CIFAR-style ResNet recipes): a random
crop of the zero-padded image (`data.crop_padding` pixels a side) and a
horizontal flip; and, where the recipe asks (`data.random_erasing`), a
rectangle of noise (random erasing) in some of the images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from triptych.errors import UserError
from triptych.vision.config import DataConfig
from triptych.vision.images import ImageSet
from triptych.vision.idx import read_image_label_pair
from triptych.vision.transforms import random_erasing

DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist"
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
SPLIT_SEED = 2017
_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _find(root: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (root / name).is_file():
            return root / name
    hint = " (install it: make fashion, or apt-get install dataset-fashion-mnist)" if str(root) == DEFAULT_ROOT else ""
    raise UserError(f"{root / stem}[.gz]: no such Fashion-MNIST file; set data.root to the folder of the "
                    f"four IDX files{hint}")


def load_arrays(root: str | Path | None, part: str) -> tuple[np.ndarray, np.ndarray]:
    """(N, 28, 28) uint8 images and (N,) labels of the official 'train' or 'test' files."""
    r = Path(root or DEFAULT_ROOT)
    if not r.is_dir():
        hint = " (install it: make fashion)" if str(r) == DEFAULT_ROOT else ""
        raise UserError(f"{r}: no such directory (data.root: the folder of the Fashion-MNIST IDX files){hint}")
    images_stem, labels_stem = _FILES[part]
    return read_image_label_pair(_find(r, images_stem), _find(r, labels_stem), classes=len(CLASSES))


def split_indices(labels: np.ndarray, valid_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(train, valid) indices into the 60,000: stratified, seeded, the same on every run."""
    if not 0 < valid_fraction < 1:
        raise UserError(f"data.valid_fraction: must be between 0 and 1, got {valid_fraction}")
    rng = np.random.default_rng(SPLIT_SEED)
    train, valid = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n = int(round(len(idx) * valid_fraction))
        valid.append(idx[:n])
        train.append(idx[n:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(valid))


def random_crop_flip(x: torch.Tensor, padding: int, hflip: bool) -> torch.Tensor:
    """(B, C, S, S) -> each image shifted by up to `padding` pixels (zero fill) and flipped half the time."""
    b, _, h, w = x.shape
    if padding > 0:
        padded = F.pad(x, (padding, padding, padding, padding))
        dy = torch.randint(0, 2 * padding + 1, (b,))
        dx = torch.randint(0, 2 * padding + 1, (b,))
        rows = (dy[:, None] + torch.arange(h)[None, :])  # (B, H)
        cols = (dx[:, None] + torch.arange(w)[None, :])  # (B, W)
        batch = torch.arange(b)[:, None, None]
        # (B, H, W, C) gathered per image, back to (B, C, H, W)
        x = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    if hflip:
        flip = torch.rand(b) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    # Plain NCHW strides: the gather leaves channels-last ones, which `contiguous()`
    # keeps for one channel (its memory is the same), and a convolution given a
    # channels-last input runs channels-last whatever layout the weights have
    # (engine: train.memory_format decides, not the augmentation).
    return x.clone(memory_format=torch.contiguous_format)


class FashionImages(ImageSet):
    """uint8 images in memory; `batch` gives (B, C, S, S) floats in [0, 1]."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, name: str, cfg: DataConfig):
        self.images = torch.from_numpy(np.require(images, np.uint8, ["C", "W"])).unsqueeze(1)  # (N, 1, 28, 28) uint8
        self.labels = labels.tolist()
        self.classes = list(CLASSES)
        self.name = name
        self.cfg = cfg
        self.channels = cfg.channels or 1

    def subset(self, indices) -> "FashionImages":
        idx = list(indices)
        return FashionImages(self.images[idx, 0].numpy(), np.asarray(self.labels)[idx], self.name, self.cfg)

    def _fit(self, x: torch.Tensor) -> torch.Tensor:
        size, side = self.cfg.image_size, x.shape[-1]
        if size > side:
            lo = (size - side) // 2
            x = F.pad(x, (lo, size - side - lo, lo, size - side - lo))
        elif size < side:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        return x

    def batch(self, indices, train):
        x = self._fit(self.images[indices].float().div_(255.0))
        if train and self.cfg.augment:
            x = random_crop_flip(x, self.cfg.crop_padding, self.cfg.hflip)
            x = random_erasing(x, self.cfg.random_erasing)
        if self.channels == 3:
            x = x.expand(-1, 3, -1, -1)
        return x, torch.tensor([self.labels[i] for i in indices], dtype=torch.long)


def train_valid(cfg: DataConfig) -> tuple[FashionImages, FashionImages]:
    """The fixed train/valid split of the official 60,000 training images."""
    images, labels = load_arrays(cfg.root, "train")
    tr, va = split_indices(labels, cfg.valid_fraction)
    return (FashionImages(images[tr], labels[tr], "fashion:train", cfg),
            FashionImages(images[va], labels[va], "fashion:valid", cfg))


def fashion_set(split: str, cfg: DataConfig) -> FashionImages:
    """'train', 'valid' (of the fixed split) or 'test' (the official 10,000)."""
    if split == "test":
        images, labels = load_arrays(cfg.root, "test")
        return FashionImages(images, labels, "fashion:test", cfg)
    if split not in ("train", "valid"):
        raise UserError(f"fashion:{split}: expected fashion:train, fashion:valid or fashion:test")
    return train_valid(cfg)[0 if split == "train" else 1]
