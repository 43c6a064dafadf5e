"""export.json, the description of an ONNX export, readable without torch."""

from __future__ import annotations

import json
import os
from pathlib import Path

from triptych.errors import UserError

FORMAT = "triptych-onnx"
VERSION = 1
MANIFEST = "export.json"


def read_manifest(directory: str | os.PathLike) -> dict:
    """The export.json of an export directory, checked."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise UserError(f"{directory}: not a triptych ONNX export (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: corrupt export manifest ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise UserError(f"{path}: not a triptych ONNX export manifest")
    if not isinstance(manifest.get("version"), int) or manifest["version"] > VERSION:
        raise UserError(f"{path}: export version {manifest.get('version')!r} is newer than this triptych reads")
    return manifest
