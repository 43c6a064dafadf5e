"""Attention over an encoder's outputs, shared by the models that need it.

Four scoring functions, chosen by `model.attention` (the names of the
papers that introduced them). With a query s (a decoder state, size Q) and an
encoder output h_j (size K), the weights are softmax_j(score(s, h_j)) over the
real (non-pad) source positions and the context is sum_j w_j h_j:

- ``bahdanau``       v^T tanh(W s + U h_j + b)   (Bahdanau et al. 2014, additive)
- ``luong-dot``      s^T h_j                      (Luong et al. 2015; needs Q == K)
- ``luong-general``  s^T W_a h_j                  (Luong et al. 2015, bilinear)
- ``luong-concat``   v^T tanh(W_a [s; h_j])       (Luong et al. 2015)

Everything that depends only on the encoder (U h_j, W_a h_j) is computed once
per source by `keys` and reused at every decoding step, so a step costs one
(B,S) score and one weighted sum, plus for the additive kinds one (B,S,A)
tanh. Queries come as (B, Tq, Q): Tq > 1 serves several queries of the same
source at once (beam search's hypotheses of one sentence).
"""

from __future__ import annotations

import torch
from torch import nn

from triptych.errors import UserError

ATTENTION_TYPES = ("bahdanau", "luong-dot", "luong-general", "luong-concat")


def check_attention_type(kind: str, option: str = "model.attention") -> None:
    if kind not in ATTENTION_TYPES:
        raise UserError(f"{option}: unknown attention type {kind!r}; allowed: {', '.join(ATTENTION_TYPES)}")


class Attention(nn.Module):
    """One attention mechanism: `keys(memory)` once per source, then `forward`
    per decoding step (or for all steps at once when the queries are known)."""

    def __init__(self, kind: str, query_size: int, key_size: int, attention_size: int | None = None):
        super().__init__()
        check_attention_type(kind)
        self.kind = kind
        A = attention_size or query_size
        if kind == "luong-general":
            self.W = nn.Linear(key_size, query_size, bias=False)  # h_j -> W_a h_j, in query space
        elif kind in ("bahdanau", "luong-concat"):
            # Bahdanau's W s + U h + b; Luong's W_a [s; h] is the same sum split in
            # two (W_a = [W_q, W_k]) without a bias: splitting it lets U h be cached.
            self.W_q = nn.Linear(query_size, A, bias=kind == "bahdanau")
            self.W_k = nn.Linear(key_size, A, bias=False)
            self.v = nn.Linear(A, 1, bias=False)

    def keys(self, memory: torch.Tensor) -> torch.Tensor:
        """memory (B,S,K) -> what the scores read, computed once per source:
        (B,S,K) for dot, (B,S,Q) for general, (B,S,A) for the additive kinds."""
        if self.kind == "luong-dot":
            return memory
        if self.kind == "luong-general":
            return self.W(memory)
        return self.W_k(memory)

    def scores(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """query (B,Tq,Q), keys (B,S,*) -> unnormalised scores (B,Tq,S)."""
        if self.kind in ("luong-dot", "luong-general"):
            return query @ keys.transpose(1, 2)
        hidden = torch.tanh(self.W_q(query)[:, :, None, :] + keys[:, None, :, :])  # (B, Tq, S, A)
        return self.v(hidden).squeeze(-1)

    def forward(self, query, keys, memory, pad_mask=None):
        """query (B,Tq,Q), keys from `keys(memory)`, memory (B,S,K), pad_mask
        (B,S) True at source pads -> context (B,Tq,K), weights (B,Tq,S).

        Pads get exactly zero weight; a row must hold at least one real token.
        """
        scores = self.scores(query, keys)
        if pad_mask is not None:
            scores = scores.masked_fill(pad_mask[:, None, :], float("-inf"))
        weights = scores.softmax(-1)  # (B, Tq, S)
        return weights @ memory, weights


def build_attention(kind: str, query_size: int, key_size: int, attention_size: int | None = None,
                    *, query_option: str = "the query size", key_option: str = "the key size") -> Attention:
    """The factory the models call; `*_option` name the config options the
    sizes come from, so a mismatch is reported in the user's terms."""
    check_attention_type(kind)
    if kind == "luong-dot" and query_size != key_size:
        raise UserError(
            f"model.attention: luong-dot scores s.h, so the encoder's output size ({key_option} = {key_size}) "
            f"must equal the decoder's size ({query_option} = {query_size}); change one, or use luong-general"
        )
    return Attention(kind, query_size, key_size, attention_size)
