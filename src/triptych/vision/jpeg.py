"""JPEG decoding through simplejpeg when it is installed, else Pillow.

Decoding is most of a photo's cost in the training input pipeline (about
two thirds on the 300-800 px photos of benchmarks/vision_data.py). Pillow
and simplejpeg both call libjpeg-turbo, but simplejpeg decodes straight
into a numpy array where Pillow unpacks scanline by scanline into its own
4-byte pixels: measured 1.4x the images a second at the reduced (DCT
scaled) sizes the loader asks for, 2.2x at full size
(docs/history/2026-12-03b-vision-decoders.md). It is optional
(`pip install 'triptych[photos]'`): where it is importable it is used,
at the same power-of-two scale Pillow's `draft` would choose, so both
paths give the same pixels (the test checks it); anything it does not
cover the same way (CMYK or grey-into-RGB JPEGs) stays with Pillow.
TRIPTYCH_JPEG=pillow turns it off.
"""

from __future__ import annotations

import os
from pathlib import Path

from triptych.errors import UserError

_MODES = {"RGB": "RGB", "L": "GRAY"}  # PIL mode -> simplejpeg colorspace


def simplejpeg_module():
    """The simplejpeg module, or None when it is missing or turned off."""
    if os.environ.get("TRIPTYCH_JPEG", "").lower() == "pillow":
        return None
    try:
        import simplejpeg
    except ImportError:
        return None
    return simplejpeg


def pillow_scale(width: int, height: int, asked: tuple[int, int]) -> int:
    """The reduction (1, 2, 4 or 8) Pillow's `JpegImageFile.draft` picks for a size asked."""
    scale = min(width // max(1, asked[0]), height // max(1, asked[1]))
    return next(s for s in (8, 4, 2, 1) if scale >= s)


def decode_scaled(path: Path, header, mode: str, asked: tuple[int, int]):
    """A PIL image of `path` decoded by simplejpeg at Pillow's draft scale, or
    None when the fast path does not apply (then the caller uses Pillow).

    `header`: the file opened by PIL (header only), `mode`: "RGB" or "L",
    `asked`: the smallest size the caller needs (as for `draft`).
    """
    sj = simplejpeg_module()
    if sj is None or header.format != "JPEG" or header.mode != mode:
        return None
    from PIL import Image

    w, h = header.size
    s = pillow_scale(w, h, asked)
    try:
        # The smallest libjpeg-turbo scale (M/8) that keeps ceil(side / s) is 1/s itself.
        arr = sj.decode_jpeg(path.read_bytes(), colorspace=_MODES[mode], min_width=-(-w // s), min_height=-(-h // s))
    except (ValueError, OSError) as e:
        raise UserError(f"{path}: corrupt or truncated image ({e})") from None
    return Image.fromarray(arr[:, :, 0] if mode == "L" else arr)  # (H, W) -> L, (H, W, 3) -> RGB
