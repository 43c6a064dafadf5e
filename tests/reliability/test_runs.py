"""Run directories (issue 18): a SIGTERM'd run exits 143 after its checkpoint;
a failed run leaves nothing it made behind; a file is never a run directory."""

import json
import os
import signal
import subprocess
import sys
import time

from tests.conftest import ROOT
from triptych.engine.checkpoint import latest_checkpoint
from triptych.engine.progress import read_metrics


def test_sigterm_exits_143_after_the_checkpoint(tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen(
        [sys.executable, "-m", "triptych", "vision", "train", str(ROOT / "configs/vision/lenet5-digits.yaml"),
         "--out", str(run), "--json", "--set", "train.log_every=1", "--set", "train.eval_every=1000",
         "--set", "train.max_steps=100000"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and child.poll() is None:
            if any(r["step"] >= 2 for r in read_metrics(run)):
                break
            time.sleep(0.05)
        assert child.poll() is None, child.communicate()[1][-3000:]
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 128 + signal.SIGTERM, err[-3000:]
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["stopped_because"] == "interrupted"
    assert latest_checkpoint(run).name.endswith(str(summary["steps"]))


def test_an_existing_file_is_not_a_run_directory(run_cli, tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("keep me\n")
    status, _, err = run_cli("vision", "train", ROOT / "configs/vision/lenet5-digits.yaml", "--out", f)
    assert status == 2 and "not a directory" in err and err.count("\n") == 1
    assert f.read_text() == "keep me\n"


def test_a_failed_run_removes_only_what_it_made(run_cli, tmp_path):
    """A data error found after the tokenizer was trained: the run's files go, the user's stay."""
    from tests.conftest import write_jsonl

    train = write_jsonl(tmp_path / "train.jsonl", [{"document": f"doc {i} words here", "summary": f"s {i}"} for i in range(20)])
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"task: text\ndata:\n  train: {train}\n  valid: {tmp_path / 'missing.jsonl'}\n"
                      "tokenizer:\n  vocab_size: 300\nmodel:\n  name: transformer\n  d_model: 16\n  heads: 2\n"
                      "  layers: 1\n  d_ff: 16\n", encoding="utf-8")
    fresh = tmp_path / "fresh" / "run"
    status, _, err = run_cli("text", "train", recipe, "--out", fresh)
    assert status == 2, err
    assert not fresh.exists() and not fresh.parent.exists()
    old = tmp_path / "old"
    old.mkdir()
    (old / "mine.txt").write_text("user file\n")
    status, _, err = run_cli("text", "train", recipe, "--out", old)
    assert status == 2, err
    assert sorted(p.name for p in old.iterdir()) == ["mine.txt"]
