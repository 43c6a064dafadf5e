"""LeNet-5 without weight sharing: the talk's argument, as a network that trains.

The same layers, sizes and activations as `lenet5`, but C1, C3 and C5 are
`LocallyConnected2d`: each output position has its own 5x5 filter instead
of one filter slid over the image. Every unit still sees the same window,
so the two networks differ only in weight sharing. At 32x32 that turns
61,706 parameters into 423,038 (C1 alone: 28x28 x 6 positions x 26 = 122,304), and the
input size is fixed at construction (`input_size`: the filters are per
position; with `small_input` the layers pad as lenet5's do).

Training both on Fashion-MNIST with one recipe
(`--set model.name=lenet5_local`) measures what sharing buys: fewer
parameters and translation equivariance, for the same receptive fields.
"""

from __future__ import annotations

from torch import nn

from triptych.vision.layers import LocallyConnected2d, conv_output_size

from .lenet import LeNet5
from .registry import register_model


class LocalLeNet5(LeNet5):
    def __init__(self, num_classes: int = 10, in_channels: int = 1, small_input: bool = False,
                 activation: str = "tanh", input_size: int = 32):
        if input_size < (1 if small_input else 32):
            raise ValueError(f"lenet5_local: input_size must be >= 32 (C5's 5x5 window), got {input_size}")
        super().__init__(num_classes=num_classes, in_channels=in_channels, small_input=small_input,
                         activation=activation)
        size = input_size
        for i in (0, 3, 6):  # C1, C3, C5 in LeNet5.trunk; the pools between them halve the size
            conv: nn.Conv2d = self.trunk[i]
            self.trunk[i] = LocallyConnected2d(conv.in_channels, conv.out_channels, size, conv.kernel_size,
                                               padding=conv.padding)
            size = conv_output_size(size, conv.kernel_size[0], padding=conv.padding[0])
            size = (size + 1) // 2  # AvgPool2d(2, ceil_mode=True)


@register_model(
    "lenet5_local", family="lenet", params=423_038, num_classes=10, in_channels=1, image_size=32,
    summary="LeNet-5 with locally-connected layers (no weight sharing), fixed 32x32 input",
)
def lenet5_local(**kwargs) -> LocalLeNet5:
    return LocalLeNet5(**kwargs)
