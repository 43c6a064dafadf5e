"""Checkpoints: a directory of safetensors weights, config, meta and training state.

Layout of one checkpoint directory:

    model.safetensors   the weights (no pickle code runs on load; tied
                        tensors are stored once, via safetensors.torch.save_model)
    config.yaml         the resolved config of the run, to rebuild the model
    meta.json           {"format": "triptych-checkpoint", "version": 1,
                         "domain", "step", "metrics", "weights_crc32"}
    trainer_state.pt    optimizer, RNG, data position, step, elapsed time,
                        best metric: only plain containers and tensors, so it
                        loads with torch.load(weights_only=True)
    ...                 the task's artifacts (tokenizer.json, labels, ...)

Writes are atomic at the directory level: everything is built under a
temporary name beside the destination and renamed into place. Replacing an
existing checkpoint renames the old one aside first, moves the new one in,
then deletes the old one; a reader that finds only the aside copy (a kill
between the two renames) takes it back. So a kill at any moment leaves the
last good checkpoint loadable.

Loading verifies: the CRC-32 of model.safetensors must match the one
meta.json recorded at save (a flipped bit on disk or in a copy is caught;
checkpoints older than the checksum load unverified), and every floating
tensor must be finite -- NaN weights summarize to empty strings with exit 0,
which is worse than refusing them with a line naming the file and tensor.
"""


from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any, Callable

import torch
import yaml
from torch import nn

from triptych.errors import UserError
from triptych.hardware import conv_memory_format

FORMAT = "triptych-checkpoint"
VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.yaml"
META = "meta.json"
STATE = "trainer_state.pt"
LATEST = "latest"  # a file in checkpoints/ naming the newest step-NNNNNNN
_STEP_DIR = re.compile(r"^step-(\d+)$")


def _aside(directory: Path) -> Path:
    return directory.with_name(f".{directory.name}.old")


