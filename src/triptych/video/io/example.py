"""`tf.train.Example` and `tf.train.SequenceExample` from the protobuf wire format.

A minimal hand-written parser for the messages of TensorFlow's
example.proto / feature.proto (proto3):

    Example         { Features features = 1; }
    SequenceExample { Features context = 1; FeatureLists feature_lists = 2; }
    Features        { map<string, Feature> feature = 1; }
    FeatureLists    { map<string, FeatureList> feature_list = 1; }
    FeatureList     { repeated Feature feature = 1; }
    Feature         { oneof kind { BytesList bytes_list = 1;
                                   FloatList float_list = 2;
                                   Int64List int64_list = 3; } }
    BytesList { repeated bytes value = 1; }   FloatList { repeated float value = 1; }
    Int64List { repeated int64 value = 1; }

Why not the `protobuf` package: benchmarks/video_read.py measured it (and the
`tfrecord` package, which uses it) slower on frame-level records, because
each of a video's 600 frames becomes a Python message object. Here a
frame-level feature list whose frames all have the same byte length — every
YouTube-8M record — is recognised by its fixed stride and cut into a
[frames, dim] uint8 array by numpy in one step.

It follows protobuf's parsing rules, so that it accepts exactly what
`ParseFromString` accepts and yields the same values: unknown fields are
skipped, packed and unpacked repeated scalars both accepted, a message
field seen twice is merged, the last map entry of a key wins, a different
member of the oneof replaces the earlier one, map keys must be UTF-8.
Anything else raises `ParseError` (a ValueError) and never another
exception; tests fuzz it against that promise and compare it with protobuf.
"""

from __future__ import annotations

import numpy as np


class ParseError(ValueError):
    """The bytes are not a valid serialized message of the expected type."""


# A Feature is (kind, values): kind is "bytes" (list[bytes]), "float"
# (float32 array), "int64" (int64 array) or None when no member is set.
Feature = tuple


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise ParseError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result & 0xFFFFFFFFFFFFFFFF, pos
        shift += 7
        if shift >= 70:
            raise ParseError("varint longer than 10 bytes")


