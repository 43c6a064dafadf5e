"""Hostile but small inputs for the video readers (shared by the reader and server tests)."""

import gzip
import io
import struct
import zipfile

from triptych.video.io.tfrecord import frame, masked_crc


def huge_length_record() -> bytes:
    """A header announcing 256 GiB (with a valid length CRC), then 100 bytes."""
    n = struct.pack("<Q", 1 << 38)
    return n + struct.pack("<I", masked_crc(n)) + b"x" * 100


def huge_length_gzip() -> bytes:
    return gzip.compress(huge_length_record(), mtime=0)  # fixed bytes: the same test ids in every process


def nested_groups(depth: int = 100_000) -> bytes:
    """A record whose payload is `depth` nested unknown groups of field 1."""
    return frame(b"\x0b" * depth + b"\x0c" * depth)


def npy_header(shape, descr="<f8") -> bytes:
    hdr = "{'descr': '%s', 'fortran_order': False, 'shape': %r, }" % (descr, tuple(shape))
    hdr += " " * (117 - len(hdr)) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode()


def huge_npz(names=("predictions", "labels"), compress=False) -> bytes:
    buf = io.BytesIO()
    kind = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w", kind) as z:
        for name in names:
            z.writestr(f"{name}.npy", npy_header((10**12, 10)) + bytes(80))
    return buf.getvalue()
