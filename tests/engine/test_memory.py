"""Resident-memory accounting and the heap trimmer."""

from __future__ import annotations

import sys

import pytest

from triptych.engine import memory


def test_current_rss_is_positive_and_below_peak():
    now = memory.current_rss_mb()
    if now is None:
        pytest.skip("no /proc on this system")
    assert 0 < now <= memory.peak_rss_mb() + 1


def test_trimmer_trims_only_after_growing_by_the_slack():
    level = {"rss": 1000.0}
    calls = []

    def trim():
        calls.append(level["rss"])
        level["rss"] = 1050.0  # what the OS got back leaves 1050 resident

    t = memory.HeapTrimmer(slack_mb=200, rss=lambda: level["rss"], trim=trim)
    for rss in (1100.0, 1199.0):
        level["rss"] = rss
        assert not t.maybe_trim()
    level["rss"] = 1200.0
    assert t.maybe_trim() and calls == [1200.0] and t.trims == 1
    level["rss"] = 1249.0  # the new floor is 1050: 1249 is within its slack
    assert not t.maybe_trim()
    level["rss"] = 1250.0
    assert t.maybe_trim() and t.trims == 2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc_trim")
def test_glibc_trim_is_found_and_callable():
    trim = memory._glibc_malloc_trim()
    if trim is None:
        pytest.skip("not glibc")
    trim()  # returns memory; must not raise


def test_training_logs_rss_and_reports_trims(tmp_path):
    from tests.engine.toy_task import make
    from triptych.engine.progress import read_metrics
    from triptych.engine.trainer import train

    task, cfg = make({"max_steps": 4, "log_every": 2, "trim_memory_mb": 0.001})
    summary = train(task, cfg.train, tmp_path, full_config=cfg, seed=0, progress=False)
    if memory.current_rss_mb() is None or memory._glibc_malloc_trim() is None:
        pytest.skip("no /proc or no glibc")
    assert summary["heap_trims"] >= 1  # a slack of 1 kB is crossed at once
    logged = [r for r in read_metrics(tmp_path) if r["kind"] == "train"]
    assert logged and all(r["rss_mb"] > 0 for r in logged)
