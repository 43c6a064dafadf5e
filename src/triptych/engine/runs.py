"""Run directories and the configs in them, the same for every domain.

`train RECIPE [--out DIR] [--resume]` means: a new run goes into a fresh
directory (never over an old run by accident), and `--resume` continues the
run in DIR with the config saved there, so a resumed run is the run that
was started, whatever the recipe file says now.

A run that fails before its first checkpoint leaves nothing behind:
`resolve_run_dir` notes what the directory held, and `discard_unfinished`
(called by the CLI when a command fails) removes exactly what this run
added -- the tokenizer it trained, its config.yaml, metrics.jsonl, the
directory itself when it made it -- and nothing that was there before. A
run with a checkpoint is kept whole: `--resume` continues it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from triptych.errors import SettingError, UserError

# The run directory this process is making: (path, the names it held before, folders made).
_PENDING: list[tuple[Path, set[str], list[Path]]] = []


def resolve_run_dir(config_path: str, out: str | None, resume: bool, domain: str) -> Path:
    """DIR from --out, or runs/<domain>/<recipe name>; checked against --resume."""
    from triptych.engine.checkpoint import latest_checkpoint

    run_dir = Path(out) if out else Path("runs") / domain / Path(config_path).stem
    if run_dir.exists() and not run_dir.is_dir():
        raise SettingError(f"{run_dir}: exists and is not a directory; a run directory is a folder, pick another {{out}}")
    has_run = run_dir.exists() and latest_checkpoint(run_dir) is not None
    if resume and not has_run:
        raise UserError(f"{run_dir}: no checkpoint to resume from")
    if not resume and has_run:
        raise SettingError(f"{run_dir}: already holds a run; add {{resume}} to continue it or pick another {{out}}")
    _note_pending(run_dir)
    return run_dir


def _note_pending(run_dir: Path) -> None:
    before = {p.name for p in run_dir.iterdir()} if run_dir.is_dir() else set()
    made, q = [], run_dir
    while not q.exists() and q != q.parent:
        made.append(q)
        q = q.parent
    _PENDING.append((run_dir, before, made))


def forget_pending() -> None:
    """The command ended well (or a new one starts): nothing to undo."""
    _PENDING.clear()


def discard_unfinished() -> list[Path]:
    """Remove what a failed run added to its directory, unless it saved a checkpoint.

    Returns the paths removed (for tests); never touches what was there before.
    """
    from triptych.engine.checkpoint import latest_checkpoint

    removed = []
    while _PENDING:
        run_dir, before, made = _PENDING.pop()
        if not run_dir.is_dir() or latest_checkpoint(run_dir) is not None:
            continue
        for p in run_dir.iterdir():
            if p.name not in before:
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink(missing_ok=True)
                removed.append(p)
        for d in made:  # deepest first: the run directory, then parents this run made
            try:
                d.rmdir()
                removed.append(d)
            except OSError:
                break
    return removed


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
