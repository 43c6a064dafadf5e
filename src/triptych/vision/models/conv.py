"""`Conv2d`: nn.Conv2d whose weight gradient on small feature maps is one
matrix product, where that is faster (bf16 training on CPUs with AMX).

Why: on an Intel Xeon with AMX (torch 2.13, 2 threads, batch 64, bf16,
channels-last), oneDNN's weight-gradient kernel for a 3x3 convolution over
a 4x4 map runs at about 200 GFLOP/s, where a bf16 matrix product of the
same size runs at about 1,000: ResNet-18's last stage at 28x28 input spent
a third of the training step there. Written as the product it is, the
transposed output gradient [C_out, B*H'*W'] times the input's patches
[B*H'*W', C_in*kh*kw] (im2col), it takes a quarter of the time.

Measured per layer of the Fashion-MNIST recipes (oneDNN / product):
ResNet-18 512x4x4 3x3 4.4x, 256x7x7 to 4x4 3x3 stride 2 4.6x, its 1x1
shortcut 3.5x; VGG-16-BN at 4x4 and 2x2 2.5-6.2x; 3x3 over 7x7 maps with
C_in*kh*kw above 1,152 (AlexNet, ZFNet, ResNet-18's third stage)
1.17-1.39x; but GoogLeNet's narrow 7x7 convolutions and any with
C_in*kh*kw up to 1,152 at 7x7 lose (0.40-0.94x). Hence the rule in
`uses_patch_product`. The forward pass and the input's gradient stay
oneDNN's; only the weight gradient changes, by bf16 rounding (3e-3
relative). Elsewhere (no AMX, float32, CUDA, inference) this is plain
nn.Conv2d, with the same parameters and state-dict keys.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from triptych.hardware import cpu_flags
from triptych.vision.layers import conv_output_size


# None: the path where the CPU has AMX; True/False: force it on or off (benchmarks, tests).
FORCE: bool | None = None


@functools.lru_cache(maxsize=None)
def _amx() -> bool:
    return "amx_bf16" in cpu_flags()


def uses_patch_product(in_channels: int, kernel: tuple[int, int], out_positions: int) -> bool:
    """Whether the weight gradient goes through the patch product (the measured rule above)."""
    depth = in_channels * kernel[0] * kernel[1]
    return (out_positions <= 16 and depth >= 256) or (out_positions <= 49 and depth > 1152)


def patches(x: torch.Tensor, kernel, stride, padding) -> torch.Tensor:
    """im2col: (B, C, H, W) -> (B*H'*W', kh*kw*C), each row the window an output position sees,
    ordered (kernel row, kernel column, channel) as a channels-last weight lies in memory."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    batch, channels, height, width = x.shape
    padded = F.pad(x.permute(0, 2, 3, 1), (0, 0, pw, pw, ph, ph)).contiguous()  # (B, H+2ph, W+2pw, C)
    out_h, out_w = conv_output_size(height, kh, sh, ph), conv_output_size(width, kw, sw, pw)
    s_b, s_h, s_w, s_c = padded.stride()
    windows = padded.as_strided((batch, out_h, out_w, kh, kw, channels), (s_b, s_h * sh, s_w * sw, s_h, s_w, s_c))
    return windows.reshape(batch * out_h * out_w, kh * kw * channels)


class _PatchProductConv(torch.autograd.Function):
    """conv2d (oneDNN) forward and input gradient; the weight gradient as one matrix product."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding):
        ctx.save_for_backward(x, weight)
        ctx.stride, ctx.padding, ctx.has_bias = stride, padding, bias is not None
        return F.conv2d(x, weight, bias, stride, padding)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.ops.aten.convolution_backward(
                grad, x, weight, None, ctx.stride, ctx.padding, (1, 1), False, (0, 0), 1, (True, False, False)
            )[0]
        if ctx.needs_input_grad[1]:
            out_channels, in_channels, kh, kw = weight.shape
            rows = grad.permute(0, 2, 3, 1).reshape(-1, out_channels)  # (B*H'*W', C_out)
            product = rows.t() @ patches(x, (kh, kw), ctx.stride, ctx.padding)  # (C_out, kh*kw*C_in)
            grad_w = product.view(out_channels, kh, kw, in_channels).permute(0, 3, 1, 2)  # channels-last strides
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad.sum((0, 2, 3))
        return grad_x, grad_w, grad_b, None, None


class Conv2d(nn.Conv2d):
    """nn.Conv2d; under bf16 autocast on an AMX CPU, with gradients on and a small
    output map (`uses_patch_product`), its weight gradient is the patch product."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self._patch_product_applies(x):
            return super().forward(x)
        low = torch.bfloat16
        bias = None if self.bias is None else self.bias.to(low)
        with torch.autocast("cpu", enabled=False):
            return _PatchProductConv.apply(x.to(low), self.weight.to(low), bias, self.stride, self.padding)

    def _patch_product_applies(self, x: torch.Tensor) -> bool:
        if not (
            x.device.type == "cpu"
            and x.dim() == 4
            and torch.is_grad_enabled()
            and self.weight.requires_grad
            and torch.is_autocast_enabled("cpu")
            and torch.get_autocast_dtype("cpu") == torch.bfloat16
            and self.groups == 1
            and self.dilation == (1, 1)
            and self.padding_mode == "zeros"
            and not isinstance(self.padding, str)
            and (_amx() if FORCE is None else FORCE)
        ):
            return False
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        positions = conv_output_size(x.shape[2], kh, sh, ph) * conv_output_size(x.shape[3], kw, sw, pw)
        return uses_patch_product(self.in_channels, self.kernel_size, positions)
