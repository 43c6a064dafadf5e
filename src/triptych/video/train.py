"""`triptych video train`: resolve the recipe and run directory, then hand over to the engine."""

from __future__ import annotations

from pathlib import Path

from triptych.engine.runs import load_run_config, resolve_run_dir
from triptych.errors import UserError


def load_config(config_path: str | None, overrides: list[str], *, run_dir: Path | None = None,
                resume: bool = False, seed: int | None = None):
    """The recipe with overrides, or, when resuming, the run's saved config (with overrides)."""
    from triptych.video.config import VideoConfig

    return load_run_config(VideoConfig, "video", config_path, overrides, run_dir=run_dir, resume=resume, seed=seed)


def run_training(config_path: str | None = None, overrides: list[str] | None = None, *, out: str | None = None,
                 resume: bool = False, seed: int | None = None, device: str = "cpu", progress: bool | None = None,
                 cfg=None, task=None) -> dict:
    """Train a recipe (or a ready `cfg`) into a run directory; returns the engine's summary."""
    import torch

    from triptych.engine.trainer import train
    from triptych.video.task import VideoTask

    if cfg is None:
        if not Path(config_path).is_file():
            raise UserError(f"{config_path}: config file does not exist")
        run_dir = resolve_run_dir(config_path, out, resume, "video")
        cfg = load_config(config_path, overrides or [], run_dir=run_dir, resume=resume, seed=seed)
    else:
        run_dir = Path(out) if out else Path("runs") / "video" / str(cfg.model.get("name"))
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.seed)
    task = task or VideoTask(cfg)  # data problems surface here, before the run directory exists
    init_from = Path(cfg.init_from) if cfg.init_from else None
    summary = dict(train(task, cfg.train, run_dir, full_config=cfg, seed=cfg.seed, device=device,
                         resume=resume, init_from=init_from, progress=progress))
    summary["run_dir"] = str(run_dir)
    summary["model"] = task.model_cfg.name
    summary["params"] = sum(p.numel() for p in task.model.parameters())
    summary["skipped_records"] = len(task.stats.skipped)
    return summary
