"""The decoding steps' compiled attention (`nn/attention_steps.py`) against
the explicit matmul path it replaces, and where it does and does not serve."""

from __future__ import annotations

import math

import pytest
import torch

from triptych.nn import attention_steps
from triptych.nn.attention import attend
from triptych.nn.attention_steps import attend_steps, serves


def reference(q, k, v, bias):
    """softmax(q k^T / sqrt(D) + bias) v in float64."""
    scores = q.double() @ k.double().transpose(-2, -1) / math.sqrt(q.size(-1))
    if bias is not None:
        scores = scores + bias.double()
    return scores.softmax(-1) @ v.double()


def case(B=5, H=3, T=1, S=23, D=16, seed=0, lengths=None, holes=False):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(B, H, n, D, generator=g) for n in (T, S, S))
    if lengths is None:
        return q, k, v, None
    bias = torch.zeros(B, 1, 1, S)
    for b, n in enumerate(lengths):
        bias[b, ..., n:] = -math.inf
    if holes:  # masked positions inside a row, not only its tail
        bias[:, ..., 1] = -math.inf
    return q, k, v, bias


@pytest.mark.parametrize(
    "shape, lengths, holes",
    [
        (dict(), (23, 1, 7, 16, 23), False),  # right-padded sources of very different lengths
        (dict(T=4), (3, 23, 9, 2, 11), False),  # beam search's grouped hypotheses: G queries a row
        (dict(), (23, 20, 7, 16, 5), True),
        (dict(S=1, B=2), (1, 1), False),
        (dict(D=64, S=40, T=2), None, False),  # self-attention over the cache: no mask
    ],
)
def test_equals_softmax_attention_in_float64(shape, lengths, holes):
    q, k, v, bias = case(**shape, lengths=lengths, holes=holes)
    got = attend_steps(q, k, v, bias)
    assert got.dtype == torch.float32 and got.shape == q.shape
    torch.testing.assert_close(got.double(), reference(q, k, v, bias), atol=2e-6, rtol=1e-5)


def test_non_contiguous_inputs_as_the_decoder_passes_them():
    q, k, v, bias = case(T=2, lengths=(23, 4, 9, 1, 17))
    q_strided = q.transpose(1, 2).contiguous().transpose(1, 2)  # (B, H, T, D) view of a (B, T, H, D) tensor
    assert not q_strided.is_contiguous()
    torch.testing.assert_close(attend_steps(q_strided, k, v, bias), attend_steps(q, k, v, bias))


def test_attend_takes_it_for_float32_inference_steps_only(monkeypatch):
    calls = []
    monkeypatch.setattr(attention_steps, "attend_steps", lambda *a: calls.append(1) or reference(*a).float())
    q, k, v, bias = case(lengths=(23, 1, 7, 16, 23))
    with torch.no_grad():
        attend(q, k, v, bias, 0.0, False, need_weights=False)
        assert len(calls) == 1
        attend(q, k, v, bias, 0.0, False, need_weights=True)  # the pictures need the weights
        attend(q.bfloat16(), k.bfloat16(), v.bfloat16(), bias, 0.0, False, need_weights=False)
        attend(*case(T=17, lengths=(23,) * 5)[:3], bias, 0.0, False, need_weights=False)  # many queries: fused
        attend(q, k, v, bias, 0.0, True, need_weights=False)  # causal
    attend(q, k, v, bias, 0.0, False, need_weights=False)  # gradients on: training
    assert len(calls) == 1
    assert not serves(q, k, v, bias, 0.1, False, False)  # dropout
    with torch.no_grad():
        assert serves(q, k, v, bias, 0.0, False, False)
        full = case(lengths=(23,) * 5)  # no padding to skip: the matmuls are as fast
        assert not serves(*full, 0.0, False, False)
        assert not serves(*case(T=4, lengths=(23, 1, 7, 16, 23)), 0.0, False, False)  # 4 queries: 61% > 50%
        assert not serves(q, k, v, None, 0.0, False, False)  # the self-attention's cache: no mask
        monkeypatch.setattr(torch.onnx, "is_in_onnx_export", lambda: True)  # a trace cannot see into the kernel
        assert not serves(q, k, v, bias, 0.0, False, False)


