"""Captions files: a folder of images and a JSON or JSONL list of {"image", "caption"}.

The format most captioning sets reduce to (COCO and Flickr8k convert to it
with a few lines): one record per caption, `image` a path relative to the
captions file's folder, several records per image allowed. Everything is
checked when the set is read, before a run directory exists: a record that
is not an object, lacks "image" or "caption", names a missing file or a file
that is not an image is one `UserError` naming the captions file and the
record (its 1-based number).

Images are decoded once, resized to the configured square and kept as one
(N, C, S, S) tensor in [0, 1]: captioning sets of this project's size fit in
memory, and a batch is then an index into it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from triptych.errors import UserError, where as _where
from triptych.files import read_lines, require_file


def read_records(path: str | Path) -> list[tuple[int, dict]]:
    """(record number, record) of a JSON list or a JSONL file."""
    p = require_file(path, "captions file")
    lines = list(read_lines(p))
    first = next((t for _, t in lines if t.strip()), "")
    if first.lstrip().startswith("["):  # one JSON list
        try:
            data = json.loads("\n".join(t for _, t in lines))
        except json.JSONDecodeError as e:
            raise UserError(f"{p}: not valid JSON ({e.msg} at line {e.lineno})") from None
        return list(enumerate(data, start=1))
    out = []
    for number, text in lines:
        if not text.strip():
            continue
        try:
            out.append((number, json.loads(text)))
        except json.JSONDecodeError as e:
            raise UserError(f"{p}: record {number}: not valid JSON ({e.msg})") from None
    return out


def load_image(path: Path, size: int, channels: int) -> torch.Tensor:
    """One image file -> (C, size, size) floats in [0, 1] (any mode is converted)."""
    from PIL import Image

    from triptych.vision.data import open_image

    img = open_image(path, channels, convert=True)
    if img.size != (size, size):
        img = img.resize((size, size), Image.BILINEAR)
    arr = np.asarray(img, dtype=np.float32) / 255.0
    x = torch.from_numpy(arr.copy())
    return x[None] if channels == 1 else x.permute(2, 0, 1)  # (C, S, S)


class CaptionSet:
    """Images (N, C, S, S), their paths, and every caption of each image."""

    def __init__(self, path: str | Path, size: int, channels: int, limit: int | None = None):
        self.path = Path(path)
        records = read_records(self.path)
        if limit:
            records = records[:limit]
        if not records:
            raise UserError(f"{self.path}: no caption records")
        index: dict[str, int] = {}
        self.paths: list[Path] = []
        self.captions: list[list[str]] = []
        self.pairs: list[tuple[int, str]] = []  # (image index, caption), one per record
        images = []
        for number, rec in records:
            where = _where(self.path, record=number)
            if not isinstance(rec, dict):
                raise UserError(f"{where}: expected an object with \"image\" and \"caption\"")
            for key in ("image", "caption"):
                if key not in rec:
                    raise UserError(f"{where}: has no \"{key}\"")
            if not isinstance(rec["image"], str) or not isinstance(rec["caption"], str) or not rec["caption"].strip():
                raise UserError(f"{where}: \"image\" and \"caption\" must be non-empty text")
            name = rec["image"]
            if name not in index:
                file = self.path.parent / name
                if not file.exists():
                    raise UserError(f"{where}: image {name!r} does not exist ({file})")
                try:
                    images.append(load_image(file, size, channels))
                except UserError as e:
                    raise UserError(f"{where}: {e}") from None
                index[name] = len(self.paths)
                self.paths.append(file)
                self.captions.append([])
            self.captions[index[name]].append(rec["caption"].strip())
            self.pairs.append((index[name], rec["caption"].strip()))
        self.images = torch.stack(images)  # (N, C, S, S)

    def __len__(self) -> int:
        return len(self.pairs)
