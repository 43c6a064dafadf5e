import json

import numpy as np
import pytest

from tests.conftest import video_recipe
from triptych.video.synth import SynthSpec, synthesize


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("synth")
    synthesize(d, SynthSpec(videos=48, valid_videos=16, classes=12, min_frames=4, max_frames=8, seed=3))
    return d


def _recipe(tmp_path, d, **model):
    return video_recipe(tmp_path / "r.yaml", d, 4, model=model)


def test_train_eval_predict(run_cli, tmp_path, synth_dir):
    runs = []
    for name, extra in (("mean-moe", {}), ("gated-netvlad", {"clusters": 4, "hidden": 8})):
        out = tmp_path / name
        status, stdout, err = run_cli("video", "train", _recipe(tmp_path, synth_dir, name=name, **extra), "--out", out, "--json")
        assert status == 0, err
        summary = json.loads(stdout)
        assert summary["steps"] == 4 and summary["metric"] == "gap" and (out / "best").is_dir()
        runs.append(out / "best")
    npz = tmp_path / "p.npz"
    status, stdout, err = run_cli("video", "eval", "--checkpoint", runs[0], "--data", synth_dir / "validate0000.tfrecord",
                                  "--save-predictions", npz, "--json")
    assert status == 0, err
    scored = json.loads(stdout)
    assert scored["videos"] == 16 and 0 <= scored["gap"] <= 1
    status, stdout, _ = run_cli("video", "metrics", "--predictions", npz, "--json")
    assert json.loads(stdout)["gap"] == pytest.approx(scored["gap"])
    csv = tmp_path / "sub.csv"
    status, stdout, err = run_cli("video", "predict", "--checkpoint", runs[0], "--checkpoint", runs[1],
                                  "--data", synth_dir / "validate0000.tfrecord", "--out", csv, "--top-k", "5")
    assert status == 0, err
    lines = csv.read_text().splitlines()
    assert lines[0] == "VideoId,LabelConfidencePairs" and len(lines) == 17
    vid, pairs = lines[1].split(",")
    fields = pairs.split()
    assert len(fields) == 10 and all(0 <= int(c) < 12 for c in fields[::2])
    confs = [float(x) for x in fields[1::2]]
    assert confs == sorted(confs, reverse=True)


def test_bad_inputs_exit_2(run_cli, tmp_path, synth_dir):
    status, out, err = run_cli("video", "eval", "--checkpoint", tmp_path / "nope", "--data", synth_dir)
    assert status == 2 and "no such checkpoint" in err
    status, out, err = run_cli("video", "train", _recipe(tmp_path, synth_dir, name="nonsense"), "--out", tmp_path / "x")
    assert status == 2 and "unknown video model" in err and not (tmp_path / "x").exists()
    bad = _recipe(tmp_path, synth_dir, wings=3)
    status, out, err = run_cli("video", "train", bad, "--out", tmp_path / "y")
    assert status == 2 and "wings" in err


def test_video_level_training(tmp_path):
    d = tmp_path / "vl"
    synthesize(d, SynthSpec(videos=32, valid_videos=8, classes=12, level="video", min_frames=3, max_frames=5))
    from triptych.video.config import VideoConfig, VideoDataConfig
    from triptych.video.task import VideoTask

    cfg = VideoConfig(data=VideoDataConfig(train=str(d / "train*"), valid=str(d / "validate*"), level="video",
                                           num_classes=12, batch_size=8), model={"name": "moe"})
    task = VideoTask(cfg)
    batch = task.collate(task.batch_plan(0)[0], "cpu")
    loss, _ = task.loss(task.model, batch)
    assert batch["rgb"].shape == (8, 1024) and np.isfinite(loss.item())
    assert set(task.evaluate(task.model)) == {"gap", "hit_at_one", "perr", "map", "valid_loss"}