def test_greedy_and_beam_tokens_unchanged_by_the_kernel(monkeypatch):
    """A small Transformer decodes a ragged batch alike with and without it."""
    from tests.text.test_transformer_fast_paths import BOS, EOS, ragged, tiny
    from triptych.text.generation.search import beam_search, greedy

    m, src = tiny(), ragged()
    calls, kernel = [], attention_steps.attend_steps
    monkeypatch.setattr(attention_steps, "attend_steps", lambda *a: calls.append(1) or kernel(*a))
    runs = []
    for on in (True, False):
        if not on:
            monkeypatch.setattr(attention_steps, "serves", lambda *a: False)
        with torch.inference_mode():
            beams = beam_search(m, src, beam=3, bos=BOS, eos=EOS, max_len=12)
            runs.append((greedy(m, src, bos=BOS, eos=EOS, max_len=12), [h[0].tokens for h in beams]))
        if on:
            assert len(calls) >= 2 * 12  # the steps' self- and cross-attention went through it
    assert runs[0] == runs[1]


def test_decoding_threads_side_by_side_get_their_own_answers():
    """Two threads (a server's, say) calling at once each get their own rows back."""
    from concurrent.futures import ThreadPoolExecutor

    cases = [case(seed=s, lengths=(23, 1 + s, 7, 16, 23)) for s in range(8)]
    with ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(lambda c: attend_steps(*c), cases * 4))
    for c, got in zip(cases * 4, outs):
        torch.testing.assert_close(got.double(), reference(*c), atol=2e-6, rtol=1e-5)


# ------------------------------------------------------- keys and values kept in bf16


@pytest.mark.parametrize("T, lengths, holes", [(1, (23, 1, 7, 16, 23), False), (4, (3, 23, 9, 2, 11), True)])
def test_bf16_keys_values_give_the_numbers_of_their_float32_copies(T, lengths, holes):
    """Widened as they are read: bit for bit the kernel's result on the float32 values."""
    q, k, v, bias = case(T=T, lengths=lengths, holes=holes)
    k16, v16 = k.bfloat16(), v.bfloat16()
    assert torch.equal(attend_steps(q, k16, v16, bias), attend_steps(q, k16.float(), v16.float(), bias))


def test_bf16_keys_values_are_taken_at_any_share_and_read_in_float32_elsewhere():
    q, k, v, bias = case(T=4, lengths=(23,) * 5)  # no padding: float32 ones would go to the matmuls
    k16, v16 = k.bfloat16(), v.bfloat16()
    with torch.no_grad():
        assert not serves(q, k, v, bias, 0.0, False, False)
        assert serves(q, k16, v16, bias, 0.0, False, False)
        y, w = attend(q, k16, v16, bias, 0.0, False, need_weights=True)  # the pictures: the matmul path
        want, want_w = attend(q, k16.float(), v16.float(), bias, 0.0, False, need_weights=True)
    assert y.dtype == w.dtype == torch.float32
    assert torch.equal(y, want) and torch.equal(w, want_w)


@pytest.mark.parametrize("copy", [False, "cross"])
def test_decoding_keeps_cross_keys_values_in_the_bf16_products_dtype(copy, bf16_kernels, monkeypatch):
    """Under bf16 copies the cross-attention's keys/values stay bf16 (the
    values the float32 cast held), except the layer whose head copies: its
    weights are read at every step, through the float32 matmuls."""
    from tests.text.conftest import copy_keys
    from tests.text.test_transformer_fast_paths import BOS, ragged
    from triptych.nn.prepacked import packed_weights
    from triptych.text.models import build_model

    torch.manual_seed(0)
    cfg = dict(d_model=256, heads=4, encoder_layers=1, decoder_layers=2, ffn=256, **copy_keys(copy))  # packed: big enough
    m, src = build_model("transformer", cfg, 50, 0).eval(), ragged()
    with torch.inference_mode(), packed_weights("bfloat16"):
        enc = m.encode(src)
        kinds = [kv[0].dtype for kv in enc["cross"]]
        assert kinds == ([torch.bfloat16, torch.float32] if copy else [torch.bfloat16, torch.bfloat16])
        tokens = torch.full((src.size(0),), BOS)
        got, _ = m.step(tokens, enc, m.init_state(enc))
        widened = {**enc, "cross": [(k.float(), v.float()) for k, v in enc["cross"]]}
        monkeypatch.setattr(attention_steps, "MAX_SHARE_ONE_QUERY", 1.0)  # float32 copies through the same kernel
        want, _ = m.step(tokens, widened, m.init_state(widened))
    assert torch.equal(got, want)
