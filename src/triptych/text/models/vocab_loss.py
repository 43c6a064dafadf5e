"""The vocabulary projection and the label-smoothed NLL as one chunked pass.

Why: the plain way (logits = h W^T, log_softmax in float32, gather, mean)
writes and re-reads several (N, V) float32 tensors per training step, and
keeps one for the backward: at the benchmark's 705 target tokens and 8,000
entries each is 22 MB, ten passes over them, each larger than the CPU's
cache, and fresh pages to fault in. Here the logits of `rows` positions at a
time (about 4 MB) are turned, while still in cache, into their loss and
their gradient (softmax - target distribution), and only that gradient is
kept, in the product's dtype (bf16 under autocast: half the bytes). The
backward is then the two products it always was. Forward + backward of this
layer alone (705 x 256 -> 8,000, 2 threads, Intel Xeon with AMX, medians of
20 alternating): 0.63x the time under bf16 autocast, 0.83x in float32; the
benchmark's whole training step 0.96x and 0.98x (docs/results.md).

Same numbers as `output_log_probs` + `sequence_loss` to float rounding: the
logits are the same product in the same dtype, upcast to float32 before the
softmax; only the order of the sums differs. Used by the families' `loss`
where the output is the plain projection (no copy attention, which needs
the whole distribution to mix into).
"""

from __future__ import annotations

import torch

# Float32 logits per chunk: large enough for an efficient product, small enough for the cache.
CHUNK_BYTES = 4 << 20


def projected_nll(
    h: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    targets: torch.Tensor,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """h (N, C), weight (V, C), bias (V,) or None, targets (N,) -> the summed
    label-smoothed NLL of softmax(h W^T + b), a float32 scalar.

    Under autocast the product runs in autocast's dtype, as `F.linear` would.
    """
    device = h.device.type
    autocast = torch.is_autocast_enabled(device)
    dtype = torch.get_autocast_dtype(device) if autocast else h.dtype
    rows = max(16, CHUNK_BYTES // (4 * max(weight.size(0), 1)))
    args = (h, weight, bias, targets, float(label_smoothing), rows, dtype)
    with torch.autocast(device, enabled=False):
        inputs = (h, weight) if bias is None else (h, weight, bias)
        if torch.is_grad_enabled() and any(t.requires_grad for t in inputs):
            return _ProjectedNLL.apply(*args)
        return _chunks(*args, want_gradient=False)[0]


def _chunks(h, weight, bias, targets, eps, rows, dtype, want_gradient):
    """The loss summed over chunks of `rows` positions and, if wanted, the
    gradient of that sum with respect to the logits, (N, V) in `dtype`."""
    hc, wc = h.to(dtype), weight.to(dtype)
    bc = None if bias is None else bias.to(dtype)
    n, vocab = h.size(0), weight.size(0)
    grad = torch.empty(n, vocab, dtype=dtype, device=h.device) if want_gradient else None
    total = torch.zeros((), dtype=torch.float32, device=h.device)
    for start in range(0, n, rows):
        z = hc[start : start + rows] @ wc.t()
        if bc is not None:
            z = z + bc
        z = z.float()  # (r, V): upcast before the softmax, as the plain path does
        t = targets[start : start + rows, None]
        lse = torch.logsumexp(z, -1, keepdim=True)
        nll = (lse - z.gather(-1, t)).sum()
        smooth = (lse.squeeze(-1) - z.mean(-1)).sum()  # cross-entropy with the uniform distribution
        total += (1.0 - eps) * nll + eps * smooth
        if want_gradient:
            p = torch.exp(z.sub_(lse))  # softmax, in place of the logits
            p.sub_(eps / vocab).scatter_add_(-1, t, torch.full(t.shape, eps - 1.0, device=p.device))
            grad[start : start + rows] = p
    return total, grad, hc, wc


class _ProjectedNLL(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, weight, bias, targets, eps, rows, dtype):
        total, grad, hc, wc = _chunks(h, weight, bias, targets, eps, rows, dtype, want_gradient=True)
        ctx.save_for_backward(grad, hc, wc)
        ctx.dtypes = (h.dtype, weight.dtype, None if bias is None else bias.dtype)
        return total

    @staticmethod
    def backward(ctx, grad_total):
        grad, hc, wc = ctx.saved_tensors
        h_dtype, w_dtype, b_dtype = ctx.dtypes
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        grad_h = (grad @ wc).to(h_dtype) * grad_total if need_h else None
        grad_w = (grad.t() @ hc).to(w_dtype) * grad_total if need_w else None
        grad_b = grad.float().sum(0).to(b_dtype) * grad_total if need_b else None
        return grad_h, grad_w, grad_b, None, None, None, None
