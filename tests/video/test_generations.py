"""Every generation of the official files: 2017 (`video_id`, 4,716 classes),
2018 (`id`, 3,862), 2019 segment-rated. Records are built by the `protobuf`
package (TensorFlow's example.proto descriptors) and framed by struct +
google-crc32c, independently of triptych's writer."""

import json
import struct
from pathlib import Path

import google_crc32c
import numpy as np
import pytest

from triptych.errors import UserError
from triptych.video.io.protos import messages
from triptych.video.io.yt8m import read_videos

DATA = Path(__file__).parent / "data"


def _framed(payload: bytes) -> bytes:
    def masked(b):
        c = google_crc32c.value(b)
        return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF

    n = struct.pack("<Q", len(payload))
    return n + struct.pack("<I", masked(n)) + payload + struct.pack("<I", masked(payload))


def official(path: Path, records: list[dict]) -> Path:
    """Frame-level records: {key: id, labels, frames, segments: [(start, label, score)], ...}."""
    M = messages()
    out = b""
    for r in records:
        se = M["SequenceExample"]()
        se.context.feature[r.get("key", "id")].bytes_list.value.append(r["id"].encode())
        se.context.feature["labels"].int64_list.value.extend(r["labels"])
        segs = r.get("segments")
        if segs is not None:
            fields = {"segment_start_times": [s for s, _, _ in segs], "segment_labels": [c for _, c, _ in segs],
                      "segment_scores": [x for _, _, x in segs]}
            fields.update(r.get("override", {}))
            for name, values in fields.items():
                f = se.context.feature[name]
                (f.float_list if name == "segment_scores" else f.int64_list).value.extend(values)
        for t in range(r.get("frames", 10)):
            se.feature_lists.feature_list["rgb"].feature.add().bytes_list.value.append(bytes([t % 256]) * 1024)
            se.feature_lists.feature_list["audio"].feature.add().bytes_list.value.append(bytes([7]) * 128)
        out += _framed(se.SerializeToString())
    path.write_bytes(out)
    return path


def test_2017_records_key_video_id_and_4716_classes(tmp_path):
    f = official(tmp_path / "a.tfrecord", [{"key": "video_id", "id": "-0Ab", "labels": [4700, 2]}])
    (v,) = read_videos(f)
    assert (v.id, v.generation, v.labels.tolist(), v.frames) == ("-0Ab", "2017", [4700, 2], 10)
    with pytest.raises(UserError, match="label 4700 outside"):  # as 2018 data it is out of range
        list(read_videos(f, generation="2018"))


def test_2018_fixture_written_by_tensorflow_reads_as_before(tmp_path):
    a, b = read_videos(DATA / "official_frame.tfrecord")
    assert (a.generation, a.id, b.id, a.segments) == ("2018", "vid1", "été-視頻", None)
    f = official(tmp_path / "a.tfrecord", [{"id": "x", "labels": [3900]}])
    with pytest.raises(UserError, match="a.tfrecord: record 0: label 3900 outside .0, 3862."):
        list(read_videos(f))


def test_2019_segments_in_record_order(tmp_path, run_cli):
    segs = [(10, 5, 1.0), (0, 5, 0.0), (295, 3000, 1.0)]
    f = official(tmp_path / "s.tfrecord", [{"id": "ab", "labels": [5], "frames": 320, "segments": segs}])
    (v,) = read_videos(f)
    assert v.generation == "2019-segments"
    assert v.segments.start.tolist() == [10, 0, 295] and v.segments.label.tolist() == [5, 5, 3000]
    assert v.segments.score.tolist() == [1.0, 0.0, 1.0]
    assert v.frames == 300  # the first 300 kept: the segment at 295 fits
    status, out, err = run_cli("video", "inspect", f, "--json")
    info = json.loads(out)
    assert status == 0 and info["generation"] == "2019-segments"
    assert info["videos"][0]["segments"] == [{"start": s, "label": c, "score": x} for s, c, x in segs]
    assert info["videos"][0]["id"] == "ab"


@pytest.mark.parametrize("override, why", [
    ({"segment_scores": [1.0]}, "segment fields of unequal lengths"),
    ({"segment_start_times": [0, 40]}, "start time 40 is past the video's end (10 frames)"),
    ({"segment_labels": [1, 3862]}, "label 3862 outside [0, 3862)"),
    ({"segment_scores": [1.0, 0.5]}, "score 0.5 is not 0 or 1"),
])
def test_bad_segments_are_one_line_naming_file_and_record(tmp_path, run_cli, override, why):
    good = {"id": "ok", "labels": [1], "segments": [(0, 1, 1.0), (5, 1, 0.0)]}
    bad = dict(good, id="bad", override=override)
    f = official(tmp_path / "s.tfrecord", [good, bad])
    status, out, err = run_cli("video", "inspect", f, "--json")
    assert status == 2 and out == "" and err.count("\n") == 1
    assert f"s.tfrecord: record 1: " in err and why in err, err
    status, out, err = run_cli("video", "inspect", f, "--json", "--skip-bad-records")
    assert status == 0 and json.loads(out)["records"] == 1 and json.loads(out)["skipped"] == 1


