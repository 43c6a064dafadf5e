"""The locally-connected layer, and why convolution beat it: weight sharing.

A locally-connected layer looks like a convolution — each output unit sees
only a k x k window of the input — but every output position has its own
filter. A convolution uses ONE filter everywhere. The talk's example (from
Ranzato's CVPR 2014 tutorial): on a 1000x1000 image with one hidden unit per
pixel (1M units),

    fully connected:   1M inputs x 1M units          = 10^12 weights
    locally connected: 1M units x 10x10 window       = 10^8  (100M)
    convolutional:     100 filters x 10x10, shared   = 10^4  (10K)

`param_counts` computes those numbers for any setting, and
`triptych vision params` prints them; `LocallyConnected2d` is the layer
itself, so the count can be checked against real modules.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    return (size + 2 * padding - kernel) // stride + 1


class LocallyConnected2d(nn.Module):
    """Convolution without weight sharing: a separate filter at every output position.

    Input (B, C_in, H, W) -> output (B, C_out, H_out, W_out). The input size
    must be fixed at construction, because the number of filters depends on it.
    Parameters: weight (H_out * W_out, C_in * kh * kw, C_out) and bias
    (C_out, H_out, W_out): H_out * W_out times a convolution's.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        input_size: int | tuple[int, int],
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        bias: bool = True,
    ):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.input_size = _pair(input_size)
        self.kernel_size, self.stride, self.padding = _pair(kernel_size), _pair(stride), _pair(padding)
        self.output_size = tuple(
            conv_output_size(n, k, s, p)
            for n, k, s, p in zip(self.input_size, self.kernel_size, self.stride, self.padding)
        )
        if min(self.output_size) < 1:
            raise ValueError(f"kernel {self.kernel_size} does not fit input {self.input_size}")
        positions = self.output_size[0] * self.output_size[1]
        fan_in = in_channels * self.kernel_size[0] * self.kernel_size[1]
        self.weight = nn.Parameter(torch.empty(positions, fan_in, out_channels))
        self.bias = nn.Parameter(torch.empty(out_channels, *self.output_size)) if bias else None
        # Same scale as nn.Conv2d's default init: each output still sums fan_in inputs.
        bound = 1.0 / math.sqrt(fan_in)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != self.input_size:
            raise ValueError(f"LocallyConnected2d built for {self.input_size} inputs, got {tuple(x.shape[-2:])}")
        # Every window as a column: (B, C_in*kh*kw, L) with L = H_out*W_out positions.
        cols = F.unfold(x, self.kernel_size, padding=self.padding, stride=self.stride)
        # Position l applies its own filter: out[b, l, o] = sum_k cols[b, k, l] * weight[l, k, o].
        out = torch.einsum("bkl,lko->bol", cols, self.weight)  # (B, C_out, L)
        out = out.reshape(x.shape[0], self.out_channels, *self.output_size)
        if self.bias is not None:
            out = out + self.bias
        return out

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, input_size={self.input_size}, "
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"bias={self.bias is not None}"
        )


def param_counts(
    size: int = 1000,
    in_channels: int = 1,
    kernel: int = 10,
    hidden_maps: int = 1,
    filters: int = 100,
    stride: int = 1,
    padding: str | int = "same",
    bias: bool = False,
) -> dict:
    """Parameters of a fully-connected, a locally-connected and a conv layer on a size x size image.

    The fully- and locally-connected layers have `hidden_maps` units at each
    output position (the talk: 1 map, i.e. 1M hidden units on 1000x1000); the
    convolution has `filters` shared filters (the talk: 100). `padding="same"`
    keeps one output position per input pixel at stride 1. Defaults give
    the talk's numbers: 10^12, 10^8 and 10^4 weights.
    """
    pad = (kernel - 1) // 2 if padding == "same" else int(padding)
    if padding == "same" and kernel % 2 == 0:
        # An even kernel cannot be centred; the talk's 10x10 still keeps 1000x1000 outputs.
        out = math.ceil(size / stride)
    else:
        out = conv_output_size(size, kernel, stride, pad)
    if out < 1:
        raise ValueError(f"a {kernel}x{kernel} filter does not fit a {size}x{size} input")
    inputs = size * size * in_channels
    hidden = out * out * hidden_maps
    window = kernel * kernel * in_channels
    fc = inputs * hidden + (hidden if bias else 0)
    lc = hidden * window + (hidden if bias else 0)
    conv = filters * window + (filters if bias else 0)
    return {
        "input": [in_channels, size, size],
        "kernel": kernel,
        "stride": stride,
        "output": [hidden_maps, out, out],
        "hidden_units": hidden,
        "filters": filters,
        "bias": bias,
        "fully_connected": fc,
        "locally_connected": lc,
        "convolutional": conv,
    }
