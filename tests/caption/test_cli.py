"""Captioning through the CLI: captions files in both formats, every bad input (one line, exit 2), train/eval/predict."""

import json

import pytest
import torch
from PIL import Image

from tests.conftest import write_jsonl
from triptych.caption.data import CaptionSet
from triptych.caption.scenes import write_digit_scenes


def _img(path, size=(12, 10), mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, 90 if mode == "L" else (10, 200, 30)).save(path)
    return path


def test_reads_json_list_and_jsonl_with_several_captions(tmp_path):
    _img(tmp_path / "pics" / "a.png")
    _img(tmp_path / "pics" / "b.jpg", mode="RGB")
    recs = [{"image": "pics/a.png", "caption": "one"}, {"image": "pics/b.jpg", "caption": "two"},
            {"image": "pics/a.png", "caption": " uno "}]
    (tmp_path / "c.json").write_text(json.dumps(recs))
    write_jsonl(tmp_path / "c.jsonl", recs)
    for name in ("c.json", "c.jsonl"):
        s = CaptionSet(tmp_path / name, 16, 1)
        assert s.images.shape == (2, 1, 16, 16)
        assert s.captions == [["one", "uno"], ["two"]]
        assert s.pairs == [(0, "one"), (1, "two"), (0, "uno")]
        assert abs(float(s.images[0].mean()) - 90 / 255) < 1e-6
    assert CaptionSet(tmp_path / "c.jsonl", 8, 3).images.shape == (2, 3, 8, 8)


