"""Resume continues a run exactly: N steps straight == N/2, a real signal, then resume to N."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.engine.toy_task import make, max_diff, weights
from triptych.engine import checkpoint as ckpt
from triptych.engine.progress import read_metrics
from triptych.engine.trainer import train
from triptych.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
# dropout on (the RNG must be restored), evaluations and checkpoints at steps that
# do not line up with the interruption, two epochs (the plan position must carry)
TRAIN = {"max_steps": 24, "eval_every": 5, "save_every": 7, "log_every": 4, "keep_checkpoints": 2}


def _straight(tmp_path, settings: dict = TRAIN):
    task, cfg = make(settings)
    summary = train(task, cfg.train, tmp_path / "straight", full_config=cfg, seed=3, progress=False)
    return task, summary


def _same_records(a: list[dict], b: list[dict]) -> None:
    """metrics.jsonl of a resumed run reads like the straight run's (timings aside)."""
    assert [(r["step"], r["kind"]) for r in a] == [(r["step"], r["kind"]) for r in b]
    for x, y in zip(a, b):
        for key in ("loss", "lr", "valid_loss", "accuracy", "epoch"):
            if key in x:
                assert x[key] == pytest.approx(y[key], abs=1e-6), (x, y)


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_resume_after_sigterm_in_process_is_exact(tmp_path, optimizer):
    train_cfg = {**TRAIN, "optimizer": optimizer}  # SGD: the momentum buffers must carry
    straight, s1 = _straight(tmp_path, train_cfg)
    previous = signal.getsignal(signal.SIGTERM)
    task, cfg = make(train_cfg, signal_after=11)  # SIGTERM arrives inside step 11
    s2 = train(task, cfg.train, tmp_path / "run", full_config=cfg, seed=3, progress=False)
    assert s2["stopped_because"] == "interrupted" and s2["steps"] == 11
    assert signal.getsignal(signal.SIGTERM) is previous  # handlers restored
    assert ckpt.latest_checkpoint(tmp_path / "run").name == "step-0000011"
    task, cfg = make(train_cfg)
    s3 = train(task, cfg.train, tmp_path / "run", full_config=cfg, seed=3, resume=True, progress=False)
    assert s3["steps"] == 24 and s3["stopped_because"] == "max_steps"
    # CPU time, like wall-clock, counts every session: the resumed total starts from the saved one
    saved = ckpt.load_trainer_state(tmp_path / "run" / "checkpoints" / "step-0000021")
    assert 0 < s2["cpu_s"] <= saved["cpu_s"] <= s3["cpu_s"]
    logged = [r["cpu_s"] for r in read_metrics(tmp_path / "run") if r["kind"] == "train"]
    assert logged == sorted(logged) and logged[-1] <= s3["cpu_s"]
    assert max_diff(weights(straight.model), weights(task.model)) < 1e-6
    assert s3["best_step"] == s1["best_step"] and s3["best_metric"] == pytest.approx(s1["best_metric"], abs=1e-6)
    _same_records(read_metrics(tmp_path / "run"), read_metrics(tmp_path / "straight"))
    # keep_checkpoints=2: 21 and 24 remain (7 and 14 pruned; 11 was the interruption's)
    assert [p.name for _, p in ckpt.list_step_dirs(tmp_path / "run" / "checkpoints")] == ["step-0000021", "step-0000024"]


