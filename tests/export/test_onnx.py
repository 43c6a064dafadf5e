"""ONNX export of vision and video models: onnxruntime equals PyTorch to 1e-4, and the CLI contract."""

import json

import numpy as np
import pytest
import torch

from triptych.errors import UserError
from triptych.export.onnx import session, trace, video_graph, video_inputs

TOL = 1e-4


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _settle_batch_norm(model, make_input):
    """A few training-mode passes, so batch-norm statistics are not the trivial 0/1."""
    model.train()
    with torch.no_grad():
        for seed in range(3):
            x = make_input(seed)
            model(*x) if isinstance(x, tuple) else model(x)
    return model.eval()


@pytest.mark.parametrize("name", ["lenet5", "alexnet", "zfnet", "vgg11_bn", "googlenet", "resnet18"])
def test_vision_family_matches_pytorch(name, tmp_path):
    from triptych.vision.models import get_model

    torch.manual_seed(0)
    model = get_model(name, num_classes=7, in_channels=1, small_input=True)
    _settle_batch_norm(model, lambda s: torch.randn(8, 1, 16, 16, generator=torch.Generator().manual_seed(s)))
    path = tmp_path / "m.onnx"
    trace(model, (torch.zeros(2, 1, 16, 16),), path, ["images"], ["logits"], {"images": {0: "batch"}, "logits": {0: "batch"}})
    x = torch.randn(5, 1, 16, 16, generator=torch.Generator().manual_seed(9))  # another batch size than traced
    with torch.no_grad():
        ref = model(x).numpy()
    (got,) = session(path).run(None, {"images": x.numpy()})
    assert got.shape == (5, 7)
    np.testing.assert_allclose(got, ref, atol=TOL, rtol=0)
    assert not model.training  # tracing must leave the model as it found it


VIDEO_KINDS = ["logistic", "moe", "mean-logistic", "mean-moe", "max-moe", "dbof", "lstm", "gru", "bilstm-attention",
               "netvlad", "gated-netvlad", "netrvlad", "gated-netrvlad", "netfv", "gated-netfv",
               "soft-dbof", "gated-soft-dbof"]


@pytest.mark.parametrize("name", VIDEO_KINDS)
def test_video_model_matches_pytorch(name, tmp_path):
    """Every registered kind; the reference is the model itself (for lstm/gru, with its packed RNN)."""
    from triptych.export.onnx import FrameLevel, VideoLevel
    from triptych.video.models import get_model, list_models

    assert set(VIDEO_KINDS) == set(list_models())  # a new kind must be added here
    torch.manual_seed(0)
    small = {} if name in ("logistic", "moe", "mean-logistic", "mean-moe", "max-moe") else dict(clusters=4, hidden=8, rnn_size=8)
    model = get_model(name, num_classes=11, **small)
    level = model.cfg.level
    reference = (VideoLevel if level == "video" else FrameLevel)(model)
    _settle_batch_norm(reference, lambda s: tuple(video_inputs(level, 6, 5, seed=s).values()))
    graph = video_graph(model)
    example = video_inputs(level, 2, 3)
    names = list(example)
    axes = {n: {0: "batch"} if level == "video" else {0: "batch", 1: "frames"} for n in names}
    path = tmp_path / "v.onnx"
    trace(graph, tuple(example.values()), path, names, ["probs"], {**axes, "probs": {0: "batch"}})
    check = video_inputs(level, 6, 9, seed=4)  # more videos, more frames, every length from 1 to 6
    check_names = list(check)
    if level == "frame":
        check["mask"][5] = 0  # and an empty video
        check["rgb"][5] = check["audio"][5] = 0
    with torch.no_grad():
        ref = reference(*check.values()).numpy()
    (got,) = session(path).run(None, {k: v.numpy() for k, v in check.items()})
    assert got.shape == (6, 11) and check_names == names
    np.testing.assert_allclose(got, ref, atol=TOL, rtol=0)


def test_rnn_last_state_equals_the_packed_rnn():
    from triptych.export.onnx import RNNLastState
    from triptych.video.pooling import RNNPool

    torch.manual_seed(0)
    for cell in ("lstm", "gru"):
        pool = RNNPool(5, 7, layers=2, cell=cell).eval()
        x = video_inputs("frame", 4, 6)
        rgb, mask = x["rgb"][..., :5], x["mask"]
        with torch.no_grad():
            torch.testing.assert_close(RNNLastState(pool)(rgb, mask), pool(rgb, mask), atol=1e-6, rtol=0)


