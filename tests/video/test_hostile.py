"""Hostile files: lengths, depths and shapes that would allocate or recurse
without bound end as one line and exit 2, with nothing allocated from them."""

import resource

import numpy as np
import pytest

from triptych.errors import UserError
from triptych.video.io import example as pb
from triptych.video.npz import load_npy, load_npz
from triptych.video.streaming import scan_shard
from triptych.video.io.tfrecord import iter_records

from . import hostile


def _peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize("name, data", [("big.tfrecord", hostile.huge_length_record()),
                                        ("big.tfrecord.gz", hostile.huge_length_gzip())], ids=["raw", "gzip"])
def test_a_length_field_past_the_end_allocates_nothing(tmp_path, run_cli, name, data):
    f = tmp_path / name
    f.write_bytes(data)
    before = _peak_mb()
    with pytest.raises(UserError, match=r"record 0: truncated record \(100 of 274877906944 bytes\)"):
        list(iter_records(f))
    assert _peak_mb() - before < 100
    status, out, err = run_cli("video", "inspect", f)
    assert status == 2 and err.count("\n") == 1 and "truncated record" in err
    if not name.endswith(".gz"):
        with pytest.raises(UserError, match="truncated record"):
            scan_shard(f)


def test_nested_groups_are_bounded(tmp_path, run_cli):
    f = tmp_path / "deep.tfrecord"
    f.write_bytes(hostile.nested_groups())
    status, out, err = run_cli("video", "inspect", f)
    assert status == 2 and err.count("\n") == 1 and "groups nested deeper than 100" in err
    ok = b"\x0b" * 50 + b"\x0c" * 50  # as deep as protobuf allows is still read
    assert pb.parse_sequence_example(ok) == ({}, {})


@pytest.mark.parametrize("compress", [False, True])
def test_npz_headers_are_checked_before_allocating(tmp_path, run_cli, compress):
    f = tmp_path / "huge.npz"
    f.write_bytes(hostile.huge_npz(compress=compress))
    before = _peak_mb()
    status, out, err = run_cli("video", "metrics", "--predictions", f)
    assert status == 2 and err.count("\n") == 1
    assert "array 'predictions': its header announces shape (1000000000000, 10)" in err
    assert _peak_mb() - before < 100
    bad = tmp_path / "notzip.npz"
    bad.write_bytes(b"PK\x03\x04garbage" * 10)
    status, out, err = run_cli("video", "metrics", "--predictions", bad)
    assert status == 2 and "not a readable .npz file" in err
    npy = tmp_path / "v.npy"
    npy.write_bytes(hostile.npy_header((10**9, 8, 8), "|u1"))
    with pytest.raises(UserError, match="announces shape"):
        load_npy(npy)
    obj = tmp_path / "o.npy"
    obj.write_bytes(hostile.npy_header((2,), "|O") + bytes(16))
    with pytest.raises(UserError, match="Python objects"):
        load_npy(obj)


def test_npz_round_trip_is_unchanged(tmp_path):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    b = np.asfortranarray(np.arange(6, dtype=np.int64).reshape(2, 3))
    for save in (np.savez, np.savez_compressed):
        save(tmp_path / "x.npz", a=a, b=b, s=np.array("text"))
        z = load_npz(tmp_path / "x.npz")
        assert np.array_equal(z["a"], a) and np.array_equal(z["b"], b) and str(z["s"]) == "text"
        assert z["a"].flags.writeable
    np.save(tmp_path / "y.npy", a)
    assert np.array_equal(load_npy(tmp_path / "y.npy"), a)
