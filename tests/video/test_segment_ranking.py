"""The 2019 segment submission, streamed: per class only its K best segments
are held, and the file equals the in-memory one byte for byte."""

import json

import numpy as np
import pytest

from triptych.video.segment_ranking import ClassTopSegments
from triptych.video.synth import SynthSpec, synthesize


def reference_rows(probs, keys, starts, k, top_k, allowed=None):
    """From the definition: each segment's top_k classes (score desc, class asc),
    then per class every candidate by (score desc, key, start), cut at k."""
    cand = {}
    for p, key, start in zip(probs, keys, starts):
        p = np.where(allowed, p, -1.0) if allowed is not None else p
        best = sorted(range(len(p)), key=lambda c: (-float(p[c]), c))[:top_k]
        for c in best:
            if p[c] >= 0:
                cand.setdefault(c, []).append((-float(p[c]), int(key), int(start)))
    return [(c, [f"v{key}:{start}" for _, key, start in sorted(cand[c])[:k]]) for c in sorted(cand)]


@pytest.mark.parametrize("seed", range(4))
def test_ranking_equals_the_definition_and_a_small_k_bounds_what_is_held(seed):
    rng = np.random.default_rng(seed)
    C, k, top_k, buffer, batch = 12, 3, 4, 40, 16
    n = 2000
    probs = rng.random((n, C)).astype(np.float32)
    if seed % 2:  # many ties: the order must fall back to (video, start)
        probs = np.round(probs, 1).astype(np.float32)
    keys = rng.integers(0, 50, n)
    starts = rng.integers(0, 60, n) * 5
    allowed = None
    classes = None
    if seed >= 2:
        classes = np.array([0, 3, 5, 7, 11, 40])  # 40: past the classes, ignored
        allowed = np.isin(np.arange(C), classes)
    names = np.array([f"v{a}:{b}" for a, b in zip(keys, starts)], object)
    r = ClassTopSegments(C, k, top_k, classes, buffer=buffer)
    for lo in range(0, n, batch):  # arrival order need not be the data's order
        part = slice(lo, lo + batch)
        r.add(probs[part], keys[part], starts[part], names[part])
        assert len(r.kept[0]) <= C * k  # what is kept after a merge: k a class at most
    assert r.max_held <= 2 * C * k + buffer + batch * top_k  # O(classes x k), not O(segments)
    assert n * min(top_k, 6 if classes is not None else C) > 10 * r.max_held  # and far below all candidates
    assert list(r.rows()) == reference_rows(probs, keys, starts, k, top_k, allowed)
    assert r.segments == n


@pytest.mark.parametrize("extra", [[], ["--segment-k", "2", "--top-k", "3"]])
def test_streamed_segment_submission_equals_in_memory_byte_for_byte(run_cli, tmp_path, rated, checkpoint, extra):
    files = {}
    for mode in ("off", "on", "auto"):
        out = tmp_path / f"{mode}.csv"
        status, stdout, err = run_cli("video", "predict", "--checkpoint", checkpoint, "--data",
                                      rated / "validate*.tfrecord", "--out", out, "--stream", mode, "--json", *extra)
        assert status == 0, err
        result = json.loads(stdout)
        assert result["submission"] == "segments" and result["videos"] == 30, result
        files[mode] = out.read_bytes()
    assert files["on"] == files["off"] and files["auto"] == files["off"]
    lines = files["off"].decode().splitlines()
    assert lines[0] == "Class,Segments" and len(lines) > 3
    if extra:
        assert all(len(line.split(",")[1].split(" ")) <= 2 for line in lines[1:])


