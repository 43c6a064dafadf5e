"""Configs: dataclasses <- YAML <- `--set a.b=c` overrides.

A recipe is one YAML file whose keys mirror a domain's config dataclass.
Unknown keys are errors (a typo must not silently fall back to a default),
values are checked against the field's type, and the fully resolved config
is saved in every run directory and checkpoint so a run can be rebuilt
from its folder alone.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from triptych.errors import SettingError, UserError


@dataclass
class TrainConfig:
    """The engine's knobs; identical for every domain."""

    lr: float = 1e-3
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.98)
    warmup_steps: int = 200
    # constant | inverse_sqrt | cosine | linear; cosine and linear decay to
    # `min_lr_ratio * lr` at max_steps, or at max_minutes when that is set
    # (the schedule is then timed to end with the budget).
    schedule: str = "cosine"
    min_lr_ratio: float = 0.02
    decay_rate: float = 0.8  # schedule "step": lr x decay_rate every decay_steps updates
    decay_steps: int = 50_000
    max_steps: int = 10_000  # 0: no step limit (then max_minutes or max_epochs must bound the run)
    max_minutes: float | None = None
    max_epochs: int | None = None  # stop ("end") after this many passes over the task's batch plan
    clip_norm: float | None = 1.0
    accum_steps: int = 1
    eval_every: int = 500
    eval_at_end: bool = True
    metric: str = "valid_loss"  # the validation metric that selects best/
    metric_mode: str = "min"  # min | max
    patience: int | None = None  # early stopping: evaluations without improvement
    save_every: int = 500
    keep_checkpoints: int = 2
    log_every: int = 20
    precision: str = "fp32"  # fp32 | bf16 (autocast)
    threads: int | None = None
    # Return freed heap memory to the OS when resident memory has grown this
    # many MiB since the last time (glibc; see engine/memory.py). 0: never.
    trim_memory_mb: float = 384.0


def _fail(source: str, key: str, msg: str) -> UserError:
    return UserError(f"{source}: {key}: {msg}")


def _coerce(value: Any, tp: Any, source: str, key: str) -> Any:
    """Check/convert one YAML value to the annotated field type."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, source, key)
            except UserError as e:
                errors.append(str(e))
        raise errors[0] if len(errors) == 1 else _fail(source, key, f"cannot use {value!r} here")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise _fail(source, key, f"expected a mapping, got {value!r}")
        return from_dict(tp, value, source, prefix=f"{key}.")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise _fail(source, key, f"expected a list, got {value!r}")
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise _fail(source, key, f"expected {len(args)} values, got {len(value)}")
            return tuple(_coerce(v, a, source, key) for v, a in zip(value, args))
        inner = args[0] if args else Any
        return origin(_coerce(v, inner, source, key) for v in value)
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise _fail(source, key, f"expected a mapping, got {value!r}")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _fail(source, key, f"expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _fail(source, key, f"expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise _fail(source, key, f"expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise _fail(source, key, f"expected a string, got {value!r}")
    return value


def from_dict(cls: type, data: dict, source: str = "config", prefix: str = ""):
    """Build dataclass `cls` from a nested dict; unknown keys are UserErrors."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise UserError(f"{source}: unknown config key '{prefix}{key}' (known here: {known})")
        tp = hints[key]
        default_factory = fields[key].default_factory
        if isinstance(value, dict) and default_factory is not dataclasses.MISSING:
            # A partial section overrides the parent's default for it (e.g. the
            # text domain's train.metric=rougeL), not the section class's.
            default = default_factory()
            if dataclasses.is_dataclass(default):
                value = {**to_dict(default), **value}
            elif isinstance(default, dict):
                value = {**default, **value}
        kwargs[key] = _coerce(value, tp, source, f"{prefix}{key}")
    try:
        return cls(**kwargs)
    except SettingError as e:  # a section's own check: its settings named as the recipe names them
        raise UserError(f"{source}: {e}") from None


def to_dict(cfg) -> dict:
    def plain(v):
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(cfg))


def parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise UserError(f"--set {text}: expected key=value, e.g. train.lr=3e-4")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise UserError(f"--set {text}: bad key '{key}'")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    for text in overrides or []:
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise UserError(f"--set {text}: '{part}' is not a section")
            node = child
        node[path[-1]] = value
    return data


def read_yaml(path: str | os.PathLike) -> dict:
    p = Path(path)
    if not p.exists():
        raise UserError(f"{p}: config file does not exist")
    if p.is_dir():
        raise UserError(f"{p}: is a directory, expected a YAML config file")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UserError(f"{p}: invalid UTF-8") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or "invalid YAML"
        raise UserError(f"{p}{line}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{p}: expected a mapping of config keys at the top level")
    return data


def load(cls: type, path: str | os.PathLike | None = None, overrides: list[str] | None = None):
    """The config of a run: `cls` defaults <- YAML file <- overrides."""
    data = read_yaml(path) if path is not None else {}
    apply_overrides(data, overrides or [])
    source = str(path) if path is not None else "--set"
    return from_dict(cls, data, source)


def save(cfg, path: str | os.PathLike) -> None:
    from triptych.files import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))


def field_default(factory):
    """Shorthand for a nested dataclass field with its default instance."""
    return field(default_factory=factory)
