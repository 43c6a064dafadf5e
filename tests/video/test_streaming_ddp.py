"""Streaming under torchrun: 2 processes (gloo, CPU), each with 2 DataLoader workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from triptych.video.synth import SynthSpec, synthesize

ROOT = Path(__file__).resolve().parents[2]


def torchrun(*args, timeout=240) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT / "src") + os.pathsep + str(ROOT))
    env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *map(str, args)]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    d = tmp_path_factory.mktemp("ddp")
    synthesize(d, SynthSpec(videos=67, valid_videos=16, classes=12, min_frames=4, max_frames=9, shards=3, seed=4))
    return d


@pytest.mark.slow
def test_every_record_read_exactly_once_an_epoch_across_two_ranks(shards):
    done = torchrun("-m", "tests.video.stream_worker", shards / "train*")
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    everything = sorted([f, r] for f, n in enumerate(result["counts"]) for r in range(n))
    assert result["world"] == 2 and len(everything) == 67
    for ranks in result["epochs"]:
        assert all(ranks) and sorted(ranks[0] + ranks[1]) == everything  # all, once, no overlap
    assert result["epochs"][0] != result["epochs"][1]  # shards reshuffled


@pytest.mark.slow
def test_two_process_training_follows_the_single_process_curve(tmp_path, shards):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"""seed: 1
data:
  train: {shards}/train*
  valid: {shards}/validate*
  num_classes: 12
  frames: 4
  batch_size: 16
  stream: true
  workers: 1
model:
  name: mean-moe
train:
  lr: 0.003
  max_steps: 12
  eval_every: 12
  log_every: 1
  warmup_steps: 1
""")
    done = torchrun("-m", "triptych", "video", "train", recipe, "--out", tmp_path / "two", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    two = json.loads(done.stdout.strip().splitlines()[-1])
    one = subprocess.run([sys.executable, "-m", "triptych", "video", "train", recipe, "--out", tmp_path / "one",
                          "--json"], cwd=ROOT, capture_output=True, text=True, timeout=240,
                         env=dict(os.environ, PYTHONPATH=str(ROOT / "src")))
    assert one.returncode == 0, one.stderr[-3000:]
    one = json.loads(one.stdout.strip().splitlines()[-1])
    assert two["steps"] == one["steps"] == 12

    def losses(run):
        rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        return [r["loss"] for r in rows if r["kind"] == "train"]

    a, b = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert len(a) == len(b) == 12
    # Same start, same global batch size, other videos in each batch: the curves agree within noise.
    assert abs(a[0] - b[0]) / a[0] < 0.1
    assert abs(sum(a[-4:]) - sum(b[-4:])) / sum(a[-4:]) < 0.15 and sum(b[-4:]) < 0.9 * sum(b[:4])