# ------------------------------------------------------------------ through the CLI, on trained runs

VISION_TINY = ["--set", "model.small_input=true", "--set", "data.limit_train=128", "--set", "train.max_steps=4",
               "--set", "train.eval_every=4", "--set", "train.save_every=4", "--set", "train.warmup_steps=1",
               "--set", "train.log_every=0", "--set", "data.image_size=8", "--set", "train.threads=1"]


@pytest.fixture(scope="module")
def lenet_run(tmp_path_factory):
    from triptych.cli import main

    out = tmp_path_factory.mktemp("runs") / "lenet"
    assert main(["vision", "train", "configs/vision/lenet5-digits.yaml", "--out", str(out), *VISION_TINY]) == 0
    return out


def test_export_vision_run_matches_the_classifier_on_real_digits(lenet_run, run_cli):
    from triptych.vision.predictor import Classifier

    status, out, err = run_cli("export", lenet_run, "--format", "onnx", "--json")
    assert status == 0, err
    manifest = json.loads(out)
    assert manifest["domain"] == "vision" and manifest["family"] == "lenet5" and manifest["max_abs_diff"] < TOL
    assert manifest["classes"] == [str(d) for d in range(10)]
    onnx_dir = lenet_run / "onnx"
    assert json.loads((onnx_dir / "export.json").read_text())["image_size"] == 8
    clf = Classifier(lenet_run / "best")
    images = clf.dataset("digits:test")
    x, _ = clf.prepare(images, list(range(40)), False, "cpu")
    (logits,) = session(onnx_dir / "model.onnx").run(None, {"images": x.numpy()})
    np.testing.assert_allclose(torch.softmax(torch.from_numpy(logits), 1).numpy(), clf.probabilities(x).numpy(), atol=TOL)
    # a second export replaces the first whole; the human-readable form names the files
    status, out, err = run_cli("export", lenet_run)
    assert status == 0 and "model.onnx" in out and "max |difference|" in out


def test_export_bad_input_is_one_line_and_writes_nothing(lenet_run, run_cli, tmp_path):
    cases = [
        (["export", tmp_path / "nowhere"], "no such run directory"),
        (["export", tmp_path], "not a run directory or checkpoint"),
        (["export", lenet_run, "--format", "tflite", "--out", tmp_path / "x"], "--format tflite: not supported"),
    ]
    for argv, message in cases:
        status, out, err = run_cli(*argv)
        assert status == 2 and out == "" and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "x").exists()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    status, out, err = run_cli("export", lenet_run, "--out", foreign)
    assert status == 2 and "is not a triptych ONNX export" in err
    assert sorted(p.name for p in foreign.iterdir()) == ["keep.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".foreign")]  # no temporary left behind


def test_export_video_run_matches_predict(run_cli, tmp_path):
    from triptych.video.predictor import VideoPredictor
    from triptych.video.synth import SynthSpec, synthesize
    from triptych.video.task import load_set

    data = tmp_path / "synth"
    synthesize(data, SynthSpec(videos=24, valid_videos=8, classes=9, min_frames=2, max_frames=6, seed=2))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"""seed: 1
data: {{train: {data}/train*.tfrecord, valid: {data}/validate*.tfrecord, num_classes: 9, batch_size: 8}}
model: {{name: gated-netvlad, clusters: 4, hidden: 8}}
train: {{max_steps: 3, eval_every: 3, save_every: 3, warmup_steps: 1}}
""")
    run = tmp_path / "run"
    status, _, err = run_cli("video", "train", recipe, "--out", run)
    assert status == 0, err
    status, out, err = run_cli("export", run, "--out", tmp_path / "onnx", "--json")
    assert status == 0, err
    manifest = json.loads(out)
    assert manifest["level"] == "frame" and list(manifest["inputs"]) == ["rgb", "audio", "mask"]
    ckpt = VideoPredictor(run / "best")
    videos = load_set(str(data / "validate0000.tfrecord"), ckpt.cfg)
    probs, _ = ckpt.predict(videos)
    batch = videos.batch(list(range(len(videos))))  # the whole set, padded to its longest video
    (got,) = session(tmp_path / "onnx" / "model.onnx").run(None, {k: batch[k] for k in ("rgb", "audio", "mask")})
    np.testing.assert_allclose(got, probs, atol=TOL)
