"""Classical encodings vs their learnable versions on the synthetic frame-level set.

Rows: bag of words, VLAD and improved Fisher vectors (codebooks fitted on
training frames) + an MoE head; NetVLAD and NetFV (with Context Gating
after the hidden layer and on the head, as gated-netvlad) trained end to
end from random centres and from k-means / GMM centres. Same clusters
(rgb K, audio K/2), same data, validation GAP@20 and wall seconds (the
machine was shared: compare the rows of one run, not runs).

    .venv/bin/python benchmarks/video_classical.py [--videos 1000] [--clusters 16] [--steps 200]

Prints a Markdown table, then one JSON line; "ratio" is the best learnable
row's GAP over the best classical row's.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def data(videos: int, classes: int) -> Path:
    from triptych.video.synth import SynthSpec, synthesize

    d = ROOT / "runs" / "video" / f"bench-classical-{videos}-{classes}"
    if not (d / "synth.json").is_file():
        synthesize(d, SynthSpec(videos=videos, valid_videos=videos // 4, classes=classes, min_frames=20,
                                max_frames=40, seed=0))
    return d


def classical_row(d: Path, encoding: str, clusters: int, classes: int, epochs: int) -> dict:
    from triptych.video import classical
    from triptych.video.io.yt8m import VideoSet, read_videos

    t = time.perf_counter()
    train = VideoSet(read_videos(d / "train0000.tfrecord", num_classes=classes), classes)
    valid = VideoSet(read_videos(d / "validate0000.tfrecord", num_classes=classes), classes)
    books = classical.fit(train, encoding, clusters, 20_000, 0)
    x_tr, x_va = classical.encode(train, books), classical.encode(valid, books)
    y_tr, y_va = train.multi_hot(range(len(train))), valid.multi_hot(range(len(valid)))
    m = classical.train_head(x_tr, y_tr, x_va, y_va, "moe", epochs=epochs, lr=1e-3)
    return {"model": f"{encoding} + MoE", "init": "-", "gap": round(m["gap"], 4), "seconds": round(time.perf_counter() - t, 1)}


def learnable_row(d: Path, name: str, init: str, clusters: int, classes: int, steps: int) -> dict:
    import torch

    from triptych.engine.trainer import train
    from triptych.video.config import VideoConfig, VideoDataConfig
    from triptych.video.task import VideoTask

    torch.manual_seed(0)
    t = time.perf_counter()
    cfg = VideoConfig(data=VideoDataConfig(train=str(d / "train*"), valid=str(d / "validate*"), num_classes=classes,
                                           frames=16, batch_size=32, stream=False),
                      model={"name": name, "clusters": clusters, "hidden": 64, "centre_init": init})
    cfg.train.max_steps, cfg.train.eval_every, cfg.train.save_every = steps, steps, 0
    cfg.train.warmup_steps, cfg.train.lr, cfg.train.log_every = 10, 1e-3, 50
    task = VideoTask(cfg)
    s = train(task, cfg.train, ROOT / "runs" / "video" / f"bench-classical-{name}-{init}", full_config=cfg,
              progress=False)
    return {"model": name, "init": {"random": "random", "data": getattr(task, "centre_init", init)}[init],
            "gap": round(s["final_metrics"]["gap"], 4), "seconds": round(time.perf_counter() - t, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--videos", type=int, default=1000)
    p.add_argument("--classes", type=int, default=20)
    p.add_argument("--clusters", type=int, default=16)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--epochs", type=int, default=30)
    a = p.parse_args()
    d = data(a.videos, a.classes)
    rows = [classical_row(d, e, a.clusters, a.classes, a.epochs) for e in ("bow", "vlad", "fv")]
    for name in ("gated-netvlad", "gated-netfv"):
        for init in ("random", "data"):
            rows.append(learnable_row(d, name, init, a.clusters, a.classes, a.steps))
    print("| model | centres | GAP@20 | seconds |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['init']} | {r['gap']:.4f} | {r['seconds']} |")
    best_c = max(r["gap"] for r in rows[:3])
    best_l = max(r["gap"] for r in rows[3:])
    from triptych.hardware import describe

    print(json.dumps({"machine": describe(), "rows": rows, "ratio": round(best_l / max(best_c, 1e-9), 3), "videos": a.videos,
                      "clusters": a.clusters, "steps": a.steps}))


if __name__ == "__main__":
    main()
