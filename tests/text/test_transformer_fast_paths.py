"""The Transformer's speed paths give the same numbers as the plain ones.

On CPU, attention in bf16 (and float64) runs as explicit matmuls rather
than the fused kernel (whose bf16 backward is slow). The packed encoder
projects the cross-attention keys/values (and copy keys) from the real tokens
alone; `loss` runs the decoder on the real target tokens alone; greedy
decoding drops rows from the batch as they finish; inference attends over
each packed row's own tokens, one row at a time. Each is checked here
against the path it replaces, on batches whose lengths differ widely
(where the padding, and so the saving, is largest).
"""

from __future__ import annotations

import pytest
import torch

from tests.text.conftest import copy_keys
from triptych.text.generation.search import greedy
from triptych.text.models import build_model, sequence_loss
from triptych.nn.attention import attend as _attend

PAD, BOS, EOS = 0, 1, 2
V = 40


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/text/conftest.py


def tiny(copy=False, norm="pre", **kw):
    """copy: False, True or "cross" (`copy_keys`)."""
    torch.manual_seed(0)
    cfg = dict(d_model=32, heads=4, encoder_layers=2, decoder_layers=2, ffn=64, norm=norm, **copy_keys(copy), **kw)
    return build_model("transformer", cfg, V, PAD).eval()


def ragged(lengths=(2, 23, 5, 1, 14, 30), seed=0):
    """A right-padded batch whose rows differ widely in length (mostly padding)."""
    g = torch.Generator().manual_seed(seed)
    src = torch.full((len(lengths), max(lengths)), PAD)
    for i, n in enumerate(lengths):
        src[i, :n] = torch.randint(3, V, (n,), generator=g)
    return src


