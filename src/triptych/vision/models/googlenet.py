"""GoogLeNet / Inception v1 (Szegedy et al., 2014): ImageNet 2014 with 12x fewer parameters than AlexNet.

An Inception module runs four branches side by side on the same input and
concatenates their channels: 1x1; 1x1 -> 3x3; 1x1 -> "5x5"; 3x3 max-pool ->
1x1. The 1x1 convolutions first shrink the channels, which is what makes
the wide multi-scale module affordable. Nine modules, then global average
pooling instead of AlexNet/VGG's huge fully-connected layers: 6.6M weights.

Two auxiliary classifiers (after 4a and 4d) were the paper's remedy for
vanishing gradients; `aux_logits=True` adds them, and `forward_with_aux`
returns their logits for a weighted extra loss during training.

Faithful to torchvision, not to the paper, in one detail: the "5x5" branch
uses a 3x3 kernel (torchvision kept this to stay compatible with the
weights it published), so the parameter count equals torchvision's
6,624,904. `paper_5x5=True` restores the paper's 5x5 kernels. `width`
multiplies every layer's channels (0.5: a quarter of the arithmetic), for
recipes that must fit a small CPU. Every conv is
followed by batch norm (eps 1e-3), which Inception v1 predates.
"""

from __future__ import annotations

import torch
from torch import nn

from .conv import Conv2d
from .registry import ImageClassifier, register_model, scaled_channels


def conv_bn_relu(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(cout, eps=0.001),
        nn.ReLU(inplace=True),
    )


class Inception(nn.Module):
    """Four parallel branches concatenated: (B, cin, H, W) -> (B, c1 + c3 + c5 + pool_proj, H, W)."""

    def __init__(self, cin, c1, c3_reduce, c3, c5_reduce, c5, pool_proj, k5: int = 3):
        super().__init__()
        self.branch1 = conv_bn_relu(cin, c1, 1)
        self.branch3 = nn.Sequential(conv_bn_relu(cin, c3_reduce, 1), conv_bn_relu(c3_reduce, c3, 3))
        self.branch5 = nn.Sequential(conv_bn_relu(cin, c5_reduce, 1), conv_bn_relu(c5_reduce, c5, k5))
        self.branch_pool = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True), conv_bn_relu(cin, pool_proj, 1))
        self.out_channels = c1 + c3 + c5 + pool_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch3(x), self.branch5(x), self.branch_pool(x)], dim=1)


class AuxHead(nn.Module):
    """Auxiliary classifier: pool to 4x4 -> 1x1 conv 128 -> fc 1024 -> dropout 0.7 -> fc
    (`c` scales the 128 and the 1024 with the network's width)."""

    def __init__(self, cin: int, num_classes: int, c=lambda channels: channels):
        super().__init__()
        self.body = nn.Sequential(
            nn.AdaptiveAvgPool2d(4), conv_bn_relu(cin, c(128), 1), nn.Flatten(),
            nn.Linear(c(128) * 4 * 4, c(1024)), nn.ReLU(inplace=True), nn.Dropout(0.7),
            nn.Linear(c(1024), num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


# (cin, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj): the paper's Table 1.
_STAGE3 = [(192, 64, 96, 128, 16, 32, 32), (256, 128, 128, 192, 32, 96, 64)]
_STAGE4 = [
    (480, 192, 96, 208, 16, 48, 64), (512, 160, 112, 224, 24, 64, 64), (512, 128, 128, 256, 24, 64, 64),
    (512, 112, 144, 288, 32, 64, 64), (528, 256, 160, 320, 32, 128, 128),
]
_STAGE5 = [(832, 256, 160, 320, 32, 128, 128), (832, 384, 192, 384, 48, 128, 128)]


class GoogLeNet(ImageClassifier):
    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        small_input: bool = False,
        aux_logits: bool = False,
        dropout: float = 0.2,
        paper_5x5: bool = False,
        width: float = 1.0,
    ):
        super().__init__()
        k5 = 5 if paper_5x5 else 3

        def c(channels: int) -> int:  # every layer's width times `width`
            return scaled_channels(channels, width)

        if small_input:
            self.stem = nn.Sequential(
                conv_bn_relu(in_channels, c(64), 3), conv_bn_relu(c(64), c(64), 1), conv_bn_relu(c(64), c(192), 3),
            )
        else:
            self.stem = nn.Sequential(
                conv_bn_relu(in_channels, c(64), 7, stride=2), nn.MaxPool2d(3, 2, ceil_mode=True),  # (B, 64, 56, 56)
                conv_bn_relu(c(64), c(64), 1), conv_bn_relu(c(64), c(192), 3), nn.MaxPool2d(3, 2, ceil_mode=True),  # (B, 192, 28, 28)
            )
        cin = c(192)

        def stage(table) -> list[Inception]:
            nonlocal cin
            modules = []
            for _, *branches in table:  # the table's cin is the previous module's output at width 1
                modules.append(Inception(cin, *(c(b) for b in branches), k5=k5))
                cin = modules[-1].out_channels
            return modules

        self.stage3 = nn.Sequential(*stage(_STAGE3))  # (B, 480, 28, 28)
        self.pool3 = nn.MaxPool2d(3, 2, ceil_mode=True)  # (B, 480, 14, 14)
        stage4 = stage(_STAGE4)
        self.stage4 = nn.ModuleList(stage4)  # (B, 832, 14, 14)
        self.pool4 = nn.MaxPool2d(2, 2, ceil_mode=True)  # (B, 832, 7, 7)
        self.stage5 = nn.Sequential(*stage(_STAGE5))  # (B, 1024, 7, 7)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(cin, num_classes)
        self.embed_dim = cin
        self.aux1 = AuxHead(stage4[0].out_channels, num_classes, c) if aux_logits else None  # after 4a
        self.aux2 = AuxHead(stage4[3].out_channels, num_classes, c) if aux_logits else None  # after 4d
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def _trunk(self, x: torch.Tensor, aux: list | None) -> torch.Tensor:
        x = self.pool3(self.stage3(self.stem(x)))
        for i, module in enumerate(self.stage4):
            x = module(x)
            if aux is not None and i == 0:
                aux.append(self.aux1(x))
            if aux is not None and i == 3:
                aux.append(self.aux2(x))
        return self.stage5(self.pool4(x))

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return self._trunk(x, None)  # (B, 1024, H/32, W/32)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(torch.flatten(self.pool(self.feature_map(x)), 1))  # (B, 1024)

    def forward_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(logits, [aux1 logits, aux2 logits]); the list is empty without aux heads."""
        aux: list[torch.Tensor] | None = [] if self.aux1 is not None else None
        feats = self.dropout(torch.flatten(self.pool(self._trunk(x, aux)), 1))
        return self.head(feats), aux or []


@register_model(
    "googlenet", family="googlenet", params=6_624_904,
    summary="GoogLeNet / Inception v1 (Szegedy et al. 2014), no auxiliary heads",
    reference={"torchvision": "googlenet"},
)
def googlenet(**kwargs) -> GoogLeNet:
    return GoogLeNet(**kwargs)
