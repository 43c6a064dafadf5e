"""The loop's decisions: keep-best, early stopping, budgets, precision, bad settings."""

from __future__ import annotations

import signal
import sys

import pytest

from tests.engine.toy_task import make, max_diff, weights
from triptych.engine import checkpoint as ckpt
from triptych.engine.progress import read_metrics
from triptych.engine.schedule import lr_multiplier
from triptych.engine.trainer import train
from triptych.errors import UserError


def test_keep_best_picks_the_best_evaluation(tmp_path):
    # scripted valid_loss at steps 2, 4, 6, 8, 10: the best is at step 6
    task, cfg = make({"max_steps": 10, "eval_every": 2}, eval_values=[5.0, 4.0, 1.0, 3.0, 2.0])
    summary = train(task, cfg.train, tmp_path, full_config=cfg, seed=0, progress=False)
    assert summary["best_step"] == 6 and summary["best_metric"] == 1.0
    assert summary["stopped_because"] == "max_steps"
    meta, config = ckpt.load_checkpoint_meta(tmp_path / "best", "toy")
    assert meta["step"] == 6 and meta["metrics"]["valid_loss"] == 1.0
    assert config["train"]["eval_every"] == 2 and (tmp_path / "best" / "toy_vocab.json").is_file()
    assert (tmp_path / "config.yaml").is_file()
    valid = [r for r in read_metrics(tmp_path) if r["kind"] == "valid"]
    assert [r["step"] for r in valid] == [2, 4, 6, 8, 10] and valid[-1]["best"] == 1.0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc_trim")
def test_every_validation_is_bracketed_by_heap_trims(tmp_path):
    # a slack no step reaches: the only trims are the ones around validation
    task, cfg = make({"max_steps": 4, "eval_every": 2, "trim_memory_mb": 1e9})
    summary = train(task, cfg.train, tmp_path, full_config=cfg, seed=0, progress=False)
    assert task.evaluations == 2 and summary["heap_trims"] == 4


def test_keep_best_with_a_metric_to_maximise(tmp_path):
    task, cfg = make({"max_steps": 6, "eval_every": 2, "metric": "accuracy", "metric_mode": "max"})
    summary = train(task, cfg.train, tmp_path, full_config=cfg, seed=0, progress=False)
    valid = [r for r in read_metrics(tmp_path) if r["kind"] == "valid"]
    best = max(valid, key=lambda r: (r["accuracy"], -r["step"]))
    assert summary["best_step"] == best["step"] and summary["best_metric"] == pytest.approx(best["accuracy"])


def test_early_stopping_after_patience_evaluations_without_improvement(tmp_path):
    task, cfg = make({"max_steps": 100, "eval_every": 2, "patience": 2}, eval_values=[3.0, 2.0, 2.5, 2.0, 1.0])
    summary = train(task, cfg.train, tmp_path, full_config=cfg, seed=0, progress=False)
    # step 4 is best; 6 and 8 do not improve (equal is not better) -> stop at 8
    assert summary["stopped_because"] == "early_stopping" and summary["steps"] == 8
    assert summary["best_step"] == 4 and task.evaluations == 4  # no extra evaluation at the end
    assert ckpt.latest_checkpoint(tmp_path).name == "step-0000008"  # resumable where it stopped


def test_max_minutes_budget_stops_the_run(tmp_path):
    task, cfg = make({"max_steps": 10_000, "max_minutes": 0.02, "log_every": 1, "warmup_steps": 0}, delay=0.02)
    summary = train(task, cfg.train, tmp_path, full_config=cfg, seed=0, progress=False)
    assert summary["stopped_because"] == "max_minutes"
    assert 2 <= summary["steps"] < 1000 and summary["elapsed"] >= 1.2
    train_log = [r for r in read_metrics(tmp_path) if r["kind"] == "train"]
    lrs = [r["lr"] for r in train_log]
    # the cosine is timed to the budget: lr falls as the clock runs, though steps are far from max_steps
    assert lrs[0] == pytest.approx(1e-2) and all(a > b for a, b in zip(lrs, lrs[1:]))
    for prev, rec in zip(train_log, train_log[1:]):  # each lr follows the clock at the end of the previous step
        expected = 1e-2 * lr_multiplier(prev["step"], prev["elapsed"], schedule="cosine", max_steps=10_000,
                                        max_minutes=0.02, min_lr_ratio=cfg.train.min_lr_ratio)
        assert rec["lr"] == pytest.approx(expected, rel=1e-3, abs=1e-5)
    # the run stops at the first step that ends past the budget; metrics.jsonl rounds
    # elapsed to the millisecond, so the step before may read exactly 1.2 (1.1996 s)
    assert train_log[-1]["elapsed"] >= 1.2 >= train_log[-2]["elapsed"]


