"""Linear layers whose inference runs on oneDNN with weights reordered once.

Why: torch's CPU build sends a float32 `F.linear` to MKL's sgemm, which
re-lays-out the weight matrix on every call. Decoding calls each layer with
a few dozen rows at a time, so that re-layout is much of the work: with 32
rows, the Transformer's 8,000 x 256 output projection takes 1.5-2.2 ms, and
0.66-0.84 ms once the weight is reordered for oneDNN ahead of time; a
decoder layer's projections gain 1.3-1.65x, the encoder's, over thousands
of packed tokens, 1.2-1.35x (`benchmarks/inference_cpu.py`). A oneDNN call costs about
15 us more than an MKL one, though, so products of fewer than `MIN_MACS`
multiply-adds (a 256 x 256 layer on fewer than 32 rows) keep `F.linear`,
unless the weight holds `BIG_WEIGHT` entries or more: MKL's re-layout of a
weight that size costs more than the call, whatever the rows (one row
through the 8,000 x 256 projection: 1.06 ms by MKL, 0.63 ms packed, on
the AVX2-only EPYC; greedy decoding one sentence at a time 1.10x faster).
Where that size starts depends on the CPU: on AVX-512 (the Zen 4 EPYC) the
packed copy already wins for the FFN's 1,024 x 256 weights at two to four
rows (2.0-2.7x), and one-sentence decoding gained from packing them (256K
entries against 1M, 40 documents, 9 alternating rounds, medians: beam 4
1.09x, greedy 1.06x; with bf16 copies 1.23x and 1.13x:
`benchmarks/decode_packing.py`); on the AVX2-only EPYC the FFN's weight lost packed
even at 32 rows (0.71x), so there it stays 1M. Intel not measured.

The packed path serves float32 CPU work under `torch.inference_mode()`
without autocast, inside `packed_weights()`: there is no autograd through it,
and training, bf16 autocast and CUDA keep `F.linear`. Within that context a
weight is packed on first use and the copy reused; leaving drops the copies.
The copies last no longer than the context because nothing can tell cheaply
that a weight changed: fused AdamW updates weights in place without moving
their version counters. So decoding holds the context for one call (packing
the benchmark's model takes about 20 ms), evaluation for all its batches,
and the server's model thread, whose weights never change, for its life.
Where the oneDNN ops are missing from the installed torch, `F.linear` serves.

bf16: where the CPU has native bf16 products (AMX: a bf16 product ran 6.3x
float32 on an Intel Xeon; AVX512-BF16: 2.2x on the Zen 4 EPYC, decoding
1.26x end to end),
`packed_weights()` packs bf16 copies instead, and each product takes its
input in bf16 and returns float32: everything between the products
(softmax, layer norm, the search's scores) stays float32.
`triptych.hardware.default_inference_dtype()` makes the choice;
TRIPTYCH_INFERENCE_DTYPE=float32|bfloat16 forces it, and
`packed_weights(dtype=...)` states it.
"""

from __future__ import annotations

import contextlib
import contextvars

import torch
import torch.nn.functional as F
from torch import nn

from triptych.hardware import cpu_flags

# id(weight) -> (weight, its packed copy) while a `packed_weights()` context is open in this thread.
_packed: contextvars.ContextVar[dict[int, tuple[torch.Tensor, torch.Tensor]] | None] = contextvars.ContextVar(
    "packed", default=None
)
# The dtype the open context packs in ("float32" or "bfloat16").
_dtype: contextvars.ContextVar[str] = contextvars.ContextVar("packed_dtype", default="float32")
MIN_MACS = 1 << 21  # rows x weight entries below which F.linear is as fast or faster
# Weight entries from which the packed copy serves any number of rows: 256K
# (1 MB in float32) on AVX-512 CPUs, 1M elsewhere (measured: module docstring).
BIG_WEIGHT = 1 << 18 if "avx512f" in cpu_flags() else 1 << 20
_available: bool | None = None  # are the oneDNN linear ops usable here? Found out on first use.


def _onednn_available() -> bool:
    global _available
    if _available is None:
        try:
            w = torch.ones(2, 2)
            y = torch.ops.mkldnn._linear_pointwise(torch.ones(1, 2), torch.ops.mkldnn._reorder_linear_weight(w),
                                                   None, "none", [], "")  # fmt: skip
            _available = bool(torch.equal(y, torch.full((1, 2), 2.0)))
        except (AttributeError, RuntimeError, NotImplementedError):
            _available = False
    return _available


