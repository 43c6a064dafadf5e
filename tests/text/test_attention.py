"""The shared attention mechanisms: each score by hand, masking, shapes, bad options."""

from __future__ import annotations

import math

import pytest
import torch

from triptych.errors import UserError
from triptych.text.models.attention import ATTENTION_TYPES, Attention, build_attention

Q, K, A = 3, 2, 2  # query, key and additive-attention sizes of the hand-made example


def example_query_memory():
    """One query s and three encoder outputs h_1..h_3 (the third a pad in the masked tests)."""
    s = torch.tensor([[[1.0, -1.0, 0.5]]])  # (B=1, Tq=1, Q)
    h = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [-1.0, 1.0]]])  # (B=1, S=3, K)
    return s, h


def set_weights(att: Attention):
    """Fixed, distinct weights so every score below can be worked out by hand."""
    with torch.no_grad():
        if att.kind == "luong-general":
            att.W.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, -1.0]]))  # (Q, K): h -> W_a h
        elif att.kind in ("bahdanau", "luong-concat"):
            att.W_q.weight.copy_(torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]))  # (A, Q)
            att.W_k.weight.copy_(torch.tensor([[0.5, 0.0], [0.0, -1.0]]))  # (A, K)
            att.v.weight.copy_(torch.tensor([[1.0, 2.0]]))  # (1, A)
            if att.W_q.bias is not None:
                att.W_q.bias.copy_(torch.tensor([0.1, -0.2]))


def hand_scores(kind: str) -> list[float]:
    """score(s, h_j) for j = 1..3, written out with scalars from the formulas."""
    s, h = [1.0, -1.0, 0.5], [[1.0, 0.0], [0.0, 2.0], [-1.0, 1.0]]
    out = []
    for hj in h:
        if kind == "luong-dot":  # needs Q == K: the dot test uses the first two query entries
            out.append(s[0] * hj[0] + s[1] * hj[1])
        elif kind == "luong-general":  # s^T W_a h with W_a = [[1,0],[0,1],[2,-1]]
            wh = [hj[0], hj[1], 2 * hj[0] - hj[1]]
            out.append(sum(a * b for a, b in zip(s, wh)))
        else:  # v^T tanh(W s + U h (+ b)), W = [[1,0,1],[0,1,0]], U = [[.5,0],[0,-1]], v = [1,2]
            b = [0.1, -0.2] if kind == "bahdanau" else [0.0, 0.0]
            u = [s[0] + s[2] + 0.5 * hj[0] + b[0], s[1] - hj[1] + b[1]]
            out.append(math.tanh(u[0]) + 2 * math.tanh(u[1]))
    return out


@pytest.mark.parametrize("kind", ATTENTION_TYPES)
def test_each_score_by_hand(kind):
    s, h = example_query_memory()
    q = s[..., :K] if kind == "luong-dot" else s
    att = build_attention(kind, q.size(-1), K, A)
    set_weights(att)
    expected = torch.tensor(hand_scores(kind))
    torch.testing.assert_close(att.scores(q, att.keys(h))[0, 0], expected)
    context, weights = att(q, att.keys(h), h)
    w = expected.softmax(0)
    torch.testing.assert_close(weights[0, 0], w)
    torch.testing.assert_close(context[0, 0], (w[:, None] * h[0]).sum(0))


@pytest.mark.parametrize("kind", ATTENTION_TYPES)
def test_pads_get_zero_weight_and_do_not_change_the_rest(kind):
    torch.manual_seed(0)
    att = build_attention(kind, 4, 4, 5)
    memory = torch.randn(2, 6, 4)
    pad = torch.zeros(2, 6, dtype=torch.bool)
    pad[0, 3:] = True
    q = torch.randn(2, 3, 4)
    context, weights = att(q, att.keys(memory), memory, pad)
    assert context.shape == (2, 3, 4) and weights.shape == (2, 3, 6)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3))
    assert weights[0, :, 3:].abs().max() == 0
    # Row 0 equals its unpadded self, whatever sits in the pad slots.
    alone = att(q[:1], att.keys(memory[:1, :3]), memory[:1, :3])
    torch.testing.assert_close(context[:1], alone[0])
    torch.testing.assert_close(weights[:1, :, :3], alone[1])


@pytest.mark.parametrize("kind", ATTENTION_TYPES)
def test_several_queries_at_once_equal_one_at_a_time(kind):
    """Tq > 1 (a beam's hypotheses of one sentence) shares the cached keys exactly."""
    torch.manual_seed(1)
    att = build_attention(kind, 4, 4, 3)
    memory, q = torch.randn(2, 5, 4), torch.randn(2, 4, 4)
    keys = att.keys(memory)
    together = att(q, keys, memory)
    for t in range(4):
        one = att(q[:, t : t + 1], keys, memory)
        torch.testing.assert_close(together[0][:, t : t + 1], one[0])
        torch.testing.assert_close(together[1][:, t : t + 1], one[1])


def test_bahdanau_has_a_bias_and_luong_concat_has_none():
    assert build_attention("bahdanau", 4, 6, 5).W_q.bias is not None
    assert build_attention("luong-concat", 4, 6, 5).W_q.bias is None
    assert build_attention("luong-general", 4, 6).W.weight.shape == (4, 6)
    assert not list(build_attention("luong-dot", 4, 4).parameters())


def test_bad_options_are_user_errors_naming_them():
    with pytest.raises(UserError, match=r"model\.attention.*'luong-cosine'.*bahdanau, luong-dot, luong-general, luong-concat"):
        build_attention("luong-cosine", 4, 4)
    with pytest.raises(UserError, match=r"model\.attention: luong-dot.*model\.encoder_hidden = 512.*model\.hidden = 256"):
        build_attention("luong-dot", 256, 512, query_option="model.hidden", key_option="2 x model.encoder_hidden")