def test_resume_after_sigterm_to_a_child_process_is_exact(tmp_path):
    run_dir = tmp_path / "run"
    spec = {"train": TRAIN, "seed": 3, "delay": 0.1}
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + str(ROOT), OMP_NUM_THREADS="1")
    child = subprocess.Popen([sys.executable, "-m", "tests.engine.worker", str(run_dir), json.dumps(spec)],
                             cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and child.poll() is None:  # wait until it is mid-run
            if any(r["step"] >= 4 for r in read_metrics(run_dir)):
                break
            time.sleep(0.05)
        assert child.poll() is None, child.communicate()[1][-3000:]
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0, err[-3000:]
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["stopped_because"] == "interrupted" and 4 <= summary["steps"] < 24
    assert ckpt.latest_checkpoint(run_dir).name == ckpt.step_dir_name(summary["steps"])

    task, cfg = make(TRAIN)
    resumed = train(task, cfg.train, run_dir, full_config=cfg, seed=3, resume=True, progress=False)
    assert resumed["steps"] == 24
    straight, _ = _straight(tmp_path)
    assert max_diff(weights(straight.model), weights(task.model)) < 1e-6
    _same_records(read_metrics(run_dir), read_metrics(tmp_path / "straight"))


@pytest.mark.parametrize("first,then", [("contiguous", "channels_last"), ("channels_last", "contiguous")])
def test_resume_in_the_other_memory_format_is_exact(tmp_path, first, then):
    # The fused AdamW step pairs a weight with its moments as flat memory: moments
    # saved in one layout must be re-laid for weights in the other, or they are
    # silently applied to the wrong elements.
    runs = {}
    for fmt in (first, then):
        task, cfg = make(dict(TRAIN, memory_format=fmt))
        train(task, cfg.train, tmp_path / fmt, full_config=cfg, seed=3, progress=False)
        runs[fmt] = task
    assert runs["channels_last"].model.conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert max_diff(weights(runs[first].model), weights(runs[then].model)) < 1e-5  # the layouts compute alike
    task, cfg = make(dict(TRAIN, memory_format=first), signal_after=11)  # stopped inside step 11
    assert train(task, cfg.train, tmp_path / "switched", full_config=cfg, seed=3, progress=False)["steps"] == 11
    task, cfg = make(dict(TRAIN, memory_format=then))
    summary = train(task, cfg.train, tmp_path / "switched", full_config=cfg, seed=3, resume=True, progress=False)
    assert summary["memory_format"] == then and summary["steps"] == 24
    assert max_diff(weights(runs[then].model), weights(task.model)) < 1e-5


def test_trainer_state_loads_with_weights_only(tmp_path):
    task, cfg = make({"max_steps": 3})
    train(task, cfg.train, tmp_path, full_config=cfg, seed=0, progress=False)
    path = ckpt.latest_checkpoint(tmp_path) / ckpt.STATE
    state = torch.load(path, weights_only=True)
    assert state["step"] == 3 and {"optimizer", "rng", "epoch", "position", "elapsed", "best_metric"} <= state.keys()


def test_resume_from_a_checkpoint_without_cpu_time_reports_it_unknown(tmp_path):
    """A run resumed from a checkpoint written before CPU time was kept must not report a short total."""
    task, cfg = make({"max_steps": 3})
    train(task, cfg.train, tmp_path, full_config=cfg, seed=0, progress=False)
    path = ckpt.latest_checkpoint(tmp_path) / ckpt.STATE
    state = torch.load(path, weights_only=True)
    del state["cpu_s"]
    torch.save(state, path)
    task, cfg = make({"max_steps": 5})
    summary = train(task, cfg.train, tmp_path, full_config=cfg, seed=0, resume=True, progress=False)
    assert summary["steps"] == 5 and summary["cpu_s"] is None
    assert all("cpu_s" not in r for r in read_metrics(tmp_path) if r["step"] > 3)
    assert torch.load(ckpt.latest_checkpoint(tmp_path) / ckpt.STATE, weights_only=True)["cpu_s"] is None  # still unknown


def test_resume_without_checkpoint_is_a_user_error(tmp_path):
    task, cfg = make()
    with pytest.raises(UserError, match="nothing to resume"):
        train(task, cfg.train, tmp_path / "empty", full_config=cfg, seed=0, resume=True, progress=False)


def test_resume_of_a_finished_run_with_a_larger_budget_continues(tmp_path):
    task, cfg = make({"max_steps": 6, "schedule": "constant"})
    train(task, cfg.train, tmp_path, full_config=cfg, seed=0, progress=False)
    task, cfg = make({"max_steps": 9, "schedule": "constant"})
    summary = train(task, cfg.train, tmp_path, full_config=cfg, seed=0, resume=True, progress=False)
    assert summary["steps"] == 9
    assert ckpt.latest_checkpoint(tmp_path).name == "step-0000009"


def test_init_from_loads_weights_but_starts_at_step_zero(tmp_path):
    task, cfg = make({"max_steps": 5})
    train(task, cfg.train, tmp_path / "pre", full_config=cfg, seed=0, progress=False)
    pre = weights(task.model)
    fresh, cfg = make({"max_steps": 1, "lr": 1e-9, "warmup_steps": 0, "schedule": "constant"})
    summary = train(fresh, cfg.train, tmp_path / "fine", full_config=cfg, seed=0,
                    init_from=tmp_path / "pre" / "best", progress=False)
    assert summary["steps"] == 1
    assert max_diff(pre, weights(fresh.model)) < 1e-6


def test_init_from_a_checkpoint_of_another_domain_is_refused(tmp_path):
    task, cfg = make({"max_steps": 2})
    train(task, cfg.train, tmp_path / "pre", full_config=cfg, seed=0, progress=False)
    other, cfg = make({"max_steps": 2})
    other.domain = "vision"
    with pytest.raises(UserError, match=r"pre/best: a toy checkpoint, expected vision"):
        train(other, cfg.train, tmp_path / "b", full_config=cfg, seed=0, init_from=tmp_path / "pre" / "best",
              progress=False)


def test_resume_with_another_optimizer_is_one_clear_error(tmp_path):
    task, cfg = make({"max_steps": 4, "save_every": 4, "optimizer": "sgd"})
    train(task, cfg.train, tmp_path / "run", full_config=cfg, seed=3, progress=False)
    task, cfg = make({"max_steps": 8, "optimizer": "adamw"})
    with pytest.raises(UserError, match="train.optimizer=sgd, not adamw"):
        train(task, cfg.train, tmp_path / "run", full_config=cfg, seed=3, resume=True, progress=False)
