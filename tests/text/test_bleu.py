"""BLEU and chrF (sacrebleu) in `text eval`, and the copy-the-source baseline."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.conftest import write_jsonl
from triptych.errors import UserError
from triptych.text.metrics.bleu import parse_metrics, translation_scores

SAMPLE = Path(__file__).parent / "data" / "en-fr-sample.jsonl"


def test_parse_metrics():
    assert parse_metrics(None) == ("rouge",)
    assert parse_metrics("bleu, chrf,rouge,bleu") == ("bleu", "chrf", "rouge")
    for bad in ("bleu,meteor", "", " , "):
        with pytest.raises(UserError, match="^metric: unknown metric"):
            parse_metrics(bad)


def test_bleu_from_its_definition():
    # 7 hypothesis words against 6 reference words, no brevity penalty:
    # n-gram precisions 6/7, 5/6, 4/5, 3/4, and BLEU their geometric mean.
    scores = translation_scores(["the cat sat on the mat today"], ["the cat sat on the mat"], ("bleu",))
    expected = 100 * math.exp(sum(math.log(p) for p in (6 / 7, 5 / 6, 4 / 5, 3 / 4)) / 4)
    assert scores["bleu"] == pytest.approx(expected, abs=1e-9)
    assert "chrf" not in scores and scores["bleu_signature"].startswith("nrefs:1")
    # a hypothesis shorter than its reference pays the brevity penalty exp(1 - r/c)
    short = translation_scores(["the cat sat on the"], ["the cat sat on the mat"], ("bleu",))["bleu"]
    assert short == pytest.approx(100 * math.exp(1 - 6 / 5), abs=1e-9)


def test_identical_text_scores_100():
    refs = ["Ce paquet fournit les données.", "Greffons de filtres : passe-bas."]
    scores = translation_scores(refs, refs, ("bleu", "chrf"))
    assert scores["bleu"] == pytest.approx(100.0) and scores["chrf"] == pytest.approx(100.0)


def test_copy_baseline(run_cli, tmp_path):
    rows = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    status, out, err = run_cli("text", "baseline", "copy", "--data", SAMPLE, "--metric", "bleu,chrf,rouge", "--json")
    assert status == 0, err
    result = json.loads(out)
    expected = translation_scores([r["source"] for r in rows], [r["target"] for r in rows], ("bleu", "chrf"))
    assert result["bleu"] == pytest.approx(expected["bleu"]) and result["pairs"] == len(rows)
    assert 0 < result["bleu"] < 30 and {"chrf", "rougeL"} <= set(result)
    same = write_jsonl(tmp_path / "same.jsonl", [{"source": r["target"], "target": r["target"]} for r in rows])
    status, out, _ = run_cli("text", "baseline", "copy", "--data", same, "--metric", "bleu", "--json")
    assert status == 0 and json.loads(out)["bleu"] == pytest.approx(100.0)


def test_unknown_metric_is_one_line(run_cli):
    status, out, err = run_cli("text", "baseline", "copy", "--data", SAMPLE, "--metric", "bleu,meteor")
    assert status == 2 and out == "" and err.count("\n") == 1 and "meteor" in err


def test_translation_model_trains_and_reports_bleu(run_cli, tmp_path):
    """source/target fields work out of the box; eval adds BLEU and chrF beside ROUGE."""
    run = tmp_path / "run"
    status, _, err = run_cli(
        "text", "train", "configs/text/transformer-en-fr.yaml", "--out", run,
        "--set", f"data.train={SAMPLE}", "--set", f"data.valid={SAMPLE}",
        "--set", "model.d_model=32", "--set", "model.ffn=64", "--set", "model.heads=2",
        "--set", "model.encoder_layers=1", "--set", "model.decoder_layers=1", "--set", "tokenizer.vocab_size=400",
        "--set", "train.max_steps=4", "--set", "train.eval_every=4", "--set", "train.max_minutes=null",
        "--set", "train.warmup_steps=1", "--set", "train.precision=fp32", "--set", "train.threads=1",
        "--set", "eval.valid_rouge_samples=4", "--set", "decode.max_len=8",
    )
    assert status == 0, err
    status, out, err = run_cli("text", "eval", "--checkpoint", run / "best", "--data", SAMPLE, "--limit", "6",
                               "--beam", "2", "--metric", "bleu,chrf,rouge", "--json")
    assert status == 0, err
    result = json.loads(out)
    assert result["pairs"] == 6 and 0 <= result["bleu"] <= 100 and 0 <= result["chrf"] <= 100 and "rougeL" in result
