"""benchmarks/cpu_targets.py: missing peers are one clear line before any run, not 3 x 6 failures."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def targets(monkeypatch):
    spec = importlib.util.spec_from_file_location("cpu_targets", ROOT / "benchmarks" / "cpu_targets.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "cpu_targets", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_missing_peers_names_only_what_cannot_be_imported(targets):
    bench = targets.Bench("x", ("x.py",), (), peers=("json", "no_such_module_xyz", "no_such_pkg_xyz.sub"))
    assert targets.missing_peers([bench]) == ["no_such_module_xyz", "no_such_pkg_xyz.sub"]


def test_the_peer_libraries_are_named(targets):
    peers = {bench.name: bench.peers for bench in targets.BENCHES}
    assert all("transformers" in peers[name] for name in ("text_train", "text_train_bf16", "text_decode"))
    assert "tfrecord" in peers["video_read"] and "rouge_score_rs" in peers["rouge"]
    assert peers["video_metrics"] == ()  # its reference is written in the benchmark itself


def test_missing_peers_stop_before_any_run(targets, monkeypatch, capsys):
    bench = targets.Bench("x", ("x.py",), (targets.Target("x", "ratio", 1.0),), peers=("no_such_module_xyz",))
    monkeypatch.setattr(targets, "BENCHES", (bench,))
    monkeypatch.setattr(targets, "run_once", lambda *a: pytest.fail("ran a benchmark without its peer"))
    assert targets.main(["--runs", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no_such_module_xyz" in err[0] and "pip install -e '.[bench]'" in err[0]
