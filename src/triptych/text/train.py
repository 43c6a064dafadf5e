"""`triptych text train`: resolve the recipe and run directory, then hand over to the engine."""

from __future__ import annotations

from pathlib import Path

from triptych.errors import UserError


def resolve_run_dir(config_path: str, out: str | None, resume: bool, domain: str) -> Path:
    from triptych.engine.checkpoint import latest_checkpoint

    run_dir = Path(out) if out else Path("runs") / domain / Path(config_path).stem
    has_run = run_dir.exists() and latest_checkpoint(run_dir) is not None
    if resume and not has_run:
        raise UserError(f"{run_dir}: no checkpoint to resume from")
    if not resume and has_run:
        raise UserError(f"{run_dir}: already holds a run; add --resume to continue it or pick another --out")
    return run_dir


def load_run_config(cls, config_path: str, overrides: list[str], run_dir: Path, resume: bool, seed: int | None):
    """The recipe with overrides, or, when resuming, the run's saved config."""
    from triptych import config as configs

    if resume:
        cfg = configs.load(cls, run_dir / "config.yaml", overrides)
    else:
        cfg = configs.load(cls, config_path, overrides)
    if seed is not None:
        cfg.seed = seed
    return cfg


def run_training(config_path: str, overrides: list[str], *, out: str | None = None, resume: bool = False, seed: int | None = None, device: str = "cpu") -> dict:
    import torch

    from triptych.engine import distributed
    from triptych.engine.trainer import train
    from triptych.text.config import TextConfig
    from triptych.text.task import TextTask

    if not Path(config_path).is_file():
        raise UserError(f"{config_path}: config file does not exist")
    run_dir = resolve_run_dir(config_path, out, resume, "text")
    cfg = load_run_config(TextConfig, config_path, overrides, run_dir, resume, seed)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    info = distributed.setup(device)
    try:
        torch.manual_seed(cfg.seed)
        # Rank 0 trains the BPE (or loads the run's) and saves it; the others
        # wait and load that very file, so every rank tokenises identically.
        if info.rank == 0:
            run_dir.mkdir(parents=True, exist_ok=True)
            task = TextTask(cfg, run_dir)
        distributed.barrier()
        if info.rank != 0:
            task = TextTask(cfg, run_dir)
        init_from = Path(cfg.init_from) if cfg.init_from else None
        summary = train(task, cfg.train, run_dir, full_config=cfg, seed=cfg.seed, device=str(info.device), resume=resume, init_from=init_from)
    finally:
        distributed.cleanup(info)
    summary = dict(summary)
    summary["run_dir"] = str(run_dir)
    summary.setdefault("metric", cfg.train.metric)
    return summary
