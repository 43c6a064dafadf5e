"""GAP@20 of every frame-level model on the synthetic frame-level benchmark.

Data (written once to runs/video/synth-data/, the recipes' path):
    triptych video synth --out runs/video/synth-data --videos 3000 --valid-videos 600 \\
        --classes 50 --min-frames 20 --max-frames 40
Each model trains from its configs/video/<model>-synth.yaml recipe for the
same number of steps (--steps, default 400 batches of 64 = 8.5 epochs;
a step budget rather than minutes, so a busy shared machine cannot favour
one model), then its best validation GAP@20 is reported.

    .venv/bin/python benchmarks/video_gap_table.py [--steps 400] [--models a,b]

Prints a table and, last, one JSON line; "ratio" is the GAP of the best
learnable pooling with Context Gating over mean pooling + MoE's.
"""

import argparse
import json
import shutil
import time
from pathlib import Path

MODELS = ["mean-logistic", "mean-moe", "max-moe", "dbof", "lstm", "gru", "bilstm-attention",
          "soft-dbof", "gated-soft-dbof", "netrvlad", "gated-netrvlad", "netfv", "gated-netfv",
          "netvlad", "gated-netvlad"]
DATA = Path("runs/video/synth-data")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--out", default="runs/video/gap-table")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch

    from triptych.engine.checkpoint import load_checkpoint_meta
    from triptych.hardware import describe
    from triptych.video.synth import SynthSpec, synthesize
    from triptych.video.task import VideoTask
    from triptych.video.train import load_config, run_training

    torch.set_num_threads(args.threads)
    if not (DATA / "synth.json").exists():
        synthesize(DATA, SynthSpec(videos=3000, valid_videos=600, classes=50, min_frames=20, max_frames=40))
    rows = {}
    for name in args.models.split(","):
        overrides = [f"train.max_steps={args.steps}", "train.max_minutes=null", f"train.eval_every={args.steps // 4}",
                     f"train.threads={args.threads}"]
        cfg = load_config(f"configs/video/{name}-synth.yaml", overrides)
        run_dir = Path(args.out) / name
        shutil.rmtree(run_dir, ignore_errors=True)
        t = time.perf_counter()
        task = VideoTask(cfg)
        s = run_training(cfg=cfg, task=task, out=str(run_dir), progress=False)
        best = load_checkpoint_meta(s["best_dir"], "video")[0]["metrics"]
        rows[name] = {"gap": best["gap"], "hit_at_one": best["hit_at_one"], "map": best["map"],
                      "params": s["params"], "seconds": round(time.perf_counter() - t, 1)}
        print(f"{name:<18} GAP {best['gap']:.4f}  Hit@1 {best['hit_at_one']:.4f}  mAP {best['map']:.4f}  "
              f"{s['params']:>9,} params  {rows[name]['seconds']:.0f} s", flush=True)
    out = {"benchmark": "video_gap_table", "steps": args.steps, "models": rows}
    gated = [r["gap"] for n, r in rows.items() if n.startswith("gated-")]
    if gated and "mean-moe" in rows:
        out["ratio"] = round(max(gated) / rows["mean-moe"]["gap"], 3)
    print(json.dumps({**out, "machine": describe()}))


if __name__ == "__main__":
    main()