def _tag(buf: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(field number, wire type, new position)."""
    key, pos = _varint(buf, pos, end)
    if key > 0xFFFFFFFF or key >> 3 == 0:
        raise ParseError(f"invalid field tag {key}")
    return key >> 3, key & 7, pos


def _length(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """(payload end, payload start) of a length-delimited field."""
    n, pos = _varint(buf, pos, end)
    if n > end - pos:
        raise ParseError("length-delimited field runs past the end of its message")
    return pos + n, pos


MAX_DEPTH = 100  # nested groups, as protobuf's default recursion limit


def _skip(buf: bytes, pos: int, end: int, number: int, wire: int, depth: int = 0) -> int:
    """Position after an unknown field's value. Groups nest: their depth is
    bounded (a hostile record of nested groups would otherwise exhaust the
    stack), as protobuf bounds it."""
    if wire == 0:
        return _varint(buf, pos, end)[1]
    if wire == 1 or wire == 5:
        pos += 8 if wire == 1 else 4
        if pos > end:
            raise ParseError("truncated fixed-width field")
        return pos
    if wire == 2:
        return _length(buf, pos, end)[0]
    if wire == 3:  # a group: skip fields up to its matching end-group tag
        if depth >= MAX_DEPTH:
            raise ParseError(f"groups nested deeper than {MAX_DEPTH}")
        while True:
            if pos >= end:
                raise ParseError("unterminated group")
            inner, w, pos = _tag(buf, pos, end)
            if w == 4:
                if inner != number:
                    raise ParseError("mismatched end-group tag")
                return pos
            pos = _skip(buf, pos, end, inner, w, depth + 1)
    raise ParseError(f"invalid wire type {wire}" if wire != 4 else "unexpected end-group tag")


def _fields(buf: bytes, pos: int, end: int):
    """Yield (number, wire, start, stop) of each field of a message; for
    wire type 2, start:stop is the payload; for others, the raw value."""
    while pos < end:
        number, wire, pos = _tag(buf, pos, end)
        if wire == 2:
            stop, start = _length(buf, pos, end)
            yield number, wire, start, stop
            pos = stop
        else:
            stop = _skip(buf, pos, end, number, wire)
            yield number, wire, pos, stop
            pos = stop


def _parse_feature(buf: bytes, start: int, stop: int, kind, parts: list) -> tuple:
    """Merge one serialized Feature into (kind, parts)."""
    for number, wire, s, e in _fields(buf, start, stop):
        if wire != 2 or number not in (1, 2, 3):
            continue  # unknown field, or a known one with another wire type
        new = ("bytes", "float", "int64")[number - 1]
        if new != kind:
            kind, parts = new, []
        if number == 1:
            for n, w, vs, ve in _fields(buf, s, e):
                if n == 1 and w == 2:
                    parts.append(buf[vs:ve])
        elif number == 2:
            for n, w, vs, ve in _fields(buf, s, e):
                if n != 1:
                    continue
                if w == 2:
                    if (ve - vs) % 4:
                        raise ParseError("packed float list of a length not a multiple of 4")
                    parts.append(buf[vs:ve])
                elif w == 5:
                    parts.append(buf[vs:ve])
        else:
            for n, w, vs, ve in _fields(buf, s, e):
                if n != 1:
                    continue
                if w == 0:
                    parts.append(_varint(buf, vs, ve)[0])
                elif w == 2:
                    while vs < ve:
                        v, vs = _varint(buf, vs, ve)
                        parts.append(v)
    return kind, parts


def _finish(kind, parts: list) -> Feature:
    if kind == "float":
        return kind, np.frombuffer(b"".join(parts), dtype="<f4").astype(np.float32)
    if kind == "int64":
        return kind, np.array(parts, dtype=np.uint64).view(np.int64)
    return kind, parts


def feature(buf: bytes, start: int = 0, stop: int | None = None) -> Feature:
    """One serialized Feature as (kind, values)."""
    kind, parts = _parse_feature(buf, start, len(buf) if stop is None else stop, None, [])
    return _finish(kind, parts)


def _map_entries(buf: bytes, start: int, stop: int):
    """Yield (key, [(value start, value stop), ...]) of a map<string, message>."""
    for number, wire, s, e in _fields(buf, start, stop):
        if number != 1 or wire != 2:
            continue
        key = b""
        spans = []
        for n, w, vs, ve in _fields(buf, s, e):
            if w != 2:
                continue
            if n == 1:
                key = buf[vs:ve]
            elif n == 2:
                spans.append((vs, ve))  # a value seen twice is merged
        try:
            yield key.decode("utf-8"), spans
        except UnicodeDecodeError:
            raise ParseError("map key is not valid UTF-8") from None


def _features(buf: bytes, start: int, stop: int, out: dict) -> None:
    for key, spans in _map_entries(buf, start, stop):
        kind, parts = None, []
        for s, e in spans:
            kind, parts = _parse_feature(buf, s, e, kind, parts)
        out[key] = _finish(kind, parts)


def parse_example(buf: bytes) -> dict[str, Feature]:
    """A serialized Example as {name: (kind, values)}."""
    out: dict[str, Feature] = {}
    for number, wire, s, e in _fields(buf, 0, len(buf)):
        if number == 1 and wire == 2:
            _features(buf, s, e, out)
    return out


class FeatureList:
    """A feature list of a SequenceExample, decoded on demand.

    Frame-level records hold hundreds of frames; most readers want them as
    one [frames, dim] uint8 array (`fixed_bytes`), not as Feature objects.
    """

    __slots__ = ("buf", "spans")

    def __init__(self, buf: bytes, spans: list[tuple[int, int]]):
        self.buf, self.spans = buf, spans

    def features(self) -> list[Feature]:
        out = []
        for s, e in self.spans:
            for n, w, fs, fe in _fields(self.buf, s, e):
                if n == 1 and w == 2:
                    out.append(feature(self.buf, fs, fe))
        return out

    def fixed_bytes(self, dim: int) -> np.ndarray:
        """All frames as a [frames, dim] uint8 array.

        Raises ParseError when a frame is not a bytes_list of exactly one
        value of `dim` bytes (what the official reader's
        FixedLenSequenceFeature([], tf.string) + decode_raw requires).
        """
        if len(self.spans) == 1:
            fast = _fixed_stride(self.buf, *self.spans[0], dim)
            if fast is not None:
                return fast
        frames = []
        for i, (kind, values) in enumerate(self.features()):
            if kind != "bytes" or len(values) != 1:
                got = f"{len(values)} values" if kind == "bytes" else f"a {kind} feature"
                raise ParseError(f"frame {i}: expected one bytes value, got {got}")
            if len(values[0]) != dim:
                raise ParseError(f"frame {i}: {len(values[0])} bytes, expected {dim}")
            frames.append(values[0])
        return np.frombuffer(b"".join(frames), dtype=np.uint8).reshape(len(frames), dim).copy()


def _encode_varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _frame_header(dim: int) -> bytes:
    """The bytes before each frame of a canonically encoded FeatureList:
    FeatureList.feature tag + length, Feature.bytes_list tag + length,
    BytesList.value tag + `dim`."""
    inner = b"\x0a" + _encode_varint(dim)
    mid = b"\x0a" + _encode_varint(len(inner) + dim) + inner
    return b"\x0a" + _encode_varint(len(mid) + dim) + mid


def _fixed_stride(buf: bytes, start: int, stop: int, dim: int) -> np.ndarray | None:
    """Frames of a canonically encoded list of equal-size frames, or None.

    Each frame is the same header then `dim` bytes, so the payload is a
    [frames, stride] matrix whose header columns must all be equal.
    """
    header = _frame_header(dim)
    stride = len(header) + dim
    size = stop - start
    if size % stride:
        return None
    rows = np.frombuffer(buf, dtype=np.uint8, count=size, offset=start).reshape(size // stride, stride)
    h = len(header)
    if not (rows[:, :h] == np.frombuffer(header, dtype=np.uint8)).all():
        return None
    return rows[:, h:]  # a read-only view into `buf`: no copy until dequantised


def parse_sequence_example(buf: bytes) -> tuple[dict[str, Feature], dict[str, FeatureList]]:
    """A serialized SequenceExample as (context features, feature lists)."""
    context: dict[str, Feature] = {}
    lists: dict[str, FeatureList] = {}
    for number, wire, s, e in _fields(buf, 0, len(buf)):
        if wire != 2:
            continue
        if number == 1:
            _features(buf, s, e, context)
        elif number == 2:
            for key, spans in _map_entries(buf, s, e):
                lists[key] = FeatureList(buf, spans)  # frames are checked when decoded
    return context, lists


# ---------------------------------------------------------------- encoding


def _len_field(number: int, payload: bytes) -> bytes:
    return _encode_varint(number << 3 | 2) + _encode_varint(len(payload)) + payload


def encode_feature(kind: str, values) -> bytes:
    """A Feature as protobuf serializes it (packed scalars)."""
    if kind == "bytes":
        inner = b"".join(_len_field(1, bytes(v)) for v in values)
        return _len_field(1, inner)
    if kind == "float":
        packed = np.asarray(values, dtype="<f4").tobytes()
        return _len_field(2, _len_field(1, packed) if packed else b"")
    if kind == "int64":
        packed = b"".join(_encode_varint(int(v) & 0xFFFFFFFFFFFFFFFF) for v in values)
        return _len_field(3, _len_field(1, packed) if packed else b"")
    raise ValueError(f"unknown feature kind {kind!r}")


def _encode_map(entries: dict[str, bytes]) -> bytes:
    return b"".join(_len_field(1, _len_field(1, k.encode("utf-8")) + _len_field(2, v)) for k, v in entries.items())


def encode_example(features: dict[str, tuple]) -> bytes:
    """{name: (kind, values)} -> serialized Example."""
    return _len_field(1, _encode_map({k: encode_feature(*v) for k, v in features.items()}))


def encode_frames(frames: np.ndarray) -> bytes:
    """A FeatureList of one bytes value a frame, from uint8 [frames, dim]."""
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    header = np.frombuffer(_frame_header(frames.shape[1]), dtype=np.uint8)
    rows = np.concatenate([np.broadcast_to(header, (len(frames), len(header))), frames], axis=1)
    return rows.tobytes()


def encode_sequence_example(context: dict[str, tuple], feature_lists: dict) -> bytes:
    """Context {name: (kind, values)} and feature lists {name: [(kind,
    values) per step]} or {name: uint8 array [steps, dim]} (one bytes value
    a step, the YouTube-8M frame layout)."""
    lists = {
        k: encode_frames(v) if isinstance(v, np.ndarray) else b"".join(_len_field(1, encode_feature(*f)) for f in v)
        for k, v in feature_lists.items()
    }
    return _len_field(1, _encode_map({k: encode_feature(*v) for k, v in context.items()})) + _len_field(
        2, _encode_map(lists)
    )

