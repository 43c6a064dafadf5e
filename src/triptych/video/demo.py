"""The video part of `triptych demo`: learnable pooling vs mean pooling, in minutes.

Writes a small synthetic frame-level set in the official YouTube-8M layout
(see video/synth.py: labels are pattern pairs that must co-occur in the
same frames, and decoys put the same patterns in different frames), trains
mean pooling + MoE and NetVLAD + Context Gating on it for the same time,
and reports their GAP@20 side by side. Mean pooling cannot tell a decoy
from a label; NetVLAD's per-frame cluster assignment can.
"""

from __future__ import annotations

import sys
from pathlib import Path

SPEC = dict(videos=2000, valid_videos=500, classes=50, min_frames=20, max_frames=40, seed=0)
MODELS = (
    ("mean-moe", "mean pooling + MoE", {}),
    ("gated-netvlad", "NetVLAD + Context Gating", {"clusters": 16, "hidden": 256}),
)


def _config(data_dir: Path, name: str, overrides: dict, minutes: float):
    from triptych.config import TrainConfig
    from triptych.video.config import VideoConfig, VideoDataConfig

    return VideoConfig(
        seed=1,
        data=VideoDataConfig(train=str(data_dir / "train*.tfrecord"), valid=str(data_dir / "validate*.tfrecord"),
                             num_classes=SPEC["classes"], sampling="random", frames=32, batch_size=64),
        model={"name": name, **overrides},
        train=TrainConfig(lr=1e-3, weight_decay=0.0, betas=(0.9, 0.999), warmup_steps=50, schedule="cosine",
                          max_steps=100_000, max_minutes=minutes, eval_every=200, save_every=100_000,
                          clip_norm=None, metric="gap", metric_mode="max", threads=None),
    )


def run(out_dir: Path, minutes: float = 2.0, log=None) -> dict:
    """Synthesise, train both models (minutes/2 each), return {model: metrics} and a table.

    `out_dir` receives data/ and one run directory per model; `log` (default:
    print to stderr) gets the progress lines and the final table.
    """
    import shutil

    from triptych.video.synth import SynthSpec, synthesize
    from triptych.video.task import VideoTask
    from triptych.video.train import run_training

    log = log or (lambda line: print(line, file=sys.stderr))
    out_dir = Path(out_dir)
    data_dir = out_dir / "data"
    log(f"video: writing {SPEC['videos']} + {SPEC['valid_videos']} synthetic frame-level videos to {data_dir}")
    synthesize(data_dir, SynthSpec(**SPEC))
    results = {}
    for name, title, overrides in MODELS:
        run_dir = out_dir / name
        shutil.rmtree(run_dir, ignore_errors=True)  # the demo starts afresh each time
        cfg = _config(data_dir, name, overrides, minutes / len(MODELS))
        log(f"video: training {title} for {minutes / len(MODELS):.1f} min")
        task = VideoTask(cfg)
        summary = run_training(cfg=cfg, task=task, out=str(run_dir), progress=False)
        best = summary.get("final_metrics") or {}
        if summary.get("best_dir"):
            from triptych.engine.checkpoint import load_checkpoint_meta

            best = load_checkpoint_meta(summary["best_dir"], "video")[0].get("metrics") or best
        results[name] = {"title": title, "gap": best.get("gap"), "hit_at_one": best.get("hit_at_one"),
                         "map": best.get("map"), "steps": summary.get("steps"), "params": summary.get("params"),
                         "run_dir": str(run_dir)}
    lines = [f"{'model':<28} {'GAP@20':>7} {'Hit@1':>7} {'mAP':>7} {'steps':>6}"]
    for r in results.values():
        lines.append(f"{r['title']:<28} {r['gap']:>7.4f} {r['hit_at_one']:>7.4f} {r['map']:>7.4f} {r['steps']:>6}")
    table = "\n".join(lines)
    log(table)
    return {"data": str(data_dir), "models": results, "table": table}
