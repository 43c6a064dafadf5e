"""Streaming: every record once an epoch over ranks x workers, exact resume,
evaluation on top-k only, training that reads shards as streams."""

import json
from pathlib import Path

import numpy as np
import pytest

from triptych.errors import UserError
from triptych.video import metrics as M
from triptych.video.stream_eval import TopKScores
from triptych.video.streaming import ShardStream, epoch_order, loader, reader_counts, scan, take
from triptych.video.synth import SynthSpec, synthesize
from triptych.video.io.tfrecord import RecordStats


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    d = tmp_path_factory.mktemp("shards")
    synthesize(d, SynthSpec(videos=61, valid_videos=13, classes=12, min_frames=4, max_frames=9, shards=5, seed=2))
    return d


def stream(files, counts, epoch=0, rank=0, world=1, workers=0, train=True, consumed=0, **kw):
    args = dict(epoch=epoch, seed=3, rank=rank, world=world, workers=workers, train=train, buffer=4,
                sampling="random", frames=3, max_frames=300, num_classes=12, level="frame", verify=True,
                skip_bad=False, consumed=consumed)
    args.update(kw)
    return ShardStream(files, counts, **args)


def keys(items):
    return [(it["key"], it["rgb"].tobytes()) for it in items]


@pytest.mark.parametrize("world, workers", [(1, 0), (2, 0), (3, 2), (4, 2)])
def test_every_record_once_an_epoch_across_ranks_and_workers(shards, world, workers):
    files, counts, generation = scan(str(shards / "train*"))
    assert sum(counts) == 61 and generation == "2018"
    everything = sorted((f, r) for f in range(5) for r in range(counts[f]))
    for epoch, train in ((0, True), (1, True), (0, False)):
        seen = []
        for rank in range(world):
            items = take(loader(stream(files, counts, epoch, rank, world, workers, train=train)), 10**6, RecordStats())
            seen += [it["key"] for it in items]
            order = epoch_order(5, 3, epoch, train)
            n = reader_counts(counts, order, world * max(1, workers))
            assert len(items) == sum(n[rank * max(1, workers):(rank + 1) * max(1, workers)])
        assert sorted(seen) == everything


def test_shard_order_and_buffer_change_with_the_epoch(shards):
    files, counts, _ = scan(str(shards / "train*"))
    a = keys(take(loader(stream(files, counts, 0)), 100, RecordStats()))
    b = keys(take(loader(stream(files, counts, 1)), 100, RecordStats()))
    assert len(a) == len(b) == 61
    assert sorted(k for k, _ in a) == sorted(k for k, _ in b) and [k for k, _ in a] != [k for k, _ in b]


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_mid_epoch_continues_the_same_stream(shards, workers):
    files, counts, _ = scan(str(shards / "train*"))
    full = keys(take(loader(stream(files, counts, 1, workers=workers)), 50, RecordStats()))
    for used in (1, 7, 20):
        rest = keys(take(loader(stream(files, counts, 1, workers=workers, consumed=used)), 50 - used, RecordStats()))
        assert rest == full[used:50]


def test_topk_scores_equal_the_full_matrix_metrics():
    rng = np.random.default_rng(0)
    probs = np.round(rng.random((300, 40)), 2).astype(np.float32)  # with ties
    labels = (rng.random((300, 40)) < 0.08).astype(np.float32)
    acc = TopKScores(40, 20)
    for lo in range(0, 300, 64):
        acc.add(probs[lo:lo + 64], labels[lo:lo + 64])
    got, want = acc.result(), M.evaluate(probs, labels, 20)
    for k in want:
        assert got[k] == pytest.approx(want[k], rel=1e-6, abs=1e-12), k  # float32 means in metrics.py
    assert acc.nbytes() == 300 * 20 * (4 + 4 + 1)  # O(videos x k)
    from triptych.video.stream_eval import _ap_sum_sorted

    s = np.sort(probs.ravel())[::-1]
    y = labels.ravel()[np.argsort(-probs.ravel(), kind="stable")] > 0
    whole = M._expected_ap_sums(np.zeros(len(s), np.int64), s.astype(np.float64), y, 1)[0]
    for chunk in (1, 7, 1000, 1 << 18):  # cuts moved to tie-group ends give the same sum
        assert _ap_sum_sorted(s, y, chunk) == pytest.approx(whole, rel=1e-12)


def _recipe(tmp_path, shards, **extra):
    data = {"train": f"{shards}/train*", "valid": f"{shards}/validate*", "num_classes": 12, "sampling": "random",
            "frames": 3, "batch_size": 8, "stream": True, "workers": 2, "shuffle_buffer": 8, **extra}
    text = "seed: 1\ndata:\n" + "".join(f"  {k}: {v}\n" for k, v in data.items())
    text += "model:\n  name: mean-moe\ntrain:\n  max_steps: 6\n  eval_every: 3\n  save_every: 3\n" \
            "  warmup_steps: 1\n  log_every: 1\n"
    p = tmp_path / "r.yaml"
    p.write_text(text)
    return p


