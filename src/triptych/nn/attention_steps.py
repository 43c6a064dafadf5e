"""Attention for the decoding steps' few queries, in one compiled pass.

Why: a decoding step attends with one query a row (G with beam search's
grouped hypotheses) over the source's cached keys and values. As two
batched matmuls that is B x H tiny products of a few microseconds each, over
every padded position: in the benchmark's batches 63% of the source
positions are padding, and the products read them all. Here each (row,
head) pair runs scores, softmax and the weighted sum in one loop over its
row's positions up to the last unmasked one, the pairs spread over the
threads torch uses. At 32 rows x 4 heads x 256 positions (37% real), float32,
2 threads, Intel Xeon: 443 against 1,410 us with the cache cold, 215 against
617 us hot; at full length 1,085 against 1,366 (docs/results.md).

Over full rows the matmuls are as fast or faster (one query: 0.96-1.54x
the time, hot, rows of 200; four: 1.3-1.9x), so the kernel takes a call
only where at least a quarter of the keys are masked (half, with several
queries a row): the cross-attention over a batch of uneven sources, not the
self-attention's cache, not one sentence at a time.

Keys and values may come in bf16 (`CrossAttention.keys_values` keeps them
in the dtype of the bf16 products that made them): each element is widened
to float32 exactly as it is read, so the numbers are those of their float32
copies, from half the bytes (at 37% real positions, one query: 227 against
295 us; over full rows 468 against 659, and 721 for the matmuls), so it
takes every such call, whatever the share of keys masked.

Same numbers as the matmul path to float32 rounding (sums reassociated);
positions masked with -inf in the middle of a row get zero weight as there.
A row with no unmasked position at all (which no decoding makes: sources
are never empty) gets zeros, where the matmul path gives NaN.
"""

from __future__ import annotations

import math
import weakref

import numpy as np
import torch
from numba import prange, types
from numba.extending import overload

from triptych.compiled import compiled, parallel_launch

_FAST = {"reassoc", "contract", "arcp", "nsz"}  # no "nnan"/"ninf": the masks are -inf


def _widen(x):
    """A key or value element as float32: itself, or a bf16 one from its uint16 bits (exact)."""


@overload(_widen)
def _widen_for(x):
    if isinstance(x, types.Float):
        return lambda x: x
    if x == types.uint16:
        return lambda x: np.uint32(np.uint32(x) << np.uint32(16)).view(np.float32)
    return None


@compiled(fastmath=_FAST)
def _one_pair(q, k, v, bias, n, scale, scores, out):
    """q (T, D), k and v (S, D), bias (S,): softmax(q k^T scale + bias) v over
    the first n positions, each key and value row read once for all T queries."""
    T, D = q.shape
    for s in range(n):
        ks = k[s]
        for t in range(T):
            qt = q[t]
            acc = np.float32(0.0)
            for d in range(D):
                acc += qt[d] * _widen(ks[d])
            scores[t, s] = acc * scale + bias[s]
    for t in range(T):
        top = -np.inf
        for s in range(n):
            top = max(top, scores[t, s])
        total = np.float32(0.0)
        for s in range(n):
            e = np.float32(np.exp(scores[t, s] - top))
            scores[t, s] = e
            total += e
        inv = np.float32(1.0) / total
        for s in range(n):
            scores[t, s] *= inv
        out[t, :] = 0.0
    for s in range(n):
        vs = v[s]
        for t in range(T):
            w = scores[t, s]
            ot = out[t]
            for d in range(D):
                ot[d] += w * _widen(vs[d])


@compiled(parallel=True, fastmath=_FAST)
def _attend(q, k, v, bias, scale, out):
    B, H, T, _ = q.shape
    S = k.shape[2]
    for pair in prange(B * H):
        b, h = pair // H, pair % H
        n = S  # positions past the last unmasked one cost nothing
        while n > 0 and bias[b, n - 1] == -np.inf:
            n -= 1
        scores = np.empty((T, S), np.float32)
        _one_pair(q[b, h], k[b, h], v[b, h], bias[b], n, scale, scores, out[b, h])


MAX_QUERIES = 16
MAX_SHARE_ONE_QUERY, MAX_SHARE_QUERIES = 0.75, 0.5  # of the keys unmasked, at most (module docstring)
_last_share: list = [None, 0.0]  # (weak reference to a mask, its unmasked share)


def serves(q, k, v, bias, dropout: float, causal: bool, need_weights: bool) -> bool:
    """Whether `attend_steps` takes this call: float32 CPU inference, a few
    queries; never while a graph is being traced (ONNX export, TorchScript,
    torch.compile), which cannot see inside the compiled kernel. Keys and
    values kept in bf16 it always takes: the matmuls would need float32
    copies of them first."""
    return (
        bias is not None  # cheapest first: this runs for every attention call of a decoding
        and not need_weights
        and not causal
        and dropout == 0.0
        and q.dim() == 4
        and q.size(-2) <= MAX_QUERIES
        and q.dtype == torch.float32
        and k.dtype == v.dtype in (torch.float32, torch.bfloat16)
        and q.device.type == "cpu"
        and not torch.is_grad_enabled()
        and k.size(0) == q.size(0)
        and bias.dim() == 4
        and bias.shape[1:3] == (1, 1)
        and bias.size(0) == q.size(0)
        and not _tracing()
        and (
            k.dtype == torch.bfloat16
            or _unmasked_share(bias) <= (MAX_SHARE_ONE_QUERY if q.size(-2) == 1 else MAX_SHARE_QUERIES)
        )
    )


def _unmasked_share(bias) -> float:
    """The share of positions the mask leaves; a decoding passes the same mask
    at every step and layer, so the last one's answer is kept."""
    last, share = _last_share
    if last is not None and last() is bias:
        return share
    share = float((bias > float("-inf")).float().mean())
    _last_share[:] = [weakref.ref(bias), share]
    return share


def _tracing() -> bool:
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling()


def attend_steps(q, k, v, bias):
    """q (B,H,T,D) float32, k and v (B,H,S,D) float32 or bf16, bias None or
    (B,1,1,S) additive -> (B,H,T,D) float32."""
    B, H, T, D = q.shape
    S = k.size(2)
    mask = torch.zeros(B, S) if bias is None else bias.reshape(B, S).float().contiguous()
    out = torch.empty(B, H, T, D)
    arrays = [_array(t) for t in (q, k, v, mask)]
    with parallel_launch():
        _attend(*arrays, np.float32(1.0 / math.sqrt(D)), out.numpy())
    return out


def _array(t: torch.Tensor) -> np.ndarray:
    """A tensor's elements for the kernel: float32, or bf16 as their uint16 bits."""
    t = t.detach().contiguous()
    return t.view(torch.int16).numpy().view(np.uint16) if t.dtype == torch.bfloat16 else t.numpy()
