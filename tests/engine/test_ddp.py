"""DDP and gradient accumulation give exactly the single-process gradient of the global batch."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engine.toy_task import make, max_diff, weights
from triptych.engine import checkpoint as ckpt
from triptych.engine.progress import read_metrics
from triptych.engine.trainer import train

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(run_dir: Path, spec: dict, world: int) -> list[subprocess.Popen]:
    """What `torchrun --nproc_per_node=WORLD` does for us: one process per rank, env:// rendezvous."""
    port = _free_port()
    procs = []
    for rank in range(world):
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                   LOCAL_WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                   OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT / "src") + os.pathsep + str(ROOT))
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")
        procs.append(subprocess.Popen([sys.executable, "-m", "tests.engine.worker", str(run_dir), json.dumps(spec)],
                                      cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return procs


def _final_weights(run_dir: Path):
    task, _ = make(dropout=0.0)
    ckpt.load_weights(ckpt.latest_checkpoint(run_dir), task.model)
    return weights(task.model)


@pytest.mark.slow
def test_two_processes_equal_one_on_the_global_batch(tmp_path):
    # Batches of 7 split 4/3 over the ranks, the last one (96 = 13*7 + 5) 3/2, and
    # two micro-batches a step: uneven shards, so the loss normalisation must be
    # by the units of the whole step, all ranks together.
    # With a moving average of the weights: every rank keeps one, rank 0 validates it.
    train_cfg = {"max_steps": 10, "accum_steps": 2, "log_every": 5, "eval_every": 5, "lr": 1e-2, "ema_decay": 0.8}
    spec = {"train": train_cfg, "dropout": 0.0, "batch_size": 7}
    procs = _launch(tmp_path / "ddp", spec, world=2)
    outs = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail("DDP workers did not finish")
        assert p.returncode == 0, err[-3000:]
        outs.append(out)
    summary = json.loads(outs[0].strip().splitlines()[-1])
    assert summary["steps"] == 10 and summary["stopped_because"] == "max_steps"
    assert outs[1].strip() == ""  # only rank 0 speaks

    task, cfg = make(train_cfg, dropout=0.0, batch_size=7)
    single = train(task, cfg.train, tmp_path / "single", full_config=cfg, seed=0, progress=False)
    assert max_diff(_final_weights(tmp_path / "ddp"), weights(task.model)) < 1e-5
    best = {}
    for run in ("ddp", "single"):
        best[run], _ = make(dropout=0.0)
        ckpt.load_weights(tmp_path / run / "best", best[run].model)
    assert max_diff(weights(best["ddp"].model), weights(best["single"].model)) < 1e-5
    assert summary["best_metric"] == pytest.approx(single["best_metric"], abs=1e-5)
    # only rank 0 wrote: one record per log step and evaluation, as in one process
    ddp_log, one_log = read_metrics(tmp_path / "ddp"), read_metrics(tmp_path / "single")
    assert [(r["step"], r["kind"]) for r in ddp_log] == [(r["step"], r["kind"]) for r in one_log]
    for a, b in zip(ddp_log, one_log):
        if a["kind"] == "train":
            assert a["loss"] == pytest.approx(b["loss"], abs=1e-5)


def test_accumulating_half_batches_equals_full_batch(tmp_path):
    common = {"max_steps": 12, "log_every": 4, "lr": 1e-2}
    full, cfg_full = make(dict(common, accum_steps=1), dropout=0.0, batch_size=8)
    half, cfg_half = make(dict(common, accum_steps=2), dropout=0.0, batch_size=4)
    train(full, cfg_full.train, tmp_path / "full", full_config=cfg_full, seed=0, progress=False)
    train(half, cfg_half.train, tmp_path / "half", full_config=cfg_half, seed=0, progress=False)
    assert max_diff(weights(full.model), weights(half.model)) < 1e-5
    losses = lambda d: [r["loss"] for r in read_metrics(d) if r["kind"] == "train"]  # noqa: E731
    assert losses(tmp_path / "full") == pytest.approx(losses(tmp_path / "half"), abs=1e-5)
