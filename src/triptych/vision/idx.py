"""The IDX file format of MNIST and Fashion-MNIST, read with numpy.

An IDX file is a 4-byte magic number — two zero bytes, a type code (0x08 =
unsigned byte, the only type these datasets use) and the number of
dimensions — then one big-endian uint32 per dimension, then the data in C
order. So `train-images-idx3-ubyte` starts 00 00 08 03, then 60000, 28, 28;
`train-labels-idx1-ubyte` starts 00 00 08 01, then 60000. Files may be
gzipped (the official downloads and Debian's package are).

Every check names the file: a wrong magic, a header that promises more
bytes than the file holds (a truncated download), trailing bytes, or
dimensions other than the caller expects.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from triptych.errors import UserError

_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise UserError(f"{path}: no such IDX file")
    if path.is_dir():
        raise UserError(f"{path}: is a directory, expected an IDX file")
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":  # gzip, whatever the name says
            return gzip.decompress(raw)
        return raw
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise UserError(f"{path}: truncated or corrupt gzip stream ({e})") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror or e})") from None


def read_idx(path: str | Path, ndim: int | None = None) -> np.ndarray:
    """The array an IDX file holds, shape from its header; `ndim` checks the dimension count."""
    p = Path(path)
    data = _read_bytes(p)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _TYPES:
        raise UserError(f"{p}: not an IDX file (magic {data[:4].hex() or 'missing'}, expected 0000 08 0N)")
    dims = data[3]
    if ndim is not None and dims != ndim:
        raise UserError(f"{p}: IDX file of {dims} dimensions, expected {ndim} "
                        f"({'images' if ndim == 3 else 'labels'} file wanted)")
    header = 4 + 4 * dims
    if len(data) < header:
        raise UserError(f"{p}: truncated IDX header ({len(data)} bytes, the header needs {header})")
    shape = tuple(int(v) for v in np.frombuffer(data, dtype=">u4", count=dims, offset=4))
    dtype = np.dtype(_TYPES[data[2]])
    need = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    body = len(data) - header
    if body < need:
        raise UserError(f"{p}: truncated IDX file: header says {'x'.join(map(str, shape))} "
                        f"({need:,} bytes of data), the file holds {body:,}")
    if body > need:
        raise UserError(f"{p}: {body - need:,} bytes after the {'x'.join(map(str, shape))} array the header describes")
    return np.frombuffer(data, dtype=dtype, count=need // dtype.itemsize, offset=header).reshape(shape)


def write_idx(path: str | Path, array: np.ndarray, *, compress: bool | None = None) -> Path:
    """Write a uint8 array as IDX (gzipped when the name ends in .gz): for tests and tools."""
    p = Path(path)
    a = np.ascontiguousarray(array, dtype=np.uint8)
    blob = bytes([0, 0, 0x08, a.ndim]) + np.asarray(a.shape, dtype=">u4").tobytes() + a.tobytes()
    if compress if compress is not None else p.suffix == ".gz":
        blob = gzip.compress(blob, compresslevel=1)
    p.write_bytes(blob)
    return p


def read_image_label_pair(images_path: str | Path, labels_path: str | Path,
                          classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(N, H, W) uint8 images and (N,) int64 labels, checked against each other."""
    images = read_idx(images_path, ndim=3)
    labels = read_idx(labels_path, ndim=1)
    if images.dtype != np.uint8 or labels.dtype != np.uint8:
        raise UserError(f"{images_path}: expected unsigned-byte IDX files (type 0x08)")
    if len(images) != len(labels):
        raise UserError(f"{labels_path}: {len(labels):,} labels for the {len(images):,} images of {images_path}")
    if classes is not None and len(labels) and int(labels.max()) >= classes:
        bad = int(np.flatnonzero(labels >= classes)[0])
        raise UserError(f"{labels_path}: label {int(labels[bad])} at record {bad}, expected 0-{classes - 1}")
    return images, labels.astype(np.int64)