@pytest.mark.parametrize("copy", [False, True])
def test_keys_values_from_packed_tokens_equal_those_of_the_padded_memory(copy):
    """encode() projects the cross-attention keys/values (and copy keys) from
    the real tokens alone; at real positions they equal the projections of
    the padded memory, and the pads, masked out, are zeros."""
    m, src = tiny(copy), ragged()
    keep = src != PAD
    assert keep.float().mean() < 0.9  # enough padding for the encoder to pack
    with torch.no_grad():
        enc = m.encode(src)
        for layer, (k, v) in zip(m.decoder, enc["cross"]):
            k_ref, v_ref = layer.cross.keys_values(enc["memory"])  # (B, H, S, D), from the (B, S, C) grid
            for got, ref in ((k, k_ref), (v, v_ref)):
                torch.testing.assert_close(got.transpose(1, 2)[keep], ref.transpose(1, 2)[keep], atol=1e-5, rtol=1e-5)
                assert not got.transpose(1, 2)[~keep].any()
        if copy:
            torch.testing.assert_close(enc["copy_k"], m.copy_k(enc["memory"]), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("copy", [False, True, "cross"])
def test_ragged_batch_log_probs_equal_each_row_alone(copy):
    """Forward on the ragged batch = forward on each row without any padding."""
    m, src = tiny(copy), ragged()
    g = torch.Generator().manual_seed(1)
    tin = torch.cat([torch.full((src.size(0), 1), BOS), torch.randint(3, V, (src.size(0), 5), generator=g)], 1)
    with torch.no_grad():
        together = m(src, tin)
        for i, n in enumerate((src != PAD).sum(1).tolist()):
            torch.testing.assert_close(together[i], m(src[i : i + 1, :n], tin[i : i + 1])[0], atol=1e-5, rtol=1e-5)


class EosAt(torch.nn.Module):
    """Wraps a model so that sentence i emits eos at step `ends[i]`: rows then
    finish at very different steps and greedy drops them from the batch."""

    def __init__(self, model, ends):
        super().__init__()
        self.model, self.ends, self.pad_id, self.grouped_steps = model, ends, model.pad_id, True

    def encode(self, src):
        enc = self.model.encode(src)
        enc["end"] = torch.tensor([self.ends[int(r)] for r in src[:, 0]])  # the first token names the sentence
        return enc

    def init_state(self, enc):
        return self.model.init_state(enc)

    def step(self, tokens, enc, state):
        log_p, new = self.model.step(tokens, enc, state)
        log_p = log_p.clone()
        log_p[enc["end"] == state["pos"], EOS] = 0.0  # the largest a log-probability can be
        return log_p, new

    def reorder_encoder(self, enc, index):
        return self.model.reorder_encoder(enc, index)

    def reorder_state(self, state, index):
        return self.model.reorder_state(state, index)


@pytest.mark.parametrize("copy", [False, True, "cross"])
def test_greedy_dropping_finished_rows_equals_each_sentence_alone(copy):
    """Rows that end at steps 1..12 leave the batch one by one; every other
    row's tokens stay what it gets decoded alone (no padding, no dropping)."""
    base, src = tiny(copy), ragged()
    src = torch.cat([torch.arange(src.size(0))[:, None] + 3, src], 1)  # a sentence id as the first token
    ends = {3 + i: e for i, e in enumerate((1, 12, 4, 7, 2, 30))}
    m = EosAt(base, ends)
    batch = greedy(m, src, bos=BOS, eos=EOS, max_len=15)
    for i, row in enumerate(src):
        alone = greedy(m, row[row != PAD][None], bos=BOS, eos=EOS, max_len=15)[0]
        assert batch[i] == alone
        assert len(batch[i]) == min(ends[3 + i], 15)


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_inference_attending_row_by_row_equals_the_masked_grid(norm):
    """Without autograd, packed self-attention runs a row at a time over the
    row's own tokens (no pads, no mask); with autograd, over the masked (B,S)
    grid. float64, so that any difference is the path's, not rounding's:
    the encoder (bidirectional) and the packed decoder of `loss` (causal)."""
    m, src = tiny(norm=norm, dropout=0.0).double(), ragged()
    tgt = ragged(lengths=(1, 9, 3, 12, 2, 6), seed=2)
    tin = torch.cat([torch.full((tgt.size(0), 1), BOS), tgt], 1)
    tout = torch.cat([tgt, torch.full((tgt.size(0), 1), PAD)], 1)
    tout[torch.arange(tgt.size(0)), (tgt != PAD).sum(1)] = EOS
    keep = src != PAD
    calls = []
    attend_rows = type(m.encoder[0].attn)._attend_rows
    with pytest.MonkeyPatch.context() as mp:  # count the row-by-row calls, so the test sees the path taken
        mp.setattr(type(m.encoder[0].attn), "_attend_rows", lambda *a: calls.append(1) or attend_rows(*a))
        with torch.enable_grad():
            grid_memory, grid_loss = m.encode(src)["memory"], m.loss(src, tin, tout)[0]
        assert not calls
        with torch.no_grad():
            row_memory, row_loss = m.encode(src)["memory"], m.loss(src, tin, tout)[0]
        assert len(calls) == 2 * len(m.encoder) + len(m.decoder)
    torch.testing.assert_close(row_memory[keep], grid_memory[keep].detach(), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(row_loss, grid_loss.detach(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("copy,norm", [(False, "pre"), (True, "pre"), ("cross", "pre"), (False, "post")])
def test_packed_decoder_loss_and_gradients_equal_forward_on_the_grid(copy, norm):
    """Targets of very different lengths: `loss` runs the decoder on the real
    target tokens alone; `forward` + `sequence_loss` runs it on the padded grid."""
    m, src = tiny(copy, norm, dropout=0.0).train(), ragged()  # training mode, without randomness
    tgt = ragged(lengths=(1, 9, 3, 12, 2, 6), seed=2)
    n = (tgt != PAD).sum(1)
    tin = torch.cat([torch.full((tgt.size(0), 1), BOS), tgt], 1)
    tout = torch.cat([tgt, torch.full((tgt.size(0), 1), PAD)], 1)
    tout[torch.arange(tgt.size(0)), n] = EOS
    assert (tout != PAD).float().mean() < 0.9  # enough padding for the packed path

    def grads(fn):
        m.zero_grad()
        loss = fn()
        loss.backward()
        return loss.detach(), {k: p.grad.clone() for k, p in m.named_parameters() if p.grad is not None}

    loss, g = grads(lambda: m.loss(src, tin, tout, label_smoothing=0.1)[0])
    ref, g_ref = grads(lambda: sequence_loss(m(src, tin), tout, PAD, 0.1)[0])
    torch.testing.assert_close(loss, ref, atol=1e-5, rtol=1e-5)
    assert g.keys() == g_ref.keys()
    for name in g:
        torch.testing.assert_close(g[name], g_ref[name], atol=1e-5, rtol=1e-5, msg=name)


@pytest.mark.parametrize("causal", [False, True])
def test_explicit_attention_equals_the_fused_kernel_with_gradients(causal):
    """float64 takes the explicit path on CPU (as bf16 does); the fused kernel
    on the same float64 inputs is the reference, padding mask and gradients
    included."""
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(3, 2, 7, 8, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(3))
    bias = None
    if not causal:  # a padding mask, as the encoder builds it: row 1 sees 4 keys, row 2 sees 1
        keep = torch.ones(3, 7, dtype=torch.bool)
        keep[1, 4:], keep[2, 1:] = False, False
        bias = torch.zeros(3, 7, dtype=torch.float64).masked_fill(~keep, float("-inf"))[:, None, None, :]
    y, _ = _attend(q, k, v, bias, 0.0, causal, need_weights=False)
    grads = torch.autograd.grad(y.square().sum(), (q, k, v))
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias, is_causal=causal)
    ref_grads = torch.autograd.grad(ref.square().sum(), (q, k, v))
    torch.testing.assert_close(y, ref, rtol=1e-10, atol=1e-10)
    for got, want in zip(grads, ref_grads):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("causal", [False, True])
def test_bf16_attention_stays_bf16_and_matches_float64(causal):
    """Under bf16 the scores, the softmax and its backward stay bf16 (float32
    inside the kernels); the float32 padding bias the encoder builds does not
    promote them. Output and gradients agree with float64 on the same values
    to bf16's precision; the weights for the attention pictures are float32."""
    g = torch.Generator().manual_seed(1)
    base = [torch.randn(2, 4, 9, 16, generator=g).to(torch.bfloat16) for _ in range(3)]
    bias = None
    if not causal:
        keep = torch.ones(2, 9, dtype=torch.bool)
        keep[1, 5:] = False
        bias = torch.zeros(2, 9).masked_fill(~keep, float("-inf"))[:, None, None, :]  # float32, as built
    q, k, v = (t.clone().requires_grad_() for t in base)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.dtype) or t, lambda t: t):
        y, _ = _attend(q, k, v, bias, 0.0, causal, need_weights=False)
    assert y.dtype == torch.bfloat16 and torch.bfloat16 in saved and torch.float32 not in saved  # no float32 copy kept
    grads = torch.autograd.grad(y.float().square().sum(), (q, k, v))
    q64, k64, v64 = (t.double().requires_grad_() for t in base)
    ref = torch.nn.functional.scaled_dot_product_attention(
        q64, k64, v64, attn_mask=None if bias is None else bias.double(), is_causal=causal
    )
    ref_grads = torch.autograd.grad(ref.square().sum(), (q64, k64, v64))
    torch.testing.assert_close(y.double(), ref, rtol=0.02, atol=0.02)
    for got, want in zip(grads, ref_grads):
        assert got.dtype == torch.bfloat16
        torch.testing.assert_close(got.double(), want, rtol=0.05, atol=0.05)
    _, w = _attend(*base, bias, 0.0, causal, need_weights=True)
    assert w.dtype == torch.float32
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 4, 9))
