import gzip
import struct
from pathlib import Path

import pytest

from triptych.errors import UserError
from triptych.video.io.tfrecord import RecordStats, expand_paths, frame, iter_records, masked_crc, write_records

DATA = Path(__file__).parent / "data"


def test_masked_crc_known_value():
    # CRC-32C("123456789") = 0xE3069283 (RFC 3720 check value), then masked.
    crc = 0xE3069283
    assert masked_crc(b"123456789") == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


@pytest.mark.parametrize("compress", [False, True])
def test_roundtrip(tmp_path, compress):
    payloads = [b"", b"a", bytes(range(256)) * 10]
    p = tmp_path / "x.tfrecord"
    assert write_records(p, payloads, compress=compress) == 3
    assert (p.read_bytes()[:2] == b"\x1f\x8b") == compress
    assert [d for _, d in iter_records(p)] == payloads


def test_fixture_gzip_equals_raw():
    raw = [d for _, d in iter_records(DATA / "official_frame.tfrecord")]
    gz = [d for _, d in iter_records(DATA / "official_frame.tfrecord.gz")]
    assert raw == gz and len(raw) == 2


def test_raw_record_whose_length_looks_like_gzip(tmp_path):
    # length 0x088b1f starts with the gzip magic 1f 8b 08; the length CRC says raw.
    payload = bytes(0x088B1F)
    p = tmp_path / "x.tfrecord"
    p.write_bytes(frame(payload))
    assert [len(d) for _, d in iter_records(p)] == [len(payload)]


def _three(tmp_path):
    p = tmp_path / "three.tfrecord"
    write_records(p, [b"first" * 10, b"second" * 10, b"third" * 10])
    return p


def test_flipped_payload_byte_names_record(tmp_path):
    p = _three(tmp_path)
    data = bytearray(p.read_bytes())
    second = len(frame(b"first" * 10)) + 12 + 3
    data[second] ^= 0x01
    p.write_bytes(bytes(data))
    with pytest.raises(UserError, match=r"three.tfrecord: record 1: data CRC mismatch"):
        list(iter_records(p))
    assert len(list(iter_records(p, verify=False))) == 3
    stats = RecordStats()
    got = [d for _, d in iter_records(p, skip_bad=True, stats=stats)]
    assert got == [b"first" * 10, b"third" * 10] and len(stats.skipped) == 1


def test_flipped_length_resyncs_when_skipping(tmp_path):
    p = _three(tmp_path)
    data = bytearray(p.read_bytes())
    data[len(frame(b"first" * 10))] ^= 0x40  # the second record's length
    p.write_bytes(bytes(data))
    with pytest.raises(UserError, match=r"record 1: length CRC mismatch"):
        list(iter_records(p))
    stats = RecordStats()
    got = [d for _, d in iter_records(p, skip_bad=True, stats=stats)]
    assert got == [b"first" * 10, b"third" * 10] and len(stats.skipped) == 1


@pytest.mark.parametrize("cut", [5, 12 + 20, 12 + 50 + 2])
def test_truncated(tmp_path, cut):
    p = _three(tmp_path)
    data = p.read_bytes()
    keep = len(frame(b"first" * 10)) * 0 + len(frame(b"first" * 10)) + cut
    p.write_bytes(data[:keep])
    with pytest.raises(UserError, match=r"record 1: truncated"):
        list(iter_records(p))
    stats = RecordStats()
    assert len(list(iter_records(p, skip_bad=True, stats=stats))) == 1 and len(stats.skipped) == 1


def test_corrupt_gzip(tmp_path):
    p = tmp_path / "x.tfrecord.gz"
    p.write_bytes(gzip.compress(frame(b"abc") * 3)[:-12])
    with pytest.raises(UserError, match="x.tfrecord.gz"):
        list(iter_records(p))


def test_expand_paths(tmp_path):
    for name in ["b.tfrecord", "a.tfrecord", "c.txt"]:
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in expand_paths(str(tmp_path / "*.tfrecord"))] == ["a.tfrecord", "b.tfrecord"]
    assert len(expand_paths(tmp_path)) == 3
    with pytest.raises(UserError, match="no file matches"):
        expand_paths(str(tmp_path / "*.nothing"))
    with pytest.raises(UserError, match="no such file"):
        expand_paths(tmp_path / "missing.tfrecord")


def test_header_layout():
    f = frame(b"xyz")
    assert struct.unpack("<Q", f[:8])[0] == 3 and f[12:15] == b"xyz" and len(f) == 19


def test_short_reads_are_asked_again(tmp_path):
    """An unbuffered read may return less than asked (a network file system, a pipe):
    the reader asks again until the record is whole, and still finds the real end."""
    import io

    from triptych.video.io.tfrecord import _Reader

    class Trickle(io.RawIOBase):  # at most 5 bytes per read, as a slow network mount gives them
        def __init__(self, data):
            self.data, self.pos = data, 0

        def readable(self):
            return True

        def readinto(self, buf):
            n = min(5, len(buf), len(self.data) - self.pos)
            buf[:n] = self.data[self.pos : self.pos + n]
            self.pos += n
            return n

    payloads = [b"a" * 37, b"", b"xyz" * 100]
    path = tmp_path / "r.tfrecord"
    write_records(path, payloads)
    data = path.read_bytes()
    reader = _Reader(path, Trickle(data), verify=True, size=None)
    assert [reader.next(i) for i in range(4)] == [*payloads, None]
