"""The Transformer's attention kernels on CPU: which path runs when.

`attend` is scaled dot-product attention as the paper writes it, choosing
per call between torch's fused kernel and two explicit matmuls (whichever
is faster for the precision and the number of queries); `attend_rows` runs
it row by row over a packed batch (`packing.Packing`), skipping the pads.
`text/models/transformer.py` calls these and reads as the reference.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from triptych.nn import attention_steps


def attend(q, k, v, bias, dropout: float, causal: bool, need_weights: bool):
    """Scaled dot-product attention over (B,H,*,D) tensors -> (B,H,Tq,D)[, weights].

    The fused kernel serves CUDA, and float32 on CPU for more than 16 queries
    (encoding a padded batch for decoding: 1.5x faster than explicit). Two
    plain matmuls and a softmax serve the rest of the CPU's work, where they
    are faster with this model's sizes (`benchmarks/attention_cpu.py`): bf16,
    whose fused backward is slow (forward + backward 2-5x faster), and a
    few queries at a time (decoding steps, short summaries: 1.2-1.4x). The
    softmax accumulates in float32, as the fused kernels do; under bf16 it
    reads and writes bf16, with no float32 copy of the scores kept for
    backward (docs/history/2026-12-07g-bf16-attention.md).
    The attention pictures need the weights, so they take this path anywhere.
    """
    cpu, many_queries = q.device.type == "cpu", q.size(-2) > 16
    if not need_weights and (not cpu or (q.dtype == torch.float32 and many_queries)):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout, is_causal=causal), None
    if attention_steps.serves(q, k, v, bias, dropout, causal, need_weights):
        return attention_steps.attend_steps(q, k, v, bias), None
    if k.dtype != q.dtype:  # bf16 keys/values kept by the decoding (`attention_steps`), read here in float32
        k, v = k.to(q.dtype), v.to(q.dtype)
    scores = (q * (1 / math.sqrt(q.size(-1)))) @ k.transpose(-2, -1)  # (B, H, Tq, Tk); q is the smaller pass
    if causal:
        tq, tk = scores.shape[-2:]
        scores.masked_fill_(torch.ones(tq, tk, dtype=torch.bool, device=q.device).triu(1), float("-inf"))
    if bias is not None:
        scores.add_(bias.to(scores.dtype))  # in place; 0 / -inf are exact in bf16, so the scores stay bf16
    if scores.dtype == torch.bfloat16 and not need_weights:
        # bf16 in and out, float32 inside (CPU's kernel, as the fused ones):
        # the probabilities are rounded to bf16 for `@ v` either way, and no
        # float32 (B, H, Tq, Tk) copy is written, cast and kept for backward.
        weights = scores.softmax(-1)
    else:
        weights = scores.softmax(-1, dtype=torch.promote_types(scores.dtype, torch.float32))  # the pictures: float32
    y = F.dropout(weights, dropout).to(v.dtype) @ v
    return y, (weights if need_weights else None)


def attend_rows(qkv: torch.Tensor, packing, heads: int, causal: bool, dropout: float = 0.0) -> torch.Tensor:
    """Packed (N, 3C) queries/keys/values -> (N, C), each row attending over
    its own tokens alone: no pads and no mask (inference's path; see `Packing`)."""
    C = qkv.size(1) // 3
    y = qkv.new_empty(qkv.size(0), C)
    for start, end in packing.spans:
        rows = qkv[start:end].view(1, end - start, 3, heads, C // heads)
        q, k, v = rows.permute(2, 0, 3, 1, 4)  # 3 x (1, H, L, D): 4-D, as the fused kernel needs
        y[start:end] = attend(q, k, v, None, dropout, causal, False)[0][0].transpose(0, 1).reshape(end - start, C)
    return y
