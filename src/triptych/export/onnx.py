"""`triptych export RUN_DIR --format onnx`: a trained run as ONNX graphs for onnxruntime.

What each domain exports (into OUT, default RUN_DIR/onnx/, with `export.json`
describing inputs, outputs and what the model needs around them):

- vision: `model.onnx`, images (B, C, S, S) normalised as in evaluation -> logits (B, classes);
  `export.json` holds the class names, mean/std and image size.
- video: `model.onnx`; frame level rgb (B, T, 1024), audio (B, T, 128), mask (B, T)
  -> probs (B, classes); video level mean_rgb (B, 1024), mean_audio (B, 128) -> probs.
  Batch and frame axes are dynamic.
- text: `encoder.onnx`, `decoder_step.onnx` and `tokenizer.json` (see `seq2seq.py`);
  `ort_greedy.py` decodes with them without torch.

Why the TorchScript exporter (`torch.onnx.export(..., dynamo=False)`): in
torch 2.13 it still exists (deprecated, it warns) beside the default dynamo
exporter (torch.export + onnxscript). The dynamo exporter refuses every
frame-level video model with learnable pooling: `pooling.masked_frames` runs
its layers on the real frames only, picked by a boolean mask, a
data-dependent shape that torch.export does not trace without rewriting the
models. The tracer records the same indexing as NonZero/GatherND and the
graphs match PyTorch to ~1e-7; it is also ~10x faster (0.4 s against 4.5 s
for LeNet-5), which keeps the export tests to seconds. A tracer records one
path through Python control flow, so the wrappers here and in `seq2seq.py`
keep data-dependent branches out of the traced code, and every export is
checked against PyTorch on inputs of another shape than the traced ones
(`max_abs_diff` in the summary).

Recurrent video models (`lstm`, `gru`) pool with the final state of an RNN
run over packed frames; neither exporter handles PackedSequence (the tracer
fails inside the exporter, torch.export cannot trace the packing). They
export through `RNNLastState`, an exact equivalent without packing.

What cannot export (refused with one clear line): text families other than
the Transformer (the RNN and ConvS2S have no one-step graphs yet).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from pathlib import Path

import torch

from triptych.errors import SettingError, UserError
from triptych.export.graph import OPSET, max_abs_diff, session, trace  # noqa: F401  (the export's tools, also used from here)
from triptych.export.manifest import FORMAT, MANIFEST, VERSION

FORMATS = ("onnx",)


# ------------------------------------------------------------------ shared machinery


def find_checkpoint(run_dir: str | os.PathLike) -> Path:
    """The checkpoint to export: RUN_DIR itself if it is one, else its best/, else its latest."""
    from triptych.engine.checkpoint import META, latest_checkpoint, resolve

    d = Path(run_dir)
    if not d.is_dir():
        raise UserError(f"{d}: no such run directory")
    if (resolve(d) / META).is_file():
        return resolve(d)
    if (resolve(d / "best") / META).is_file():
        return resolve(d / "best")
    latest = latest_checkpoint(d)
    if latest is None:
        raise UserError(f"{d}: not a run directory or checkpoint (no best/ and no checkpoints/)")
    return latest


def _install(tmp: Path, dest: Path) -> None:
    """Rename the finished export `tmp` onto `dest`; an earlier export there is replaced whole."""
    if dest.exists():
        if not dest.is_dir() or (any(dest.iterdir()) and not (dest / MANIFEST).is_file()):
            raise SettingError(f"{dest}: exists and is not a triptych ONNX export; pick another {{out}}")
        aside = dest.with_name(f".{dest.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(dest, aside)
        os.replace(tmp, dest)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(tmp, dest)


def export_run(run_dir: str | os.PathLike, out: str | os.PathLike | None = None, fmt: str = "onnx") -> dict:
    """Export a run's checkpoint to OUT (built aside, renamed into place); returns the manifest."""
    from triptych.engine.checkpoint import load_checkpoint_meta

    if fmt not in FORMATS:
        raise SettingError(f"{{format}} {fmt}: not supported (supported: {', '.join(FORMATS)})")
    ckpt = find_checkpoint(run_dir)
    meta, config = load_checkpoint_meta(ckpt)
    domain = meta.get("domain")
    exporters = {"vision": export_vision, "video": export_video, "text": _export_text}
    if domain not in exporters:
        raise UserError(f"{ckpt}: a {domain!r} checkpoint; export knows {', '.join(exporters)}")
    dest = Path(out) if out is not None else Path(run_dir) / "onnx"
    if dest.exists() and not dest.is_dir():
        raise UserError(f"{dest}: exists and is not a directory")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        manifest = {"format": FORMAT, "version": VERSION, "domain": domain, "checkpoint": str(ckpt),
                    "step": meta.get("step"), "opset": OPSET, **exporters[domain](ckpt, tmp)}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        _install(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if manifest["max_abs_diff"] > 1e-4:
        print(f"triptych: warning: {dest}: onnxruntime differs from PyTorch by {manifest['max_abs_diff']:.2g}",
              file=sys.stderr)
    return {**manifest, "out": str(dest)}


# ------------------------------------------------------------------ vision


def export_vision(ckpt: Path, out: Path) -> dict:
    """model.onnx: normalised images (B, C, S, S) -> logits (B, classes)."""
    from triptych.vision.predictor import Classifier

    clf = Classifier(ckpt)
    size, channels = clf.cfg.data.image_size, clf.channels
    path = out / "model.onnx"
    trace(clf.model, (torch.zeros(2, channels, size, size),), path, ["images"], ["logits"],
          {"images": {0: "batch"}, "logits": {0: "batch"}})
    x = torch.randn(3, channels, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = clf.model(x)
    diff = max_abs_diff(session(path).run(None, {"images": x.numpy()}), [ref])
    return {"family": clf.name, "files": ["model.onnx"], "max_abs_diff": diff,
            "inputs": {"images": ["batch", channels, size, size]}, "outputs": {"logits": ["batch", len(clf.classes)]},
            "classes": clf.classes, "mean": clf.cfg.data.mean, "std": clf.cfg.data.std, "image_size": size}


# ------------------------------------------------------------------ video


class FrameLevel(torch.nn.Module):
    """Positional inputs for the tracer: (rgb, audio, mask) -> probs."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, rgb, audio, mask):  # (B, T, 1024), (B, T, 128), (B, T) -> (B, C)
        return self.model({"rgb": rgb, "audio": audio, "mask": mask})["probs"]


class VideoLevel(FrameLevel):
    def forward(self, mean_rgb, mean_audio):  # (B, 1024), (B, 128) -> (B, C)
        return self.model({"rgb": mean_rgb, "audio": mean_audio})["probs"]


def video_inputs(level: str, batch: int, frames: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random inputs in the model's layout; frame level with videos of every length 1..frames."""
    from triptych.video.io.yt8m import AUDIO_DIM, RGB_DIM

    g = torch.Generator().manual_seed(seed)
    if level == "video":
        return {"mean_rgb": torch.randn(batch, RGB_DIM, generator=g), "mean_audio": torch.randn(batch, AUDIO_DIM, generator=g)}
    lengths = torch.arange(batch) % frames + 1
    mask = (torch.arange(frames)[None, :] < lengths[:, None]).float()  # (B, T): ragged, as real batches are
    return {"rgb": torch.randn(batch, frames, RGB_DIM, generator=g) * mask[..., None],
            "audio": torch.randn(batch, frames, AUDIO_DIM, generator=g) * mask[..., None], "mask": mask}


class RNNLastState(torch.nn.Module):
    """`pooling.RNNPool` without packing: the last layer's output at each video's last real frame.

    Frames are right-padded and the RNN runs forwards, so its output at frame
    t depends on frames 0..t only: at the last real frame it is the final
    state that the packed run returns (an empty video counts one frame, as
    RNNPool's clamp does). Tested against RNNPool itself.
    """

    def __init__(self, pool):
        super().__init__()
        self.rnn, self.out_dim = pool.rnn, pool.out_dim

    def forward(self, x, mask):  # (B, T, D), (B, T) -> (B, H)
        out, _ = self.rnn(x)  # (B, T, H)
        last = mask.sum(1).clamp(min=1).long() - 1  # (B,) index of the last real frame
        return out[torch.arange(out.size(0)), last]


def video_graph(model) -> torch.nn.Module:
    """The traceable wrapper of a VideoModel (a copy with RNNLastState where it pools with an RNN)."""
    import copy

    from triptych.video.pooling import RNNPool

    if model.pools is not None and any(isinstance(p, RNNPool) for p in model.pools):
        model = copy.deepcopy(model)
        for i, pool in enumerate(model.pools):
            if isinstance(pool, RNNPool):
                model.pools[i] = RNNLastState(pool)
    return (VideoLevel if model.cfg.level == "video" else FrameLevel)(model).eval()


def export_video(ckpt: Path, out: Path) -> dict:
    """model.onnx: frame features (+ mask) or video features -> probs (B, classes)."""
    from triptych.video.predictor import VideoPredictor

    loaded = VideoPredictor(ckpt)
    mcfg = loaded.model_cfg
    graph = video_graph(loaded.model)
    example = video_inputs(mcfg.level, 2, 3)
    names = list(example)
    axes = {n: ({0: "batch"} if mcfg.level == "video" else {0: "batch", 1: "frames"}) for n in names}
    path = out / "model.onnx"
    trace(graph, tuple(example.values()), path, names, ["probs"], {**axes, "probs": {0: "batch"}})
    check = video_inputs(mcfg.level, 5, 7, seed=1)
    with torch.no_grad():
        ref = graph(*check.values())
    diff = max_abs_diff(session(path).run(None, {k: v.numpy() for k, v in check.items()}), [ref])
    dims = {n: ["batch", *(["frames"] if mcfg.level == "frame" else []), *t.shape[2 if mcfg.level == "frame" else 1:]]
            for n, t in example.items()}
    return {"family": mcfg.name, "level": mcfg.level, "files": ["model.onnx"], "max_abs_diff": diff,
            "inputs": {n: [d if isinstance(d, str) else int(d) for d in v] for n, v in dims.items()},
            "outputs": {"probs": ["batch", mcfg.num_classes]}, "num_classes": mcfg.num_classes,
            "note": "features dequantized as the reader does (floats); mask is 1 for real frames, 0 for padding"}


def _export_text(ckpt: Path, out: Path) -> dict:
    from triptych.export.seq2seq import export_text

    return export_text(ckpt, out)
