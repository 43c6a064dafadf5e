"""`triptych vision train`: resolve the recipe and run directory, then hand over to the engine."""

from __future__ import annotations

from pathlib import Path

from triptych.engine.runs import load_run_config, resolve_run_dir
from triptych.errors import UserError


def load_config(config_path: str | None, overrides: list[str], *, run_dir: Path | None = None,
                resume: bool = False, seed: int | None = None):
    """The recipe with overrides, or, when resuming, the run's saved config (with overrides)."""
    from triptych.vision.config import VisionConfig

    return load_run_config(VisionConfig, "vision", config_path, overrides, run_dir=run_dir, resume=resume, seed=seed)


def run_training(config_path: str, overrides: list[str] | None = None, *, out: str | None = None,
                 resume: bool = False, seed: int | None = None, device: str = "cpu", progress: bool | None = None,
                 cfg=None) -> dict:
    """Train a recipe into a run directory; returns the engine's summary plus test accuracy."""
    import torch

    from triptych.engine.trainer import train
    from triptych.vision.task import VisionTask, evaluate_set

    if cfg is None:
        if not Path(config_path).is_file():
            raise UserError(f"{config_path}: config file does not exist")
        run_dir = resolve_run_dir(config_path, out, resume, "vision")
        cfg = load_config(config_path, overrides or [], run_dir=run_dir, resume=resume, seed=seed)
    else:
        run_dir = Path(out) if out else Path("runs") / "vision" / str(cfg.model.get("name"))
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.seed)
    task = VisionTask(cfg)  # data problems surface here, before the run directory exists
    # cfg.init_from was loaded by VisionTask (vision/finetune.py: a new head for new classes)
    summary = dict(train(task, cfg.train, run_dir, full_config=cfg, seed=cfg.seed, device=device,
                         resume=resume, progress=progress))
    summary["run_dir"] = str(run_dir)
    summary["model"] = cfg.model.get("name")
    summary["params"] = sum(p.numel() for p in task.model.parameters())
    best = summary.get("best_dir")
    if best and task.splits.test is not None:
        from triptych.engine.checkpoint import load_weights

        load_weights(best, task.model)  # report the test score of the checkpoint that was kept
        result = evaluate_set(task, task.model, task.splits.test)
        summary["test_accuracy"] = result["accuracy"]
        summary["test_images"] = result["images"]
    return summary
