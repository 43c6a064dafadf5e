"""LeNet-5 (LeCun, Bottou, Bengio & Haffner, 1998): the network that read cheques.

32x32 grey image -> C1 conv 5x5, 6 maps (28x28) -> S2 subsample (14x14)
-> C3 conv 5x5, 16 maps (10x10) -> S4 subsample (5x5) -> C5 conv 5x5, 120
maps (1x1) -> F6 84 units -> 10 outputs. 61,706 parameters.

Two simplifications against the paper, both standard in modern re-implementations:
- C3 connects every S2 map to every C3 map (the paper used a sparse table
  to break symmetry and save compute; 1998 hardware, not accuracy, drove it);
- the subsampling layers are plain average pools (the paper's had one
  trainable coefficient and bias per map), and the output is a linear layer
  trained with cross-entropy instead of Euclidean RBF units.

`small_input=True` pads the convolutions ("same") and averages C5 over
space, so 8x8 digits go in without resizing; the parameter count is unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from .registry import ImageClassifier, register_model

_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}


class LeNet5(ImageClassifier):
    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        small_input: bool = False,
        activation: str = "tanh",
    ):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation {activation!r} is not one of {', '.join(_ACTIVATIONS)}")
        act = _ACTIVATIONS[activation]
        pad = 2 if small_input else 0
        self.trunk = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=pad),  # C1: (B, 6, 28, 28) at 32x32
            act(),
            nn.AvgPool2d(2, ceil_mode=True),  # S2: (B, 6, 14, 14)
            nn.Conv2d(6, 16, 5, padding=pad),  # C3: (B, 16, 10, 10)
            act(),
            nn.AvgPool2d(2, ceil_mode=True),  # S4: (B, 16, 5, 5)
            nn.Conv2d(16, 120, 5, padding=pad),  # C5: (B, 120, 1, 1)
            act(),
        )
        # At 32x32 C5's output is already 1x1; with small_input it is HxW and
        # averaging it makes the network size-independent.
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.f6 = nn.Sequential(nn.Linear(120, 84), act())
        self.head = nn.Linear(84, num_classes)
        self.embed_dim = 84

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.f6(torch.flatten(self.pool(self.trunk(x)), 1))  # (B, 84)


@register_model(
    "lenet5", family="lenet", params=61_706, num_classes=10, in_channels=1, image_size=32,
    summary="LeNet-5 (LeCun et al. 1998), 32x32 grey input",
)
def lenet5(**kwargs) -> LeNet5:
    return LeNet5(**kwargs)
