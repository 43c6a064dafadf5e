"""Starting a run from another checkpoint's weights: fine-tuning, with a new head when the classes change.

`init_from: CHECKPOINT` (an imported torchvision model, or any vision run's
`best/`) loads every weight of the trunk. When the new data has other
classes than the checkpoint (names or number), the classifier layers —
`head`, and GoogLeNet's auxiliary heads' last layers — keep their fresh
initialisation for the new classes; when the classes are the same, they are
loaded too. A GoogLeNet checkpoint's auxiliary heads are dropped when the
recipe has none.

`freeze_backbone: true` trains the classifier layers alone (the
"linear probe" of a pretrained network): every other parameter stops
taking gradients, and batch norm layers stay in evaluation mode, so their
running statistics — part of what was pretrained — do not drift either.
"""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from triptych.errors import UserError

_AUX_LAST = ("aux1.body.6.", "aux2.body.6.")


def _is_head(key: str) -> bool:
    return key.startswith("head.") or key.startswith(_AUX_LAST)


def _checkpoint_classes(directory: Path) -> list[str] | None:
    try:
        return json.loads((directory / "classes.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def load_initial_weights(model: nn.Module, init_from: str | Path, classes: list[str]) -> dict:
    """Load `init_from` into `model`; returns {"new_head": bool, "loaded": n tensors}."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from triptych.engine.checkpoint import WEIGHTS, load_checkpoint_meta, resolve

    load_checkpoint_meta(init_from, "vision")
    d = resolve(init_from)
    try:
        saved = load_file(str(d / WEIGHTS))
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(f"{d / WEIGHTS}: cannot read the weights to start from ({str(e).splitlines()[0]})") from None
    new_head = _checkpoint_classes(d) != list(classes)
    own = model.state_dict()
    missing = [k for k in own if k not in saved and not (new_head and _is_head(k))]
    unexpected = [k for k in saved if k not in own and not k.startswith(("aux1.", "aux2."))]
    shapes = [k for k in own if k in saved and not (new_head and _is_head(k)) and saved[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        bad = ([f"{k} (missing)" for k in missing] + [f"{k} (unexpected)" for k in unexpected]
               + [f"{k} (shape {tuple(saved[k].shape)}, model needs {tuple(own[k].shape)})" for k in shapes])
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        raise UserError(f"{init_from}: init_from weights do not fit this model: {'; '.join(bad[:3])}{more}")
    state = {k: saved[k] for k in own if k in saved and not (new_head and _is_head(k))}
    model.load_state_dict(state, strict=False)
    return {"new_head": new_head, "loaded": len(state)}


def freeze_backbone(model: nn.Module) -> int:
    """Train only the classifier layers; returns the number of trainable parameters left."""
    for name, p in model.named_parameters():
        p.requires_grad_(_is_head(name))
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
            m.train = _stay_in_eval.__get__(m)  # model.train() must not wake the frozen statistics
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _stay_in_eval(self, mode: bool = True):
    return self

