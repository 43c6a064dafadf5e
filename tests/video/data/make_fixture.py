"""Regenerate the hand-built "official layout" fixtures in this folder.

TensorFlow cannot be installed on these machines, so the fixtures are built
from the specification with code independent of triptych's reader and
writer: messages by the `protobuf` package (descriptors of TensorFlow's
example.proto, see triptych/video/protos.py), framing by `struct` and CRCs by
the `google-crc32c` package (not `crc32c`, which triptych uses). Values are
fixed, so the tests can state what must come out:

official_frame.tfrecord  2 SequenceExamples: id "vid1" labels [3, 7], 3
                          frames, rgb byte j of frame t = (t*7 + j) % 256,
                          audio byte j = (255 - t - j) % 256; id "été-視頻"
                          (non-ASCII) labels [0], 1 frame of all 128 / 0.
official_video.tfrecord  1 Example: id "vid1", labels [1, 2, 3],
                          mean_rgb[j] = j/1024 - 0.5, mean_audio[j] = -j/128.
official_frame.tfrecord.gz  the frame file, gzip-compressed (TFRecordOptions GZIP).

Run:  .venv/bin/python tests/video/data/make_fixture.py
"""

import gzip
import struct
from pathlib import Path

import google_crc32c

from triptych.video.io.protos import messages

HERE = Path(__file__).parent


def masked(data: bytes) -> int:
    c = google_crc32c.value(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def framed(payload: bytes) -> bytes:
    n = struct.pack("<Q", len(payload))
    return n + struct.pack("<I", masked(n)) + payload + struct.pack("<I", masked(payload))


def frame_records() -> list[bytes]:
    M = messages()
    out = []
    a = M["SequenceExample"]()
    a.context.feature["id"].bytes_list.value.append(b"vid1")
    a.context.feature["labels"].int64_list.value.extend([3, 7])
    for t in range(3):
        a.feature_lists.feature_list["rgb"].feature.add().bytes_list.value.append(bytes((t * 7 + j) % 256 for j in range(1024)))
        a.feature_lists.feature_list["audio"].feature.add().bytes_list.value.append(bytes((255 - t - j) % 256 for j in range(128)))
    out.append(a.SerializeToString())
    b = M["SequenceExample"]()
    b.context.feature["id"].bytes_list.value.append("été-視頻".encode("utf-8"))
    b.context.feature["labels"].int64_list.value.append(0)
    b.feature_lists.feature_list["rgb"].feature.add().bytes_list.value.append(bytes([128] * 1024))
    b.feature_lists.feature_list["audio"].feature.add().bytes_list.value.append(bytes(128))
    out.append(b.SerializeToString())
    return out


def video_records() -> list[bytes]:
    M = messages()
    e = M["Example"]()
    e.features.feature["id"].bytes_list.value.append(b"vid1")
    e.features.feature["labels"].int64_list.value.extend([1, 2, 3])
    e.features.feature["mean_rgb"].float_list.value.extend([j / 1024 - 0.5 for j in range(1024)])
    e.features.feature["mean_audio"].float_list.value.extend([-j / 128 for j in range(128)])
    return [e.SerializeToString()]


if __name__ == "__main__":
    frame = b"".join(framed(r) for r in frame_records())
    (HERE / "official_frame.tfrecord").write_bytes(frame)
    (HERE / "official_frame.tfrecord.gz").write_bytes(gzip.compress(frame, mtime=0))
    (HERE / "official_video.tfrecord").write_bytes(b"".join(framed(r) for r in video_records()))
