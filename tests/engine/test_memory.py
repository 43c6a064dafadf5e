"""Resident-memory accounting and the heap trimmer."""

from __future__ import annotations

import os
import sys

import pytest

from triptych.engine import memory


def test_current_rss_is_positive_and_below_peak():
    now = memory.current_rss_mb()
    if now is None:
        pytest.skip("no /proc on this system")
    assert 0 < now <= memory.peak_rss_mb() + 1


def test_trimmer_trims_only_after_growing_by_the_slack_over_its_baseline():
    level = {"rss": 1000.0}
    calls = []

    def trim():
        calls.append(level["rss"])
        level["rss"] = 900.0  # what the OS got back

    t = memory.HeapTrimmer(slack_mb=200, rss=lambda: level["rss"], trim=trim)
    assert not t.maybe_trim()  # the first call only sets the baseline: 1000
    for rss in (1100.0, 1199.0):
        level["rss"] = rss
        assert not t.maybe_trim()
    level["rss"] = 1200.0
    assert t.maybe_trim() and calls == [1200.0] and t.trims == 1
    # the step after a trim re-grows its working set: that level, not the
    # trimmed one, is the new baseline, so a trim is not repeated every step
    level["rss"] = 1150.0
    assert not t.maybe_trim()
    level["rss"] = 1349.0
    assert not t.maybe_trim()
    level["rss"] = 1350.0
    assert t.maybe_trim() and t.trims == 2


def test_trim_now_trims_at_any_level_and_restarts_the_baseline():
    level = {"rss": 1000.0}
    calls = []
    t = memory.HeapTrimmer(slack_mb=200, rss=lambda: level["rss"], trim=lambda: calls.append(level["rss"]))
    assert not t.maybe_trim()  # baseline 1000
    level["rss"] = 1050.0
    t.trim_now()  # before validation: no slack needed
    assert calls == [1050.0] and t.trims == 1
    level["rss"] = 1240.0
    assert not t.maybe_trim()  # the first reading after a trim is the new baseline
    level["rss"] = 1440.0
    assert t.maybe_trim() and t.trims == 2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc_trim")
def test_glibc_trim_is_found_and_callable():
    trim = memory._glibc_malloc_trim()
    if trim is None:
        pytest.skip("not glibc")
    trim()  # returns memory; must not raise


def test_training_logs_rss_and_trims_when_memory_grows(tmp_path, monkeypatch):
    from tests.engine.toy_task import make
    from triptych.engine.progress import read_metrics
    from triptych.engine.trainer import train

    if memory._glibc_malloc_trim() is None:
        pytest.skip("not glibc")
    grows = iter(range(1000, 10**6, 100))  # resident memory that grows 100 MiB a reading
    monkeypatch.setattr(memory, "current_rss_mb", lambda: float(next(grows)))
    task, cfg = make({"max_steps": 6, "log_every": 2, "trim_memory_mb": 150})
    summary = train(task, cfg.train, tmp_path, full_config=cfg, seed=0, progress=False)
    assert summary["heap_trims"] >= 2
    logged = [r for r in read_metrics(tmp_path) if r["kind"] == "train"]
    assert len(logged) == 3 and all(r["rss_mb"] >= 1000 for r in logged)


def test_training_caps_the_kernel_cache_unless_the_user_chose(tmp_path, monkeypatch):
    from tests.engine.toy_task import make
    from triptych.engine.trainer import train

    monkeypatch.delenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", raising=False)
    task, cfg = make({"max_steps": 2})
    train(task, cfg.train, tmp_path / "a", full_config=cfg, progress=False)
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == str(memory.KERNEL_CACHE_ENTRIES)
    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "1024")
    task, cfg = make({"max_steps": 2})
    train(task, cfg.train, tmp_path / "b", full_config=cfg, progress=False)
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == "1024"
