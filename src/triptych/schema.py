"""Bounds written next to a config field, checked when the config is read.

    lr: float = bounded(1e-3, ge=0)
    dropout: float = bounded(0.1, ge=0, lt=1)
    precision: str = bounded("fp32", choices=("fp32", "bf16"))

`config.from_dict` checks every value it reads against its field's bounds
before the section is built (so a `heads: 0` is named before a `d_model %
heads` can divide by it), and refuses NaN and infinity for every float field.
A value out of bounds is one line naming the key and what is allowed. Rules
that tie two fields together (heads divides d_model, min_len <= max_len) stay
in the section's `__post_init__`, which runs after these.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from triptych.errors import UserError


@dataclasses.dataclass(frozen=True)
class Bounds:
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple | None = None

    def allowed(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(str(c) for c in self.choices)
        parts = [f"{op} {v:g}" for op, v in ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt)) if v is not None]
        return " and ".join(parts)

    def admits(self, v: Any) -> bool:
        if self.choices is not None:
            return v in self.choices
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return True  # the type check reports those
        return ((self.ge is None or v >= self.ge) and (self.gt is None or v > self.gt)
                and (self.le is None or v <= self.le) and (self.lt is None or v < self.lt))


def bounded(default: Any = dataclasses.MISSING, *, factory=dataclasses.MISSING, ge=None, gt=None, le=None, lt=None,
            choices=None):
    """A dataclass field whose values must lie within the bounds (None always passes)."""
    meta = {"bounds": Bounds(ge, gt, le, lt, tuple(choices) if choices is not None else None)}
    if factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def check_value(f: dataclasses.Field, value: Any, where: str) -> None:
    """Raise a UserError naming `where` when `value` breaks `f`'s bounds (each element of a list)."""
    bounds = f.metadata.get("bounds")
    if bounds is None or value is None:
        return
    for v in value if isinstance(value, (list, tuple)) else [value]:
        if not bounds.admits(v):
            raise UserError(f"{where}: {v!r} is not allowed (allowed: {bounds.allowed()})")


def check_finite(value: Any, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{where}: expected a finite number, got {value!r}")


def check_section(obj: Any, prefix: str = "") -> None:
    """Check every bounded field of a built section (for configs made in code, not read from YAML)."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        check_value(f, value, f"{prefix}{f.name}")
        if dataclasses.is_dataclass(value):
            check_section(value, f"{prefix}{f.name}.")


# --- command-line options: the same bounds, by option name, for every verb that has the option ---

_AT_LEAST_1 = ("batch_size", "beam", "channels", "classes", "dims", "filter", "filters", "limit", "lm_order", "maps",
               "max_batch", "max_beam", "max_digits", "max_document_chars", "max_documents", "max_frames", "max_len",
               "max_summary_len", "max_top_k", "max_videos", "min_frames", "nbest", "pca_frames", "queue_depth",
               "scenes", "sentences", "shards", "size", "stride", "threads", "top", "top_k", "valid_videos", "videos",
               "words", "vocab_size")
_AT_LEAST_0 = ("min_len", "no_repeat_ngram", "shift", "min_frequency", "port", "batch_wait_ms", "noise")
_POSITIVE = ("minutes", "timeout", "read_timeout", "max_body_mb")
OPTION_BOUNDS = {**{k: Bounds(ge=1) for k in _AT_LEAST_1}, **{k: Bounds(ge=0) for k in _AT_LEAST_0},
                 **{k: Bounds(gt=0) for k in _POSITIVE}, "seed": Bounds(ge=0, lt=2**32), "port": Bounds(ge=0, le=65535),
                 "beam": Bounds(ge=1, le=256), "max_beam": Bounds(ge=1, le=256)}


def check_options(options: dict) -> None:
    """Every number on a command line: finite, and within its option's bounds; --device exists in this torch."""
    for key, value in options.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        option = "--" + key.replace("_", "-")
        check_finite(value, f"{option}")
        bounds = OPTION_BOUNDS.get(key)
        if bounds is not None and not bounds.admits(value):
            raise UserError(f"{option} {value}: not allowed (allowed: {bounds.allowed()})")
    if isinstance(options.get("device"), str):
        check_device(options["device"])


def check_device(name: str, option: str = "--device") -> None:
    """A device this torch was built with and this machine has; cpu never imports torch."""
    if name == "cpu":
        return
    import torch

    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise UserError(f"{option} {name}: not a device name (allowed: cpu, cuda, cuda:N, mps)") from None
    available = {"cpu": lambda: True, "cuda": torch.cuda.is_available,
                 "mps": lambda: getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()}
    if dev.type not in available:
        raise UserError(f"{option} {name}: triptych runs on cpu, cuda or mps, not {dev.type}")
    if not available[dev.type]():
        raise UserError(f"{option} {name}: this torch ({torch.__version__}) has no usable {dev.type} device here")
    count = torch.cuda.device_count() if dev.type == "cuda" else 1
    if dev.index is not None and dev.index >= count:
        raise UserError(f"{option} {name}: no such device (this machine has {count} {dev.type} device(s))")


def check_metric(metric: str, allowed: list[str] | tuple[str, ...], note: str = "") -> None:
    """`train.metric` must be one the task's evaluation reports: checked when the
    config is read, not after the first validation has cost minutes. `note`
    says why a metric is missing when another key switched it off."""
    if metric not in allowed:
        raise UserError(f"train.metric: {metric!r} is not a validation metric of this recipe "
                        f"(allowed: {', '.join(allowed)}){'; ' + note if note else ''}")
