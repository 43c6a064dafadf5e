"""ZFNet (Zeiler & Fergus, 2013): AlexNet re-tuned by looking at what it learned.

Their deconvnet visualisations showed AlexNet's 11x11 stride-4 first layer
aliased and left dead filters, so ZFNet uses a 7x7 stride-2 first layer and
a stride-2 second layer (Fig. 3 of the paper):

    224x224 -> conv1 7x7/2, 96 (110) -> pool 3/2 (55) -> LRN
            -> conv2 5x5/2, 256 (26) -> pool 3/2 (13) -> LRN
            -> conv3 3x3, 384 -> conv4 3x3, 384 -> conv5 3x3, 256 (13)
            -> pool 3/2 (6) -> fc6 4096 -> fc7 4096 -> fc8

The paper's "contrast normalisation" across feature maps is the local
response normalisation of AlexNet (size 5), which has no parameters.
torchvision has no ZFNet, so its count (62,357,608) is checked against this
layer list alone.
"""

from __future__ import annotations

from torch import nn

from .common import ConvMLPClassifier, init_conv_mlp
from .conv import Conv2d
from .registry import register_model


def zfnet_trunk(in_channels: int, small_input: bool) -> nn.Sequential:
    if small_input:
        conv1 = Conv2d(in_channels, 96, 3, padding=1)
        conv2 = Conv2d(96, 256, 5, padding=2)
        pool = lambda: nn.MaxPool2d(2, ceil_mode=True)  # noqa: E731
    else:
        conv1 = Conv2d(in_channels, 96, 7, stride=2, padding=1)  # (B, 96, 110, 110)
        conv2 = Conv2d(96, 256, 5, stride=2)  # (B, 256, 26, 26)
        pool = lambda: nn.MaxPool2d(3, stride=2, padding=1)  # noqa: E731  110->55, 26->13
    return nn.Sequential(
        conv1, nn.ReLU(inplace=True), pool(), nn.LocalResponseNorm(5),  # (B, 96, 55, 55)
        conv2, nn.ReLU(inplace=True), pool(), nn.LocalResponseNorm(5),  # (B, 256, 13, 13)
        Conv2d(256, 384, 3, padding=1), nn.ReLU(inplace=True),
        Conv2d(384, 384, 3, padding=1), nn.ReLU(inplace=True),
        Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
        nn.MaxPool2d(2, ceil_mode=True) if small_input else nn.MaxPool2d(3, stride=2),  # (B, 256, 6, 6)
    )


class ZFNet(ConvMLPClassifier):
    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        small_input: bool = False,
        hidden: int = 4096,
        dropout: float = 0.5,
    ):
        super().__init__(
            zfnet_trunk(in_channels, small_input), 256, num_classes,
            grid=1 if small_input else 6, hidden=hidden, dropout=dropout,
        )
        init_conv_mlp(self)


@register_model(
    "zfnet", family="zfnet", params=62_357_608,
    summary="ZFNet (Zeiler & Fergus 2013): 7x7/2 stem, stride-2 conv2",
)
def zfnet(**kwargs) -> ZFNet:
    return ZFNet(**kwargs)
