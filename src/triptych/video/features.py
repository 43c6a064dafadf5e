"""CNN frame features for video: frames -> vision model -> PCA -> uint8 -> TFRecords.

YouTube-8M's frame features are the penultimate layer of an ImageNet CNN,
reduced by PCA (with whitening) to 1024 dimensions and quantised to one
byte. `extract_features` does the same with a trained triptych vision
model, so the video models can be trained on real pixels:

1. Videos: DIR holds one video per `<id>.npy` array ([T, H, W] or
   [T, H, W, C], uint8 0-255 or floats 0-1) or per `<id>/` folder of PNG or
   JPEG frames (in file-name order); DIR/labels.json ({id: [int, ...]}, as
   `triptych video digits` writes) gives the labels, else they are empty.
2. Every frame goes through the model (resized to its input size and
   normalised as in evaluation); the penultimate layer, D values a frame.
3. PCA fitted on a seeded sample of frames (`pca_frames`), keeping
   `dims` <= min(D, 1024) components. With `whiten` each component is
   divided by its standard deviation (as YouTube-8M did); without, all
   are divided by the first component's, so their relative scales stay.
   The projection is saved as `pca.npz` beside the records, and `pca=`
   applies a saved one to new videos (their features must have the same D).
4. Quantised exactly inverse to the official dequantisation
   q * 4/255 + 4/512 - 2 (round to the nearest level, clip to 0..255: values
   beyond about +-2 standard deviations saturate). Components past `dims`
   are written as the level nearest 0 (127), so every frame is the official
   1024 bytes.
5. Frame-level SequenceExamples in the official layout: context `id`,
   `labels`; feature lists `rgb` (1024 bytes a frame) and `audio`. These
   videos have no sound: `audio="zero"` (the default) writes 128 bytes of
   the level nearest 0 a frame, so any YouTube-8M reader takes the files;
   `audio="none"` leaves the list out, which `video/yt8m.py` reads as the
   same silent audio.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from triptych.errors import UserError
from triptych.files import atomic_path, atomic_write_text
from triptych.video.io import example as pb
from triptych.video.io.tfrecord import write_records
from triptych.video.io.yt8m import AUDIO_DIM, RGB_DIM, ZERO_LEVEL, quantize

from triptych.vision.data import IMAGE_SUFFIXES

PCA_FILE = "pca.npz"


@dataclass
class VideoSource:
    id: str
    path: Path  # an .npy file or a folder of frame images
    labels: list[int]


def find_videos(root: str | Path) -> list[VideoSource]:
    """The videos of a frames folder, in name order, with their labels."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: no such folder of videos")
    labels = _read_labels(root / "labels.json")
    videos = []
    for p in sorted(root.iterdir()):
        if p.name.startswith("."):
            continue
        if p.is_dir() or p.suffix.lower() == ".npy":
            vid = p.stem if p.is_file() else p.name
            videos.append(VideoSource(vid, p, labels.get(vid, [])))
    if not videos:
        raise UserError(f"{root}: no videos (expected <id>.npy arrays or <id>/ folders of PNG/JPEG frames)")
    return videos


def _read_labels(path: Path) -> dict[str, list[int]]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected an object {{video id: [labels]}}")
    for vid, labs in data.items():
        if not isinstance(labs, list) or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in labs):
            raise UserError(f"{path}: video {vid!r}: labels must be a list of integers >= 0")
    return data


def _frame_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserError(f"{folder}: no frame images (.png, .jpg, .jpeg)")
    return files


def load_frames(video: VideoSource, clf) -> "torch.Tensor":  # noqa: F821
    """A video's frames as (T, C, S, S) model input."""
    import torch

    if video.path.is_dir():
        from triptych.vision.data import open_image

        d = clf.cfg.data
        parts = [clf.prepare_array(np.array(open_image(f, clf.channels, convert=d.convert,
                                                         max_pixels=d.max_pixels))[None], str(f))
                 for f in _frame_files(video.path)]
        return torch.cat(parts)
    from triptych.video.npz import load_npy

    arr = load_npy(video.path)  # the header is checked against the file's size first
    if arr.ndim not in (3, 4) or len(arr) == 0:
        raise UserError(f"{video.path}: expected frames [T, H, W] or [T, H, W, C] with T >= 1, got shape {arr.shape}")
    if arr.dtype != np.uint8 and not np.issubdtype(arr.dtype, np.floating):
        raise UserError(f"{video.path}: frames must be uint8 (0-255) or floats (0-1), not {arr.dtype}")
    return clf.prepare_array(arr, str(video.path))


