"""The 2019 segment metric against a slow implementation of its definition,
and `video eval` / `video predict` on 2019 segment-rated files."""

import json

import numpy as np
import pytest

from triptych.video.segments import segment_map
from triptych.video.synth import SynthSpec, synthesize


def slow_segment_map(scores, labels, ratings, k):
    """From the definition: per class, rated segments by score (ties in
    record order), cut at k; sum of precision@i at positives over all the
    class's positives; mean over classes with positives."""
    aps = []
    for c in sorted(set(labels.tolist())):
        items = [(-float(scores[i]), i, ratings[i] > 0) for i in range(len(scores)) if labels[i] == c]
        total = sum(p for _, _, p in items)
        if total == 0:
            continue
        items.sort()
        hits, ap = 0, 0.0
        for rank, (_, _, positive) in enumerate(items[:k], start=1):
            if positive:
                hits += 1
                ap += hits / rank
        aps.append(ap / total)
    return float(np.mean(aps)) if aps else 0.0


@pytest.mark.parametrize("seed", range(6))
def test_segment_map_matches_the_definition(seed):
    rng = np.random.default_rng(seed)
    M = int(rng.integers(1, 300))
    labels = rng.integers(0, 9, M)
    ratings = (rng.random(M) < 0.4).astype(np.float32)
    scores = np.round(rng.random(M), 1 if seed % 2 else 6).astype(np.float32)  # odd seeds: many ties
    for k in (1, 3, 10, 100_000):
        assert segment_map(scores, labels, ratings, k) == pytest.approx(slow_segment_map(scores, labels, ratings, k))


def test_segment_map_known_values():
    # class 0: ranked +, -, + of 3 positives (one unranked beyond k=3): (1 + 2/3) / 3; class 1: no positives.
    scores = np.array([0.9, 0.8, 0.7, 0.1, 0.5], np.float32)
    labels = np.array([0, 0, 0, 0, 1])
    ratings = np.array([1, 0, 1, 1, 0], np.float32)
    assert segment_map(scores, labels, ratings, 3) == pytest.approx((1 + 2 / 3) / 3)
    assert segment_map(scores, labels, ratings, 4) == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)


def test_eval_and_predict_on_2019_files(run_cli, tmp_path, rated, checkpoint):
    ckpt = checkpoint
    status, out, err = run_cli("video", "eval", "--checkpoint", ckpt, "--data", rated / "validate0000.tfrecord",
                               "--json", "--segment-k", "5")
    assert status == 0, err
    result = json.loads(out)
    assert 0 <= result["gap"] <= 1 and 0 <= result["segment_map"] <= 1 and result["segment_k"] == 5
    from triptych.video.io.yt8m import read_videos
    videos = list(read_videos(rated / "validate0000.tfrecord"))
    assert result["rated_segments"] == sum(len(v.segments) for v in videos)

    csv = tmp_path / "seg.csv"
    status, out, err = run_cli("video", "predict", "--checkpoint", ckpt, "--data", rated / "validate0000.tfrecord",
                               "--out", csv, "--json", "--segment-k", "7", "--top-k", "3")
    assert status == 0, err
    lines = csv.read_text().splitlines()
    assert lines[0] == "Class,Segments" and json.loads(out)["submission"] == "segments"
    frames = {v.id: v.frames for v in videos}
    classes = []
    for line in lines[1:]:
        cls, segs = line.split(",")
        classes.append(int(cls))
        segs = segs.split(" ")
        assert 1 <= len(segs) <= 7
        for s in segs:
            vid, start = s.rsplit(":", 1)
            assert int(start) % 5 == 0 and int(start) < frames[vid]
    assert classes == sorted(classes) and all(0 <= c < 12 for c in classes)
    whitelist = tmp_path / "ids.csv"
    whitelist.write_text("Index\n3\n5\n")
    status, out, err = run_cli("video", "predict", "--checkpoint", ckpt, "--data", rated / "validate0000.tfrecord",
                               "--out", csv, "--segment-classes", whitelist)
    assert status == 0, err
    assert [ln.split(",")[0] for ln in csv.read_text().splitlines()[1:]] == ["3", "5"]
    status, out, err = run_cli("video", "predict", "--checkpoint", ckpt, "--data", rated / "validate0000.tfrecord",
                               "--out", csv, "--submission", "videos")
    assert status == 0 and csv.read_text().startswith("VideoId,LabelConfidencePairs\n")