def test_worker_order_does_not_change_the_ranking(rated):
    """With workers the shards interleave; the ranking orders by (shard, record),
    so the rows are the in-memory set's. A row-independent scorer makes every
    score exact whichever batch a segment lands in."""
    import torch

    from triptych.video.config import VideoConfig, VideoDataConfig
    from triptych.video.io.tfrecord import RecordStats
    from triptych.video.io.yt8m import VideoSet
    from triptych.video.segment_ranking import rank_video_segments
    from triptych.video.stream_eval import rank_stream_segments
    from triptych.video.streaming import scan

    class Scorer(torch.nn.Module):  # per segment: its frames' mean of the first 12 rgb dims, squashed
        def forward(self, batch):
            m = batch["mask"].unsqueeze(-1)
            return {"probs": torch.sigmoid((batch["rgb"][..., :12] * m).sum(1) / m.sum(1).clamp(min=1) * 8)}

    files, counts, _ = scan(str(rated / "validate*.tfrecord"))
    rows = []
    for workers in (0, 2):
        cfg = VideoConfig(data=VideoDataConfig(num_classes=12, workers=workers, eval_batch_size=7))
        r = ClassTopSegments(12, 4, 3)
        assert rank_stream_segments([Scorer()], files, counts, cfg, "cpu", RecordStats(), r) == 30
        rows.append(list(r.rows()))
    mem = VideoSet.from_files(str(rated / "validate*.tfrecord"), 12)
    r = ClassTopSegments(12, 4, 3)
    rank_video_segments([Scorer()], mem, range(len(mem)), np.arange(len(mem)), r, 64)
    assert rows[0] == rows[1] == list(r.rows())


def test_streamed_segment_submission_bad_input(run_cli, tmp_path, rated, checkpoint):
    import shutil

    d = tmp_path / "copy"
    d.mkdir()
    for f in rated.glob("validate*.tfrecord"):
        shutil.copy(f, d / f.name)
    cut = d / "validate0001.tfrecord"
    cut.write_bytes(cut.read_bytes()[:-100])
    out = tmp_path / "sub.csv"
    status, stdout, err = run_cli("video", "predict", "--checkpoint", checkpoint, "--data", d / "validate*.tfrecord",
                                  "--out", out, "--stream", "on")
    assert status == 2 and err.count("\n") == 1 and "validate0001.tfrecord: record" in err, err
    assert not out.exists()
    empty = tmp_path / "ids.csv"
    empty.write_text("Index\n")
    status, stdout, err = run_cli("video", "predict", "--checkpoint", checkpoint, "--data",
                                  rated / "validate*.tfrecord", "--out", out, "--stream", "on",
                                  "--segment-classes", empty)
    assert status == 2 and err.count("\n") == 1 and "ids.csv: no class ids" in err, err
    status, stdout, err = run_cli("video", "predict", "--checkpoint", checkpoint, "--data",
                                  rated / "validate*.tfrecord", "--out", out, "--stream", "on", "--segment-k", "0")
    assert status == 2 and err.count("\n") == 1 and "--segment-k 0" in err, err
    assert not out.exists()


def test_streamed_eval_scores_segments_on_every_frame_under_eval_sampling(run_cli, tmp_path, rated, checkpoint):
    """eval_sampling picks the frames the video-level scores see; the rated
    segments are still scored on their own 5 frames, streamed or not."""
    import shutil

    from triptych.files import atomic_write_text

    sampled = tmp_path / "sampled"
    shutil.copytree(checkpoint, sampled)
    text = (sampled / "config.yaml").read_text()
    assert "eval_sampling: all" in text
    atomic_write_text(sampled / "config.yaml", text.replace("eval_sampling: all", "eval_sampling: random"))
    got = {}
    for mode in ("off", "on"):
        status, out, err = run_cli("video", "eval", "--checkpoint", sampled, "--data", rated / "validate*.tfrecord",
                                   "--stream", mode, "--json", "--segment-k", "50")
        assert status == 0, err
        got[mode] = json.loads(out)
    assert got["on"]["rated_segments"] == got["off"]["rated_segments"] > 0
    assert got["on"]["segment_map"] == pytest.approx(got["off"]["segment_map"], rel=1e-5)