class PCA:
    """x [N, D] -> ((x - mean) @ components.T) / scale  [N, dims]."""

    def __init__(self, mean: np.ndarray, components: np.ndarray, scale: np.ndarray, whiten: bool, source: str = ""):
        self.mean, self.components, self.scale = mean, components, scale
        self.whiten, self.source = whiten, source

    @property
    def input_dim(self) -> int:
        return self.components.shape[1]

    @property
    def dims(self) -> int:
        return self.components.shape[0]

    @classmethod
    def fit(cls, x: np.ndarray, dims: int, whiten: bool, source: str = "") -> "PCA":
        x = np.asarray(x, np.float64)
        mean = x.mean(0)
        cov = np.cov(x - mean, rowvar=False).reshape(x.shape[1], x.shape[1])
        eigval, eigvec = np.linalg.eigh(cov)  # ascending
        eigval, eigvec = eigval[::-1][:dims], eigvec[:, ::-1][:, :dims].T  # (dims,), (dims, D)
        eigvec *= np.where(eigvec.sum(1, keepdims=True) < 0, -1.0, 1.0)  # a fixed sign for each component
        std = np.sqrt(np.maximum(eigval, 0.0))
        floor = max(float(std[0]), 1e-12) * 1e-3  # near-empty components are not blown up to unit variance
        scale = np.maximum(std, floor) if whiten else np.full(dims, max(float(std[0]), 1e-12))
        return cls(mean, eigvec, scale, whiten, source)

    def transform(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, np.float64) - self.mean) @ self.components.T) / self.scale

    def save(self, path: Path) -> None:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, mean=self.mean, components=self.components, scale=self.scale,
                         whiten=np.array(self.whiten), source=np.array(self.source))

    @classmethod
    def load(cls, path: str | Path) -> "PCA":
        from triptych.files import require_file

        from triptych.video.npz import load_npz

        p = require_file(path, "PCA file")
        z = load_npz(p)  # headers checked before anything is allocated
        missing = [k for k in ("mean", "components", "scale", "whiten") if k not in z]
        if missing:
            raise UserError(f"{p}: not a triptych PCA file (no '{missing[0]}')")
        mean, comp, scale = z["mean"], z["components"], z["scale"]
        if z["whiten"].size != 1:
            raise UserError(f"{p}: 'whiten' must be one value")
        whiten, source = bool(z["whiten"].reshape(())), str(z["source"]) if "source" in z else ""
        if comp.ndim != 2 or mean.shape != (comp.shape[1],) or scale.shape != (comp.shape[0],):
            raise UserError(f"{p}: inconsistent PCA shapes (mean {mean.shape}, components {comp.shape}, scale {scale.shape})")
        return cls(mean.astype(np.float64), comp.astype(np.float64), scale.astype(np.float64), whiten, source)


def quantize_frames(projected: np.ndarray) -> np.ndarray:
    """[T, dims] floats -> [T, 1024] uint8 (dims < 1024 padded with the level nearest 0)."""
    out = np.full((len(projected), RGB_DIM), ZERO_LEVEL, np.uint8)
    out[:, : projected.shape[1]] = quantize(projected)
    return out


def encode_video(vid: str, labels, rgb: np.ndarray, audio: str = "zero") -> bytes:
    context = {"id": ("bytes", [vid.encode("utf-8")]), "labels": ("int64", np.asarray(labels, np.int64))}
    lists = {"rgb": rgb}
    if audio == "zero":
        lists["audio"] = np.full((len(rgb), AUDIO_DIM), ZERO_LEVEL, np.uint8)
    return pb.encode_sequence_example(context, lists)


