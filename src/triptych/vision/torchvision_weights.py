"""torchvision-format weights in and out: the state dicts users already have.

Our AlexNet, VGG(-BN), GoogLeNet and ResNet-18..152 are the same networks
as torchvision's (same layers, same parameter counts, tested), with module
names that say what each part is. Only the names differ, so a weight file
moves between the two by renaming keys: `torchvision_key(name, ours)` maps
one of our keys to torchvision's, and the table built from a model's own
keys serves both directions. A file is accepted only if every key and shape
matches exactly; otherwise one line names the first three mismatches.

Files: `.safetensors`, or `.pth`/`.pt` read with `torch.load(weights_only=
True)` (no pickled code runs; a file that needs more is refused with a line
saying so). A `{"state_dict": ...}` or `{"model": ...}` wrapper and a DDP
`module.` prefix are unwrapped.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from triptych.errors import UserError

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
_RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
_VGGS = tuple(f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn"))
SUPPORTED = ("alexnet", *_VGGS, "googlenet", *_RESNETS)
_INCEPTIONS = {"stage3": "inception3{}", "stage4": "inception4{}", "stage5": "inception5{}"}
_GOOGLENET_BRANCH = {"branch3": "branch2", "branch5": "branch3"}


def _conv_bn(i: str) -> str:
    return {"0": "conv", "1": "bn"}[i]


def _resnet_key(k: str) -> str | None:
    if m := re.fullmatch(r"stem\.0\.([01])\.(.+)", k):
        return ("conv1." if m[1] == "0" else "bn1.") + m[2]
    if m := re.fullmatch(r"stages\.(\d+)\.(\d+)\.residual\.([024])\.([01])\.(.+)", k):
        n = int(m[3]) // 2 + 1  # residual.0 / .2 / .4 are the 1st / 2nd / 3rd conv_bn
        return f"layer{int(m[1]) + 1}.{m[2]}.{_conv_bn(m[4])}{n}.{m[5]}"
    if m := re.fullmatch(r"stages\.(\d+)\.(\d+)\.shortcut\.([01])\.(.+)", k):
        return f"layer{int(m[1]) + 1}.{m[2]}.downsample.{m[3]}.{m[4]}"
    if k.startswith("head."):
        return "fc." + k[5:]
    return None


def _conv_mlp_key(k: str, fc6: int, fc7: int) -> str | None:
    """AlexNet/VGG: trunk = features; our mlp.1 / mlp.4 / head are torchvision's classifier.{fc6, fc7, 6}."""
    if k.startswith("trunk."):
        return "features." + k[6:]
    if m := re.fullmatch(r"mlp\.([14])\.(.+)", k):
        return f"classifier.{fc6 if m[1] == '1' else fc7}.{m[2]}"
    if k.startswith("head."):
        return "classifier.6." + k[5:]
    return None


def _googlenet_key(k: str) -> str | None:
    if m := re.fullmatch(r"stem\.([023])\.([01])\.(.+)", k):
        return f"conv{ {'0': 1, '2': 2, '3': 3}[m[1]] }.{_conv_bn(m[2])}.{m[3]}"
    if m := re.fullmatch(r"(stage[345])\.(\d+)\.(\w+?)\.(.+)", k):
        module = _INCEPTIONS[m[1]].format("abcde"[int(m[2])])
        branch, rest = m[3], m[4]
        if branch == "branch1":
            r = re.fullmatch(r"([01])\.(.+)", rest)
            return f"{module}.branch1.{_conv_bn(r[1])}.{r[2]}"
        if branch in _GOOGLENET_BRANCH:
            r = re.fullmatch(r"([01])\.([01])\.(.+)", rest)
            return f"{module}.{_GOOGLENET_BRANCH[branch]}.{r[1]}.{_conv_bn(r[2])}.{r[3]}"
        if branch == "branch_pool":
            r = re.fullmatch(r"1\.([01])\.(.+)", rest)
            return f"{module}.branch4.1.{_conv_bn(r[1])}.{r[2]}"
        return None
    if m := re.fullmatch(r"(aux[12])\.body\.(1\.[01]|3|6)\.(.+)", k):
        part = {"1.0": "conv.conv", "1.1": "conv.bn", "3": "fc1", "6": "fc2"}[m[2]]
        return f"{m[1]}.{part}.{m[3]}"
    if k.startswith("head."):
        return "fc." + k[5:]
    return None


