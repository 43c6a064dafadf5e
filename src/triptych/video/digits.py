"""Digit videos: short multi-label videos made of real handwritten digits.

The real YouTube-8M frames cannot be had here, so this set gives the video
side real pixels: `triptych video digits` draws videos from scikit-learn's
digits (1,797 real 8x8 scans), and the chain

    frames -> a triptych CNN -> PCA -> uint8 frame-level TFRecords -> video model -> GAP

runs on them end to end (see `video/features.py`).

The generative process (seeded by `seed`; each split has its own stream):

1. Digit images: training videos draw from the digits' fixed `train`
   split, validation videos from its `test` split, so the validation
   frames are digits the vision model never saw (`vision/data.py` holds
   the split).
2. A video: T ~ U[min_frames, max_frames] frames of size x size pixels;
   n ~ U{1, ..., max_digits} distinct digit classes, drawn uniformly; for
   each class one image of that class, drawn uniformly from the split.
3. The T frames are cut into n consecutive slots (min_show frames each
   plus a multinomial share of the rest), one a digit; each digit is on
   screen for a segment of L ~ U[min_show, min(slot, T/n)] frames at a
   random place in its slot; the other frames are blank.
4. Motion: over its segment a digit slides in a straight line from a
   random offset to another, each coordinate uniform in [-shift, shift]
   pixels (rounded to whole pixels; what leaves the frame is cut off).
5. Pixels: the digit (0-1) plus N(0, noise^2) on every pixel of every
   frame, clipped to [0, 1], stored as uint8 (x 255, rounded).
6. Labels: the n classes shown.

Output: DIR/train/ and DIR/validate/, each holding one video per `<id>.npy`
(uint8 [T, size, size]) or per `<id>/` folder of PNG frames
(`0000.png`, ...), and `labels.json` ({id: [labels]}); DIR/digits.json
records the spec. Each split is written to a temporary folder and renamed
into place, so an interrupted run leaves no half-written split.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from triptych.errors import UserError
from triptych.files import atomic_write_text

LABELS_FILE = "labels.json"


@dataclass
class DigitSpec:
    videos: int = 2000  # training videos
    valid_videos: int | None = None  # default videos // 4
    min_frames: int = 16
    max_frames: int = 32
    max_digits: int = 3
    min_show: int = 3  # frames a digit stays on screen, at least
    size: int = 8  # frame side in pixels (the digits are 8x8)
    shift: int = 2  # largest offset of a moving digit, pixels
    noise: float = 0.05
    format: str = "npy"  # npy | png
    seed: int = 0


def _check(spec: DigitSpec) -> None:
    """A spec no video can be drawn from is one line naming its settings (the
    DigitSpec fields; `triptych video digits` spells them as flags)."""
    if spec.videos < 0 or (spec.valid_videos is not None and spec.valid_videos < 0):
        raise UserError("digit videos: videos and valid_videos must be >= 0")
    if not 1 <= spec.max_digits <= 10:
        raise UserError(f"digit videos: max_digits must be in 1..10, got {spec.max_digits}")
    if spec.min_show < 1 or spec.min_frames < spec.max_digits * spec.min_show:
        raise UserError(f"digit videos: min_frames must be >= max_digits x min_show "
                        f"({spec.max_digits * spec.min_show}) so that every digit fits")
    if spec.max_frames < spec.min_frames:
        raise UserError(f"digit videos: need min_frames <= max_frames, got {spec.min_frames} > {spec.max_frames}")
    if spec.size < 8:
        raise UserError(f"digit videos: size must be >= 8 (the digits are 8x8), got {spec.size}")
    if spec.shift < 0 or spec.noise < 0:
        raise UserError("digit videos: shift and noise must be >= 0")
    if spec.format not in ("npy", "png"):
        raise UserError(f"digit videos: format must be npy or png, not {spec.format!r}")


def _paste(canvas: np.ndarray, digit: np.ndarray, top: int, left: int) -> None:
    """Add the 8x8 `digit` to `canvas` [S, S] at (top, left), cut at the borders."""
    S, h = canvas.shape[0], digit.shape[0]
    r0, c0 = max(0, top), max(0, left)
    r1, c1 = min(S, top + h), min(S, left + h)
    if r0 < r1 and c0 < c1:
        canvas[r0:r1, c0:c1] += digit[r0 - top : r1 - top, c0 - left : c1 - left]


def make_video(images: np.ndarray, by_class: list[np.ndarray], rng: np.random.Generator,
               spec: DigitSpec) -> tuple[np.ndarray, np.ndarray]:
    """(frames uint8 [T, S, S], labels int64 [n], sorted) of one video."""
    T = int(rng.integers(spec.min_frames, spec.max_frames + 1))
    n = int(rng.integers(1, spec.max_digits + 1))
    classes = rng.choice(10, size=n, replace=False)
    # Non-overlapping segments: n consecutive slots of min_show frames each plus
    # a random share of the rest; a segment of random length in each slot.
    widths = spec.min_show + rng.multinomial(T - n * spec.min_show, np.full(n, 1.0 / n))
    ends = np.cumsum(widths)
    slots = list(zip(ends - widths, ends))
    S = spec.size
    frames = np.zeros((T, S, S), np.float32)
    centre = (S - 8) // 2
    for c, (a, b) in zip(classes, slots):
        digit = images[rng.choice(by_class[c])]
        length = int(rng.integers(spec.min_show, max(spec.min_show, min(b - a, T // n)) + 1))
        start = int(rng.integers(a, b - length + 1))
        p0 = rng.integers(-spec.shift, spec.shift + 1, size=2)
        p1 = rng.integers(-spec.shift, spec.shift + 1, size=2)
        for j in range(length):
            f = j / max(1, length - 1)
            dy, dx = np.rint(p0 + (p1 - p0) * f).astype(int)
            _paste(frames[start + j], digit, centre + dy, centre + dx)
    frames += rng.normal(0.0, spec.noise, frames.shape).astype(np.float32)
    pixels = np.rint(np.clip(frames, 0.0, 1.0) * 255.0).astype(np.uint8)
    return pixels, np.sort(classes).astype(np.int64)


def _write_video(folder: Path, vid: str, frames: np.ndarray, fmt: str) -> None:
    if fmt == "npy":
        np.save(folder / f"{vid}.npy", frames)
        return
    from PIL import Image

    d = folder / vid
    d.mkdir()
    for t, frame in enumerate(frames):
        Image.fromarray(frame, mode="L").save(d / f"{t:04d}.png")


def write_split(out: Path, split: str, n: int, digit_split: str, spec: DigitSpec, stream: int) -> dict:
    """Write `n` videos into out/split (atomically: a temporary folder renamed into place)."""
    from triptych.vision.data import digits_arrays, digits_split_indices

    images, labels = digits_arrays()
    idx = digits_split_indices()[digit_split]
    images, labels = images[idx], labels[idx]
    by_class = [np.flatnonzero(labels == c) for c in range(10)]
    rng = np.random.default_rng([spec.seed, stream])
    tmp = Path(tempfile.mkdtemp(prefix=f".{split}.", dir=out))
    try:
        video_labels = {}
        for i in range(n):
            vid = f"{split[0]}{i:05d}"
            frames, labs = make_video(images, by_class, rng, spec)
            _write_video(tmp, vid, frames, spec.format)
            video_labels[vid] = labs.tolist()
        (tmp / LABELS_FILE).write_text(json.dumps(video_labels) + "\n", encoding="utf-8")
        dest = out / split
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"videos": n, "digits_from": f"digits:{digit_split}"}


def make_digit_videos(out: str | Path, spec: DigitSpec) -> dict:
    """Write DIR/train, DIR/validate and DIR/digits.json; returns the summary."""
    _check(spec)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    valid = spec.videos // 4 if spec.valid_videos is None else spec.valid_videos
    splits = {"train": write_split(out, "train", spec.videos, "train", spec, 1)}
    if valid:
        splits["validate"] = write_split(out, "validate", valid, "test", spec, 2)
    summary = {"out": str(out), "splits": splits, "spec": asdict(spec) | {"valid_videos": valid}}
    atomic_write_text(out / "digits.json", json.dumps(summary, indent=2) + "\n")
    return summary
