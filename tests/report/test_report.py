"""`triptych report`: curves, tables and the domain's pictures of tiny vision and video runs, and bad input."""

import base64
import json
import re

import numpy as np
import pytest
import torch

PNG = b"\x89PNG"


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def vision_run(tmp_path_factory):
    from triptych.cli import main

    out = tmp_path_factory.mktemp("runs") / "lenet"
    args = ["vision", "train", "configs/vision/lenet5-digits.yaml", "--out", str(out), "--set", "model.small_input=true",
            "--set", "data.limit_train=128", "--set", "train.max_steps=6", "--set", "train.eval_every=3",
            "--set", "train.save_every=6", "--set", "train.warmup_steps=1", "--set", "train.log_every=1",
            "--set", "data.image_size=8", "--set", "train.threads=1"]
    assert main(args) == 0
    return out


@pytest.fixture(scope="module")
def video_run(tmp_path_factory):
    from triptych.cli import main
    from triptych.video.synth import SynthSpec, synthesize

    root = tmp_path_factory.mktemp("video")
    synthesize(root / "data", SynthSpec(videos=32, valid_videos=24, classes=10, min_frames=2, max_frames=5, seed=4))
    recipe = root / "r.yaml"
    recipe.write_text(f"""seed: 1
data: {{train: {root}/data/train*.tfrecord, valid: {root}/data/validate*.tfrecord, num_classes: 10, batch_size: 8}}
model: {{name: mean-moe}}
train: {{max_steps: 6, eval_every: 3, save_every: 6, warmup_steps: 1, log_every: 2, lr: 0.01}}
""")
    assert main(["video", "train", str(recipe), "--out", str(root / "run")]) == 0
    return root / "run"


