"""Reading user files (gzip-aware, UTF-8 checked) and writing outputs atomically.

Every output file is written under a temporary name beside its destination
and renamed into place, so an interrupted command never leaves a
half-written file where a good one (or none) should be.

No output may destroy an input: every file a command reads (named on its
command line, or read through `read_lines`/`require_file`) is noted by its
inode, and `atomic_path` refuses a destination that is one of them -- the
same file by (device, inode), however it is spelled -- or anything that is
not a regular file (renaming onto /dev/full would turn it into one).
An input that is gone by the time of writing (the training run's own old
checkpoint, pruned) no longer guards its inode: the file system may have
given that number to a new file, the very output, which is no input.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Iterator

from triptych.errors import UserError, where


# (st_dev, st_ino) -> (how the input was named, its absolute path), of every input of this command.
_INPUTS: dict[tuple[int, int], tuple[str, str]] = {}


def _identity(path: str | os.PathLike) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def forget_inputs() -> None:
    """Start a new command: no file is an input yet (`cli.main` calls this)."""
    _INPUTS.clear()


def note_input(path: str | os.PathLike, name: str | None = None) -> None:
    """Remember `path` as an input of this command: no output may replace it."""
    ident = _identity(path)
    if ident is not None:
        _INPUTS.setdefault(ident, (name or str(path), os.path.abspath(path)))


def _input_named(ident: tuple[int, int] | None) -> str | None:
    """How the input with this identity was named, if it is one and is still
    there. A noted input whose path now leads elsewhere, or nowhere, was
    deleted or replaced: its inode number may belong to another file now
    (measured: a resumed training run's `checkpoints/latest` took the inode
    of the checkpoint it had resumed from, pruned hours before)."""
    entry = _INPUTS.get(ident) if ident is not None else None
    if entry is None:
        return None
    if _identity(entry[1]) != ident:
        del _INPUTS[ident]
        return None
    return entry[0]


def check_output(path: str | os.PathLike, option: str | None = None) -> Path:
    """Refuse an output that is an input of this command, or not a regular file.

    Called before any work by the CLI for every output option, and again by
    `atomic_path` at the moment of writing.
    """
    dest = Path(path)
    label = f"{option} {dest}" if option else str(dest)
    try:
        st = os.stat(dest)
    except FileNotFoundError:
        return dest
    except OSError as e:
        raise UserError(f"{label}: cannot write here ({e.strerror or e})") from None
    named = _input_named((st.st_dev, st.st_ino))
    if named is not None:
        raise UserError(f"{label}: is also an input of this command ({named}); "
                        "refusing to overwrite it, pick another output")
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise UserError(f"{label}: is {kind}; refusing to replace it, give a file path")
    return dest


_SURROGATE = re.compile("[\ud800-\udfff]")


def check_unicode(text: str, where: str) -> str:
    """Refuse text holding a lone surrogate (JSON's "\\ud800", or bytes that are not
    UTF-8 in a command-line argument): no encoder accepts it, so it must stop here."""
    m = _SURROGATE.search(text)
    if m is not None:
        raise UserError(f"{where}: invalid Unicode (a lone surrogate U+{ord(m.group()):04X} at character {m.start()})")
    return text


def require_file(path: str | os.PathLike, what: str = "file") -> Path:
    p = Path(path)
    if not p.exists():
        raise UserError(f"{p}: no such {what}")
    if p.is_dir():
        raise UserError(f"{p}: is a directory, expected a {what}")
    note_input(p)
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
    dest = check_output(path)
    make_dirs(dest.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    except OSError as e:
        raise UserError(f"{dest}: cannot write here ({e.strerror or e})") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        check_output(dest)  # the same checks at the moment of replacing
        try:
            os.replace(tmp_path, dest)
        except OSError as e:
            raise UserError(f"{dest}: cannot write here ({e.strerror or e})") from None
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def make_dirs(path: str | os.PathLike, what: str = "folder") -> list[Path]:
    """mkdir -p that reports a path it cannot make as one line; returns the folders it created.

    The caller that fails later removes exactly those (`remove_created`), nothing else.
    """
    p = Path(path)
    missing = []
    q = p
    while not q.exists() and q != q.parent:
        missing.append(q)
        q = q.parent
    if p.exists() and not p.is_dir():
        raise UserError(f"{p}: exists and is not a {what}")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{p}: cannot create this {what} ({e.strerror or e})") from None
    return list(reversed(missing))


def remove_created(created: list[Path]) -> None:
    """Undo `make_dirs`: remove the folders it made, deepest first, with what is in them."""
    import shutil

    for d in reversed(created):
        shutil.rmtree(d, ignore_errors=True)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


# The options whose value a command writes; every other path-valued option is read.
OUTPUT_OPTIONS = ("out", "output", "plot", "save_predictions")
_NOT_PATHS = ("text", "overrides", "func", "device", "metric")


def check_arguments(options: dict) -> None:
    """Note every existing path among a command's options as an input, then
    refuse an output option that names one of them (by inode, not spelling),
    or that names a device, pipe or socket. Runs before the command does any work."""
    import glob as globbing

    if isinstance(options.get("text"), str):
        check_unicode(options["text"], "--text")
    for key, value in options.items():
        if key in OUTPUT_OPTIONS or key in _NOT_PATHS:
            continue
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if not isinstance(v, str) or not v or len(v) > 4096:
                continue
            note_input(v, f"--{key.replace('_', '-')} {v}")
            if any(c in v for c in "*?["):
                for match in globbing.iglob(v):
                    note_input(match, f"--{key.replace('_', '-')} {v}")
    for key in OUTPUT_OPTIONS:
        value = options.get(key)
        if not isinstance(value, str):
            continue
        option = f"--{key.replace('_', '-')}"
        named = _input_named(_identity(value))
        if named is not None:
            raise UserError(f"{option} {value}: is also an input of this command ({named}); "
                            "refusing to overwrite it, pick another output")
        try:
            st = os.stat(value)
        except (OSError, ValueError):
            continue
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            raise UserError(f"{option} {value}: is not a regular file; refusing to replace it, give a file path")
