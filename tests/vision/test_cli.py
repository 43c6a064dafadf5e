"""The `triptych vision` verbs end to end on tiny runs, and their bad-input contract."""

import json
import shutil

import pytest
import yaml

from triptych.cli import main
from .test_data import make_folder, write_png

TINY = [
    "--set", "model.small_input=true", "--set", "model.activation=relu", "--set", "data.limit_train=256",
    "--set", "train.max_steps=12", "--set", "train.eval_every=6", "--set", "train.save_every=6",
    "--set", "train.warmup_steps=2", "--set", "train.log_every=0", "--set", "data.image_size=8",
    "--set", "train.threads=1",
]


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "lenet"
    assert main(["vision", "train", "configs/vision/lenet5-digits.yaml", "--out", str(out), *TINY]) == 0
    return out


def test_train_writes_a_run_and_eval_reads_it(digits_run, capsys, tmp_path):
    for name in ("config.yaml", "metrics.jsonl", "best/model.safetensors", "best/classes.json"):
        assert (digits_run / name).is_file()
    cfg = yaml.safe_load((digits_run / "config.yaml").read_text())
    assert cfg["data"]["mean"] and cfg["data"]["std"]  # measured, saved for eval and predict
    plot = tmp_path / "cm.png"
    status, out, _ = run(capsys, "vision", "eval", "--checkpoint", str(digits_run / "best"), "--plot", str(plot), "--json")
    assert status == 0
    result = json.loads(out)
    assert result["images"] == 359 and 0 <= result["accuracy"] <= 1
    assert sum(map(sum, result["confusion"])) == 359
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_resume_continues_the_run(digits_run, capsys, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(digits_run, copy)
    status, out, err = run(capsys, "vision", "train", "configs/vision/lenet5-digits.yaml", "--out", str(copy),
                           "--resume", "--set", "train.max_steps=14", "--json")
    assert status == 0, err
    assert json.loads(out)["steps"] == 14
    status, _, err = run(capsys, "vision", "train", "configs/vision/lenet5-digits.yaml", "--out", str(copy))
    assert status == 2 and "already holds a run" in err


def test_resume_with_a_weight_average_keeps_the_json_clean(digits_run, capsys, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(digits_run, copy)
    status, out, err = run(capsys, "vision", "train", "configs/vision/lenet5-digits.yaml", "--out", str(copy),
                           "--resume", "--set", "train.max_steps=18", "--set", "train.ema_decay=0.99", "--json")
    assert status == 0, err
    assert "holds no weight average; train.ema_decay starts one at step 12" in err
    assert json.loads(out)["steps"] == 18


def test_predict_top5(digits_run, capsys, tmp_path):
    img = write_png(tmp_path / "three.png", size=(8, 8), mode="L")
    status, out, _ = run(capsys, "vision", "predict", "--checkpoint", str(digits_run / "best"), str(img), "--json")
    assert status == 0
    pred = json.loads(out)["predictions"][0]
    probs = [t["prob"] for t in pred["top"]]
    assert len(probs) == 5 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    assert {t["label"] for t in pred["top"]} <= set("0123456789")


def test_bad_input_is_one_line_exit_2(digits_run, capsys, tmp_path):
    ckpt = str(digits_run / "best")
    fake = tmp_path / "fake.png"
    fake.write_text("not a picture")
    rgb = write_png(tmp_path / "rgb.png")
    cases = [
        (["vision", "predict", "--checkpoint", ckpt, str(fake)], "fake.png: not an image"),
        (["vision", "predict", "--checkpoint", ckpt, str(rgb)], "rgb.png: colour image"),
        (["vision", "predict", "--checkpoint", str(tmp_path / "none"), str(rgb)], "no such checkpoint"),
        (["vision", "eval", "--checkpoint", ckpt, "--plot", str(tmp_path / "cm.txt")], "unsupported picture format"),
        (["vision", "eval", "--checkpoint", ckpt, "--data", str(tmp_path / "nowhere")], "no such directory"),
        (["vision", "train", str(tmp_path / "nope.yaml")], "config file does not exist"),
        (["vision", "train", "configs/vision/lenet5-digits.yaml", "--set", "model.depth=3",
          "--out", str(tmp_path / "r1")], "does not take"),
        (["vision", "train", "configs/vision/lenet5-digits.yaml", "--set", "data.colour=1",
          "--out", str(tmp_path / "r2")], "unknown config key 'data.colour'"),
        (["vision", "models", "inception*"], "no vision model matches"),
        (["vision", "params", "--filter", "0"], "--filter 0"),
    ]
    for argv, message in cases:
        status, out, err = run(capsys, *argv)
        assert status == 2 and out == "", argv
        assert message in err and err.count("\n") == 1 and "Traceback" not in err, (argv, err)
    assert not (tmp_path / "cm.txt").exists() and not (tmp_path / "r1").exists()


def test_checkpoint_of_another_architecture_or_domain(digits_run, capsys, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(digits_run / "best", other)
    cfg = yaml.safe_load((other / "config.yaml").read_text())
    cfg["model"] = {"name": "resnet18", "small_input": True}
    (other / "config.yaml").write_text(yaml.safe_dump(cfg))
    status, _, err = run(capsys, "vision", "eval", "--checkpoint", str(other))
    assert status == 2 and "weights do not fit this model" in err and err.count("\n") == 1
    meta = json.loads((other / "meta.json").read_text())
    meta["domain"] = "text"
    (other / "meta.json").write_text(json.dumps(meta))
    status, _, err = run(capsys, "vision", "eval", "--checkpoint", str(other))
    assert status == 2 and "a text checkpoint, expected vision" in err


def test_folder_training_and_grey_into_rgb(capsys, tmp_path):
    root = make_folder(tmp_path / "pics", per_class=4)
    (tmp_path / "empty" / "a").mkdir(parents=True)
    status, _, err = run(capsys, "vision", "train", "configs/vision/lenet5-digits.yaml", "--out", str(tmp_path / "e"),
                         "--set", "data.name=folder", "--set", f"data.train={tmp_path / 'empty'}")
    assert status == 2 and "empty/a: empty class folder" in err and not (tmp_path / "e").exists()
    run_dir = tmp_path / "run"
    status, out, err = run(capsys, "vision", "train", "configs/vision/lenet5-digits.yaml", "--out", str(run_dir),
                           *TINY, "--set", "data.name=folder", "--set", f"data.train={root}",
                           "--set", "data.valid_fraction=0.25", "--set", "data.batch_size=4", "--json")
    assert status == 0, err
    grey = write_png(tmp_path / "grey.png", mode="L")
    status, _, err = run(capsys, "vision", "predict", "--checkpoint", str(run_dir / "best"), str(grey))
    assert status == 2 and "grey.png: grayscale image (mode L) but the model takes RGB" in err
    status, out, _ = run(capsys, "vision", "predict", "--checkpoint", str(run_dir / "best"), str(grey), "--convert", "--json")
    assert status == 0 and [t["label"] for t in json.loads(out)["predictions"][0]["top"]] in (["cat", "dog"], ["dog", "cat"])


def test_models_and_params_json(capsys):
    status, out, _ = run(capsys, "vision", "models", "--json")
    rows = json.loads(out)
    assert status == 0 and {"name": "vgg16", "params": 138_357_544}.items() <= rows[[r["name"] for r in rows].index("vgg16")].items()
    status, out, _ = run(capsys, "vision", "params", "--json")
    c = json.loads(out)
    assert (c["fully_connected"], c["locally_connected"], c["convolutional"]) == (10**12, 10**8, 10**4)


def test_demo_part(tmp_path):
    from triptych.vision.demo import run as demo_run

    result = demo_run(tmp_path / "vision", minutes=0.02)
    assert result["test_images"] == 359 and 0 <= result["cnn"]["test_accuracy"] <= 1
    assert result["baseline"]["test_accuracy"] > 0.9  # logistic regression on raw pixels is a strong baseline
    assert (tmp_path / "vision" / "confusion.png").is_file() and (tmp_path / "vision" / "best").is_dir()


def test_features_for_video_frames(digits_run):
    import numpy as np

    from triptych.errors import UserError
    from triptych.vision.data import digits_arrays
    from triptych.vision.predictor import Classifier

    clf = Classifier(digits_run / "best")
    images, _ = digits_arrays()
    frames = (images[:6] * 255).astype(np.uint8)  # (6, 8, 8) uint8, as a video's frames
    feats = clf.features(clf.prepare_array(frames))
    assert feats.shape == (6, clf.model.embed_dim)
    same = clf.features(clf.prepare_array(images[:6]))  # floats in [0, 1]: the same frames
    assert np.allclose(feats.numpy(), same.numpy(), atol=0.05)
    with pytest.raises(UserError, match="3-channel frames but the model takes 1"):
        clf.prepare_array(np.zeros((2, 8, 8, 3), dtype=np.uint8), source="v.npy")


def test_inference_weights_take_the_measured_layout_and_give_the_same_logits(digits_run):
    import torch

    from triptych.engine.checkpoint import load_weights
    from triptych.hardware import conv_memory_format
    from triptych.vision.predictor import Classifier

    clf = Classifier(digits_run / "best")
    expected = conv_memory_format("auto", "cpu")
    conv = clf.model.trunk[3].weight  # C3, 6 -> 16 channels (C1's one input channel fits either layout)
    assert conv.is_contiguous(memory_format=torch.channels_last) == (expected == "channels_last") != conv.is_contiguous()
    plain = Classifier(digits_run / "best").model.to(memory_format=torch.contiguous_format)
    load_weights(digits_run / "best", plain)
    assert plain.trunk[3].weight.is_contiguous()
    x = torch.randn(16, 1, 8, 8)
    assert torch.allclose(clf.model(x), plain(x), atol=1e-5)
    assert torch.allclose(clf.model(x.contiguous(memory_format=torch.channels_last)), plain(x), atol=1e-5)
