"""VGG (Simonyan & Zisserman, 2014): depth from nothing but 3x3 convolutions.

Two stacked 3x3 convs see what one 5x5 sees with fewer parameters and one
more non-linearity; VGG pushes that to 11-19 layers. Each configuration of
the paper's Table 1 is a list: an int is a 3x3 conv with that many output
channels (padding 1, so size is kept), "M" is a 2x2 max-pool that halves it.
The `_bn` variants put batch normalisation after every conv (not in the
paper, which predates BN; it is what makes VGG train from scratch easily).
"""

from __future__ import annotations

from torch import nn

from .common import ConvMLPClassifier, init_conv_mlp
from .conv import Conv2d
from .registry import register_model, scaled_channels

# The paper's Table 1 columns: A (11 layers), B (13), D (16), E (19).
CFGS: dict[str, list[int | str]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def vgg_trunk(cfg: list[int | str], in_channels: int, batch_norm: bool, small_input: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = in_channels
    for item in cfg:
        if item == "M":
            # ceil_mode lets an 8x8 image survive five halvings (8, 4, 2, 1, 1, 1).
            layers.append(nn.MaxPool2d(2, ceil_mode=small_input))
            continue
        layers.append(Conv2d(channels, item, 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(item))
        layers.append(nn.ReLU(inplace=True))
        channels = item
    return nn.Sequential(*layers)


class VGG(ConvMLPClassifier):
    """VGG trunk from a `CFGS` list, then the 7x7x512 -> 4096 -> 4096 -> classes head."""

    def __init__(
        self,
        cfg: list[int | str],
        batch_norm: bool = False,
        num_classes: int = 1000,
        in_channels: int = 3,
        small_input: bool = False,
        hidden: int = 4096,
        dropout: float = 0.5,
        width: float = 1.0,
    ):
        cfg = [c if c == "M" else scaled_channels(c, width) for c in cfg]  # `width`: every conv narrower
        trunk = vgg_trunk(cfg, in_channels, batch_norm, small_input)
        last = [c for c in cfg if c != "M"][-1]
        super().__init__(trunk, last, num_classes, grid=1 if small_input else 7, hidden=hidden, dropout=dropout)
        init_conv_mlp(self)


_PARAMS = {  # torchvision's published counts at 1000 classes, 3x224x224
    ("A", False): 132_863_336, ("A", True): 132_868_840,
    ("B", False): 133_047_848, ("B", True): 133_053_736,
    ("D", False): 138_357_544, ("D", True): 138_365_992,
    ("E", False): 143_667_240, ("E", True): 143_678_248,
}


def _register(depth: int, cfg: str, batch_norm: bool) -> None:
    name = f"vgg{depth}{'_bn' if batch_norm else ''}"

    def build(**kwargs) -> VGG:
        return VGG(CFGS[cfg], batch_norm=batch_norm, **kwargs)

    build.__name__ = name
    register_model(
        name, family="vgg", params=_PARAMS[cfg, batch_norm],
        summary=f"VGG-{depth} (configuration {cfg}){' with batch norm' if batch_norm else ''}",
        reference={"torchvision": name},
    )(build)


for _depth, _cfg in ((11, "A"), (13, "B"), (16, "D"), (19, "E")):
    for _bn in (False, True):
        _register(_depth, _cfg, _bn)
