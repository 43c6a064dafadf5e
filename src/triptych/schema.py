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
