"""The CLI front: fast help, one-line errors with exit status 2, JSON on stdout."""

import json
import os
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, write_jsonl


def test_help_is_fast_and_does_not_import_torch():
    code = "import sys, time; t=time.time(); from triptych.cli import build_parser; build_parser(); print('torch' in sys.modules, time.time()-t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "False"
    start = time.time()
    proc = subprocess.run([sys.executable, "-m", "triptych", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "text" in proc.stdout
    assert time.time() - start < 3.0  # generous for a loaded CI machine; ~0.2 s when idle


def test_user_error_is_one_line_and_exit_2_over_a_real_process(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "triptych", "text", "train", str(tmp_path / "missing.yaml")],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip().count("\n") == 0
    assert "missing.yaml: config file does not exist" in proc.stderr


def test_usage_error_is_one_line(run_cli):
    status, out, err = run_cli("text", "eval")
    assert status == 2 and out == ""
    assert err.strip().count("\n") == 0 and "--checkpoint" in err


def test_unknown_config_key(run_cli, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train:\n  lrr: 0.1\n")
    status, out, err = run_cli("text", "train", cfg, "--out", tmp_path / "run")
    assert status == 2 and out == ""
    assert "unknown config key 'train.lrr'" in err and str(cfg) in err
    assert not (tmp_path / "run").exists()
    status, _, err = run_cli("text", "train", cfg.with_name("none.yaml"))
    assert status == 2 and "none.yaml: config file does not exist" in err


def test_a_bad_model_key_or_value_stops_training_before_anything_is_written(run_cli, tmp_path):
    """The model section is checked before the corpus is read and a tokenizer
    trained: the run directory is never made."""
    for section, message in (("model:\n  norm: sideways\n", "model.norm: 'sideways' is not allowed"),
                             ("model:\n  copy_attention: nope\n", "model.copy_attention: 'nope' is not allowed"),
                             ("model:\n  layers: 3\n", "model: unknown key 'layers'")):
        cfg = tmp_path / "c.yaml"
        cfg.write_text(section)
        status, out, err = run_cli("text", "train", cfg, "--out", tmp_path / "run")
        assert status == 2 and out == "" and err.strip().count("\n") == 0
        assert message in err
        assert not (tmp_path / "run").exists()


def test_rouge_command_json_and_length_mismatch(run_cli, tmp_path):
    pred = tmp_path / "p.txt"
    ref = tmp_path / "r.txt"
    pred.write_text("the cat sat on the mat\na dog\n")
    ref.write_text("the cat was on the mat\na big dog\n")
    status, out, err = run_cli("text", "rouge", "--pred", pred, "--ref", ref, "--json", "--bootstrap")
    assert status == 0
    result = json.loads(out)
    assert set(result) >= {"rouge1", "rouge2", "rougeL", "rougeLsum", "intervals"}
    assert out.count("\n") == 1
    ref.write_text("only one line\n")
    status, out, err = run_cli("text", "rouge", "--pred", pred, "--ref", ref)
    assert status == 2 and out == "" and "has 2 lines but" in err
    ref.write_text("")
    status, out, err = run_cli("text", "rouge", "--pred", pred, "--ref", ref)
    assert status == 2 and "r.txt: empty file" in err


def test_lead_baseline_json(run_cli, tmp_path):
    data = write_jsonl(tmp_path / "t.jsonl", [{"document": "Tool to frobnicate widgets quickly. It does more.", "summary": "frobnicate widgets"}])
    status, out, _ = run_cli("text", "baseline", "lead", "--data", data, "--json")
    assert status == 0
    assert json.loads(out)["pairs"] == 1
    status, out, err = run_cli("text", "baseline", "lead", "--data", tmp_path / "none.jsonl", "--json")
    assert status == 2 and out == "" and "none.jsonl" in err


def test_missing_and_foreign_checkpoints(run_cli, tmp_path):
    status, out, err = run_cli("text", "summarize", "--checkpoint", tmp_path / "nope", "--text", "hello world")
    assert status == 2 and out == "" and "nope" in err
    status, out, err = run_cli("text", "summarize", "--checkpoint", tmp_path, "--text", "   ")
    assert status == 2 and "empty" in err


def test_a_missing_extra_names_the_pip_command():
    from triptych.errors import UserError, require_extra

    require_extra("serve", "json")  # present: nothing happens
    with pytest.raises(UserError, match=r"no_such_module_x not installed: .*pip install 'triptych\[export\]'"):
        require_extra("export", "json", "no_such_module_x")
