"""AlexNet (Krizhevsky, Sutskever & Hinton, 2012): the network that won ImageNet 2012.

Five convolutions (11x11 stride 4, then 5x5, then three 3x3) with ReLU and
overlapping max-pooling, then three fully-connected layers with dropout.
This is the single-GPU variant that torchvision defines (64/192/384/256/256
channels, from Krizhevsky's "one weird trick" paper, no local response
normalisation), so its 61,100,840 parameters equal torchvision's; the
2012 paper's two-tower network had 96/256/384/384/256 and split convs.

`small_input=True` swaps the 11x11/4 stem for a 3x3/1 one and 2x2 pools
and pools the last map to 1x1, for 8x8 to 32x32 images.
"""

from __future__ import annotations

from torch import nn

from .common import ConvMLPClassifier, init_conv_mlp
from .conv import Conv2d
from .registry import register_model


def alexnet_trunk(in_channels: int, small_input: bool) -> nn.Sequential:
    if small_input:
        stem = [Conv2d(in_channels, 64, 3, padding=1)]
        pool = lambda: nn.MaxPool2d(2, ceil_mode=True)  # noqa: E731
        conv2 = Conv2d(64, 192, 3, padding=1)
    else:
        stem = [Conv2d(in_channels, 64, 11, stride=4, padding=2)]  # (B, 64, 55, 55)
        pool = lambda: nn.MaxPool2d(3, stride=2)  # noqa: E731  overlapping pooling
        conv2 = Conv2d(64, 192, 5, padding=2)
    return nn.Sequential(
        *stem, nn.ReLU(inplace=True), pool(),  # (B, 64, 27, 27)
        conv2, nn.ReLU(inplace=True), pool(),  # (B, 192, 13, 13)
        Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
        Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
        Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True),
        pool(),  # (B, 256, 6, 6)
    )


class AlexNet(ConvMLPClassifier):
    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        small_input: bool = False,
        hidden: int = 4096,
        dropout: float = 0.5,
    ):
        super().__init__(
            alexnet_trunk(in_channels, small_input), 256, num_classes,
            grid=1 if small_input else 6, hidden=hidden, dropout=dropout,
        )
        init_conv_mlp(self)


@register_model(
    "alexnet", family="alexnet", params=61_100_840,
    summary="AlexNet (Krizhevsky et al. 2012), torchvision's single-tower variant",
    reference={"torchvision": "alexnet"},
)
def alexnet(**kwargs) -> AlexNet:
    return AlexNet(**kwargs)
