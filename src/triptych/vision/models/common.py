"""Pieces shared by the plain "conv stack + MLP" networks (AlexNet, ZFNet, VGG).

Those three families differ only in their convolutional trunk; each ends
with the same head: pool the last feature map to a fixed grid, flatten, two
hidden fully-connected layers with dropout, a linear classifier. Writing
that once keeps each family's file about the part that made it famous.
"""

from __future__ import annotations

import torch
from torch import nn

from .registry import ImageClassifier


class ConvMLPClassifier(ImageClassifier):
    """trunk -> adaptive pool to (grid x grid) -> [dropout, fc, relu] x 2 -> fc.

    `grid` is 6 for AlexNet/ZFNet and 7 for VGG at ImageNet size (that is
    what fixes their famous parameter counts: ~38M and ~103M in the first
    fully-connected layer alone); small inputs use grid 1.
    """

    def __init__(
        self,
        trunk: nn.Sequential,
        trunk_channels: int,
        num_classes: int,
        grid: int,
        hidden: int = 4096,
        dropout: float = 0.5,
    ):
        super().__init__()
        self.trunk = trunk
        self.pool = nn.AdaptiveAvgPool2d(grid)
        self.mlp = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(trunk_channels * grid * grid, hidden),  # fc6
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),  # fc7
            nn.ReLU(inplace=True),
        )
        self.head = nn.Linear(hidden, num_classes)  # fc8
        self.embed_dim = hidden

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)  # (B, trunk_channels, H', W')

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.flatten(self.pool(self.trunk(x)), 1))  # (B, hidden): fc7


def init_conv_mlp(model: nn.Module) -> None:
    """Kaiming-normal convs (He et al. 2015), small normal linears: trains from scratch without BN."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
