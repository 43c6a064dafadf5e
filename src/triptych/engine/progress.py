"""What a run tells the user while it trains: a progress bar, metrics.jsonl, TensorBoard.

Everything goes to stderr or to files, never stdout (stdout is reserved for
the single `--json` object of a command), and only rank 0 writes anything.

- `ProgressBar`: tqdm on stderr with loss, lr and units/s (tok/s, img/s).
  On by default when stderr is a terminal; `TRIPTYCH_PROGRESS=1` forces it
  on (e.g. under a pager that is not a tty), `=0` off. When the bar is off,
  each log step is one plain line on stderr instead, so a run in `nohup`
  still says how it is doing.
- `MetricsLog`: one JSON object a line in run_dir/metrics.jsonl, for every
  log step ("kind": "train") and every evaluation ("kind": "valid").
- TensorBoard event files under run_dir/tensorboard/ when the `tensorboard`
  package is installed; silently skipped otherwise.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path


def bar_enabled(force: bool | None = None) -> bool:
    if force is not None:
        return force
    env = os.environ.get("TRIPTYCH_PROGRESS", "").strip().lower()
    if env in ("1", "true", "yes", "on"):
        return True
    if env in ("0", "false", "no", "off"):
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _fmt(v) -> str:
    if isinstance(v, float):
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
            return f"{v:.3g}"
        return f"{v:.4g}"
    return str(v)


class ProgressBar:
    """tqdm over optimiser steps; a plain stderr line per log step when off."""

    def __init__(self, total: int, initial: int = 0, *, enabled: bool = True, force: bool | None = None,
                 desc: str = "train"):
        self.enabled = enabled
        self.bar = None
        self.use_bar = enabled and bar_enabled(force)
        if self.use_bar:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, file=sys.stderr, dynamic_ncols=True,
                            unit="step", leave=True)

    def update(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def show(self, step: int, values: dict) -> None:
        """Put the latest training figures on the bar (or print them as one line)."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_postfix({k: _fmt(v) for k, v in values.items()}, refresh=False)
        else:
            fields = " ".join(f"{k} {_fmt(v)}" for k, v in values.items())
            print(f"step {step} {fields}", file=sys.stderr, flush=True)

    def write(self, text: str) -> None:
        """A message that does not break the bar (evaluations, checkpoints)."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _json_value(v):
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)  # JSON has no NaN/inf; keep the record readable by strict parsers
    return v


class MetricsLog:
    """Append-only run_dir/metrics.jsonl, plus TensorBoard scalars when available."""

    def __init__(self, run_dir: Path | None, *, enabled: bool = True, tensorboard: bool = True):
        self.path = Path(run_dir) / "metrics.jsonl" if run_dir is not None else None
        self.enabled = enabled and self.path is not None
        self.writer = None
        if self.enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except Exception:  # tensorboard not installed (or broken): skip quietly
                SummaryWriter = None
            if SummaryWriter is not None:
                self.writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))

    def truncate_after(self, step: int) -> None:
        """Drop records past `step` (written after the checkpoint a resume starts from).

        The resumed run logs those steps again, so metrics.jsonl reads as if
        the run had never stopped.
        """
        if not self.enabled or not self.path.is_file():
            return
        from triptych.files import atomic_write_text

        kept = []
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a kill
            if isinstance(rec, dict) and isinstance(rec.get("step"), int) and rec["step"] <= step:
                kept.append(line)
        atomic_write_text(self.path, "".join(k + "\n" for k in kept))

    def log(self, kind: str, step: int, values: dict, elapsed: float) -> None:
        if not self.enabled:
            return
        rec = {"step": step, "kind": kind}
        rec.update({k: _json_value(v) for k, v in values.items()})
        rec["elapsed"] = round(float(elapsed), 3)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(rec) + "\n")
        if self.writer is not None:
            for k, v in values.items():
                v = _json_value(v)
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    self.writer.add_scalar(f"{kind}/{k}", v, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def read_metrics(run_dir: Path) -> list[dict]:
    """The records of a run's metrics.jsonl (for tests, plots and reports)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out
