"""`triptych caption train`: resolve the recipe and run directory, then hand over to the engine."""

from __future__ import annotations

from pathlib import Path

from triptych.errors import UserError


def run_training(config_path: str, overrides: list[str] | None = None, *, out: str | None = None, resume: bool = False,
                 seed: int | None = None, device: str = "cpu", progress: bool | None = None) -> dict:
    import torch

    from triptych.caption.config import CaptionConfig
    from triptych.caption.task import CaptionTask
    from triptych.engine.runs import load_run_config, resolve_run_dir
    from triptych.engine.trainer import train

    if not Path(config_path).is_file():
        raise UserError(f"{config_path}: config file does not exist")
    run_dir = resolve_run_dir(config_path, out, resume, "caption")
    cfg = load_run_config(CaptionConfig, "caption", config_path, overrides or [], run_dir=run_dir, resume=resume, seed=seed)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.seed)
    task = CaptionTask(cfg, run_dir if resume else None)  # bad data stops here, before the run directory exists
    init_from = Path(cfg.init_from) if cfg.init_from else None
    summary = dict(train(task, cfg.train, run_dir, full_config=cfg, seed=cfg.seed, device=device, resume=resume,
                         init_from=init_from, progress=progress))
    summary["run_dir"] = str(run_dir)
    summary["params"] = sum(p.numel() for p in task.model.parameters())
    summary.setdefault("metric", cfg.train.metric)
    return summary