@pytest.fixture
def tiny_run(tmp_path_factory, run_cli):
    """A 20-step run on 30 scenes: enough for the commands, not for good captions."""
    root = tmp_path_factory.mktemp("cap")
    write_digit_scenes(root / "s", 30, seed=2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        status, out, err = run_cli("caption", "train", "configs/caption/digit-scenes.yaml", "--out", root / "run", "--json",
                                   "--set", f"data.train={root}/s/train.jsonl", "--set", f"data.valid={root}/s/valid.jsonl",
                                   "--set", f"data.test={root}/s/test.jsonl", "--set", "train.max_steps=20",
                                   "--set", "train.eval_every=20", "--set", "train.max_minutes=null",
                                   "--set", "model.decoder_options.hidden=32", "--set", "model.decoder_options.embed_dim=16",
                                   "--set", "model.decoder_options.encoder_hidden=16", "--set", "valid_bleu_samples=3")
    finally:
        torch.set_num_threads(threads)
    assert status == 0, err
    summary = json.loads(out)
    assert summary["steps"] == 20 and summary["metric"] == "bleu"
    return root


def test_train_eval_predict(tiny_run, run_cli):
    best = tiny_run / "run" / "best"
    status, out, err = run_cli("caption", "eval", "--checkpoint", best, "--json", "--beam", "2")
    assert status == 0, err
    res = json.loads(out)
    assert res["images"] == 3 and res["beam"] == 2 and 0 <= res["bleu"] <= 100 and 0 <= res["rougeL"] <= 100
    assert "nrefs:3" in res["bleu_signature"]
    assert set(res["attention"]) == {"digit_words", "peak_in_box", "chance", "wrong_digit_words"}
    pics = sorted((tiny_run / "s" / "images").glob("test-*.png"))[:2]
    png = tiny_run / "grid.png"
    status, out, err = run_cli("caption", "predict", "--checkpoint", best, *pics, "--attention-map", png, "--json")
    assert status == 0, err
    res = json.loads(out)
    assert [c["image"] for c in res["captions"]] == [str(p) for p in pics]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and Image.open(png).size[0] > 100


def _one_line_error(run_cli, *args, needle):
    status, out, err = run_cli(*args)
    assert status == 2, err
    assert out == "" and err.count("\n") == 1 and needle in err, err
    return err


def test_bad_captions_files(tmp_path, run_cli, tiny_run):
    _img(tmp_path / "ok.png")
    (tmp_path / "broken.png").write_bytes(b"not an image at all")
    cases = {
        "missing.jsonl": ([{"image": "ok.png", "caption": "x"}, {"image": "gone.png", "caption": "y"}], "record 2: image 'gone.png' does not exist"),
        "noimage.jsonl": ([{"caption": "x"}], "record 1: has no \"image\""),
        "nocap.jsonl": ([{"image": "ok.png"}], "record 1: has no \"caption\""),
        "broken.jsonl": ([{"image": "ok.png", "caption": "x"}, {"image": "broken.png", "caption": "y"}], "not an image"),
        "notobj.jsonl": (["[1, 2]"], "record 1: expected an object"),
    }
    best = tiny_run / "run" / "best"
    for name, (records, needle) in cases.items():
        write_jsonl(tmp_path / name, records)
        err = _one_line_error(run_cli, "caption", "eval", "--checkpoint", best, "--data", tmp_path / name, needle=needle)
        assert str(tmp_path / name) in err
        # Training stops on the same line before any run directory exists.
        _one_line_error(run_cli, "caption", "train", "configs/caption/digit-scenes.yaml", "--out", tmp_path / f"run-{name}",
                        "--set", f"data.train={tmp_path / name}", needle=needle)
        assert not (tmp_path / f"run-{name}").exists()
    _one_line_error(run_cli, "caption", "predict", "--checkpoint", best, tmp_path / "broken.png", needle="broken.png: not an image")
    _one_line_error(run_cli, "caption", "predict", "--checkpoint", best, tmp_path / "ok.png", "--attention-map",
                    tmp_path / "x.txt", needle="unsupported picture format")
    assert not (tmp_path / "x.txt").exists()


def test_vision_checkpoint_that_does_not_fit(tmp_path, run_cli, tiny_run):
    from triptych.engine.checkpoint import save_checkpoint
    from triptych.vision.models import get_model

    scenes = tiny_run / "s"
    common = ("caption", "train", "configs/caption/digit-scenes.yaml", "--set", f"data.train={scenes}/train.jsonl",
              "--set", f"data.valid={scenes}/valid.jsonl", "--set", "train.max_steps=1")
    lenet_cfg = {"task": "vision", "model": {"name": "lenet5", "small_input": True, "activation": "relu"}}
    # A resnet18 run cannot start a lenet5 backbone ...
    save_checkpoint(tmp_path / "resnet", get_model("resnet18", num_classes=10, in_channels=1, small_input=True),
                    domain="vision", config={"task": "vision", "model": {"name": "resnet18"}}, step=1)
    _one_line_error(run_cli, *common, "--out", tmp_path / "r1", "--set", f"model.backbone_checkpoint={tmp_path}/resnet",
                    needle="feature map does not fit")
    # ... nor an RGB lenet5 a grey one.
    save_checkpoint(tmp_path / "rgb", get_model("lenet5", num_classes=10, in_channels=3, small_input=True),
                    domain="vision", config=lenet_cfg, step=1)
    _one_line_error(run_cli, *common, "--out", tmp_path / "r2", "--set", f"model.backbone_checkpoint={tmp_path}/rgb",
                    needle="feature map does not fit")
    # A grey lenet5 run fits: its trunk is loaded, its head (classes, not words) is not.
    lenet = get_model("lenet5", num_classes=10, in_channels=1, small_input=True, activation="relu")
    save_checkpoint(tmp_path / "grey", lenet, domain="vision", config=lenet_cfg, step=1)
    # ... and a tanh LeNet (the vision recipe's default) is not the recipe's relu one, though its shapes are.
    save_checkpoint(tmp_path / "tanh", lenet, domain="vision", config={"task": "vision", "model": {"name": "lenet5"}}, step=1)
    _one_line_error(run_cli, *common, "--out", tmp_path / "r3", "--set", f"model.backbone_checkpoint={tmp_path}/tanh",
                    needle="model.backbone_options.activation is 'relu'")
    from triptych.caption.config import CaptionConfig
    from triptych.caption.models import build_caption_model

    cfg = CaptionConfig()
    cfg.model.backbone, cfg.model.backbone_checkpoint = "lenet5", str(tmp_path / "grey")
    cfg.model.backbone_options = {"small_input": True, "activation": "relu"}
    model = build_caption_model(cfg, 20, 0)
    assert torch.equal(model.image.backbone.trunk[0].weight, lenet.trunk[0].weight)
