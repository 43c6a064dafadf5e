"""`triptych vision train`: the recipe runner with the vision task, plus the kept checkpoint's test accuracy."""

from __future__ import annotations

from pathlib import Path

from triptych.engine.runs import load_run_config


def load_config(config_path: str | None, overrides: list[str], *, run_dir: Path | None = None,
                resume: bool = False, seed: int | None = None):
    """The recipe with overrides, or, when resuming, the run's saved config (with overrides)."""
    from triptych.vision.config import VisionConfig

    return load_run_config(VisionConfig, "vision", config_path, overrides, run_dir=run_dir, resume=resume, seed=seed)


def run_training(config_path: str, overrides: list[str] | None = None, *, out: str | None = None,
                 resume: bool = False, seed: int | None = None, device: str = "cpu", progress: bool | None = None,
                 cfg=None) -> dict:
    """Train a recipe into a run directory; returns the engine's summary plus test accuracy."""
    from triptych.engine.recipe import run_recipe
    from triptych.vision.config import VisionConfig
    from triptych.vision.task import VisionTask, evaluate_set

    # The task reads the data: its problems surface before the run directory exists.
    summary, task, cfg = run_recipe(VisionConfig, lambda cfg, run_dir: VisionTask(cfg), "vision", config_path, overrides,
                                    out=out, resume=resume, seed=seed, device=device, progress=progress, cfg=cfg)
    summary["model"] = cfg.model.get("name")
    best = summary.get("best_dir")
    if best and task.splits.test is not None:
        from triptych.engine.checkpoint import load_weights

        load_weights(best, task.model)  # report the test score of the checkpoint that was kept
        result = evaluate_set(task, task.model, task.splits.test)
        summary["test_accuracy"] = result["accuracy"]
        summary["test_images"] = result["images"]
    return summary