def _images_in(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def test_vision_report(vision_run, run_cli):
    status, out, err = run_cli("report", vision_run, "--json")
    assert status == 0, err
    result = json.loads(out)
    assert result["domain"] == "vision" and result["skipped"] == {}
    assert set(result["pictures"]) == {"curves", "confusion"}
    for path in result["pictures"].values():
        assert open(path, "rb").read(4) == PNG
    page = (vision_run / "report.html").read_text()
    assert [img[:4] for img in _images_in(page)] == [PNG, PNG]  # both pictures inside the page
    assert not re.search(r'src="(?!data:)', page)  # nothing the page would have to fetch
    records = [json.loads(line) for line in (vision_run / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in records if r["kind"] == "valid"][-1]
    assert result["metrics"]["valid"]["accuracy"] == last["accuracy"] and result["metrics"]["valid"]["step"] == 6
    assert f"{last['accuracy']:.4g}" in page
    details = result["picture_details"]
    assert details["split"] == "test" and details["images"] == 359  # the digits test split, every image counted


def test_video_report_per_class_ap(video_run, run_cli, tmp_path):
    from triptych.report.pictures import per_class_ap
    from triptych.video.predictor import VideoPredictor
    from triptych.video.task import load_set

    out = tmp_path / "page.html"
    status, stdout, err = run_cli("report", video_run, "-o", out, "--json")
    assert status == 0, err
    result = json.loads(stdout)
    assert result["report"] == str(out) and set(result["pictures"]) == {"curves", "class_ap"}
    assert open(result["pictures"]["class_ap"], "rb").read(4) == PNG
    assert len(_images_in(out.read_text())) == 2
    ckpt = VideoPredictor(video_run / "best")
    videos = load_set(ckpt.cfg.data.valid, ckpt.cfg)
    probs, _ = ckpt.predict(videos)
    labels = videos.multi_hot(range(len(videos)))
    classes, ap = per_class_ap(probs, labels)
    assert result["picture_details"]["classes_scored"] == len(classes) > 1
    assert result["picture_details"]["mean_class_ap"] == pytest.approx(ap.mean())


def test_per_class_ap_against_scikit_learn():
    from sklearn.metrics import average_precision_score

    from triptych.report.pictures import per_class_ap

    rng = np.random.default_rng(0)
    labels = (rng.random((60, 8)) < 0.25).astype(np.float32)
    labels[:, 3] = 0  # a class without positives is left out, not scored 0
    probs = np.clip(labels * 0.3 + rng.random((60, 8)) * 0.8, 0, 1).astype(np.float32)
    classes, ap = per_class_ap(probs, labels)
    assert list(classes) == [0, 1, 2, 4, 5, 6, 7]
    want = [average_precision_score(labels[:, c], probs[:, c]) for c in classes]
    np.testing.assert_allclose(ap, want, atol=1e-6)


def test_report_without_valid_data_still_writes_the_page(video_run, run_cli, tmp_path):
    import shutil

    import yaml

    run = tmp_path / "moved"
    shutil.copytree(video_run, run)
    for name in ("config.yaml", "best/config.yaml"):
        cfg = yaml.safe_load((run / name).read_text())
        cfg["data"]["valid"] = str(tmp_path / "gone" / "*.tfrecord")
        (run / name).write_text(yaml.safe_dump(cfg))
    status, out, err = run_cli("report", run)
    assert status == 0
    assert "class_ap.png not drawn" in err and "gone" in err
    page = (run / "report.html").read_text()
    assert "class_ap.png not drawn" in page and len(_images_in(page)) == 1


def test_a_run_that_never_validated_gets_curves_and_a_note(vision_run, run_cli, tmp_path):
    import shutil

    run = tmp_path / "early"
    shutil.copytree(vision_run, run, ignore=shutil.ignore_patterns("best", "report.html", "*.png"))
    lines = (run / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text("".join(l + "\n" for l in lines if json.loads(l)["kind"] == "train"))
    status, out, err = run_cli("report", run, "--json")
    assert status == 0, err
    result = json.loads(out)
    assert set(result["pictures"]) == {"curves"} and "no best checkpoint" in result["skipped"]["confusion.png"]
    assert result["best"] is None and "valid" not in result["metrics"] and result["metrics"]["train"]["step"] == 6


def test_bad_input_is_one_line_exit_2_and_no_page(vision_run, run_cli, tmp_path):
    import shutil

    no_metrics = tmp_path / "no_metrics"
    shutil.copytree(vision_run, no_metrics, ignore=shutil.ignore_patterns("report.html", "*.png"))
    (no_metrics / "metrics.jsonl").unlink()
    empty = tmp_path / "empty_metrics"
    shutil.copytree(no_metrics, empty)
    (empty / "metrics.jsonl").write_text("")
    (tmp_path / "plain").mkdir()
    cases = [
        ([tmp_path / "nowhere"], "no such run directory"),
        ([tmp_path / "plain"], "not a run directory (no config.yaml)"),
        ([no_metrics], "metrics.jsonl: no such file"),
        ([empty], "metrics.jsonl: no metrics records"),
        ([vision_run, "-o", tmp_path], "is a directory"),
    ]
    for argv, message in cases:
        status, out, err = run_cli("report", *argv, "--json")
        assert status == 2 and out == "" and message in err and err.count("\n") == 1, (argv, err)
    for d in (no_metrics, empty):
        assert not (d / "report.html").exists() and not list(d.glob("*.png"))


def test_learning_curve_panels_from_records(tmp_path):
    from triptych.report.curves import learning_curves, panels

    records = [
        {"step": 2, "kind": "train", "loss": 3.0, "lr": 1e-3, "img/s": 50.0, "train_acc": 0.2, "elapsed": 1.0},
        {"step": 4, "kind": "train", "loss": "nan", "lr": 2e-3, "img/s": 60.0, "train_acc": 0.3, "elapsed": 2.0},
        {"step": 4, "kind": "valid", "valid_loss": 2.5, "accuracy": 0.4, "best": 0.4, "elapsed": 2.5},
        {"step": 1, "kind": "train", "loss": 3.5, "lr": 5e-4, "elapsed": 0.5},  # out of order: sorted by step
    ]
    got = dict(panels(records))
    assert list(got) == ["loss", "validation metrics", "training metrics", "learning rate"]
    assert got["loss"]["train loss"] == ([1, 2], [3.5, 3.0])  # the "nan" is a gap, not a point
    assert got["loss"]["valid_loss"] == ([4], [2.5])
    assert got["validation metrics"] == {"accuracy": ([4], [0.4])}  # no "best", no throughput
    assert got["learning rate"]["lr"] == ([1, 2, 4], [5e-4, 1e-3, 2e-3])
    assert learning_curves(records, tmp_path / "c.png").read_bytes()[:4] == PNG
    with pytest.raises(ValueError):
        learning_curves([{"step": 1, "kind": "train", "loss": "nan"}], tmp_path / "d.png")
    assert not (tmp_path / "d.png").exists()


def test_html_page_is_self_contained_and_escaped(tmp_path):
    from triptych.report.html import Figure, Page, Table, render

    pic = tmp_path / "p.png"
    pic.write_bytes(PNG + b"rest of a picture")
    page = render(Page("run <1>", tables=[Table("m", ["metric", "value"], [["<b>x</b>", 0.123456], ["n", 7]])],
                       figures=[Figure("fig & co", pic, "a caption")], notes=["x not drawn: <why>"]))
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page and "run &lt;1&gt;" in page
    assert "0.1235" in page and ">7<" in page and "&lt;why&gt;" in page
    assert _images_in(page) == [pic.read_bytes()]


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    from tests.conftest import debian_pairs, write_jsonl
    from triptych.cli import main

    root = tmp_path_factory.mktemp("text")
    write_jsonl(root / "train.jsonl", debian_pairs("train", 120))
    write_jsonl(root / "valid.jsonl", debian_pairs("valid", 4))
    tiny = {"model.d_model": 32, "model.ffn": 64, "model.heads": 2, "model.encoder_layers": 1, "model.decoder_layers": 2,
            "tokenizer.vocab_size": 300, "train.max_steps": 6, "train.eval_every": 3, "train.save_every": 6,
            "train.warmup_steps": 1, "train.max_minutes": "null", "train.precision": "fp32", "train.threads": 1,
            "train.log_every": 1, "eval.valid_rouge_samples": 4, "data.batch_tokens": 1500, "decode.max_len": 8,
            "decode.beam": 2, "data.train": root / "train.jsonl", "data.valid": root / "valid.jsonl"}
    args = ["text", "train", "configs/text/demo.yaml", "--out", str(root / "run")]
    for k, v in tiny.items():
        args += ["--set", f"{k}={v}"]
    assert main(args) == 0
    return root / "run"


def test_text_report_draws_the_attention_of_a_valid_example(text_run, run_cli):
    status, out, err = run_cli("report", text_run, "--json")
    assert status == 0, err
    result = json.loads(out)
    assert set(result["pictures"]) == {"curves", "attention"} and result["skipped"] == {}
    assert open(result["pictures"]["attention"], "rb").read(4) == PNG
    assert {"rouge1", "rougeL", "valid_loss"} <= set(result["metrics"]["valid"])
    first_valid = json.loads((text_run.parent / "valid.jsonl").read_text().splitlines()[0])
    assert result["picture_details"]["reference"] == first_valid["summary"]
    assert len(_images_in((text_run / "report.html").read_text())) == 2


def test_attention_maps_of_a_model(text_run):
    from triptych.report.pictures import attention_maps
    from triptych.text.predictor import Summarizer

    model = Summarizer(text_run / "best").model
    src, tgt = torch.tensor([[5, 6, 7, 8, 9], [5, 6, 0, 0, 0]]), torch.tensor([[2, 10, 11], [2, 12, 13]])
    with torch.no_grad():
        _, attn = model(src, tgt, return_attention=True)
    maps, titles = attention_maps(attn)
    assert titles == ["cross attention, last of 2 layers, mean of 2 heads", "copy attention"]
    for m in maps:
        assert m.shape == (3, 5)  # the first sentence: target x source
        np.testing.assert_allclose(m.sum(1), 1.0, atol=1e-5)  # each row a distribution over the source
    np.testing.assert_allclose(maps[0], attn["cross"][-1][0].mean(0).numpy(), atol=1e-6)
