"""ResNet (He, Zhang, Ren & Sun, 2015): residual learning, 18 to 152 layers.

Each block learns a residual F(x) and outputs relu(x + F(x)): the identity
path lets gradients reach early layers unchanged, so depth stops hurting.
Two block types:
- `BasicBlock` (ResNet-18/34): two 3x3 convs;
- `Bottleneck` (ResNet-50/101/152): 1x1 reduce, 3x3, 1x1 expand (x4) —
  the cheap way to go deep at high channel counts.
When a stage changes resolution or width the shortcut is a strided 1x1
conv + BN (the paper's option B). Strides sit on the 3x3 conv of a
bottleneck ("ResNet v1.5"), as in torchvision; the count is the same.

`small_input=True` is the CIFAR-style stem: one 3x3 stride-1 conv, no
max-pool, so an 8x8 or 32x32 image is not shrunk 4x before the first block.
"""

from __future__ import annotations

import torch
from torch import nn

from .conv import Conv2d
from .registry import ImageClassifier, register_model, scaled_channels


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """conv (no bias: BN's shift replaces it) + batch norm."""
    return nn.Sequential(
        Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
    )


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, width: int, stride: int = 1):
        super().__init__()
        cout = width * self.expansion
        self.residual = nn.Sequential(
            conv_bn(cin, width, 3, stride), nn.ReLU(inplace=True),
            conv_bn(width, cout, 3),
        )
        self.shortcut = conv_bn(cin, cout, 1, stride) if stride != 1 or cin != cout else nn.Identity()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.shortcut(x) + self.residual(x))

    def last_bn(self) -> nn.BatchNorm2d:
        return self.residual[-1][1]


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1):
        super().__init__()
        cout = width * self.expansion
        self.residual = nn.Sequential(
            conv_bn(cin, width, 1), nn.ReLU(inplace=True),  # reduce
            conv_bn(width, width, 3, stride), nn.ReLU(inplace=True),  # spatial, strided here (v1.5)
            conv_bn(width, cout, 1),  # expand
        )
        self.shortcut = conv_bn(cin, cout, 1, stride) if stride != 1 or cin != cout else nn.Identity()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.shortcut(x) + self.residual(x))

    def last_bn(self) -> nn.BatchNorm2d:
        return self.residual[-1][1]


class ResNet(ImageClassifier):
    """stem -> 4 stages (64, 128, 256, 512 wide, times `width`; stride 1, 2, 2, 2) -> global average -> fc."""

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        depths: list[int],
        num_classes: int = 1000,
        in_channels: int = 3,
        small_input: bool = False,
        zero_init_residual: bool = True,
        width: float = 1.0,
    ):
        super().__init__()
        stem = scaled_channels(64, width)
        if small_input:
            self.stem = nn.Sequential(conv_bn(in_channels, stem, 3), nn.ReLU(inplace=True))
        else:
            self.stem = nn.Sequential(
                conv_bn(in_channels, stem, 7, stride=2), nn.ReLU(inplace=True),  # (B, 64, 112, 112)
                nn.MaxPool2d(3, stride=2, padding=1),  # (B, 64, 56, 56)
            )
        stages, cin = [], stem
        for i, (planes, depth) in enumerate(zip((64, 128, 256, 512), depths)):
            planes = scaled_channels(planes, width)
            blocks = []
            for j in range(depth):
                blocks.append(block(cin, planes, stride=2 if (i > 0 and j == 0) else 1))
                cin = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)  # (B, 512 * expansion, H/32, W/32) at ImageNet size
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(cin, num_classes)
        self.embed_dim = cin
        self._init(zero_init_residual)

    def _init(self, zero_init_residual: bool) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            # Each block starts as the identity (Goyal et al. 2017): deep nets
            # train from scratch faster and more stably on small data.
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck)):
                    nn.init.zeros_(m.last_bn().weight)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.feature_map(x)), 1)  # (B, 512 * expansion)


_PRESETS = {  # name: (block, blocks per stage, torchvision's published parameter count)
    "resnet18": (BasicBlock, [2, 2, 2, 2], 11_689_512),
    "resnet34": (BasicBlock, [3, 4, 6, 3], 21_797_672),
    "resnet50": (Bottleneck, [3, 4, 6, 3], 25_557_032),
    "resnet101": (Bottleneck, [3, 4, 23, 3], 44_549_160),
    "resnet152": (Bottleneck, [3, 8, 36, 3], 60_192_808),
}


def _register(name: str) -> None:
    block, depths, params = _PRESETS[name]

    def build(**kwargs) -> ResNet:
        return ResNet(block, depths, **kwargs)

    build.__name__ = name
    register_model(
        name, family="resnet", params=params,
        summary=f"ResNet-{name[6:]} ({block.__name__} x {depths})",
        reference={"torchvision": name},
    )(build)


for _name in _PRESETS:
    _register(_name)
