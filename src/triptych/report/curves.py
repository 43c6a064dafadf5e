"""Learning curves of a run from its metrics.jsonl: loss, validation metrics, learning rate.

The records are those `engine.progress.MetricsLog` writes: `{"step", "kind":
"train" | "valid", ...values, "elapsed"}`. Train records carry `loss` and
`lr`; valid records carry the task's metrics (accuracy, GAP, ROUGE, ...) and
usually a `valid_loss`. Every numeric value is drawn against the step; a
value logged as a string ("nan", "inf": JSON has no such numbers) is a gap
in its line, not an error.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from triptych.plots import _check_path, _pyplot, _save

# Bookkeeping fields of a record, not curves.
_NOT_CURVES = {"step", "kind", "elapsed", "cpu_s", "best", "epoch", "rss_mb", "grad_norm"}


def _number(v) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


def series(records: list[dict], kind: str) -> dict[str, tuple[list[int], list[float]]]:
    """{name: (steps, values)} of every numeric field of the records of `kind`, in step order."""
    out: dict[str, tuple[list[int], list[float]]] = {}
    for rec in sorted((r for r in records if r.get("kind") == kind and isinstance(r.get("step"), int)),
                      key=lambda r: r["step"]):
        for name, value in rec.items():
            v = _number(value)
            if name in _NOT_CURVES or v is None or "/s" in name:  # throughput is not a learning curve
                continue
            steps, values = out.setdefault(name, ([], []))
            steps.append(rec["step"])
            values.append(v)
    return out


def panels(records: list[dict]) -> list[tuple[str, dict[str, tuple[list[int], list[float]]]]]:
    """The curves grouped as drawn: (title, {label: (steps, values)}), empty panels left out."""
    train, valid = series(records, "train"), series(records, "valid")
    loss = {f"train {k}": v for k, v in train.items() if "loss" in k}
    loss.update({k if k.startswith("valid") else f"valid {k}": v for k, v in valid.items() if "loss" in k})
    metrics = {k: v for k, v in valid.items() if "loss" not in k}
    extra = {k: v for k, v in train.items() if "loss" not in k and k != "lr"}  # e.g. train_acc
    lr = {"lr": train["lr"]} if "lr" in train else {}
    groups = [("loss", loss), ("validation metrics", metrics), ("training metrics", extra), ("learning rate", lr)]
    return [(title, curves) for title, curves in groups if curves]


def learning_curves(records: list[dict], path: str | os.PathLike, *, title: str | None = None) -> Path:
    """Draw one panel per group of curves (see `panels`), two a row, into `path`."""
    p = _check_path(path)
    groups = panels(records)
    if not groups:
        raise ValueError("no numeric train or valid records to draw")
    plt = _pyplot()
    cols = min(2, len(groups))
    rows = (len(groups) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.6 * cols, 3.6 * rows), squeeze=False)
    try:
        for ax in axes.flat[len(groups):]:
            ax.set_visible(False)
        for ax, (name, curves) in zip(axes.flat, groups):
            for label, (steps, values) in curves.items():
                marker = "o" if len(steps) <= 30 else None  # sparse evaluations read better as points
                ax.plot(steps, values, label=label, marker=marker, markersize=3, linewidth=1.2)
            ax.set_title(name)
            ax.set_xlabel("step")
            if name == "learning rate":
                ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        _save(fig, p, dpi=110)
    finally:
        plt.close(fig)
    return p
