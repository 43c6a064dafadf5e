from pathlib import Path

import numpy as np
import pytest

from triptych.errors import UserError
from triptych.video.io import example as ex
from triptych.video.io.tfrecord import RecordStats, write_records
from triptych.video.io.yt8m import (
    DEQUANT_LUT,
    VideoSet,
    dequantize,
    quantize,
    read_videos,
    sample_frames,
)

DATA = Path(__file__).parent / "data"


def test_dequantize_is_the_official_float32_formula():
    q = np.arange(256, dtype=np.uint8)
    scalar = np.float32(4.0 / 255.0)
    bias = np.float32(4.0 / 512.0 + -2.0)
    expected = q.astype(np.float32) * scalar + bias
    assert dequantize(q).dtype == np.float32
    assert np.array_equal(dequantize(q), expected)
    assert DEQUANT_LUT[0] == np.float32(-1.9921875) and abs(DEQUANT_LUT[255] - 2.0078125) < 1e-6
    assert np.array_equal(quantize(dequantize(q)), q)


def test_official_frame_fixture():
    videos = list(read_videos(DATA / "official_frame.tfrecord"))
    a, b = videos
    assert (a.id, a.labels.tolist(), a.frames, a.level) == ("vid1", [3, 7], 3, "frame")
    t, j = 2, 1000
    assert a.rgb[t, j] == (t * 7 + j) % 256 and a.audio[t, 5] == (255 - t - 5) % 256
    assert (b.id, b.labels.tolist(), b.frames) == ("été-視頻", [0], 1)
    gz = list(read_videos(DATA / "official_frame.tfrecord.gz"))
    assert np.array_equal(gz[0].rgb, a.rgb)


def test_official_video_fixture():
    (v,) = read_videos(DATA / "official_video.tfrecord")
    assert v.level == "video" and v.labels.tolist() == [1, 2, 3]
    assert np.array_equal(v.rgb, np.array([j / 1024 - 0.5 for j in range(1024)], np.float32))
    assert v.audio.shape == (128,)


def _frame_record(vid="v", labels=(1,), rgb=None, audio=None, drop=None):
    rgb = np.zeros((4, 1024), np.uint8) if rgb is None else rgb
    audio = np.zeros((len(rgb), 128), np.uint8) if audio is None else audio
    lists = {"rgb": rgb, "audio": audio}
    if drop:
        lists.pop(drop)
    return ex.encode_sequence_example({"id": ("bytes", [vid.encode()]), "labels": ("int64", list(labels))}, lists)


@pytest.mark.parametrize(
    "bad, message",
    [
        (b"\xff\xff\xff", "not an Example or SequenceExample"),
        (_frame_record(drop="rgb"), "missing 'rgb' feature list"),
        (_frame_record(rgb=np.zeros((2, 1000), np.uint8), audio=np.zeros((2, 128), np.uint8)), "feature list .rgb.: frame 0: 1000 bytes, expected 1024"),
        (_frame_record(labels=(5, 3862)), "label 3862 outside \\[0, 3862\\)"),
        (_frame_record(labels=(-1,)), "label -1 outside"),
        (_frame_record(rgb=np.zeros((3, 1024), np.uint8), audio=np.zeros((2, 128), np.uint8)), "'rgb' has 3 frames but 'audio' has 2"),
    ],
)
def test_bad_records_name_file_and_record(tmp_path, bad, message):
    p = tmp_path / "bad.tfrecord"
    write_records(p, [_frame_record("ok"), bad, _frame_record("ok2")])
    with pytest.raises(UserError, match=rf"bad.tfrecord: record 1: {message}"):
        list(read_videos(p, level="frame"))
    stats = RecordStats()
    got = [v.id for v in read_videos(p, level="frame", skip_bad=True, stats=stats)]
    assert got == ["ok", "ok2"] and len(stats.skipped) == 1 and stats.records == 2


def test_first_300_frames_kept(tmp_path):
    p = tmp_path / "long.tfrecord"
    rgb = (np.arange(310)[:, None] % 256 + np.zeros((1, 1024))).astype(np.uint8)
    write_records(p, [_frame_record(rgb=rgb)])
    (v,) = read_videos(p)
    assert v.frames == 300 and v.rgb[299, 0] == 299 % 256


def test_sampling_modes():
    rng = np.random.default_rng(0)
    assert sample_frames(10, "all", 4, rng).tolist() == list(range(10))
    r = sample_frames(10, "random", 50, rng)
    assert len(r) == 50 and r.min() >= 0 and r.max() <= 9
    assert sample_frames(10, "random", 5, None).tolist() == sample_frames(10, "random", 5, None).tolist()
    w = sample_frames(100, "window", 8, rng)
    assert np.array_equal(w, np.arange(w[0], w[0] + 8))
    assert sample_frames(100, "window", 8, None).tolist() == list(range(46, 54))
    assert sample_frames(5, "window", 8, rng).tolist() == list(range(5))


def test_videoset_batch():
    videos = list(read_videos(DATA / "official_frame.tfrecord"))
    vs = VideoSet(videos, num_classes=10)
    b = vs.batch([0, 1])
    assert b["rgb"].shape == (2, 3, 1024) and b["mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert b["rgb"][1, 0, 0] == DEQUANT_LUT[128] and b["rgb"][1, 1].sum() == 0
    assert b["labels"][0].nonzero()[0].tolist() == [3, 7]
    assert b["num_frames"].tolist() == [3, 1]


def test_fast_dequantisers_equal_the_table():
    from triptych.video.io.yt8m import dequantize_into, dequantize_tensor

    q = np.arange(256, dtype=np.uint8).reshape(2, 128)
    out = np.empty(q.shape, np.float32)
    dequantize_into(q, out)
    assert np.array_equal(out, DEQUANT_LUT[q])
    assert np.array_equal(dequantize_tensor(q).numpy(), DEQUANT_LUT[q])
    # a read-only record into a batch row (the compiled pass), and strided views (numpy's)
    batch = np.zeros((3, 4, 128), np.float32)
    dequantize_into(np.frombuffer(bytes(range(256)), np.uint8).reshape(2, 128), batch[1, :2])
    assert np.array_equal(batch[1, :2], DEQUANT_LUT[q]) and not batch[0].any() and not batch[1, 2:].any()
    wide = np.zeros((2, 256), np.float32)
    dequantize_into(q[:, ::2], wide[:, ::4])
    assert np.array_equal(wide[:, ::4], DEQUANT_LUT[q[:, ::2]]) and not wide[:, 1::4].any()
    with pytest.raises(ValueError, match="values into"):
        dequantize_into(q, np.empty((2, 127), np.float32))


def test_dequantising_a_read_only_record_warns_nothing():
    """Records are read-only byte views; torch warned at every video read."""
    import warnings

    from triptych.video.io.yt8m import dequantize_tensor

    q = np.frombuffer(bytes(range(256)), np.uint8).reshape(2, 128)
    assert not q.flags.writeable
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = dequantize_tensor(q)
        for v in read_videos(DATA / "official_frame.tfrecord"):
            dequantize_tensor(v.rgb)
    assert np.array_equal(out.numpy(), DEQUANT_LUT[q])