def _fsync(path: Path) -> None:
    """Flush a file or directory to disk (best effort: some filesystems refuse)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def resolve(directory: str | os.PathLike) -> Path:
    """The checkpoint directory, recovering it from its aside copy if a replace was cut short."""
    d = Path(directory)
    if not d.exists() and _aside(d).is_dir():
        try:
            os.replace(_aside(d), d)
        except OSError:
            return _aside(d)  # read-only place: read the aside copy where it lies
    return d


def step_dir_name(step: int) -> str:
    return f"step-{step:07d}"


def save_checkpoint(directory: str | os.PathLike, model: nn.Module, *, domain: str, config: dict | None,
                    trainer_state: dict | None = None, save_artifacts: Callable[[Path], None] | None = None,
                    metrics: dict | None = None, step: int | None = None) -> Path:
    """Write a complete checkpoint to `directory`, atomically; returns its path.

    `step` defaults to trainer_state["step"] when there is a training state.
    """
    from safetensors.torch import save_model

    dest = Path(directory)
    dest.parent.mkdir(parents=True, exist_ok=True)
    for stale in dest.parent.glob(f".{dest.name}.tmp-*"):  # left by an earlier kill
        shutil.rmtree(stale, ignore_errors=True)
    if not dest.exists() and _aside(dest).is_dir():
        resolve(dest)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        if step is None and trainer_state is not None:
            step = int(trainer_state.get("step", 0))
        save_model(model, str(tmp / WEIGHTS))
        weights_crc32 = file_crc32(tmp / WEIGHTS)
        (tmp / CONFIG).write_text(yaml.safe_dump(config or {}, sort_keys=False), encoding="utf-8")
        if trainer_state is not None:
            torch.save(trainer_state, tmp / STATE)
        if save_artifacts is not None:
            save_artifacts(tmp)
        meta = {"format": FORMAT, "version": VERSION, "domain": domain, "step": step,
                "metrics": _plain_metrics(metrics), "weights_crc32": weights_crc32}
        # meta.json is written last: a directory without it is never a checkpoint.
        (tmp / META).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        for f in tmp.iterdir():
            if f.is_file():
                _fsync(f)
        _fsync(tmp)
        _install(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _plain_metrics(metrics: dict | None) -> dict:
    out = {}
    for k, v in (metrics or {}).items():
        if isinstance(v, torch.Tensor):
            v = v.item()
        out[str(k)] = v if isinstance(v, (int, float, str, bool)) or v is None else str(v)
    return out


def _install(tmp: Path, dest: Path) -> None:
    """Rename `tmp` onto `dest`; an existing `dest` goes aside first and is deleted after."""
    aside = _aside(dest)
    if dest.exists():
        if aside.exists():
            shutil.rmtree(aside)
        os.replace(dest, aside)
        os.replace(tmp, dest)
        _fsync(dest.parent)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(tmp, dest)
        _fsync(dest.parent)


def load_checkpoint_meta(directory: str | os.PathLike, expected_domain: str | None = None) -> tuple[dict, dict]:
    """(meta, config dict) of a checkpoint, checking it is one and of the right domain."""
    d = resolve(directory)
    if not d.exists():
        raise UserError(f"{directory}: no such checkpoint directory")
    if not d.is_dir():
        name = _pointed_step(d) if d.name == LATEST else None  # what users see in a run's checkpoints/
        if name:
            raise UserError(f"{directory}: the run's pointer to its newest checkpoint, not one; give {d.parent / name}")
        raise UserError(f"{directory}: not a directory, expected a checkpoint directory")
    meta_path = d / META
    if not meta_path.is_file():
        given = [Path(directory) / "best"] if (d / "best" / META).is_file() else []
        given += [p for _, p in list_step_dirs(d / "checkpoints")[-1:]]
        if given:
            raise UserError(f"{directory}: a run directory, not a checkpoint; give {' or '.join(map(str, given))}")
        raise UserError(f"{directory}: not a triptych checkpoint (no {META})")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, OSError) as e:
        raise UserError(f"{meta_path}: corrupt checkpoint metadata ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserError(f"{meta_path}: not a triptych checkpoint")
    if not isinstance(meta.get("version"), int) or meta["version"] > VERSION:
        raise UserError(f"{meta_path}: checkpoint version {meta.get('version')!r} is newer than this triptych reads")
    domain = meta.get("domain")
    if expected_domain is not None and domain != expected_domain:
        raise UserError(f"{directory}: a {domain} checkpoint, expected {expected_domain}")
    config_path = d / CONFIG
    try:
        config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{directory}: checkpoint has no {CONFIG}") from None
    except (UnicodeDecodeError, yaml.YAMLError, OSError) as e:
        raise UserError(f"{config_path}: corrupt checkpoint config ({type(e).__name__})") from None
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise UserError(f"{config_path}: corrupt checkpoint config (not a mapping)")
    return meta, config


def file_crc32(path: Path) -> str:
    """CRC-32 of a file as 8 hex digits, read in 8 MiB blocks.

    A CRC catches every burst of flipped bits up to 32 long (what disks and
    copies do) at about 3 GB/s; SHA-256 cost 4.5x as much and guards against
    nothing more here: an attacker who edits weights can edit meta.json too.
    Measured in docs/history/2026-12-03-reliability.md."""
    import zlib

    crc = 0
    with open(path, "rb") as fh:
        while block := fh.read(8 << 20):
            crc = zlib.crc32(block, crc)
    return f"{crc:08x}"


def verify_weights(directory: str | os.PathLike) -> Path:
    """The checkpoint's model.safetensors, after checking it against meta.json's checksum."""
    from triptych.files import note_input

    d = resolve(directory)
    path = d / WEIGHTS
    if not path.is_file():
        raise UserError(f"{directory}: checkpoint has no {WEIGHTS}")
    note_input(path)  # no output of this command may replace it
    try:
        expected = json.loads((d / META).read_text(encoding="utf-8")).get("weights_crc32")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        expected = None  # load_checkpoint_meta reports a bad meta.json; older checkpoints have no checksum
    if isinstance(expected, str) and file_crc32(path) != expected:
        raise UserError(f"{path}: corrupt weights file (checksum mismatch: changed after it was saved)")
    return path


def check_finite(model: nn.Module, path: Path) -> None:
    """Refuse weights holding NaN or infinity, naming the first such tensor."""
    for name, t in model.state_dict().items():
        # The sum is finite when every element is (5x faster than isfinite().all());
        # only a non-finite sum, or an overflowing one, is looked at element by element.
        if t.is_floating_point() and not bool(torch.isfinite(t.sum())) and not bool(torch.isfinite(t).all()):
            raise UserError(f"{path}: tensor {name} holds NaN or infinite values; refusing these weights")


def load_weights(directory: str | os.PathLike, model: nn.Module, *, strict: bool = True) -> None:
    """Load model.safetensors into `model` (in place, on the model's device), verified."""
    from safetensors import SafetensorError
    from safetensors.torch import load_model

    path = verify_weights(directory)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    try:
        missing, unexpected = load_model(model, str(path), strict=False, device=str(device))
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(f"{path}: corrupt weights file ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    except RuntimeError as e:  # shape mismatch
        first = str(e).strip().splitlines()
        raise UserError(f"{path}: weights do not fit this model ({first[-1].strip() if first else e})") from None
    if strict and (missing or unexpected):
        parts = []
        if missing:
            parts.append("missing " + ", ".join(sorted(missing)[:5]) + (" ..." if len(missing) > 5 else ""))
        if unexpected:
            parts.append("unexpected " + ", ".join(sorted(unexpected)[:5]) + (" ..." if len(unexpected) > 5 else ""))
        raise UserError(f"{path}: weights do not fit this model ({'; '.join(parts)})")
    check_finite(model, path)


def load_trainer_state(directory: str | os.PathLike) -> dict[str, Any]:
    """The training state of a checkpoint, loaded with weights_only=True."""
    d = resolve(directory)
    path = d / STATE
    if not path.is_file():
        raise UserError(f"{directory}: checkpoint has no training state ({STATE}); it cannot be resumed")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # zip, unpickling and EOF errors all mean the same to the user
        raise UserError(f"{path}: corrupt training state ({type(e).__name__})") from None
    if not isinstance(state, dict) or "step" not in state:
        raise UserError(f"{path}: corrupt training state (no step)")
    return state


# --- the periodic checkpoints of a run: run_dir/checkpoints/step-NNNNNNN + latest -------------


def write_latest(checkpoints_dir: Path, name: str) -> None:
    from triptych.files import atomic_write_text

    atomic_write_text(checkpoints_dir / LATEST, name + "\n")


def list_step_dirs(checkpoints_dir: Path) -> list[tuple[int, Path]]:
    """Complete periodic checkpoints (those with meta.json), oldest first."""
    found: dict[int, Path] = {}
    if not checkpoints_dir.is_dir():
        return []
    for p in checkpoints_dir.iterdir():
        name = p.name
        if name.startswith(".") and name.endswith(".old"):
            name = name[1:-4]  # an aside copy, taken back by resolve()
        m = _STEP_DIR.match(name)
        if m and p.is_dir():
            d = resolve(checkpoints_dir / name)
            if (d / META).is_file():
                found[int(m.group(1))] = d
    return sorted(found.items())


def _pointed_step(pointer: Path) -> str | None:
    """The step-NNNNNNN a `latest` pointer file names, or None (no file, or not a step name)."""
    try:
        with open(pointer, "rb") as f:
            name = f.read(64).decode("utf-8", errors="replace").strip()
    except OSError:
        return None
    return name if _STEP_DIR.match(name) else None


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint of a run: the `latest` pointer, else the highest step."""
    ckpts = Path(run_dir) / "checkpoints"
    name = _pointed_step(ckpts / LATEST)
    if name:
        d = resolve(ckpts / name)
        if (d / META).is_file() and (d / STATE).is_file():
            return d
    resumable = [d for _, d in list_step_dirs(ckpts) if (d / STATE).is_file()]
    return resumable[-1] if resumable else None


def prune(checkpoints_dir: Path, keep: int) -> None:
    """Delete all but the newest `keep` (at least one) periodic checkpoints."""
    for stale in checkpoints_dir.glob(".*.deleting"):  # a deletion cut short by a kill
        shutil.rmtree(stale, ignore_errors=True)
    steps = list_step_dirs(checkpoints_dir)
    for _, d in steps[: max(0, len(steps) - max(1, keep))]:
        # Renamed away first, so a kill mid-delete never leaves a half-deleted
        # directory under a name that looks like a checkpoint.
        doomed = d.with_name(f".{d.name}.deleting")
        try:
            os.replace(d, doomed)
        except OSError:
            doomed = d
        shutil.rmtree(doomed, ignore_errors=True)


class Loaded:
    """A checkpoint ready for inference: its directory, meta.json, the
    domain's config dataclass and the model (weights loaded, eval mode, on `device`)."""

    def __init__(self, directory: Path, meta: dict, cfg: Any, model: nn.Module, device: torch.device):
        self.directory, self.meta, self.cfg, self.model, self.device = directory, meta, cfg, model, device


def load_for_inference(directory: str | os.PathLike, config_cls: type, domain: str, build: Callable[[Any], nn.Module], *,
                       device: str | torch.device = "cpu", name: Callable[[Any], str] | None = None) -> Loaded:
    """The one way a domain's predictor loads a checkpoint: meta and config
    checked (`domain`, `config_cls`'s keys), `build(cfg)` makes the model, the
    weights go in, eval mode. `name(cfg)`: the architecture config.yaml
    declares, named when the weights do not fit it (they are another's)."""
    from triptych.config import from_dict

    directory = Path(directory)
    meta, raw = load_checkpoint_meta(directory, expected_domain=domain)
    cfg = from_dict(config_cls, raw, str(directory / CONFIG))
    model = build(cfg)
    try:
        load_weights(directory, model)
    except UserError as e:
        if name is None or "do not fit" not in str(e):
            raise
        raise UserError(f"{e}; its config.yaml describes a {name(cfg)!r} model (model.name), the weights another architecture") from None
    device = torch.device(device)
    model.to(device).eval()
    if conv_memory_format("auto", device) == "channels_last":
        model.to(memory_format=torch.channels_last)  # convolutions only; evaluation 1.07-2.3x on CPU (hardware.py)
    return Loaded(directory, meta, cfg, model, device)