def torchvision_key(name: str, ours: str) -> str | None:
    """torchvision's name for our state-dict key `ours` of model `name` (None: no counterpart)."""
    if name in _RESNETS:
        return _resnet_key(ours)
    if name == "alexnet":
        return _conv_mlp_key(ours, 1, 4)
    if name in _VGGS:
        return _conv_mlp_key(ours, 0, 3)
    if name == "googlenet":
        return _googlenet_key(ours)
    raise UserError(f"--model {name}: torchvision weights exist for {', '.join(SUPPORTED)}")


def key_table(name: str, model: torch.nn.Module) -> dict[str, str]:
    """{torchvision key: our key} for every entry of `model`'s state dict."""
    table = {}
    for ours in model.state_dict():
        tv = torchvision_key(name, ours)
        if tv is None:
            raise RuntimeError(f"{name}: no torchvision name for {ours}")  # a bug in the tables above
        table[tv] = ours
    return table


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from .safetensors or a weights_only .pth, unwrapped; UserError on anything else."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: no such weights file")
    if p.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            sd = load_file(str(p))
        except (SafetensorError, OSError, ValueError) as e:
            raise UserError(f"{p}: not a readable safetensors file ({str(e).splitlines()[0] if str(e) else e})") from None
    else:
        import pickle
        import zipfile

        with open(p, "rb") as fh:
            head = fh.read(2)
        if not zipfile.is_zipfile(p) and head[:1] != b"\x80":  # neither torch.save's zip nor a legacy pickle
            raise UserError(f"{p}: not a readable PyTorch weights file (neither a torch.save zip nor a pickle)")
        try:
            sd = torch.load(p, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            m = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
            detail = f"it needs {m[1]}" if m else (str(e).strip().splitlines() or [""])[0][:120]
            raise UserError(f"{p}: refused by torch.load(weights_only=True): it holds pickled objects, not just "
                            f"tensors ({detail}); save model.state_dict() or safetensors instead") from None
        except (RuntimeError, EOFError, OSError, ValueError) as e:
            raise UserError(f"{p}: not a readable PyTorch weights file ({str(e).splitlines()[0][:160] if str(e) else type(e).__name__})") from None
    for wrapper in ("state_dict", "model"):
        if isinstance(sd, dict) and isinstance(sd.get(wrapper), dict):
            sd = sd[wrapper]
    if not isinstance(sd, dict) or not sd or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise UserError(f"{p}: not a state dict (expected a mapping of names to tensors)")
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def check_fit(path, name: str, sd: dict[str, torch.Tensor], table: dict[str, str],
              shapes: dict[str, torch.Size]) -> None:
    """UserError naming the first three mismatched keys (missing, unexpected or of another shape)."""
    bad = []
    for tv, ours in table.items():
        if tv not in sd:
            if not tv.endswith("num_batches_tracked"):  # absent from files saved before PyTorch 0.4.1
                bad.append(f"{tv} (missing)")
        elif tuple(sd[tv].shape) != tuple(shapes[ours]):
            bad.append(f"{tv} (shape {tuple(sd[tv].shape)}, {name} needs {tuple(shapes[ours])})")
    bad += [f"{k} (unexpected)" for k in sd if k not in table]
    if bad:
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        raise UserError(f"{path}: does not fit torchvision's {name}: {'; '.join(bad[:3])}{more}")


def _infer_shape(sd: dict, name: str) -> tuple[int, int, bool]:
    """(num_classes, in_channels, aux heads present) of a torchvision state dict."""
    head = "fc.weight" if name in _RESNETS or name == "googlenet" else "classifier.6.weight"
    first = {"alexnet": "features.0.weight", "googlenet": "conv1.conv.weight"}.get(
        name, "conv1.weight" if name in _RESNETS else "features.0.weight")
    classes = int(sd[head].shape[0]) if head in sd and sd[head].ndim == 2 else 1000
    channels = int(sd[first].shape[1]) if first in sd and sd[first].ndim == 4 else 3
    return classes, channels, any(k.startswith("aux1.") for k in sd)


def import_torchvision(path: str | Path, name: str, out: str | Path, classes: list[str] | None = None) -> dict:
    """Write a triptych checkpoint at `out` holding torchvision-format weights `path` in our `name`.

    The checkpoint's config is the ImageNet evaluation setting (3x224x224,
    ImageNet mean/std, resize 256 + centre crop 224); classes are `classes`
    or "0".."N-1". `out` must not exist yet: nothing is overwritten, and
    the checkpoint appears whole or not at all.
    """
    from triptych.config import to_dict
    from triptych.engine.checkpoint import save_checkpoint
    from triptych.vision.config import DataConfig, VisionConfig
    from triptych.vision.models import get_model
    from triptych.vision.task import CLASSES_FILE

    if name not in SUPPORTED:
        raise UserError(f"--model {name}: torchvision weights exist for {', '.join(SUPPORTED)}")
    dest = Path(out)
    if dest.exists():
        raise UserError(f"{dest}: already exists; give a new --out directory")
    sd = read_state_dict(path)
    num_classes, channels, aux = _infer_shape(sd, name)
    spec = {"name": name, **({"aux_logits": aux} if name == "googlenet" else {})}
    model = get_model(name, num_classes=num_classes, in_channels=channels, **{k: v for k, v in spec.items() if k != "name"})
    table = key_table(name, model)
    own = model.state_dict()
    check_fit(path, name, sd, table, {k: v.shape for k, v in own.items()})
    model.load_state_dict({ours: sd.get(tv, own[ours]) for tv, ours in table.items()})
    names = list(classes) if classes else [str(i) for i in range(num_classes)]
    if len(names) != num_classes:
        raise UserError(f"--classes: {len(names)} names for the {num_classes} outputs of {path}")
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if channels == 3 else ([0.5] * channels, [0.5] * channels)
    cfg = VisionConfig(model=spec, data=DataConfig(name="folder", image_size=224, channels=channels,
                                                    mean=list(mean), std=list(std)))

    def artifacts(directory: Path) -> None:
        import json

        (directory / CLASSES_FILE).write_text(json.dumps(names) + "\n", encoding="utf-8")

    save_checkpoint(dest, model, domain="vision", config=to_dict(cfg), save_artifacts=artifacts, step=0,
                    metrics={"imported_from": f"torchvision:{Path(path).name}"})
    return {"checkpoint": str(dest), "model": name, "num_classes": num_classes, "in_channels": channels,
            "tensors": len(table), "params": sum(p.numel() for p in model.parameters())}


def export_torchvision(checkpoint: str | Path, out: str | Path) -> dict:
    """Write a vision checkpoint's weights under torchvision's names (.safetensors or a .pth state dict)."""
    from triptych.files import atomic_path
    from triptych.vision.predictor import Classifier

    loaded = Classifier(checkpoint)  # config, classes, weights: the one loader for inference
    cfg, model = loaded.cfg, loaded.model
    name = str(cfg.model.get("name"))
    if name not in SUPPORTED:
        raise UserError(f"{checkpoint}: a {name} checkpoint; torchvision has no such model "
                        f"(export works for {', '.join(SUPPORTED)})")
    if cfg.model.get("small_input"):
        raise UserError(f"{checkpoint}: {name} with small_input: true has another stem than torchvision's {name}")
    if name == "googlenet" and cfg.model.get("paper_5x5"):
        raise UserError(f"{checkpoint}: googlenet with paper_5x5: true has 5x5 kernels; torchvision's has 3x3")
    dest = Path(out)
    if dest.exists() and dest.is_dir():
        raise UserError(f"{dest}: is a directory; give a file name ending in .pth or .safetensors")
    if dest.resolve() == (Path(checkpoint).resolve() / "model.safetensors"):
        raise UserError(f"{dest}: is the checkpoint's own weights file; give another --out")
    table = key_table(name, model)
    own = model.state_dict()
    sd = {tv: own[ours].detach().cpu().contiguous() for tv, ours in table.items()}
    with atomic_path(dest) as tmp:
        if dest.suffix == ".safetensors":
            from safetensors.torch import save_file

            save_file(sd, str(tmp))
        else:
            torch.save(sd, tmp)
    return {"file": str(dest), "model": name, "tensors": len(sd), "num_classes": len(loaded.classes)}
