"""Run directories and the configs in them, the same for every domain.

`train RECIPE [--out DIR] [--resume]` means: a new run goes into a fresh
directory (never over an old run by accident), and `--resume` continues the
run in DIR with the config saved there, so a resumed run is the run that
was started, whatever the recipe file says now.
"""

from __future__ import annotations

from pathlib import Path

from triptych.errors import SettingError, UserError


def resolve_run_dir(config_path: str, out: str | None, resume: bool, domain: str) -> Path:
    """DIR from --out, or runs/<domain>/<recipe name>; checked against --resume."""
    from triptych.engine.checkpoint import latest_checkpoint

    run_dir = Path(out) if out else Path("runs") / domain / Path(config_path).stem
    has_run = run_dir.exists() and latest_checkpoint(run_dir) is not None
    if resume and not has_run:
        raise UserError(f"{run_dir}: no checkpoint to resume from")
    if not resume and has_run:
        raise SettingError(f"{run_dir}: already holds a run; add {{resume}} to continue it or pick another {{out}}")
    return run_dir


def load_run_config(cls, domain: str, config_path: str, overrides: list[str], *, run_dir: Path, resume: bool, seed: int | None):
    """The recipe with overrides, or, when resuming, the run's saved config (with overrides)."""
    from triptych import config as configs

    path = run_dir / "config.yaml" if resume else config_path
    cfg = configs.load(cls, path, overrides)
    if cfg.task != domain:
        raise UserError(f"{path}: task '{cfg.task}' is not a {domain} recipe")
    if seed is not None:
        cfg.seed = seed
    return cfg
