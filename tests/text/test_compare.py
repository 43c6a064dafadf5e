"""`triptych text compare`: the table from tiny runs trained here, kept evaluations, bad input."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from tests.conftest import debian_pairs, write_jsonl
from tests.text.test_pipeline import TINY


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    write_jsonl(root / "train.jsonl", debian_pairs("train", 240))
    write_jsonl(root / "valid.jsonl", debian_pairs("valid", 20))
    write_jsonl(root / "test.jsonl", debian_pairs("test", 6))
    return root


@pytest.fixture(scope="module")
def run(corpus, tmp_path_factory):
    from triptych.cli import main

    out = tmp_path_factory.mktemp("runs") / "tiny-transformer"
    args = ["text", "train", "configs/text/demo.yaml", "--out", str(out),
            "--set", f"data.train={corpus / 'train.jsonl'}", "--set", f"data.valid={corpus / 'valid.jsonl'}",
            "--set", f"data.test={corpus / 'test.jsonl'}", *TINY, "--set", "train.max_steps=6"]
    assert main(args) == 0
    return out


def test_eval_keeps_its_result_and_compare_reads_it(run, corpus, run_cli, tmp_path):
    test = corpus / "test.jsonl"
    status, stdout, _ = run_cli("text", "eval", "--checkpoint", run / "best", "--data", test, "--beam", 4, "--json")
    assert status == 0
    evaluated = json.loads(stdout)
    kept = list((run / "best" / "eval").glob("*.json"))
    assert len(kept) == 1 and json.loads(kept[0].read_text())["rougeL"] == evaluated["rougeL"]
    assert evaluated["sentences_per_s"] == pytest.approx(evaluated["pairs"] / evaluated["seconds"])

    status, stdout, err = run_cli("text", "compare", run, "--json")  # --data defaults to the run's data.test
    assert status == 0, err
    table = json.loads(stdout)
    assert table["data"] == str(test) and table["beam"] == 4
    lead, textrank, row = table["rows"]
    assert (lead["system"], textrank["system"], row["system"]) == ("Lead", "TextRank", "tiny-transformer")
    assert row["result"] == "kept" and "evaluating" not in err
    for k in ("rouge1", "rouge2", "rougeL", "sentences_per_s"):
        assert row[k] == evaluated[k]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert row["train_minutes"] == pytest.approx(records[-1]["elapsed"] / 60)

    from triptych.text.predictor import Summarizer

    model = Summarizer(run / "best").model
    assert row["params"] == len(torch.nn.utils.parameters_to_vector(model.parameters()))
    assert row["model"] == "transformer +copy"

    # The extractive rows are what the baseline commands print on the same file.
    for kind, got in (("lead", lead), ("textrank", textrank)):
        status, stdout, _ = run_cli("text", "baseline", kind, "--data", test, "--json")
        base = json.loads(stdout)
        assert status == 0 and all(got[k] == pytest.approx(base[k]) for k in ("rouge1", "rouge2", "rougeL"))

    status, stdout, _ = run_cli("text", "compare", run / "best", "--data", test, "--markdown")
    assert status == 0
    lines = stdout.splitlines()
    assert lines[0].startswith("| system | model | R-1") and len(lines) == 2 + 3 + 1
    assert lines[4].startswith("| tiny-transformer | transformer +copy |")


def test_compare_evaluates_a_run_without_a_kept_result_once(run, corpus, run_cli, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    shutil.rmtree(copy / "best" / "eval", ignore_errors=True)
    status, stdout, err = run_cli("text", "compare", copy, "--data", corpus / "test.jsonl", "--beam", 2, "--json")
    assert status == 0 and "evaluating now" in err
    first = json.loads(stdout)["rows"][-1]
    assert first["result"] == "evaluated" and first["pairs"] == 6
    status, stdout, err = run_cli("text", "compare", copy, "--data", corpus / "test.jsonl", "--beam", 2, "--json")
    second = json.loads(stdout)["rows"][-1]
    assert second["result"] == "kept" and second["rougeL"] == first["rougeL"]
    # A kept result of other weights (another step) is not used.
    meta = json.loads((copy / "best" / "meta.json").read_text())
    (copy / "best" / "meta.json").write_text(json.dumps({**meta, "step": meta["step"] + 1}))
    status, stdout, err = run_cli("text", "compare", copy, "--data", corpus / "test.jsonl", "--beam", 2, "--json")
    assert json.loads(stdout)["rows"][-1]["result"] == "evaluated"


def test_compare_bad_input(run, corpus, run_cli, tmp_path):
    status, out, err = run_cli("text", "compare", tmp_path / "nope", "--data", corpus / "test.jsonl")
    assert status == 2 and out == "" and "nope: no such run directory" in err
    (tmp_path / "empty").mkdir()
    status, out, err = run_cli("text", "compare", tmp_path / "empty", "--data", corpus / "test.jsonl")
    assert status == 2 and "not a run directory" in err
    status, out, err = run_cli("text", "compare", run, "--beam", 0)
    assert status == 2 and "--beam 0" in err
    status, out, err = run_cli("text", "compare", run, "--data", tmp_path / "missing.jsonl")
    assert status == 2 and "missing.jsonl" in err


def test_a_kept_result_with_other_settings_but_the_same_beam_is_used(run, corpus, run_cli, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    shutil.rmtree(copy / "best" / "eval", ignore_errors=True)
    test = corpus / "test.jsonl"
    assert run_cli("text", "eval", "--checkpoint", copy / "best", "--data", test, "--beam", 2)[0] == 0
    assert run_cli("text", "eval", "--checkpoint", copy / "best", "--data", test, "--beam", 4, "--length-penalty", 2.0)[0] == 0
    assert run_cli("text", "eval", "--checkpoint", copy / "best", "--data", test, "--beam", 4, "--limit", 3)[0] == 0
    status, stdout, err = run_cli("text", "compare", copy, "--data", test, "--json")
    row = json.loads(stdout)["rows"][-1]
    assert status == 0 and row["result"] == "kept" and "evaluating" not in err
    assert row["decode"]["beam"] == 4 and row["decode"]["length_penalty"] == 2.0 and row["pairs"] == 6
    # --length-penalty asks for that alpha: the kept one above, or an evaluation now.
    status, stdout, err = run_cli("text", "compare", copy, "--data", test, "--length-penalty", 2.0, "--json")
    assert status == 0 and json.loads(stdout)["rows"][-1]["result"] == "kept"
    status, stdout, err = run_cli("text", "compare", copy, "--data", test, "--length-penalty", 0.3, "--json")
    row = json.loads(stdout)["rows"][-1]
    assert row["result"] == "evaluated" and row["decode"]["length_penalty"] == 0.3
