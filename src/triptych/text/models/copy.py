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

    Only the source's tokens get any copy mass, so the mixture is worked out
    at those S ids and written into log(g) + log p_vocab, the answer for every
    other token: two (..., V) tensors instead of the seven that mixing over
    the whole vocabulary made, and as many fewer passes of exp/log over them
    (this layer's forward + backward 2.2x faster, docs/results.md). Log space
    keeps a tiny p_vocab precise; the clamp keeps log(0) (copy mass of a pad)
    finite and its gradient zero.
    """
    g = gate_logit.to(log_p_vocab.dtype)
    generate = F.logsigmoid(g) + log_p_vocab  # (..., V): log(g p_vocab), the answer off the source
    # Each source position's copy mass, summed over the positions holding the same token.
    mass = torch.zeros_like(log_p_vocab).scatter_add_(-1, src_ids, attn.to(log_p_vocab.dtype)).gather(-1, src_ids)
    at_source = generate.gather(-1, src_ids)  # (..., S)
    mixed = torch.logaddexp(at_source, F.logsigmoid(-g) + mass.clamp_min(1e-30).log())
    # Added once per distinct token: a repeated id's other positions add 0 (and get no gradient).
    return generate.scatter_add(-1, src_ids, (mixed - at_source) * first_occurrences(src_ids))


def first_occurrences(ids: torch.Tensor) -> torch.Tensor:
    """(..., S) ids -> (..., S) float, 1 at one position of each distinct id
    in its row, else 0. Which of a repeated id's positions is kept does not
    matter (they carry the same value); a plain sort exports to ONNX, a
    stable one does not."""
    ordered, order = ids.sort(dim=-1)
    new = torch.ones_like(ordered, dtype=torch.bool)
    new[..., 1:] = ordered[..., 1:] != ordered[..., :-1]
    return torch.zeros_like(ids, dtype=torch.float32).scatter_(-1, order, new.float())


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
