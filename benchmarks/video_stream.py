"""Streaming YouTube-8M: memory flat with the set's size, and the pipeline's speed.

Two measurements, each in a fresh process so that its peak resident memory
(ru_maxrss) is its own:

  rss         peak RSS of Gated NetVLAD (K=64) training for --steps steps
              and of a streamed evaluation over the whole set, on a
              synthetic frame-level set of --videos videos (main process,
              and the largest DataLoader worker);
  throughput  videos/s of the input pipeline alone (stream -> batches) and
              of training, with 0, 1 and 2 workers, side by side in one run.

Data: 2,000 videos of `triptych video synth` in the official layout
(20-60 frames, --classes 100), written once under runs/video/bench-stream/
and repeated by hard links up to --videos. Model: gated-netvlad with
clusters 64 and --hidden 64 (the shape of the recipe at a size a shared
CPU steps through quickly; memory that grows with the data would show at
any model size).

    .venv/bin/python benchmarks/video_stream.py rss --videos 2000
    .venv/bin/python benchmarks/video_stream.py rss --videos 100000 --delete
    .venv/bin/python benchmarks/video_stream.py throughput --videos 2000

Prints its figures last as one JSON line. For `throughput`, "ratio" is
training videos/s with the recipe's 2 workers over the pipeline's own
videos/s with 2 workers: below 1 means the model, not the input, is the
bottleneck (training is not input-bound).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


BASE_VIDEOS, BASE_SHARDS = 2000, 4


def data_dir(videos: int, classes: int) -> Path:
    """A set of `videos` videos: 2,000 synthetic ones written once (4 shards of
    500), repeated by hard links to reach the size (the stream reads every
    link as its own shard; the bytes on disk are written once)."""
    from triptych.video.synth import SynthSpec, synthesize

    root = ROOT / "runs" / "video" / "bench-stream"
    base = root / f"base-{classes}"
    if not (base / "synth.json").is_file():
        t = time.perf_counter()
        synthesize(base, SynthSpec(videos=BASE_VIDEOS, valid_videos=0, shards=BASE_SHARDS, classes=classes, seed=0))
        print(f"wrote {BASE_VIDEOS} videos to {base} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    if videos % (BASE_VIDEOS // BASE_SHARDS):
        raise SystemExit(f"--videos must be a multiple of {BASE_VIDEOS // BASE_SHARDS}")
    d = root / f"set-{videos}-{classes}"
    d.mkdir(parents=True, exist_ok=True)
    for i in range(videos // (BASE_VIDEOS // BASE_SHARDS)):
        link = d / f"train{i:05d}.tfrecord"
        if not link.exists():
            link.hardlink_to(base / f"train{i % BASE_SHARDS:04d}.tfrecord")
    return d


def config(d: Path, workers: int, hidden: int, classes: int):
    from triptych.video.config import VideoConfig, VideoDataConfig

    cfg = VideoConfig(data=VideoDataConfig(train=str(d / "train*"), valid=str(d / "train*"), sampling="random",
                                           frames=32, batch_size=80, stream=True, workers=workers,
                                           num_classes=classes),
                      model={"name": "gated-netvlad", "clusters": 64, "hidden": hidden})
    cfg.train.eval_every = 0
    cfg.train.save_every = 0
    cfg.train.eval_at_end = False
    cfg.train.log_every = 10
    cfg.train.warmup_steps = 0
    return cfg


def children_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def one_rss(kind: str, videos: int, steps: int, hidden: int, classes: int) -> dict:
    """Run in a child process: peak RSS of training or evaluation."""
    import torch

    from triptych.engine import memory
    from triptych.video.task import VideoTask

    torch.set_num_threads(2)
    d = data_dir(videos, classes)
    cfg = config(d, workers=2, hidden=hidden, classes=classes)
    task = VideoTask(cfg)
    t = time.perf_counter()
    if kind == "train":
        from triptych.engine.trainer import train

        cfg.train.max_steps = steps
        s = train(task, cfg.train, ROOT / "runs" / "video" / "bench-stream" / f"run-{videos}", full_config=cfg,
                  progress=False)
        done = {"steps": s["steps"]}
    else:
        from triptych.video.stream_eval import evaluate_stream

        files, counts, _ = task.valid_stream
        m = evaluate_stream(task.model, files, counts, cfg, "cpu", task.stats)
        done = {"gap": round(m["gap"], 4), "videos_scored": sum(counts)}
    return {"kind": kind, "videos": videos, **done, "seconds": round(time.perf_counter() - t, 1),
            "peak_rss_mb": round(memory.peak_rss_mb(), 1), "worker_peak_rss_mb": round(children_peak_mb(), 1)}


def throughput(videos: int, steps: int, hidden: int, classes: int) -> dict:
    """videos/s of the pipeline alone and of training, 0/1/2 workers, in this process."""
    import torch

    from triptych.engine.trainer import train
    from triptych.video.streaming import collate_items
    from triptych.video.task import VideoTask

    torch.set_num_threads(2)
    d = data_dir(videos, classes)
    out = {}
    for workers in (0, 1, 2):
        cfg = config(d, workers, hidden, classes)
        task = VideoTask(cfg)
        plan = task.batch_plan(0)[: steps * 2]
        t = time.perf_counter()
        n = 0
        for slots in plan:
            batch = collate_items(task.train_stream.take(slots), cfg.data.num_classes, "frame")
            n += len(batch["labels"])
        out[f"pipeline_w{workers}"] = round(n / (time.perf_counter() - t), 1)
        cfg.train.max_steps = steps
        run = ROOT / "runs" / "video" / "bench-stream" / f"tp-{workers}"
        s = train(VideoTask(cfg), cfg.train, run, full_config=cfg, progress=False)
        rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        rates = [r["video/s"] for r in rows if r["kind"] == "train"][1:]  # the first window holds start-up
        out[f"train_w{workers}"] = round(sum(rates) / len(rates), 1) if rates else None
        out[f"steps_w{workers}"] = s["steps"]
    cfg = config(d, 0, hidden, classes)
    cfg.data.stream = False  # the same set held in memory, for comparison
    cfg.train.max_steps = steps
    run = ROOT / "runs" / "video" / "bench-stream" / "tp-memory"
    train(VideoTask(cfg), cfg.train, run, full_config=cfg, progress=False)
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    rates = [r["video/s"] for r in rows if r["kind"] == "train"][1:]
    out["train_memory"] = round(sum(rates) / len(rates), 1) if rates else None
    out["ratio"] = round(out["train_w2"] / out["pipeline_w2"], 3)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("what", choices=["rss", "throughput", "_one"])
    p.add_argument("--videos", type=int, default=2000)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--hidden", type=int, default=64, help="the model's hidden size (the recipe's 1024 is slower)")
    p.add_argument("--classes", type=int, default=100, help="classes of the synthetic set (3862 is slower to write)")
    p.add_argument("--kind", default="train")
    p.add_argument("--delete", action="store_true", help="remove the set's directory afterwards")
    p.add_argument("--only", choices=["train", "eval"], help="measure one of the two")
    a = p.parse_args()
    if a.what == "_one":
        print(json.dumps(one_rss(a.kind, a.videos, a.steps, a.hidden, a.classes)))
        return
    if a.what == "throughput":
        from triptych.hardware import describe

        print(json.dumps({**throughput(a.videos, a.steps, a.hidden, a.classes), "machine": describe()}))
        return
    d = data_dir(a.videos, a.classes)
    rows = []
    for kind in [a.only] if a.only else ["train", "eval"]:
        done = subprocess.run([sys.executable, __file__, "_one", "--kind", kind, "--videos", str(a.videos),
                               "--steps", str(a.steps), "--hidden", str(a.hidden), "--classes", str(a.classes)],
                              capture_output=True, text=True, cwd=ROOT)
        if done.returncode:
            raise SystemExit(done.stderr[-3000:])
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    if a.delete:
        import shutil

        shutil.rmtree(d)
    from triptych.hardware import describe

    print(json.dumps({"machine": describe(), "rss": rows, "set_bytes": sum(f.stat().st_size for f in d.glob("*")) if d.exists() else None}))


if __name__ == "__main__":
    main()
