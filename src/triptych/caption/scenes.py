"""Digit scenes: the embedded captioning data set (synthetic layout, real pixels).

Each scene is a 32x32 grey canvas holding two of scikit-learn's real 8x8
handwritten digit scans (UCI "optdigits"), each scaled to "small" (8 px) or
"large" (14 px) and placed at a random spot, side by side or one above the
other. The captions are generated from that known layout ("a large 7 to the
left of a small 2"), in three phrasings per scene, and the digits' boxes are
written too, so a model's attention can be checked against where the named
digit really is. The layout and the words are synthetic; the pixels are
real handwriting. Train/valid/test scenes draw their digits from the fixed
vision digits split (`triptych.vision.data.digits_split_indices`), so a test
scene never shows a training scan.

Written by `triptych vision digit-scenes --out DIR`:

    DIR/images/<split>-00000.png      the scenes
    DIR/train.jsonl, valid.jsonl, test.jsonl
                                      {"image": "images/...", "caption": "..."} per caption
    DIR/boxes.json                    {"images/...": [{"digit": 7, "size": "large",
                                                       "box": [x0, y0, x1, y1]}, ...]}
                                      (pixels, x1/y1 exclusive)
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from triptych.errors import SettingError

CANVAS = 32
SIZES = {"small": 8, "large": 14}
SPLITS = (("train", 0.8), ("valid", 0.1), ("test", 0.1))


def _place(rng, side: int, first: bool, horizontal: bool) -> tuple[int, int]:
    """Top-left corner of a digit of `side` px in the first or second half of the canvas."""
    half = CANVAS // 2
    along = int(rng.integers(0, half - side + 1)) + (0 if first else half)  # sides are <= half: no overlap
    across = int(rng.integers(0, CANVAS - side + 1))
    return (along, across) if horizontal else (across, along)


def _scaled(digit: np.ndarray, side: int) -> np.ndarray:
    """(8, 8) floats in [0, 1] -> (side, side) floats, bilinear."""
    from PIL import Image

    img = Image.fromarray((digit * 255).astype(np.uint8)).resize((side, side), Image.BILINEAR)
    return np.asarray(img, dtype=np.float32) / 255.0


def captions_for(objects: list[dict], horizontal: bool) -> list[str]:
    """Three phrasings of a two-digit layout; objects[0] is left of (or above) objects[1]."""
    a, b = (f"a {o['size']} {o['digit']}" for o in objects)
    if horizontal:
        return [f"{a} to the left of {b}", f"{b} to the right of {a}", f"{a} and {b}"]
    return [f"{a} above {b}", f"{b} below {a}", f"{a} and {b}"]


def make_scene(rng, images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, list[dict], list[str]]:
    """One scene: (32, 32) floats in [0, 1], its two objects (boxes) and its captions."""
    canvas = np.zeros((CANVAS, CANVAS), dtype=np.float32)
    horizontal = bool(rng.integers(0, 2))
    objects = []
    for first in (True, False):
        k = int(rng.integers(0, len(images)))
        size = "large" if rng.integers(0, 2) else "small"
        side = SIZES[size]
        x0, y0 = _place(rng, side, first, horizontal)
        canvas[y0:y0 + side, x0:x0 + side] = np.maximum(canvas[y0:y0 + side, x0:x0 + side], _scaled(images[k], side))
        objects.append({"digit": int(labels[k]), "size": size, "box": [x0, y0, x0 + side, y0 + side]})
    return canvas, objects, captions_for(objects, horizontal)


def write_digit_scenes(out: str | os.PathLike, scenes: int = 2000, seed: int = 0) -> dict:
    """Write `scenes` scenes split 80/10/10 into `out` (which must not hold files yet).

    Built in a sibling temporary folder and renamed into place at the end, so
    an interrupted run leaves nothing half-written at `out`.
    """
    from PIL import Image

    from triptych.vision.data import digits_arrays, digits_split_indices

    if scenes < 3:
        raise SettingError(f"{{scenes}} {scenes}: need at least 3 (one per split)")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SettingError(f"{out}: already exists and is not an empty folder; pick another {{out}}")
    images, labels = digits_arrays()
    split_idx = digits_split_indices()
    rng = np.random.default_rng(seed)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "images").mkdir(parents=True)
    boxes, counts = {}, {}
    try:
        held_out = {name: max(1, int(round(scenes * f))) for name, f in SPLITS[1:]}  # at least one each
        for split, _ in SPLITS:
            count = held_out.get(split, scenes - sum(held_out.values()))
            idx = split_idx[split]
            lines = []
            for i in range(count):
                canvas, objects, captions = make_scene(rng, images[idx], labels[idx])
                name = f"images/{split}-{i:05d}.png"
                Image.fromarray((canvas * 255).round().astype(np.uint8), mode="L").save(tmp / name)
                boxes[name] = objects
                lines += [json.dumps({"image": name, "caption": c}) for c in captions]
            (tmp / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
            counts[split] = count
        (tmp / "boxes.json").write_text(json.dumps(boxes) + "\n", encoding="utf-8")
        if out.exists():
            out.rmdir()
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"out": str(out), "scenes": counts, "captions_per_scene": 3, "seed": seed, "canvas": CANVAS}