def test_partial_segment_fields_and_both_ids_refused(tmp_path):
    f = official(tmp_path / "p.tfrecord", [{"id": "x", "labels": [1], "segments": [(0, 1, 1.0)]}])
    M = messages()
    se = M["SequenceExample"]()
    se.ParseFromString(f.read_bytes()[12:-4])
    del se.context.feature["segment_scores"]
    f.write_bytes(_framed(se.SerializeToString()))
    with pytest.raises(UserError, match="record 0: has segment_labels, segment_start_times but not segment_scores"):
        list(read_videos(f))
    both = official(tmp_path / "b.tfrecord", [{"id": "x", "labels": [1]}])
    se = M["SequenceExample"]()
    se.ParseFromString(both.read_bytes()[12:-4])
    se.context.feature["video_id"].bytes_list.value.append(b"y")
    both.write_bytes(_framed(se.SerializeToString()))
    with pytest.raises(UserError, match="both 'id' .* and 'video_id'"):
        list(read_videos(both))


def test_mixed_generations_name_two_files(tmp_path, run_cli):
    official(tmp_path / "a.tfrecord", [{"id": "x", "labels": [1]}])
    official(tmp_path / "b.tfrecord", [{"key": "video_id", "id": "y", "labels": [1]}])
    status, out, err = run_cli("video", "inspect", str(tmp_path / "*.tfrecord"))
    assert status == 2 and err.count("\n") == 1
    assert "a.tfrecord (record 0) is a 2018 record" in err and "b.tfrecord (record 0) is a 2017 record" in err


@pytest.mark.parametrize("generation, key, classes", [("2017", "video_id", 4716), ("2018", "id", 3862),
                                                      ("2019-segments", "id", 3862)])
def test_synth_writes_each_generation(tmp_path, run_cli, generation, key, classes):
    status, out, err = run_cli("video", "synth", "--out", tmp_path, "--generation", generation, "--videos", "4",
                               "--valid-videos", "3", "--min-frames", "12", "--max-frames", "20", "--json")
    assert status == 0, err
    assert json.loads(out)["spec"]["classes"] == classes
    videos = list(read_videos(tmp_path / "validate0000.tfrecord"))
    assert {v.generation for v in videos} == {generation}
    status, out, _ = run_cli("video", "inspect", tmp_path / "validate0000.tfrecord", "--json")
    info = json.loads(out)
    assert info["generation"] == generation
    if generation == "2019-segments":
        for v, got in zip(videos, info["videos"]):
            assert got["segments"] and all(s["start"] % 5 == 0 and s["start"] < v.frames for s in got["segments"])
            assert {s["label"] for s in got["segments"]} <= set(got["labels"])
            assert any(s["score"] == 1.0 for s in got["segments"])
    else:
        assert all("segments" not in v for v in info["videos"])


def test_num_classes_defaults_from_the_generation(tmp_path):
    from triptych.video.config import VideoConfig, VideoDataConfig
    from triptych.video.synth import SynthSpec, synthesize
    from triptych.video.task import VideoTask

    synthesize(tmp_path / "old", SynthSpec(videos=8, valid_videos=2, level="video", generation="2017"))
    synthesize(tmp_path / "new", SynthSpec(videos=8, valid_videos=2, level="video", generation="2018"))
    cfg = VideoConfig(data=VideoDataConfig(train=str(tmp_path / "old/train*"), valid=str(tmp_path / "old/valid*"),
                                           level="video", batch_size=4), model={"name": "logistic"})
    task = VideoTask(cfg)
    assert cfg.data.num_classes == 4716 and task.model_cfg.num_classes == 4716
    cfg = VideoConfig(data=VideoDataConfig(train=str(tmp_path / "old/train*"), valid=str(tmp_path / "new/valid*"),
                                           level="video", batch_size=4), model={"name": "logistic"})
    with pytest.raises(UserError, match="2018 records .3862 classes. cannot validate"):
        VideoTask(cfg)
    cfg = VideoConfig(data=VideoDataConfig(train=str(tmp_path / "new/train*"), level="video", batch_size=4,
                                           generation="2017"), model={"name": "logistic"})
    with pytest.raises(UserError, match="a 2018 record, but the generation asked for is 2017"):
        VideoTask(cfg)
