"""Dropout that is cheap on CPU: one compiled pass makes the mask.

On CPU `F.dropout` draws one Bernoulli sample per element from a serial
generator, and in a small Transformer that cost about as much as all the
attention (15% of a training step). Here a counter-based generator
(`dropout_mask`) gives a 64-bit word per FOUR elements, read as four 16-bit
integers: an element is kept when its integer is at least the threshold,
so the masks are Bernoulli with the drop probability rounded to a multiple
of 1/65536 (0.1 becomes 0.100006), scaled by 1/(1-p) as F.dropout scales,
and decided by torch's generator (which draws each call's seed), so
`torch.manual_seed` still decides everything. The same pass writes the mask
already scaled in the activation's dtype; the product is torch's.
On the Intel Xeon, 2,000 x 1,024 bf16, forward and backward: 5.0-7.3 ->
2.8 ms; float32 6.1 -> 3.7 ms; `benchmarks/text_train.py`'s step 5.6%
faster in bf16 and 4.5% in float32 (same process, medians of 8 rounds).
Elsewhere (CUDA's fused kernel) and in eval mode it is plain `F.dropout`.

The Transformer's own dropouts go further (`relu_dropout`, `add_dropout`):
the mask is drawn inside the pass that applies it, fused with the ReLU
before it or the residual sum after it, and never stored, on torch's
threads (the training step 1.10x faster in float32, 1.19x in bf16:
docs/results.md).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from triptych.compiled import parallel_launch
from triptych.text.models import dropout_mask as kernels
from triptych.text.models.dropout_mask import fill_mask

# The dtypes whose scaled mask is written directly, as the unsigned integers of their
# bits; any other float dtype gets a float32 0/1 mask, cast and then scaled in its own dtype.
_BITS = {torch.bfloat16: (torch.int16, np.uint16), torch.float32: (torch.int32, np.uint32)}


def _mask(shape: torch.Size, dtype: torch.dtype, p: float) -> torch.Tensor:
    """0 or 1/(1-p) (rounded to `dtype`), kept with probability 1 - p."""
    direct = dtype in _BITS
    signed, unsigned = _BITS[dtype if direct else torch.float32]
    scale = 1.0 / (1.0 - p)
    keep = torch.tensor(scale if direct else 1.0, dtype=dtype if direct else torch.float32)
    mask = torch.empty(shape, dtype=keep.dtype)
    seed, threshold = _draw(p)
    keep_bits = keep.view(signed).numpy().view(unsigned)[()]
    with parallel_launch():
        fill_mask(mask.view(signed).numpy().reshape(-1).view(unsigned), seed, threshold, keep_bits)
    return mask if direct else mask.to(dtype).mul_(scale)


def _draw(p: float) -> tuple:
    """(seed, threshold) of one call: the seed from torch's generator, so that it decides the mask."""
    return np.uint64(int(torch.randint(0, 2**62, ()))), np.uint16(min(round(p * 65536), 65535))


class _Dropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, p: float) -> torch.Tensor:
        mask = _mask(x.shape, x.dtype, p)
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (mask,) = ctx.saved_tensors
        return grad * mask, None


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """`F.dropout(x, p, training)`, faster on CPU (see the module docstring)."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or not 0.0 < p < 1.0 or not x.is_floating_point():
        return F.dropout(x, p, training)
    return _Dropout.apply(x, p)


# ------------------------------------------------- dropout fused with its neighbours
#
# The Transformer's dropouts sit between a ReLU and a product (the
# feed-forward's hidden layer) or before a residual sum. Drawing the mask
# where it is applied writes no mask, keeps none for backward and spares
# the separate ReLU and sum passes: the hidden layer's backward reads the
# output it already shares with the next product, the residual one draws its
# mask again from the seed. Same masks as `dropout` from the same generator
# state, same numbers bit for bit.


def _scaled(dtype: torch.dtype, p: float) -> tuple:
    """(seed, threshold, the scale 1/(1-p) rounded to `dtype`, as a float32) of one call."""
    return *_draw(p), np.float32(torch.tensor(1.0 / (1.0 - p), dtype=dtype).item())


def _flat(t: torch.Tensor) -> np.ndarray:
    """A contiguous tensor's elements as a flat numpy array: float32, or bf16 as uint16 bits."""
    t = t.detach()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().reshape(-1).view(np.uint16)
    return t.numpy().reshape(-1)


def _run(kernel, *args) -> None:
    """A fused kernel on torch's threads."""
    with parallel_launch():
        kernel(*args)


def _fusable(*tensors: torch.Tensor) -> bool:
    return all(t.device.type == "cpu" and t.dtype in _BITS and t.is_contiguous() for t in tensors)


class _ReluDropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, p: float) -> torch.Tensor:
        seed, threshold, k = _scaled(x.dtype, p)
        y = torch.empty_like(x)
        _run(kernels.relu_dropout, _flat(x), _flat(y), seed, threshold, k)
        ctx.save_for_backward(y)  # the next product keeps it too: no memory of its own
        ctx.k = k
        return y

    @staticmethod
    @once_differentiable  # the kernel's gradient has no graph of its own
    def backward(ctx, grad: torch.Tensor):
        (y,) = ctx.saved_tensors
        grad = grad.to(y.dtype).contiguous()
        out = torch.empty_like(y)
        _run(kernels.relu_dropout_grad, _flat(grad), _flat(y), _flat(out), ctx.k)
        return out, None


class _AddDropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, y: torch.Tensor, p: float) -> torch.Tensor:
        ctx.draw = _scaled(y.dtype, p)
        ctx.y_dtype = y.dtype
        out = torch.empty_like(x)
        _run(kernels.add_dropout, _flat(x), _flat(y), _flat(out), *ctx.draw)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        grad = grad.float().contiguous()
        out = None
        if ctx.needs_input_grad[1]:
            out = torch.empty(grad.shape, dtype=ctx.y_dtype)
            _run(kernels.dropout_grad, _flat(grad), _flat(out), *ctx.draw)
        return grad, out, None


def relu_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """`dropout(relu(x), p, training)` in one pass each way on CPU."""
    if not training or p == 0.0:
        return F.relu(x)
    if not (0.0 < p < 1.0 and _fusable(x)):
        return dropout(F.relu(x), p, training)
    return _ReluDropout.apply(x, p)


def add_dropout(x: torch.Tensor, y: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """`x + dropout(y, p, training)`, the residual sum, in one pass each way on
    CPU where x is float32 and y float32 or bf16 (autocast) of x's shape."""
    if not training or p == 0.0:
        return x + y
    if not (0.0 < p < 1.0 and x.dtype == torch.float32 and x.shape == y.shape and _fusable(x, y)):
        return x + dropout(y, p, training)
    return _AddDropout.apply(x, y, p)