def _losses(run):
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if r["kind"] == "train"]


def test_streamed_training_resumes_exactly(run_cli, tmp_path, shards):
    recipe = _recipe(tmp_path, shards)
    status, out, err = run_cli("video", "train", recipe, "--out", tmp_path / "a", "--json")
    assert status == 0, err
    whole = json.loads(out)
    assert whole["steps"] == 6 and 0 <= whole["final_metrics"]["gap"] <= 1
    status, out, err = run_cli("video", "train", recipe, "--out", tmp_path / "b", "--set", "train.max_steps=3")
    assert status == 0, err
    status, out, err = run_cli("video", "train", recipe, "--out", tmp_path / "b", "--resume", "--json",
                               "--set", "train.max_steps=6")
    assert status == 0, err
    la, lb = _losses(tmp_path / "a"), _losses(tmp_path / "b")
    assert len(la) == 6 and la == lb
    assert json.loads(out)["final_metrics"] == whole["final_metrics"]


def test_streamed_and_in_memory_validation_agree(tmp_path, shards):
    from triptych.video.config import VideoConfig, VideoDataConfig
    from triptych.video.task import VideoTask

    import torch

    scores = []
    for stream_ in (False, True):
        torch.manual_seed(0)
        cfg = VideoConfig(data=VideoDataConfig(train=str(shards / "train*"), valid=str(shards / "validate*"),
                                               num_classes=12, batch_size=8, stream=stream_, workers=0),
                          model={"name": "mean-moe"})
        task = VideoTask(cfg)
        assert (task.valid_stream is not None) == stream_
        scores.append(task.evaluate(task.model))
    for k in scores[0]:
        assert scores[1][k] == pytest.approx(scores[0][k], rel=1e-5), k


def test_a_shard_gone_or_cut_short_mid_epoch(run_cli, tmp_path, shards):
    import shutil

    d = tmp_path / "copy"
    shutil.copytree(shards, d)
    files, counts, _ = scan(str(d / "train*"))
    gone = d / "train0002.tfrecord"
    kept = gone.read_bytes()
    gone.unlink()  # after the scan: gone mid-epoch
    with pytest.raises(UserError, match=r"train0002.tfrecord: no such file"):
        take(loader(stream(files, counts, workers=2)), 100, RecordStats())
    stats = RecordStats()
    items = take(loader(stream(files, counts, workers=2, skip_bad=True)), 100, stats)
    assert len(items) == 61 - counts[2] and len(stats.skipped) == 1
    gone.write_bytes(kept[: len(kept) // 2])  # back, but cut short
    with pytest.raises(UserError, match=r"train0002.tfrecord: record \d+: truncated record"):
        take(loader(stream(files, counts, workers=2)), 100, RecordStats())
    status, out, err = run_cli("video", "train", _recipe(tmp_path, d), "--out", tmp_path / "run")
    assert status == 2 and err.count("\n") == 1 and "train0002.tfrecord: record" in err, err
    assert not (tmp_path / "run").exists()


def test_eval_and_predict_streamed_equal_in_memory(run_cli, tmp_path, shards):
    recipe = _recipe(tmp_path, shards, stream="false")
    status, out, err = run_cli("video", "train", recipe, "--out", tmp_path / "run", "--set", "train.max_steps=3")
    assert status == 0, err
    ckpt = tmp_path / "run" / "best"
    got = {}
    for mode in ("off", "on"):
        status, out, err = run_cli("video", "eval", "--checkpoint", ckpt, "--data", shards / "validate*",
                                   "--stream", mode, "--json")
        assert status == 0, err
        got[mode] = json.loads(out)
        status, out, err = run_cli("video", "predict", "--checkpoint", ckpt, "--data", shards / "validate*",
                                   "--stream", mode, "--out", tmp_path / f"{mode}.csv", "--top-k", "5")
        assert status == 0, err
    for k in ("gap", "map", "hit_at_one", "perr", "loss"):
        assert got["on"][k] == pytest.approx(got["off"][k], rel=1e-5), k
    on, off = ((tmp_path / f"{m}.csv").read_text().splitlines() for m in ("on", "off"))
    assert on[0] == off[0] and sorted(on[1:]) == sorted(off[1:])  # workers interleave the shards
    status, out, err = run_cli("video", "eval", "--checkpoint", ckpt, "--data", shards / "validate*", "--stream", "on",
                               "--save-predictions", tmp_path / "p.npz")
    assert status == 2 and "--save-predictions" in err
