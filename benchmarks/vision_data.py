"""Photo input pipeline images/s: triptych's folder loader against torchvision's ImageFolder + transforms.

The same generated ImageFolder tree (2,000 JPEGs, 10 classes, sides drawn
from 300-800 pixels), the same training transform (random-resized crop to
224 with scale (0.08, 1), horizontal flip, tensor, ImageNet mean/std), the
same batch and the same number of DataLoader worker processes. One epoch
a round, rounds alternating ours / torchvision's; the peer runs in the
torchvision venv (benchmarks/.peers/tv, as in vision_train.py).

Where simplejpeg is installed (extra 'photos') our loader decodes JPEGs
with it (src/triptych/vision/jpeg.py); each round then also times ours
with Pillow alone (TRIPTYCH_JPEG=pillow), as "triptych_pillow_img_s".

Prints the CPU model, a line a round, and one JSON line; "ratio" =
our median images/s / torchvision's (> 1: ours faster).
    python benchmarks/vision_data.py [--images 2000] [--workers 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def make_tree(root: Path, n: int, seed: int = 0) -> None:
    """n photo-like JPEGs (a coarse random picture enlarged smoothly, plus grain) in 10 class folders."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    for i in range(n):
        w, h = (int(v) for v in rng.integers(300, 801, size=2))
        coarse = Image.fromarray(rng.integers(0, 256, size=(12, 12, 3)).astype(np.uint8))
        img = np.asarray(coarse.resize((w, h), Image.BICUBIC), dtype=np.int16)
        img = (img + rng.integers(-10, 11, size=(h, w, 1))).clip(0, 255).astype(np.uint8)
        folder = root / f"class{i % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"{i:05d}.jpg", quality=90)


def peer_round(root: str, batch: int, workers: int) -> float:
    """In the torchvision venv: one epoch of ImageFolder + transforms through a DataLoader."""
    import torch
    from torchvision import datasets, transforms

    torch.set_num_threads(1)
    tf = transforms.Compose([
        transforms.RandomResizedCrop(224), transforms.RandomHorizontalFlip(),
        transforms.ToTensor(), transforms.Normalize(MEAN, STD),
    ])
    data = datasets.ImageFolder(root, transform=tf)
    t0 = time.perf_counter()
    loader = torch.utils.data.DataLoader(data, batch_size=batch, shuffle=True, num_workers=workers)
    n = sum(int(x.shape[0]) for x, _ in loader)
    return n / (time.perf_counter() - t0)


def our_round(root: str, batch: int, workers: int, seed: int) -> float:
    import torch

    from triptych.vision.config import DataConfig, VisionConfig
    from triptych.vision.task import VisionTask

    torch.set_num_threads(1)
    cfg = VisionConfig(seed=seed, model={"name": "lenet5", "small_input": True},
                       data=DataConfig(name="folder", train=root, valid=root, image_size=224,
                                       batch_size=batch, crop_scale=(0.08, 1.0), workers=workers,
                                       mean=MEAN, std=STD))
    task = VisionTask(cfg)  # scans the tree and checks every header, as a training run does
    t0 = time.perf_counter()
    n = sum(int(task.collate(ix, "cpu")[0].shape[0]) for ix in task.batch_plan(0))
    return n / (time.perf_counter() - t0)


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        return "unknown"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peer", help=argparse.SUPPRESS)
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    if args.peer:
        print(json.dumps({"img_s": peer_round(args.peer, args.batch, args.workers)}))
        return
    sys.path.insert(0, str(ROOT / "src"))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from vision_train import ensure_peer

    import PIL

    print(f"cpu: {cpu_model()} ({os.cpu_count()} cores), workers {args.workers}, batch {args.batch}, "
          f"pillow {PIL.__version__}", flush=True)
    python = ensure_peer()
    from triptych.vision.jpeg import simplejpeg_module

    decoders = ["simplejpeg", "pillow"] if simplejpeg_module() is not None else ["pillow"]
    ours, ours_pillow, peer = [], [], []
    with tempfile.TemporaryDirectory(prefix="vision-data-") as tmp:
        t0 = time.perf_counter()
        make_tree(Path(tmp), args.images)
        print(f"generated {args.images} JPEGs in {time.perf_counter() - t0:.1f} s", flush=True)
        for r in range(args.rounds):
            for decoder in decoders:  # the env var reaches the worker processes
                os.environ["TRIPTYCH_JPEG"] = decoder
                (ours if decoder == decoders[0] else ours_pillow).append(our_round(tmp, args.batch, args.workers, seed=r))
            if python is not None:
                out = subprocess.run([str(python), __file__, "--peer", tmp, "--batch", str(args.batch),
                                      "--workers", str(args.workers)], check=True, capture_output=True, text=True)
                peer.append(json.loads(out.stdout.strip().splitlines()[-1])["img_s"])
            print(f"round {r + 1}: triptych ({decoders[0]}) {ours[-1]:.1f} img/s"
                  + (f", triptych (pillow) {ours_pillow[-1]:.1f} img/s" if ours_pillow else "")
                  + (f", torchvision {peer[-1]:.1f} img/s" if peer else ""), flush=True)
    result = {"benchmark": "vision_data", "images": args.images, "workers": args.workers, "batch": args.batch,
              "cpu": cpu_model(), "decoder": decoders[0], "triptych_img_s": statistics.median(ours)}
    if ours_pillow:
        result["triptych_pillow_img_s"] = statistics.median(ours_pillow)
        result["simplejpeg_over_pillow"] = result["triptych_img_s"] / result["triptych_pillow_img_s"]
    if peer:
        result["torchvision_img_s"] = statistics.median(peer)
        result["ratio"] = result["triptych_img_s"] / result["torchvision_img_s"]
    else:
        result["skipped_peer"] = "no torchvision peer venv"
    from triptych.hardware import describe

    print(json.dumps({**result, "machine": describe()}))


if __name__ == "__main__":
    main()
