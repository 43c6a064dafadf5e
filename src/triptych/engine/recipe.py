"""`<domain> train RECIPE`: the one way a recipe becomes a trained run.

Every domain's training goes through `run_recipe`: resolve the run directory
and the config (the recipe with `--set` overrides, or the run's own when
resuming), join torchrun's process group when there is one, seed, build the
task (rank 0 first: it may write files — a tokenizer — that the other ranks
then read), hand it to the engine's trainer, and leave the group.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from triptych.errors import UserError


def run_recipe(config_cls: type, make_task: Callable[[Any, Path], Any], domain: str, config_path: str | None = None,
               overrides: list[str] | None = None, *, out: str | None = None, resume: bool = False, seed: int | None = None,
               device: str = "cpu", progress: bool | None = None, cfg=None,
               prepare: Callable[[Any], Any] | None = None) -> tuple[dict, Any, Any]:
    """Train `config_cls` read from `config_path` (or a ready `cfg`) with the task
    `make_task(cfg, run_dir)` builds. `prepare(cfg)`, when given, runs on the
    resolved config before anything is built or written (checks that must fail
    fast). Returns (the engine's summary with run_dir, params and metric; the
    task; the config)."""
    import torch

    from triptych.engine import distributed
    from triptych.engine.runs import load_run_config, resolve_run_dir
    from triptych.engine.trainer import train

    if cfg is None:
        if not Path(config_path).is_file():
            raise UserError(f"{config_path}: config file does not exist")
        run_dir = resolve_run_dir(config_path, out, resume, domain)
        cfg = load_run_config(config_cls, domain, config_path, overrides or [], run_dir=run_dir, resume=resume, seed=seed)
    else:
        run_dir = Path(out) if out else Path("runs") / domain / str(cfg.model.get("name"))
    if prepare is not None:
        prepare(cfg)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    info = distributed.setup(device)
    try:
        torch.manual_seed(cfg.seed)
        task = make_task(cfg, run_dir) if info.rank == 0 else None
        distributed.barrier()
        if info.rank != 0:
            task = make_task(cfg, run_dir)
        # A task that starts from init_from its own way (vision: a new head for new classes) says so.
        init_from = Path(cfg.init_from) if cfg.init_from and not getattr(task, "loads_init_from", False) else None
        summary = dict(train(task, cfg.train, run_dir, full_config=cfg, seed=cfg.seed, device=str(info.device), resume=resume,
                             init_from=init_from, progress=progress))
    finally:
        distributed.cleanup(info)
    summary["run_dir"] = str(run_dir)
    summary["params"] = sum(p.numel() for p in task.model.parameters())
    summary.setdefault("metric", cfg.train.metric)
    return summary, task, cfg
