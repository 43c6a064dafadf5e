"""Classical encodings vs their learnable versions: synthetic frame-level set, or digit videos.

Rows: bag of words, VLAD and improved Fisher vectors (codebooks fitted on
training frames) + an MoE head; NetVLAD and NetFV (with Context Gating
after the hidden layer and on the head, as gated-netvlad) trained end to
end from random centres and from k-means / GMM centres. Same clusters
(rgb K, audio K/2), same data, validation GAP@20 and wall seconds (the
machine was shared: compare the rows of one run, not runs).

    .venv/bin/python benchmarks/video_classical.py [--videos 1000] [--clusters 16] [--steps 200]
    .venv/bin/python benchmarks/video_classical.py --data digits [--videos 1000] [--threads 1]

--data synth (default): the synthetic frame-level set (video/synth.py),
20 classes, 20-40 frames. --data digits: the digit videos (video/digits.py:
real handwritten digits, 1-3 a video, 16-32 frames, 10 classes) through
the LeNet-5 of configs/vision/lenet5-digits.yaml (trained here first if
runs/vision/lenet5-digits/best is missing), its 84 penultimate values a
frame whitened by PCA into the rgb bytes, as configs/video/digits-*.yaml
describe; the learnable rows see every frame (a digit may be on screen for
3 of them), as those recipes do. Data and features are made once under
runs/video/.

Prints a Markdown table, then one JSON line; "ratio" is the best learnable
row's GAP over the best classical row's.
"""

from __future__ import annotations

import argparse
import json
import sys
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


def digits_data(videos: int) -> Path:
    """Digit videos -> LeNet-5 features -> PCA (whitened) -> uint8 TFRecords; the features' folder."""
    from triptych.video.digits import DigitSpec, make_digit_videos
    from triptych.video.features import extract_features

    d = ROOT / "runs" / "video" / f"bench-classical-digits-{videos}"
    feats = d / "features"
    if (feats / "validate.json").is_file():
        return feats
    cnn = ROOT / "runs" / "vision" / "lenet5-digits"
    if not (cnn / "best").is_dir():
        from triptych.vision.train import run_training

        print(f"training LeNet-5 on the digits into {cnn} ...", file=sys.stderr)
        run_training(str(ROOT / "configs" / "vision" / "lenet5-digits.yaml"), out=str(cnn), progress=False)
    make_digit_videos(d / "frames", DigitSpec(videos=videos, valid_videos=videos // 4, seed=0))
    extract_features(cnn / "best", d / "frames" / "train", feats, whiten=True, progress=False)
    extract_features(cnn / "best", d / "frames" / "validate", feats, pca=feats / "pca.npz", progress=False)
    return feats


def classical_row(d: Path, encoding: str, clusters: int, classes: int, epochs: int) -> dict:
    from triptych.video import classical

    r = classical.run(d / "train0000.tfrecord", d / "validate0000.tfrecord", encoding=encoding, clusters=clusters,
                      head="moe", classes=classes, fit_frames=20_000, epochs=epochs, lr=1e-3, seed=0)
    return {"model": f"{encoding} + MoE", "init": "-", "gap": round(r["gap"], 4), "seconds": r["seconds"]}


def learnable_row(d: Path, name: str, init: str, clusters: int, classes: int, steps: int,
                  sampling: str = "random", tag: str = "") -> dict:
    import torch

    from triptych.engine.trainer import train
    from triptych.video.config import VideoConfig, VideoDataConfig
    from triptych.video.task import VideoTask

    torch.manual_seed(0)
    t = time.perf_counter()
    cfg = VideoConfig(data=VideoDataConfig(train=str(d / "train*.tfrecord"), valid=str(d / "validate*.tfrecord"), num_classes=classes,
                                           sampling=sampling, frames=16, batch_size=32, stream=False),
                      model={"name": name, "clusters": clusters, "hidden": 64, "centre_init": init})
    cfg.train.max_steps, cfg.train.eval_every, cfg.train.save_every = steps, steps, 0
    cfg.train.warmup_steps, cfg.train.lr, cfg.train.log_every = 10, 1e-3, 50
    cfg.train.threads = torch.get_num_threads()
    task = VideoTask(cfg)
    s = train(task, cfg.train, ROOT / "runs" / "video" / f"bench-classical-{tag}{name}-{init}", full_config=cfg,
              progress=False)
    return {"model": name, "init": {"random": "random", "data": getattr(task, "centre_init", init)}[init],
            "gap": round(s["final_metrics"]["gap"], 4), "seconds": round(time.perf_counter() - t, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", choices=["synth", "digits"], default="synth")
    p.add_argument("--videos", type=int, default=1000)
    p.add_argument("--classes", type=int, default=20, help="synth only (the digits have 10)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--clusters", type=int, default=16)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--epochs", type=int, default=30)
    a = p.parse_args()
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    if a.data == "digits":
        d, classes, sampling, tag = digits_data(a.videos), 10, "all", "digits-"
    else:
        d, classes, sampling, tag = data(a.videos, a.classes), a.classes, "random", ""
    rows = [classical_row(d, e, a.clusters, classes, a.epochs) for e in ("bow", "vlad", "fv")]
    for name in ("gated-netvlad", "gated-netfv"):
        for init in ("random", "data"):
            rows.append(learnable_row(d, name, init, a.clusters, classes, a.steps, sampling, tag))
    print("| model | centres | GAP@20 | seconds |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['init']} | {r['gap']:.4f} | {r['seconds']} |")
    best_c = max(r["gap"] for r in rows[:3])
    best_l = max(r["gap"] for r in rows[3:])
    from triptych.hardware import describe

    print(json.dumps({"machine": describe(), "data": a.data, "rows": rows, "ratio": round(best_l / max(best_c, 1e-9), 3),
                      "videos": a.videos, "clusters": a.clusters, "steps": a.steps}))


if __name__ == "__main__":
    main()