@contextlib.contextmanager
def packed_weights(dtype: str | None = None):
    """Float32 CPU inference within packs each weight once; the weights must not change inside.
    Nested contexts share the outermost one's copies. `dtype`: "float32" or
    "bfloat16" products; None: what this CPU does best (`hardware`)."""
    if _packed.get() is not None:
        yield
        return
    dtype_token = _dtype.set(_resolve(dtype))
    token = _packed.set({})
    try:
        yield
    finally:
        _packed.reset(token)
        _dtype.reset(dtype_token)


def hold_packed_weights(dtype: str | None = None) -> None:
    """Open a `packed_weights()` context in this thread for the rest of its life
    (a thread that serves frozen models: `ThreadPoolExecutor(initializer=...)`)."""
    if _packed.get() is None:
        _packed.set({})
        _dtype.set(_resolve(dtype))


def _resolve(dtype: str | None) -> str:
    from triptych.hardware import default_inference_dtype, require_bf16_kernels

    dtype = dtype or default_inference_dtype()
    if dtype not in ("float32", "bfloat16"):
        raise ValueError(f"packed weights come in float32 or bfloat16, not {dtype!r}")
    if dtype == "bfloat16":
        require_bf16_kernels("bfloat16 packed weights")
    return dtype


def _packed_entry(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None):
    """(weight, its packed copy, the bias in the copy's dtype) where the packed
    product serves `x @ weight^T` here, else None (F.linear serves)."""
    cache = _packed.get()
    if (
        cache is None
        or not isinstance(weight, nn.Parameter)  # a computed weight (weight norm) is a new tensor each call
        or (x.numel() // max(x.size(-1), 1) * weight.numel() < MIN_MACS and weight.numel() < BIG_WEIGHT)
        or not torch.is_inference_mode_enabled()
        or x.device.type != "cpu"
        or not x.dtype == weight.dtype == torch.float32
        or torch.is_autocast_enabled("cpu")
        or not _onednn_available()
    ):
        return None
    entry = cache.get(id(weight))
    if entry is None:  # the weight is kept in the entry, so its id cannot be reused while the context lasts
        entry = cache[id(weight)] = _pack(weight, bias, _dtype.get())
    return entry


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """`F.linear(x, weight, bias)`, through the packed weight where it is faster (equal to float32 rounding).
    Only parameters are packed: the copies are found by the weight's identity."""
    entry = _packed_entry(x, weight, bias)
    return F.linear(x, weight, bias) if entry is None else _product(x, entry).to(x.dtype)


def linear_kept(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """`linear`, its result left in the products' dtype: bf16 under bf16
    copies (exactly the values `linear` widens to float32, in half the bytes),
    for a result that is stored and read many times (decoding's cross-attention
    keys and values)."""
    entry = _packed_entry(x, weight, bias)
    return F.linear(x, weight, bias) if entry is None else _product(x, entry)


def _product(x: torch.Tensor, entry: tuple) -> torch.Tensor:
    """x @ weight^T + bias through the packed copy, in the copy's dtype."""
    _, packed, packed_bias = entry
    return torch.ops.mkldnn._linear_pointwise(x.to(packed.dtype), packed, packed_bias, "none", [], "")


def relu_mlp(x: torch.Tensor, first: nn.Linear, second: nn.Linear) -> torch.Tensor:
    """`second(relu(first(x)))`, the Transformer's feed-forward block at inference.

    With both weights packed, the ReLU runs inside the first product (a
    oneDNN post-op on its accumulator) and the hidden activations go to the
    second product in the products' dtype: under bf16 copies, no cast of the
    (rows, 4C) hidden layer to float32 and back (exact either way: a ReLU
    commutes with rounding), and no separate ReLU pass. Same numbers as the
    three calls apart."""
    one = _packed_entry(x, first.weight, first.bias)
    two = _packed_entry(x, second.weight, second.bias) if one is not None else None
    if one is None or two is None:
        return linear(F.relu(linear(x, first.weight, first.bias)), second.weight, second.bias)
    hidden = torch.ops.mkldnn._linear_pointwise(x.to(one[1].dtype), one[1], one[2], "relu", [], "")
    y = torch.ops.mkldnn._linear_pointwise(hidden.to(two[1].dtype), two[1], two[2], "none", [], "")
    return y.to(x.dtype)


def _pack(weight: nn.Parameter, bias: torch.Tensor | None, dtype: str) -> tuple:
    """(the weight itself, its oneDNN copy in `dtype`, the bias in `dtype`)."""
    if dtype == "float32":
        return weight, torch.ops.mkldnn._reorder_linear_weight(weight), bias
    low = getattr(torch, dtype)
    return weight, torch.ops.mkldnn._reorder_linear_weight(weight.to(low)), None if bias is None else bias.to(low)


class Linear(nn.Linear):
    """`nn.Linear` (same parameters, same state-dict keys) whose inference goes through `linear`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)
