"""Reading user files (gzip-aware, UTF-8 checked) and writing outputs atomically.

Every output file is written under a temporary name beside its destination
and renamed into place, so an interrupted command never leaves a
half-written file where a good one (or none) should be.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import tempfile
from pathlib import Path
from typing import Iterator

from triptych.errors import UserError, where


def require_file(path: str | os.PathLike, what: str = "file") -> Path:
    p = Path(path)
    if not p.exists():
        raise UserError(f"{p}: no such {what}")
    if p.is_dir():
        raise UserError(f"{p}: is a directory, expected a {what}")
    return p


def _open_binary(p: Path):
    with open(p, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(p, "rb") if magic == b"\x1f\x8b" else open(p, "rb")


def read_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, text without the newline) of a text file.

    gzip is recognised by its magic bytes, not its name. Invalid UTF-8 is a
    UserError naming the file and line, never a UnicodeDecodeError.
    """
    p = require_file(path)
    try:
        with _open_binary(p) as fh:
            for number, raw in enumerate(fh, start=1):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise UserError(f"{where(p, number)}: invalid UTF-8 ({e.reason} at byte {e.start})") from None
                yield number, text.rstrip("\r\n")
    except (gzip.BadGzipFile, EOFError) as e:
        raise UserError(f"{p}: corrupt gzip file ({e})") from None
    except OSError as e:
        raise UserError(f"{p}: cannot read ({e.strerror or e})") from None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` on success.

    On any exception the temporary file is removed and `path` is untouched.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, dest)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
