"""Copy attention's output layer, shared by every model family (See et al. 2017).

A family computes, per decoder position, a vocabulary distribution, one
attention distribution over the source positions, and the logit of the gate g
(generate vs copy); `mix_copy` turns them into the final log-probabilities
log(g p_vocab + (1-g) p_copy), where p_copy is the attention mass scattered
onto the source tokens' ids. Keeping this in one place means a fix to the
numerics reaches the RNN, ConvS2S and the Transformer alike.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def mix_copy(
    log_p_vocab: torch.Tensor, attn: torch.Tensor, gate_logit: torch.Tensor, src_ids: torch.Tensor
) -> torch.Tensor:
    """log_p_vocab (..., V) float32, attn (..., S) summing to 1, gate_logit
    (..., 1), src_ids (..., S) long -> log-probabilities (..., V).

    Works in log space so a tiny p_vocab keeps its precision; the clamp keeps
    log(0) (tokens not in the source) finite and its gradient zero.
    """
    copy = torch.zeros_like(log_p_vocab).scatter_add_(-1, src_ids, attn.to(log_p_vocab.dtype))
    g = gate_logit.float()
    return torch.logaddexp(F.logsigmoid(g) + log_p_vocab, F.logsigmoid(-g) + copy.clamp_min(1e-30).log())


def output_log_probs(
    h: torch.Tensor,
    project,
    keep: torch.Tensor | None = None,
    copy: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Decoder outputs h (B,T,C) -> log-probabilities (B,T,V), or (N,V) for the
    N positions where `keep` (B,T) is True (training skips pad positions, so
    the vocabulary projection, the biggest matmul, never runs on them).

    `project` maps outputs to vocabulary logits; `copy` is None or the
    (attention (B,T,S), gate logit (B,T,1), source ids (B,T,S)) that
    `mix_copy` takes. The one output layer of every family.
    """
    if keep is not None:
        h = h[keep]
        if copy is not None:
            copy = tuple(t[keep] for t in copy)
    log_p = project(h).float().log_softmax(-1)  # (..., V)
    return log_p if copy is None else mix_copy(log_p, *copy)
