"""Image transforms: the standard ImageNet-style augmentations, written small.

Training: a random crop covering `scale` of the image area with a random
aspect ratio in [3/4, 4/3], resized to the model's size, and a horizontal
flip (Szegedy et al. 2014's recipe, used by every ImageNet CNN since).
Evaluation: resize the short side to size * 8/7 (256 for 224), centre crop.
For tensors that are already small (the 8x8 digits) a random affine —
small rotation, scale and shift — plays the part of the crop, since a crop
of an 8x8 digit would cut the digit.

All randomness comes from torch's global generator, which the engine
checkpoints, so a resumed run augments exactly as the uninterrupted one.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def _uniform(lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand(()))


def random_resized_crop_box(width: int, height: int, scale: tuple[float, float],
                            ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of a random crop; falls back to a centre crop after 10 tries."""
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * _uniform(*scale)
        aspect = math.exp(_uniform(*log_ratio))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            left = int(torch.randint(0, width - w + 1, ()))
            top = int(torch.randint(0, height - h + 1, ()))
            return left, top, left + w, top + h
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


class CropPlan:
    """A random-resized crop drawn from the header's size, before decoding (see `draft`).

    `draft(w, h)` draws the box on the full-size image and returns the
    smallest decoded size that keeps the crop at >= `size` pixels a side;
    `box_for(img)` scales the box to the size the decoder actually chose.
    The size asked for is w // factor (not rounded up): Pillow's `draft`
    picks its scale as w // asked, so asking ceil(w / 2) of an odd-sized
    photo (half of them) would get no reduction at all.
    """

    def __init__(self, size: int, scale: tuple[float, float]):
        self.size, self.scale = size, scale
        self.full: tuple[int, int] | None = None
        self.box: tuple[int, int, int, int] | None = None

    def draft(self, width: int, height: int) -> tuple[int, int]:
        self.full = (width, height)
        self.box = random_resized_crop_box(width, height, self.scale)
        left, top, right, bottom = self.box
        factor = max(1, min(right - left, bottom - top) // self.size)
        return max(1, width // factor), max(1, height // factor)

    def box_for(self, img) -> tuple[int, int, int, int] | None:
        if self.box is None:  # not a JPEG: no draft was asked, draw now
            return None
        fx, fy = img.width / self.full[0], img.height / self.full[1]
        left, top, right, bottom = self.box
        return (int(left * fx), int(top * fy), max(int(left * fx) + 1, int(right * fx)),
                max(int(top * fy) + 1, int(bottom * fy)))


def eval_draft(width: int, height: int, size: int) -> tuple[int, int]:
    """The smallest decoded size whose short side still covers the evaluation resize (size * 8/7)
    (rounded down, as `CropPlan.draft` says why)."""
    factor = max(1, min(width, height) // max(size, int(round(size * 8 / 7))))
    return max(1, width // factor), max(1, height // factor)


def train_transform(img, size: int, scale: tuple[float, float], hflip: bool, box=None):
    """PIL image -> augmented PIL image of size x size (`box`: a crop already drawn)."""
    from PIL import Image

    box = box or random_resized_crop_box(img.width, img.height, scale)
    img = img.resize((size, size), Image.BILINEAR, box=box)
    if hflip and float(torch.rand(())) < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    return img


def eval_transform(img, size: int):
    """PIL image -> resize short side to size * 8/7, centre crop size x size."""
    from PIL import Image

    short = max(size, int(round(size * 8 / 7)))
    w, h = img.size
    if w <= h:
        nw, nh = short, max(short, int(round(h * short / w)))
    else:
        nw, nh = max(short, int(round(w * short / h))), short
    img = img.resize((nw, nh), Image.BILINEAR)
    left, top = (nw - size) // 2, (nh - size) // 2
    return img.crop((left, top, left + size, top + size))


def to_tensor(img) -> torch.Tensor:
    """PIL image (mode L or RGB) -> (C, H, W) float tensor in [0, 1]."""
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


def random_affine(x: torch.Tensor, degrees: float, scale: tuple[float, float], translate: float) -> torch.Tensor:
    """(B, C, H, W) in [0, 1] with a 0 background -> each image rotated/scaled/shifted at random."""
    b = x.shape[0]
    angle = (torch.rand(b) * 2 - 1) * math.radians(degrees)
    s = scale[0] + (scale[1] - scale[0]) * torch.rand(b)
    shift = (torch.rand(b, 2) * 2 - 1) * translate * 2  # grid coordinates span [-1, 1]: a width is 2
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def random_erasing(x: torch.Tensor, p: float, area: tuple[float, float] = (0.02, 0.4),
                   aspect: tuple[float, float] = (0.3, 1 / 0.3), tries: int = 10) -> torch.Tensor:
    """(B, C, H, W) in [0, 1] -> with probability `p` per image, one rectangle of it
    replaced by uniform noise (Zhong et al. 2017, "Random Erasing Data Augmentation").

    The rectangle covers a random fraction `area` of the image with a
    log-uniform aspect ratio. A drawn rectangle that does not fit is drawn
    again, `tries` times at most, all at once for the whole batch; an image
    whose draws all miss stays as it is (rare at these ranges: a draw fits
    unless both its area and its aspect ratio are near their maxima). The
    occluded part teaches the network to use the whole object, which is
    what the Fashion-MNIST table's best row (WRN + random erasing) relied on.
    """
    b, c, h, w = x.shape
    if p <= 0 or b == 0:
        return x
    target = torch.empty(b, tries).uniform_(*area) * (h * w)
    ratio = torch.exp(torch.empty(b, tries).uniform_(math.log(aspect[0]), math.log(aspect[1])))
    eh = torch.sqrt(target * ratio).round().long()
    ew = torch.sqrt(target / ratio).round().long()
    fits = (eh >= 1) & (ew >= 1) & (eh < h) & (ew < w)
    first = fits.int().argmax(1)  # the first draw that fits (0 where none does: `erase` is off there)
    rows = torch.arange(b)
    eh, ew = eh[rows, first], ew[rows, first]
    erase = fits.any(1) & (torch.rand(b) < p)
    top = (torch.rand(b) * (h - eh + 1).float()).long()
    left = (torch.rand(b) * (w - ew + 1).float()).long()
    ys, xs = torch.arange(h), torch.arange(w)
    inside = (((ys[None, :] >= top[:, None]) & (ys[None, :] < (top + eh)[:, None]))[:, :, None]
              & ((xs[None, :] >= left[:, None]) & (xs[None, :] < (left + ew)[:, None]))[:, None, :])
    mask = (inside & erase[:, None, None])[:, None]  # (B, 1, H, W)
    return torch.where(mask, torch.rand_like(x), x)


def normalize(x: torch.Tensor, mean: list[float], std: list[float]) -> torch.Tensor:
    """(B, C, H, W) -> per-channel standardised."""
    return normalize_(x.clone(), mean, std)


def normalize_(x: torch.Tensor, mean: list[float], std: list[float]) -> torch.Tensor:
    """`normalize` in place, the same values: for a batch the loader has just
    made, where two fresh 38 MB results a 224-pixel batch cost more than
    the arithmetic (their pages are new each time)."""
    m = torch.tensor(mean, dtype=x.dtype).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(1, -1, 1, 1)
    return x.sub_(m).div_(s)
