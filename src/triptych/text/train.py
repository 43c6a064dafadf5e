"""`triptych text train`: resolve the recipe and run directory, then hand over to the engine."""

from __future__ import annotations

from pathlib import Path

from triptych.errors import UserError


def run_training(config_path: str, overrides: list[str], *, out: str | None = None, resume: bool = False, seed: int | None = None, device: str = "cpu") -> dict:
    import torch

    from triptych.engine import distributed
    from triptych.engine.runs import load_run_config, resolve_run_dir
    from triptych.engine.trainer import train
    from triptych.text.config import TextConfig
    from triptych.text.task import check_model

    if not Path(config_path).is_file():
        raise UserError(f"{config_path}: config file does not exist")
    run_dir = resolve_run_dir(config_path, out, resume, "text")
    cfg = load_run_config(TextConfig, "text", config_path, overrides, run_dir=run_dir, resume=resume, seed=seed)
    task_cls = _task_class(cfg)
    check_model(cfg)  # after _task_class: RL takes its model section from init_from
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    info = distributed.setup(device)
    try:
        torch.manual_seed(cfg.seed)
        # Rank 0 trains the BPE (or loads the run's) and saves it; the others
        # wait and load that very file, so every rank tokenises identically.
        if info.rank == 0:
            run_dir.mkdir(parents=True, exist_ok=True)
            task = task_cls(cfg, run_dir)
        distributed.barrier()
        if info.rank != 0:
            task = task_cls(cfg, run_dir)
        init_from = Path(cfg.init_from) if cfg.init_from else None
        summary = train(task, cfg.train, run_dir, full_config=cfg, seed=cfg.seed, device=str(info.device), resume=resume, init_from=init_from)
    finally:
        distributed.cleanup(info)
    summary = dict(summary)
    summary["run_dir"] = str(run_dir)
    summary.setdefault("metric", cfg.train.metric)
    return summary


def _task_class(cfg):
    """Maximum likelihood (`TextTask`), or fine-tuning with a ROUGE reward when `rl.enabled`."""
    if not cfg.rl.enabled:
        from triptych.text.task import TextTask

        return TextTask
    from triptych.text.rl import RLTextTask, prepare_config

    prepare_config(cfg)  # before the run's config.yaml is written: it records the model it trains
    return RLTextTask