def _resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder, or a run folder (its best/ checkpoint)."""
    p = Path(path)
    if not (p / "meta.json").exists() and (p / "best" / "meta.json").exists():
        return p / "best"
    return p


def _features(clf, video: VideoSource, batch_size: int) -> np.ndarray:
    x = load_frames(video, clf)
    return np.concatenate([clf.features(x[i : i + batch_size]).numpy() for i in range(0, len(x), batch_size)])


def extract_features(checkpoint: str | Path, frames: str | Path, out: str | Path, *, pca: str | Path | None = None,
                     dims: int | None = None, whiten: bool = False, pca_frames: int = 10_000, audio: str = "zero",
                     name: str | None = None, shards: int = 1, batch_size: int = 256, seed: int = 0,
                     device: str = "cpu", convert: bool | None = None, progress: bool = True) -> dict:
    """Write OUT/<name>NNNN.tfrecord (and OUT/pca.npz when the PCA is fitted here); returns a summary."""
    import os
    import shutil
    import tempfile

    from triptych.engine.progress import ProgressBar
    from triptych.vision.predictor import Classifier

    if audio not in ("zero", "none"):
        raise UserError(f"--audio must be zero or none, not {audio!r}")
    if shards < 1 or batch_size < 1 or pca_frames < 2:
        raise UserError("--shards and --batch-size must be >= 1, --pca-frames >= 2")
    if dims is not None and not 1 <= dims <= RGB_DIM:
        raise UserError(f"--dims must be in 1..{RGB_DIM} (the official rgb width), got {dims}")
    videos = find_videos(frames)
    name = name or re.sub(r"[^A-Za-z0-9_-]", "_", Path(frames).resolve().name)
    ckpt = _resolve_checkpoint(checkpoint)
    clf = Classifier(ckpt, device=device, convert=convert)
    fitted = pca is None
    cache: dict[str, np.ndarray] = {}
    if pca is not None:
        projection = PCA.load(pca)
        if dims is not None and dims != projection.dims:
            raise UserError(f"--dims {dims}: {pca} keeps {projection.dims} components")
        D = _features(clf, videos[0], batch_size).shape[1]
        if D != projection.input_dim:
            raise UserError(f"{pca}: fitted on {projection.input_dim}-dim features, but {checkpoint} "
                            f"({clf.name}) gives {D}-dim features; fit a new PCA (leave out --pca)")
    else:  # fit on a seeded sample of frames, from videos in random order
        rng = np.random.default_rng(seed)
        sample, count = [], 0
        for i in rng.permutation(len(videos)):
            f = cache[videos[i].id] = _features(clf, videos[i], batch_size)
            sample.append(f)
            count += len(f)
            if count >= pca_frames:
                break
        x = np.concatenate(sample)
        x = x[np.sort(rng.choice(len(x), pca_frames, replace=False))] if len(x) > pca_frames else x
        D = x.shape[1]
        k = min(D, RGB_DIM) if dims is None else dims
        if k > D:
            raise UserError(f"--dims {k}: {checkpoint} ({clf.name}) gives only {D}-dim features")
        if len(x) < 2:
            raise UserError(f"{frames}: need at least 2 frames to fit a PCA")
        projection = PCA.fit(x, k, whiten, source=f"{checkpoint} ({clf.name}), {len(x)} frames of {frames}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=out))
    bar = ProgressBar(len(videos), desc="features", enabled=progress)
    total_frames, names = 0, []
    try:
        per = -(-len(videos) // shards)
        for s in range(shards):
            def records(part=videos[s * per : (s + 1) * per]):
                nonlocal total_frames
                for v in part:
                    f = cache.pop(v.id, None)
                    f = _features(clf, v, batch_size) if f is None else f
                    total_frames += len(f)
                    yield encode_video(v.id, v.labels, quantize_frames(projection.transform(f)), audio)
                    bar.update()

            names.append(f"{name}{s:04d}.tfrecord")
            write_records(tmp / names[-1], records())
        if fitted:
            projection.save(tmp / PCA_FILE)
        for f in tmp.iterdir():
            os.replace(f, out / f.name)
    finally:
        bar.close()
        shutil.rmtree(tmp, ignore_errors=True)
    summary = {"out": str(out), "files": names, "videos": len(videos), "frames": total_frames,
               "checkpoint": str(ckpt), "model": clf.name, "feature_dim": D, "dims": projection.dims,
               "whiten": projection.whiten, "audio": audio,
               "pca": str(out / PCA_FILE) if fitted else str(pca), "pca_fitted": fitted}
    atomic_write_text(out / f"{name}.json", json.dumps(summary, indent=2) + "\n")
    return summary
