""".npy / .npz files read with their headers checked before any array is allocated.

`np.load` trusts a header: a 200-byte file whose header announces a shape
of 10^13 floats asks for 73 TiB (MemoryError), and a file that is not a
zip at all raises BadZipFile. Here each array's header (dtype, shape) is
parsed first and its byte count compared with what the file (or the zip
member) really holds; deflate cannot expand more than ~1032:1, so a
compressed member's announced size is also bounded by its compressed size.
Every problem is one UserError naming the file (and the array).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from triptych.errors import UserError

_DEFLATE_MAX_RATIO = 1032


def _read_array(fh, available: int, where: str) -> np.ndarray:
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(fh)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = fmt.read_array_header_2_0(fh)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except (ValueError, OSError, EOFError, SyntaxError) as e:
        raise UserError(f"{where}: not a readable .npy array ({e})") from None
    if dtype.hasobject:
        raise UserError(f"{where}: holds Python objects (not loaded: loading them would run pickle)")
    count = int(np.prod(shape, dtype=object))
    need = count * dtype.itemsize
    if need > available:
        raise UserError(f"{where}: its header announces shape {tuple(shape)} of {dtype} ({need:,} bytes) "
                        f"but only {available:,} bytes follow")
    data = bytearray(need)  # writable, unlike bytes: the array can be used in place
    view, got = memoryview(data), 0
    try:
        while got < need:
            n = fh.readinto(view[got:])
            if not n:
                break
            got += n
    except (OSError, EOFError, zipfile.BadZipFile, ValueError) as e:  # a corrupt deflate stream, a CRC error
        raise UserError(f"{where}: unreadable ({e})") from None
    if got < need:
        raise UserError(f"{where}: truncated ({got:,} of {need:,} bytes)")
    arr = np.frombuffer(data, dtype=dtype, count=count)
    return arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)


def load_npy(path: str | Path) -> np.ndarray:
    p = Path(path)
    try:
        size = p.stat().st_size
        with open(p, "rb") as fh:
            return _read_array(fh, size, str(p))
    except OSError as e:
        raise UserError(f"{p}: cannot read ({e.strerror or e})") from None


def load_npz(path: str | Path, names: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """{name: array} of an .npz (only `names` when given; a missing one is an error)."""
    p = Path(path)
    try:
        z = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise UserError(f"{p}: not a readable .npz file ({e})") from None
    with z:
        members = {i.filename[:-4] if i.filename.endswith(".npy") else i.filename: i for i in z.infolist()}
        wanted = names if names is not None else tuple(members)
        out = {}
        for name in wanted:
            info = members.get(name)
            if info is None:
                raise UserError(f"{p}: missing array '{name}'")
            available = info.file_size
            if info.compress_type != zipfile.ZIP_STORED:
                available = min(available, info.compress_size * _DEFLATE_MAX_RATIO + 1024)
            try:
                with z.open(info) as fh:
                    out[name] = _read_array(fh, available, f"{p}: array '{name}'")
            except (zipfile.BadZipFile, OSError, NotImplementedError, RuntimeError) as e:
                raise UserError(f"{p}: array '{name}': unreadable ({e})") from None
        return out
