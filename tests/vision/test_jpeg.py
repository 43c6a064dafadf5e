"""The simplejpeg fast path decodes the same pixels as Pillow, at the same scale."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from triptych.errors import UserError
from triptych.vision import transforms as T
from triptych.vision.data import open_image
from triptych.vision.jpeg import pillow_scale

pytest.importorskip("simplejpeg")


def photo(path, w: int, h: int, grey: bool = False, seed: int = 0):
    """A smooth picture with grain, saved as a JPEG (like vision_data.py's photos)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, size=(6, 6, 3)).astype(np.uint8))
    arr = np.asarray(coarse.resize((w, h), Image.BICUBIC), dtype=np.int16) + rng.integers(-8, 9, size=(h, w, 1))
    img = Image.fromarray(arr.clip(0, 255).astype(np.uint8))
    (img.convert("L") if grey else img).save(path, quality=90)
    return path


def both_paths(monkeypatch, path, channels: int, draft_of):
    """(Pillow's array, simplejpeg's array) of one file, each with a fresh draft from the same seed."""
    out = []
    for env in ("pillow", ""):
        monkeypatch.setenv("TRIPTYCH_JPEG", env)
        torch.manual_seed(3)
        out.append(np.asarray(open_image(path, channels, draft=draft_of()), dtype=np.int16))
    return out


@pytest.mark.parametrize("size,grey", [((801, 601), False), ((640, 480), False), ((517, 1203), True), ((300, 300), False)])
def test_simplejpeg_gives_pillows_pixels_at_pillows_scale(tmp_path, monkeypatch, size, grey):
    path = photo(tmp_path / "p.jpg", *size, grey=grey)
    channels = 1 if grey else 3
    for draft_of in (lambda: (lambda w, h: T.eval_draft(w, h, 64)), lambda: T.CropPlan(64, (0.08, 1.0)).draft):
        slow, fast = both_paths(monkeypatch, path, channels, draft_of)
        assert fast.shape == slow.shape  # the same DCT scale
        # The same libjpeg-turbo algorithms (accurate integer IDCT, fancy upsampling):
        # equal up to a rounding step where the two libraries' builds differ.
        assert np.abs(fast - slow).max() <= 1


def test_the_scale_is_pillows():
    assert pillow_scale(801, 601, (801 // 2, 601 // 2)) == 2
    assert pillow_scale(801, 601, (401, 301)) == 1  # what a rounded-up request gets from Pillow
    assert pillow_scale(4000, 3000, (10, 10)) == 8


def test_a_truncated_jpeg_is_one_clear_error_on_the_fast_path(tmp_path, monkeypatch):
    path = photo(tmp_path / "t.jpg", 400, 300)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    monkeypatch.setenv("TRIPTYCH_JPEG", "")
    with pytest.raises(UserError, match=r"t.jpg: corrupt or truncated image"):
        open_image(path, 3, draft=lambda w, h: T.eval_draft(w, h, 64))