def test_max_epochs_ends_the_run(tmp_path):
    task, cfg = make({"max_steps": 10_000, "max_epochs": 2, "accum_steps": 5})  # 12 micro-batches an epoch
    summary = train(task, cfg.train, tmp_path, full_config=cfg, seed=0, progress=False)
    assert summary["stopped_because"] == "end" and summary["steps"] == 5  # 24 micro-batches: 5+5+5+5+4


def test_bf16_autocast_trains(tmp_path, bf16_kernels):
    task, cfg = make({"max_steps": 4, "precision": "bf16", "eval_every": 2})
    before = weights(task.model)
    summary = train(task, cfg.train, tmp_path, full_config=cfg, seed=0, progress=False)
    assert summary["steps"] == 4 and max_diff(before, weights(task.model)) > 0
    assert all(v.dtype.is_floating_point and v.dtype.itemsize == 4 for v in weights(task.model).values())


def test_auto_precision_is_decided_once_and_reported(tmp_path, monkeypatch):
    from triptych import hardware

    monkeypatch.setattr(hardware, "bf16_kernels", lambda: True)  # bf16 emulated where it is not native
    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset({"avx512f"}))
    task, cfg = make({"max_steps": 2, "precision": "auto"})
    assert train(task, cfg.train, tmp_path / "a", full_config=cfg, seed=0, progress=False)["precision"] == "fp32"
    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    task, cfg = make({"max_steps": 2, "precision": "auto"})
    assert train(task, cfg.train, tmp_path / "b", full_config=cfg, seed=0, progress=False)["precision"] == "bf16"


def test_bf16_is_refused_where_the_cpu_has_no_bf16_kernels(tmp_path, monkeypatch):
    """An AVX2-only CPU: oneDNN's LSTM would fail mid-run; the run is refused before it starts."""
    from triptych import hardware

    monkeypatch.setattr(hardware, "bf16_kernels", lambda: False)
    task, cfg = make({"max_steps": 2, "precision": "bf16"})
    with pytest.raises(UserError, match=r"train.precision bf16: this CPU .* has no bf16 kernels"):
        train(task, cfg.train, tmp_path / "run", full_config=cfg, seed=0, progress=False)
    assert not (tmp_path / "run").exists()
    task, cfg = make({"max_steps": 2, "precision": "auto"})
    assert train(task, cfg.train, tmp_path / "auto", full_config=cfg, seed=0, progress=False)["precision"] == "fp32"


def test_same_seed_same_numbers(tmp_path):
    a, cfg = make({"max_steps": 5})
    train(a, cfg.train, tmp_path / "a", full_config=cfg, seed=7, progress=False)
    b, cfg = make({"max_steps": 5})
    train(b, cfg.train, tmp_path / "b", full_config=cfg, seed=7, progress=False)
    assert max_diff(weights(a.model), weights(b.model)) == 0


@pytest.mark.parametrize("override, expect", [
    ({"precision": "fp16"}, "train.precision"),
    ({"metric_mode": "lowest"}, "train.metric_mode"),
    ({"accum_steps": 0}, "train.accum_steps"),
    ({"patience": 0}, "train.patience"),
    ({"lr": -1.0}, "train.lr"),  # any field's bounds, not only those the trainer names
    ({"schedule": "staircase"}, "train.schedule"),
    ({"schedule": "step", "decay_steps": 0}, "train.decay_steps"),
    ({"ema_decay": 1.0}, "train.ema_decay"),  # an average that never moves
    ({"metric": "bleu", "eval_every": 1}, "train.metric: 'bleu' is not among the validation metrics"),
])
def test_bad_settings_are_user_errors(tmp_path, override, expect):
    task, cfg = make(override)
    previous = signal.getsignal(signal.SIGINT)
    with pytest.raises(UserError, match=expect):
        train(task, cfg.train, tmp_path, full_config=cfg, seed=0, progress=False)
    assert signal.getsignal(signal.SIGINT) is previous


def test_a_second_signal_aborts_and_restores_the_handlers():
    import os

    from triptych.engine.signals import StopSignal

    previous = signal.getsignal(signal.SIGINT)
    stop = StopSignal()
    stop.install()
    try:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is previous
    finally:
        stop.restore()
