"""CNN frame features for video: quantisation, PCA, digit videos, extract-features end to end."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from triptych.errors import UserError
from triptych.video.io import example as pb
from triptych.video.digits import DigitSpec, make_digit_videos
from triptych.video.features import PCA, extract_features, quantize_frames
from triptych.video.io.yt8m import DEQUANT_LUT, ZERO_LEVEL, VideoSet, dequantize, quantize, read_videos

STEP = 4.0 / 255.0


def test_quantize_is_the_exact_inverse_of_the_official_dequantisation():
    levels = np.arange(256, dtype=np.uint8)
    assert np.array_equal(quantize(dequantize(levels)), levels)
    x = np.random.default_rng(0).uniform(-2 + 4 / 512, 2 + 4 / 512, 100_000)
    err = np.abs(dequantize(quantize(x)).astype(np.float64) - x)
    assert err.max() <= STEP / 2 + 1e-6  # nearest level: half a step
    assert quantize(np.array([-7.0, 9.0])).tolist() == [0, 255]  # clipped
    assert abs(float(DEQUANT_LUT[ZERO_LEVEL])) < 1e-4


def test_pca_whitens_and_round_trips_through_its_file(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2000, 6)) @ rng.standard_normal((6, 6)) * 3 + 5
    pca = PCA.fit(x, 4, whiten=True)
    y = pca.transform(x)
    assert y.shape == (2000, 4)
    assert np.allclose(np.cov(y, rowvar=False), np.eye(4), atol=1e-6)  # decorrelated, unit variance
    plain = PCA.fit(x, 4, whiten=False).transform(x)
    var = plain.var(0, ddof=1)
    assert var[0] == pytest.approx(1.0) and np.all(np.diff(var) <= 1e-9)  # relative scales kept
    pca.save(tmp_path / "pca.npz")
    again = PCA.load(tmp_path / "pca.npz")
    assert np.array_equal(again.transform(x), y) and again.whiten
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="bad.npz: not a readable .npz"):
        PCA.load(tmp_path / "bad.npz")


def test_quantized_frames_are_the_official_width():
    q = quantize_frames(np.array([[0.0, 1.0, -5.0]]))
    assert q.shape == (1, 1024) and q[0, :3].tolist() == [ZERO_LEVEL, quantize(np.array([1.0]))[0], 0]
    assert (q[0, 3:] == ZERO_LEVEL).all()


def test_digit_videos_follow_the_process_and_the_seed(tmp_path):
    spec = DigitSpec(videos=12, valid_videos=3, min_frames=9, max_frames=12, seed=4)
    make_digit_videos(tmp_path / "a", spec)
    make_digit_videos(tmp_path / "b", spec)
    labels = json.loads((tmp_path / "a" / "train" / "labels.json").read_text())
    assert len(labels) == 12 and len(json.loads((tmp_path / "a" / "validate" / "labels.json").read_text())) == 3
    for vid, labs in labels.items():
        a = np.load(tmp_path / "a" / "train" / f"{vid}.npy")
        assert np.array_equal(a, np.load(tmp_path / "b" / "train" / f"{vid}.npy"))  # deterministic
        assert a.dtype == np.uint8 and a.shape[1:] == (8, 8) and 9 <= len(a) <= 12
        assert 1 <= len(labs) <= 3 and labs == sorted(set(labs)) and all(0 <= c <= 9 for c in labs)
        inked = (a.astype(int) > 128).sum((1, 2)) > 3  # frames showing a digit
        assert inked.sum() >= len(labs)  # every digit is on screen for some frames
    other = make_digit_videos(tmp_path / "c", dataclasses.replace(spec, seed=5))
    assert other["spec"]["seed"] == 5
    assert not np.array_equal(np.load(tmp_path / "a/train/t00000.npy"), np.load(tmp_path / "c/train/t00000.npy"))


def test_digit_video_shows_the_labelled_digits(tmp_path):
    """One digit, no noise, no motion: every inked frame is an image of the labelled class."""
    from triptych.vision.data import digits_arrays

    images, classes = digits_arrays()
    make_digit_videos(tmp_path, DigitSpec(videos=6, valid_videos=0, max_digits=1, shift=0, noise=0.0,
                                          min_frames=4, max_frames=6))
    labels = json.loads((tmp_path / "train" / "labels.json").read_text())
    pixels = np.rint(images * 255).astype(np.uint8)
    for vid, (c,) in labels.items():
        frames = np.load(tmp_path / "train" / f"{vid}.npy")
        shown = [f for f in frames if f.any()]
        assert shown and all(np.array_equal(f, shown[0]) for f in shown)
        match = np.flatnonzero((pixels == shown[0]).all((1, 2)))
        assert len(match) and set(classes[match]) == {c}


@pytest.fixture(scope="module")
def lenet(tmp_path_factory):
    """An untrained LeNet-5 checkpoint (84-dim penultimate features), saved as `vision train` would."""
    from triptych.engine.checkpoint import save_checkpoint
    from triptych.vision.config import VisionConfig
    from triptych.vision.task import build_classifier

    cfg = VisionConfig(model={"name": "lenet5"})
    cfg.data.image_size, cfg.data.mean, cfg.data.std = 32, [0.3], [0.4]
    torch.manual_seed(0)
    model = build_classifier(cfg, 10, 1)
    out = tmp_path_factory.mktemp("vision") / "lenet" / "best"
    save_checkpoint(out, model, domain="vision", config=dataclasses.asdict(cfg),
                    save_artifacts=lambda d: (d / "classes.json").write_text(json.dumps([str(i) for i in range(10)])))
    return out


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    make_digit_videos(root, DigitSpec(videos=5, valid_videos=2, min_frames=9, max_frames=12, seed=1))
    return root


def test_extract_features_end_to_end_through_the_cli(run_cli, lenet, frames, tmp_path):
    from triptych.vision.predictor import Classifier

    out = tmp_path / "feats"
    status, stdout, err = run_cli("video", "extract-features", "--checkpoint", lenet.parent, "--frames",
                                  frames / "train", "--out", out, "--whiten", "--dims", 16, "--json")
    assert status == 0, err
    s = json.loads(stdout)
    assert s["files"] == ["train0000.tfrecord"] and s["feature_dim"] == 84 and s["dims"] == 16 and s["pca_fitted"]
    labels = json.loads((frames / "train" / "labels.json").read_text())
    videos = list(read_videos(out / "train0000.tfrecord", num_classes=10))  # the existing reader
    assert [v.id for v in videos] == sorted(labels) and s["frames"] == sum(v.frames for v in videos)
    clf, pca = Classifier(lenet), PCA.load(out / "pca.npz")
    for v in videos:
        assert v.labels.tolist() == labels[v.id]
        x = clf.features(clf.prepare_array(np.load(frames / "train" / f"{v.id}.npy")))
        assert np.array_equal(v.rgb, quantize_frames(pca.transform(x.numpy())))
        assert (v.audio == ZERO_LEVEL).all() and v.audio.shape == (v.frames, 128)
    # The official layout, read with the protobuf-level parser: context id/labels, lists rgb/audio.
    from triptych.video.io.tfrecord import iter_records

    _, payload = next(iter(iter_records(out / "train0000.tfrecord")))
    context, lists = pb.parse_sequence_example(payload)
    assert set(context) == {"id", "labels"} and set(lists) == {"rgb", "audio"}
    assert lists["rgb"].fixed_bytes(1024).shape[1] == 1024 and lists["audio"].fixed_bytes(128).shape[1] == 128

    # The saved PCA reused on new videos (no audio list this time): the same projection, no new pca.npz.
    again = tmp_path / "again"
    status, stdout, err = run_cli("video", "extract-features", "--checkpoint", lenet, "--frames", frames / "train",
                                  "--out", again, "--pca", out / "pca.npz", "--audio", "none", "--name", "x", "--json")
    assert status == 0, err
    assert not (again / "pca.npz").exists() and not json.loads(stdout)["pca_fitted"]
    reread = list(read_videos(again / "x0000.tfrecord", num_classes=10))
    assert all(np.array_equal(a.rgb, b.rgb) for a, b in zip(videos, reread))
    _, payload = next(iter(iter_records(again / "x0000.tfrecord")))
    assert set(pb.parse_sequence_example(payload)[1]) == {"rgb"}
    batch = VideoSet(reread, 10).batch([0, 1])  # silent audio, ready for the models
    assert np.abs(batch["audio"]).max() < 1e-4
    from triptych.video.models import get_model

    model = get_model("gated-netvlad", num_classes=10, clusters=4, hidden=16).eval()
    probs = model({k: torch.from_numpy(v) for k, v in batch.items()})["probs"]
    assert probs.shape == (2, 10) and torch.isfinite(probs).all()


def test_png_frame_folders_equal_npy_arrays(lenet, frames, tmp_path):
    from PIL import Image

    src = tmp_path / "png"
    (src / "v1").mkdir(parents=True)
    arr = np.load(frames / "train" / "t00000.npy")
    for t, f in enumerate(arr):
        Image.fromarray(f, mode="L").save(src / "v1" / f"{t:04d}.png")
    np.save(src / "v2.npy", arr)
    s = extract_features(lenet, src, tmp_path / "o", dims=8, shards=2, progress=False)
    assert s["files"] == ["png0000.tfrecord", "png0001.tfrecord"] and s["frames"] == 2 * len(arr)
    (a,), (b,) = (list(read_videos(tmp_path / "o" / f, num_classes=10)) for f in s["files"])
    assert (a.id, b.id) == ("v1", "v2") and np.array_equal(a.rgb, b.rgb)


def test_bad_input_is_one_line_and_writes_nothing(run_cli, lenet, frames, tmp_path):
    def fails(*args, match):
        out = tmp_path / "out"
        status, _, err = run_cli("video", "extract-features", "--checkpoint", lenet, "--out", out, *args)
        assert status == 2 and err.count("\n") == 1 and match in err, err
        assert not out.exists() or not [p for p in out.iterdir()]

    empty = tmp_path / "empty"
    empty.mkdir()
    fails("--frames", empty, match="no videos")
    (empty / "v1").mkdir()
    fails("--frames", empty, match="v1: no frame images")
    (empty / "v1" / "0000.png").write_bytes(b"this is not a png")
    fails("--frames", empty, match="0000.png: not an image")
    bad_pca = tmp_path / "pca.npz"
    PCA.fit(np.random.default_rng(0).standard_normal((50, 7)), 3, False).save(bad_pca)
    fails("--frames", frames / "train", "--pca", bad_pca, match="fitted on 7-dim features, but")
    fails("--frames", frames / "train", "--dims", 100, match="gives only 84-dim features")
    status, _, err = run_cli("video", "extract-features", "--checkpoint", frames, "--frames", frames / "train",
                             "--out", tmp_path / "o2")
    assert status == 2 and "not a triptych checkpoint" in err


def test_digits_cli_png_frames_and_bad_options(run_cli, tmp_path):
    status, out, err = run_cli("video", "digits", "--out", tmp_path / "d", "--videos", 2, "--valid-videos", 1,
                               "--min-frames", 9, "--max-frames", 10, "--format", "png", "--json")
    assert status == 0, err
    assert json.loads(out)["splits"]["validate"] == {"videos": 1, "digits_from": "digits:test"}
    pngs = sorted((tmp_path / "d" / "train" / "t00000").iterdir())
    assert 9 <= len(pngs) <= 10 and pngs[0].name == "0000.png" and pngs[0].read_bytes()[:4] == b"\x89PNG"
    status, _, err = run_cli("video", "digits", "--out", tmp_path / "e", "--min-frames", 4)
    assert status == 2 and "min_frames must be >= max_digits x min_show" in err and err.count("\n") == 1
    assert not (tmp_path / "e").exists()
