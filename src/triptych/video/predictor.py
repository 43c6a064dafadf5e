"""Scoring and predicting with saved video checkpoints (one, or an ensemble)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from triptych.errors import UserError
from triptych.files import atomic_path


class VideoPredictor:
    """A video checkpoint: its config and its model, ready to predict."""

    def __init__(self, directory: str | Path, device: str = "cpu"):
        from triptych.engine.checkpoint import load_for_inference
        from triptych.video.config import VideoConfig
        from triptych.video.models import VideoModel
        from triptych.video.task import resolve_model

        def build(cfg: VideoConfig):
            self.model_cfg = resolve_model(cfg)
            return VideoModel(self.model_cfg)

        loaded = load_for_inference(directory, VideoConfig, "video", build, device=device, name=lambda cfg: self.model_cfg.name)
        self.directory, self.meta, self.cfg, self.model, self.device = loaded.directory, loaded.meta, loaded.cfg, loaded.model, device


    def predict(self, videos) -> tuple[np.ndarray, float]:
        from triptych.hardware import inference_autocast
        from triptych.video.task import predict

        with inference_autocast(self.device):  # bf16 products where the CPU has native bf16 (hardware.py)
            return predict(self.model, videos, self.cfg, self.device)


def load_ensemble(directories: list[str], device: str = "cpu") -> list[VideoPredictor]:
    members = [VideoPredictor(d, device) for d in directories]
    first = members[0].cfg.data
    for m in members[1:]:
        if (m.cfg.data.num_classes, m.cfg.data.level) != (first.num_classes, first.level):
            raise UserError(f"{m.directory}: {m.cfg.data.level}-level with {m.cfg.data.num_classes} classes, "
                            f"but {members[0].directory} is {first.level}-level with {first.num_classes}")
    return members


def read_set(members: list[VideoPredictor], data: list[str], verify: bool = True, skip_bad: bool = False):
    """The videos of `data`, read as the first checkpoint's config says; (set, stats)."""
    from triptych.video.io.tfrecord import RecordStats
    from triptych.video.io.yt8m import VideoSet, read_videos

    d = members[0].cfg.data
    stats = RecordStats()
    videos = read_videos(data, num_classes=d.num_classes, level=d.level, verify=verify, skip_bad=skip_bad,
                         stats=stats, max_frames=d.max_frames)
    return VideoSet(videos, d.num_classes), stats


def ensemble_predict(members: list[VideoPredictor], videos) -> tuple[np.ndarray, float]:
    """The mean of the members' probabilities [N, C], and their mean loss."""
    probs, losses = zip(*(m.predict(videos) for m in members))
    return np.mean(probs, axis=0, dtype=np.float64).astype(np.float32), float(np.mean(losses))


def write_submission(path: str | Path, ids: list[str], probs: np.ndarray, top_k: int = 20) -> int:
    """Kaggle format: `VideoId,LabelConfidencePairs`, then per video its top-k
    "label confidence" pairs by confidence (as the starter code's inference.py,
    with %g confidences). Written atomically; returns the number of rows."""
    from triptych.video.metrics import topk_classes

    idx, vals = topk_classes(probs, top_k)
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            fh.write("VideoId,LabelConfidencePairs\n")
            for vid, cls, conf in zip(ids, idx, vals):
                fh.write(vid + "," + " ".join("%i %g" % (c, v) for c, v in zip(cls, conf)) + "\n")
    return len(ids)


def save_predictions(path: str | Path, ids: list[str], probs: np.ndarray, labels: np.ndarray) -> None:
    """`predictions` float32 [N, C], `labels` uint8 [N, C], `ids` [N], as .npz, atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, predictions=probs, labels=labels.astype(np.uint8), ids=np.array(ids))
