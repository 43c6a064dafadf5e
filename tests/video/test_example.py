"""The hand-written wire parser against the protobuf package, and fuzzed."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from triptych.video.io import example as ex
from triptych.video.io.protos import feature_value, messages

M = messages()

feature_st = st.one_of(
    st.tuples(st.just("bytes"), st.lists(st.binary(max_size=20), max_size=4)),
    st.tuples(st.just("float"), st.lists(st.floats(width=32, allow_nan=False), max_size=6)),
    st.tuples(st.just("int64"), st.lists(st.integers(-(2**63), 2**63 - 1), max_size=6)),
)
features_st = st.dictionaries(st.text(max_size=8), feature_st, max_size=4)


def _fill(pf, kind, values):
    if kind == "bytes":
        pf.bytes_list.value.extend(values)
    elif kind == "float":
        pf.float_list.value.extend(values)
    else:
        pf.int64_list.value.extend(values)


def _same(ours, theirs):
    assert ours[0] == theirs[0]
    if ours[0] == "bytes":
        assert ours[1] == theirs[1]
    else:
        np.testing.assert_array_equal(ours[1], theirs[1])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(features_st)
def test_example_matches_protobuf(features):
    e = M["Example"]()
    for k, (kind, values) in features.items():
        _fill(e.features.feature[k], kind, values)
    blob = e.SerializeToString()
    ours = ex.parse_example(blob)
    assert set(ours) == set(features)
    for k in features:
        _same(ours[k], feature_value(e.features.feature[k]))
    # our encoder writes what protobuf parses back to the same message
    back = M["Example"].FromString(ex.encode_example(features))
    assert dict(back.features.feature) == dict(e.features.feature)


@settings(max_examples=60, deadline=None)
@given(features_st, st.dictionaries(st.text(max_size=5), st.lists(feature_st, max_size=4), max_size=3))
def test_sequence_example_matches_protobuf(context, lists):
    s = M["SequenceExample"]()
    for k, (kind, values) in context.items():
        _fill(s.context.feature[k], kind, values)
    for k, feats in lists.items():
        fl = s.feature_lists.feature_list[k]
        for kind, values in feats:
            _fill(fl.feature.add(), kind, values)
    c, lsts = ex.parse_sequence_example(s.SerializeToString())
    assert set(c) == set(context) and set(lsts) == set(lists)
    for k, fl in lsts.items():
        theirs = [feature_value(f) for f in s.feature_lists.feature_list[k].feature]
        ours = fl.features()
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            _same(a, b)


def test_unpacked_unknown_fields_and_merging():
    # unpacked int64 (wire type 0) and float (wire type 5), an unknown field,
    # the same map key twice (last wins) and a Feature switching oneof member.
    int_feature = b"\x1a\x04" + b"\x08\x05\x08\x07"  # Int64List{1: 5, 1: 7} unpacked
    float_feature = b"\x12\x05" + b"\x0d" + np.float32(1.5).tobytes()
    unknown = b"\x28\x01"  # field 5, varint
    entry1 = b"\x0a\x01k" + b"\x12" + bytes([len(int_feature)]) + int_feature
    entry2 = b"\x0a\x01k" + b"\x12" + bytes([len(int_feature + float_feature)]) + int_feature + float_feature
    features = b"\x0a" + bytes([len(entry1)]) + entry1 + b"\x0a" + bytes([len(entry2)]) + entry2
    blob = unknown + b"\x0a" + bytes([len(features)]) + features
    theirs = M["Example"].FromString(blob)
    ours = ex.parse_example(blob)
    _same(ours["k"], feature_value(theirs.features.feature["k"]))
    assert ours["k"][0] == "float"


def test_fast_frames_equal_general_path():
    frames = np.random.default_rng(0).integers(0, 256, (7, 1024), dtype=np.uint8)
    blob = ex.encode_sequence_example({}, {"rgb": frames})
    _, lists = ex.parse_sequence_example(blob)
    fl = lists["rgb"]
    np.testing.assert_array_equal(fl.fixed_bytes(1024), frames)
    assert [v[0] for _, v in fl.features()] == [f.tobytes() for f in frames]
    with pytest.raises(ex.ParseError, match="frame 0: 1024 bytes, expected 1000"):
        fl.fixed_bytes(1000)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_fuzz_random_bytes_only_parse_errors(blob):
    for parse in (ex.parse_example, ex.parse_sequence_example):
        try:
            out = parse(blob)
        except ex.ParseError:
            continue
        if isinstance(out, tuple):
            for fl in out[1].values():
                try:
                    fl.features()
                    fl.fixed_bytes(4)
                except ex.ParseError:
                    pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_mutated_valid_records(data):
    frames = np.arange(3 * 16, dtype=np.uint8).reshape(3, 16)
    blob = bytearray(ex.encode_sequence_example({"id": ("bytes", [b"v"]), "labels": ("int64", [1, 2])}, {"rgb": frames}))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(blob) - 1))
        blob[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(blob)))
    blob = bytes(blob[:cut])
    try:
        ours = ex.parse_sequence_example(blob)
    except ex.ParseError:
        ours = None
    try:
        theirs = M["SequenceExample"].FromString(blob)
    except Exception:
        theirs = None
    # whatever protobuf accepts, we accept, with the same context
    if theirs is not None and ours is not None:
        for k, f in theirs.context.feature.items():
            _same(ours[0][k], feature_value(f))
