"""An exponential moving average of the weights (`train.ema_decay`), for validation and best/.

Why: SGD's weights wander about a minimum with each batch's noise; an
average over the last few thousand steps sits nearer its centre, and
validates and tests better than any single step's weights (Polyak and
Juditsky 1992; the moving-average form that TensorFlow's Inception and
ResNet training, timm's `--model-ema` and fairseq's `--ema-decay` keep).
The optimizer never sees the average: it is a shadow that follows the
trained weights, swapped into the model for validation and for writing
best/, so every checkpoint loader and inference path reads it as plain
weights. The periodic checkpoints keep the trained weights (a resumed run
continues from them) with the average beside them in the training state.
It costs one more copy of the weights in memory (two while validating) and
one pass over them a step.

After update n the average weighs the step's weights by 1 - d with
d = min(ema_decay, (1 + n) / (10 + n)): the warm-up keeps the first steps
from being dominated by the random initialisation (or, when the average
starts mid-run, by nothing at all). Floating-point buffers (batch norm's
running statistics) are averaged as the weights; integer ones (its step
counter) follow the model.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from triptych.errors import UserError


def _tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's parameters and buffers by name (a tied weight once)."""
    return {**dict(model.named_parameters()), **dict(model.named_buffers())}


class WeightAverage:
    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1), got {decay}")
        self.decay, self.updates = decay, 0
        self.average = {name: t.detach().clone() for name, t in _tensors(model).items()}

    def decay_now(self) -> float:
        """The weight the average keeps at the next update."""
        return min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the model's current weights into the average (after each optimizer step)."""
        keep = self.decay_now()
        current = _tensors(model)
        floats = [name for name, t in self.average.items() if t.is_floating_point()]
        torch._foreach_lerp_([self.average[n] for n in floats], [current[n].detach() for n in floats], 1.0 - keep)
        for name, t in self.average.items():
            if not t.is_floating_point():
                t.copy_(current[name])
        self.updates += 1

    @contextlib.contextmanager
    def swapped_in(self, model: nn.Module):
        """The model holds the average inside, its own weights again after."""
        current = _tensors(model)
        saved = {name: t.detach().clone() for name, t in current.items()}
        with torch.no_grad():
            for name, t in current.items():
                t.copy_(self.average[name])
        try:
            yield
        finally:
            with torch.no_grad():
                for name, t in current.items():
                    t.copy_(saved[name])

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates, "average": dict(self.average)}

    def load_state_dict(self, state: dict, source: str) -> None:
        """Continue a saved average; `source` names the checkpoint in errors."""
        average = state.get("average")
        if not isinstance(average, dict) or average.keys() != self.average.keys():
            raise UserError(f"{source}: the checkpoint's weight average does not fit this model")
        for name, t in self.average.items():
            saved = average[name]
            if not isinstance(saved, torch.Tensor) or saved.shape != t.shape:
                raise UserError(f"{source}: the checkpoint's weight average does not fit this model ({name})")
            t.copy_(saved)
        self.updates = int(state.get("updates", 0))
