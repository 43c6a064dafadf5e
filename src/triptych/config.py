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
import reprlib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from triptych.errors import SettingError, UserError
from triptych.schema import bounded, check_finite, check_value

SCHEDULES = ("constant", "inverse_sqrt", "cosine", "linear", "step")


@dataclass
class TrainConfig:
    """The engine's knobs; identical for every domain. Bounds: triptych/schema.py."""

    # adamw (every recipe's default) | sgd: Nesterov momentum, what the ImageNet
    # CNNs (and their CIFAR/Fashion-MNIST ports) were trained with.
    optimizer: str = bounded("adamw", choices=("adamw", "sgd"))
    lr: float = bounded(1e-3, ge=0)
    weight_decay: float = bounded(0.01, ge=0)  # decoupled (AdamW); L2 added to the gradient (SGD)
    betas: tuple[float, float] = bounded((0.9, 0.98), ge=0, lt=1)  # AdamW
    momentum: float = bounded(0.9, ge=0, lt=1)  # SGD (Nesterov when > 0)
    warmup_steps: int = bounded(200, ge=0)
    # constant | inverse_sqrt | cosine | linear; cosine and linear decay to
    # `min_lr_ratio * lr` at max_steps, or at max_minutes when that is set
    # (the schedule is then timed to end with the budget).
    schedule: str = bounded("cosine", choices=SCHEDULES)
    min_lr_ratio: float = bounded(0.02, ge=0, le=1)
    decay_rate: float = bounded(0.8, gt=0, le=1)  # schedule "step": lr x decay_rate every decay_steps updates
    decay_steps: int = bounded(50_000, ge=1)
    max_steps: int = bounded(10_000, ge=0)  # 0: no step limit (then max_minutes or max_epochs must bound the run)
    max_minutes: float | None = bounded(None, gt=0)
    max_epochs: int | None = bounded(None, ge=1)  # stop ("end") after this many passes over the task's batch plan
    clip_norm: float | None = bounded(1.0, ge=0)
    # > 0: keep an exponential moving average of the weights with this decay
    # (0.999 averages about the last 1,000 steps), validate it and write it
    # to best/ (engine/averaging.py). 0: off.
    ema_decay: float = bounded(0.0, ge=0, lt=1)
    accum_steps: int = bounded(1, ge=1)
    eval_every: int = bounded(500, ge=0)  # 0: only at the end
    eval_at_end: bool = True
    metric: str = "valid_loss"  # the validation metric that selects best/
    metric_mode: str = bounded("min", choices=("min", "max"))
    patience: int | None = bounded(None, ge=1)  # early stopping: evaluations without improvement
    save_every: int = bounded(500, ge=0)
    keep_checkpoints: int = bounded(2, ge=1)
    log_every: int = bounded(20, ge=0)
    precision: str = bounded("fp32", choices=("fp32", "bf16", "auto"))  # bf16: autocast; auto: bf16 where the hardware has native bf16 products
    # How 4-D weights (convolutions) lie in memory: channels_last (NHWC), contiguous
    # (NCHW), or auto: the layout measured faster for the device
    # (hardware.conv_memory_format).
    memory_format: str = bounded("auto", choices=("auto", "channels_last", "contiguous"))
    threads: int | None = bounded(None, ge=1, le=4096)
    # Return freed heap memory to the OS when resident memory has grown this
    # many MiB since the last time (glibc; see engine/memory.py). 0: never.
    trim_memory_mb: float = bounded(384.0, ge=0)


def _fail(source: str | None, key: str, msg: str) -> UserError:
    return UserError(f"{source}: {key}: {msg}" if source else f"{key}: {msg}")


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
                errors.append(e)
        raise errors[0] if len(errors) == 1 else _fail(source, key, f"cannot use {_short(value)} here")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise _fail(source, key, f"expected a mapping, got {_short(value)}")
        return from_dict(tp, value, source, prefix=f"{key}.")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise _fail(source, key, f"expected a list, got {_short(value)}")
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise _fail(source, key, f"expected {len(args)} values, got {len(value)}")
            return tuple(_coerce(v, a, source, key) for v, a in zip(value, args))
        inner = args[0] if args else Any
        return origin(_coerce(v, inner, source, key) for v in value)
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise _fail(source, key, f"expected a mapping, got {_short(value)}")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _fail(source, key, f"expected true or false, got {_short(value)}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _fail(source, key, f"expected an integer, got {_short(value)}")
    if tp is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                pass
        if number is None:
            raise _fail(source, key, f"expected a number, got {_short(value)}")
        check_finite(number, f"{source}: {key}" if source else key)
        return number
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise _fail(source, key, f"expected a string, got {_short(value)}")
    return value


def _short(value: Any) -> str:
    """repr of a value, cut short: a huge value must not make a huge message."""
    text = reprlib.repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def from_dict(cls: type, data: dict, source: str | None = "config", prefix: str = ""):
    """Build dataclass `cls` from a nested dict; unknown keys and values out of
    their field's bounds (triptych/schema.py) are UserErrors naming the key."""
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
        check_value(fields[key], kwargs[key], f"{source}: {prefix}{key}" if source else f"{prefix}{key}")
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
    check_expansion(value, f"--set {key}")
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
    check_expansion(data, str(p))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{p}: expected a mapping of config keys at the top level")
    return data


MAX_VALUES = 100_000  # values in a config once its YAML aliases are expanded


def check_expansion(data: Any, source: str) -> None:
    """Refuse YAML whose aliases expand beyond MAX_VALUES values ("billion laughs").

    PyYAML shares an aliased node, so loading is cheap, but anything that walks
    the result (a message, a copy, saving config.yaml) expands it: 9 levels of
    10 aliases is 10^9 values. The walk counts values as they would expand and
    stops at the limit, so it costs at most MAX_VALUES steps.
    """
    budget, stack = MAX_VALUES, [data]
    while stack:
        node = stack.pop()
        budget -= 1
        if budget < 0:
            raise UserError(f"{source}: YAML aliases expand to more than {MAX_VALUES:,} values; refusing it")
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, (list, tuple)):
            stack.extend(node)


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
