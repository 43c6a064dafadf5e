"""`triptych video train`: the recipe runner with the video task."""

from __future__ import annotations

from pathlib import Path

from triptych.engine.runs import load_run_config


def load_config(config_path: str | None, overrides: list[str], *, run_dir: Path | None = None,
                resume: bool = False, seed: int | None = None):
    """The recipe with overrides, or, when resuming, the run's saved config (with overrides)."""
    from triptych.video.config import VideoConfig

    return load_run_config(VideoConfig, "video", config_path, overrides, run_dir=run_dir, resume=resume, seed=seed)


def run_training(config_path: str | None = None, overrides: list[str] | None = None, *, out: str | None = None,
                 resume: bool = False, seed: int | None = None, device: str = "cpu", progress: bool | None = None,
                 cfg=None, task=None) -> dict:
    """Train a recipe (or a ready `cfg`, and a ready `task`) into a run directory; returns the engine's summary."""
    from triptych.engine.recipe import run_recipe
    from triptych.video.config import VideoConfig
    from triptych.video.task import VideoTask

    given = task  # a task built by the caller (benchmarks), else one from the config
    # The task reads the data: its problems surface before the run directory exists.
    summary, task, _ = run_recipe(VideoConfig, lambda cfg, run_dir: given or VideoTask(cfg), "video", config_path, overrides,
                                  out=out, resume=resume, seed=seed, device=device, progress=progress, cfg=cfg)
    summary["model"] = task.model_cfg.name
    summary["skipped_records"] = len(task.stats.skipped)
    return summary
