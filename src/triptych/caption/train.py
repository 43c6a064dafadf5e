"""`triptych caption train`: the recipe runner with the caption task."""

from __future__ import annotations


def run_training(config_path: str, overrides: list[str] | None = None, *, out: str | None = None, resume: bool = False,
                 seed: int | None = None, device: str = "cpu", progress: bool | None = None) -> dict:
    from triptych.caption.config import CaptionConfig
    from triptych.caption.task import CaptionTask
    from triptych.engine.recipe import run_recipe

    # bad data stops in the task, before the run directory exists
    summary, _, _ = run_recipe(CaptionConfig, lambda cfg, run_dir: CaptionTask(cfg, run_dir if resume else None), "caption",
                               config_path, overrides, out=out, resume=resume, seed=seed, device=device, progress=progress)
    return summary
