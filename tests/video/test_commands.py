import json
from pathlib import Path

import numpy as np

DATA = Path(__file__).parent / "data"


def test_synth_and_inspect_json(run_cli, tmp_path):
    status, out, err = run_cli("video", "synth", "--out", tmp_path, "--videos", "6", "--valid-videos", "2",
                               "--classes", "40", "--min-frames", "5", "--max-frames", "9", "--json")
    assert status == 0, err
    summary = json.loads(out)
    assert summary["files"]["train"] == ["train0000.tfrecord"]
    status, out, err = run_cli("video", "inspect", tmp_path / "train0000.tfrecord", "--classes", "40", "--json", "--limit", "4")
    assert status == 0, err
    info = json.loads(out)
    assert info["records"] == 6 and info["level"] == "frame" and len(info["videos"]) == 4
    assert info["features"] == {"rgb": 1024, "audio": 128}
    assert all(5 <= v["frames"] <= 9 and v["labels"] for v in info["videos"])


def test_inspect_official_fixture(run_cli):
    status, out, _ = run_cli("video", "inspect", DATA / "official_frame.tfrecord", "--json")
    info = json.loads(out)
    v0, v1 = info["videos"]
    assert v1["id"] == "été-視頻" and v1["frames"] == 1
    lut = np.arange(256, dtype=np.float32) * np.float32(4 / 255) + np.float32(4 / 512 - 2)
    assert abs(v1["rgb_mean"] - float(lut[128])) < 1e-6 and abs(v1["audio_mean"] - float(lut[0])) < 1e-6
    status, out, _ = run_cli("video", "inspect", DATA / "official_video.tfrecord", "--json")
    info = json.loads(out)
    assert info["level"] == "video" and info["features"] == {"mean_rgb": 1024, "mean_audio": 128}
    assert info["videos"][0]["frames"] == 0


def test_inspect_bad_file_exit_2(run_cli, tmp_path):
    bad = tmp_path / "bad.tfrecord"
    data = bytearray((DATA / "official_frame.tfrecord").read_bytes())
    data[-10] ^= 0xFF
    bad.write_bytes(bytes(data))
    status, out, err = run_cli("video", "inspect", bad, "--json")
    assert status == 2 and out == "" and "bad.tfrecord: record 1: data CRC mismatch" in err
    assert err.count("\n") == 1
    status, out, err = run_cli("video", "inspect", bad, "--json", "--skip-bad-records")
    assert status == 0 and json.loads(out)["skipped"] == 1 and json.loads(out)["records"] == 1
    assert "skipped 1 bad records" in err


def test_metrics_command(run_cli, tmp_path):
    rng = np.random.default_rng(0)
    p = tmp_path / "p.npz"
    np.savez(p, predictions=rng.random((20, 10)), labels=(rng.random((20, 10)) < 0.2).astype(np.int8))
    status, out, err = run_cli("video", "metrics", "--predictions", p, "--json")
    assert status == 0, err
    m = json.loads(out)
    assert set(m) == {"gap", "hit_at_one", "perr", "map"} and all(0 <= v <= 1 for v in m.values())
    np.savez(p, predictions=rng.random((20, 10)), labels=rng.random((20, 10)))
    status, out, err = run_cli("video", "metrics", "--predictions", p)
    assert status == 2 and "labels must be 0 or 1" in err
