"""The Transformer family and the model registry: shapes, masks, cache, copy, training."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from tests.text.conftest import copy_keys
from triptych.errors import UserError
from triptych.text.models import Seq2Seq, build_model, list_models, register_model, sequence_loss
from triptych.text.models.transformer import Transformer, TransformerConfig

PAD, BOS, EOS = 0, 1, 2
V = 40


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/text/conftest.py


def tiny(copy=False, norm="pre", vocab=V, **kw):
    """copy: False, True or "cross" (`copy_keys`)."""
    torch.manual_seed(0)
    cfg = dict(d_model=32, heads=4, encoder_layers=2, decoder_layers=2, ffn=64, norm=norm, **copy_keys(copy))
    cfg.update(kw)
    return build_model("transformer", cfg, vocab, PAD).eval()


def copy_batch(rows):
    """Copy task: target = source. Returns src (B,S), tgt_in (B,S+1), tgt_out (B,S+1)."""
    n, S = len(rows), max(len(r) for r in rows)
    src = torch.full((n, S), PAD)
    tin = torch.full((n, S + 1), PAD)
    tout = torch.full((n, S + 1), PAD)
    for i, r in enumerate(rows):
        r = torch.as_tensor(r)
        src[i, : len(r)] = r
        tin[i, 0], tin[i, 1 : len(r) + 1] = BOS, r
        tout[i, : len(r)], tout[i, len(r)] = r, EOS
    return src, tin, tout


def random_rows(g, n, lo, hi, lengths=(4, 8)):
    return [
        torch.randint(lo, hi, (int(torch.randint(lengths[0], lengths[1] + 1, (1,), generator=g)),), generator=g)
        for _ in range(n)
    ]


VARIANTS = [(copy, norm) for copy in (False, True, "cross") for norm in ("pre", "post")]


# ------------------------------------------------------------------ registry


def test_registry_builds_transformer_and_rejects_unknown_names_and_keys():
    assert "transformer" in list_models()
    m = build_model("transformer", {"name": "transformer", "d_model": 16, "heads": 2}, 30, PAD)
    assert isinstance(m, Transformer) and isinstance(m, Seq2Seq) and m.cfg.d_model == 16
    with pytest.raises(UserError, match="transformer"):
        build_model("lstm-thing", {}, 30, PAD)
    with pytest.raises(UserError, match="'layers'.*encoder_layers"):
        build_model("transformer", {"layers": 3}, 30, PAD)
    with pytest.raises(UserError, match="pre, post"):
        build_model("transformer", {"norm": "sandwich"}, 30, PAD)
    with pytest.raises(ValueError, match="twice"):
        register_model("transformer", TransformerConfig)(Transformer)


def test_parameter_count_of_the_benchmark_size():
    """d_model 256, 3+3 layers, 4 heads, FFN 1024, vocabulary 8000 (tied): 7.58M."""
    m = build_model("transformer", {}, 8000, PAD)
    C, F_, V_ = 256, 1024, 8000
    enc_layer = (4 * C * C + 4 * C) + (2 * C * F_ + F_ + C) + 2 * 2 * C
    dec_layer = 2 * (4 * C * C + 4 * C) + (2 * C * F_ + F_ + C) + 3 * 2 * C
    assert m.num_parameters() == V_ * C + 3 * enc_layer + 3 * dec_layer + 2 * 2 * C == 7_578_624
    with_copy = build_model("transformer", {"copy": True}, 8000, PAD)
    assert with_copy.num_parameters() == 7_578_624 + 2 * C * C + 3 * C + 1
    copy_from_cross = build_model("transformer", {"copy": True, "copy_attention": "cross"}, 8000, PAD)
    assert copy_from_cross.num_parameters() == 7_578_624 + 3 * C + 1  # the gate alone
    untied = build_model("transformer", {"tie_embeddings": False}, 8000, PAD)
    assert untied.num_parameters() == 7_578_624 + V_ * C


# ------------------------------------------------------------------ forward


@pytest.mark.parametrize("copy,norm", VARIANTS)
def test_forward_returns_normalised_log_probs(copy, norm):
    m = tiny(copy, norm)
    src, tin = torch.randint(3, V, (3, 7)), torch.randint(3, V, (3, 5))
    lp = m(src, tin)
    assert lp.shape == (3, 5, V)
    torch.testing.assert_close(lp.exp().sum(-1), torch.ones(3, 5))


@pytest.mark.parametrize("copy,norm", VARIANTS)
def test_padding_invariance(copy, norm):
    """A sentence padded inside a batch gets the outputs it gets alone."""
    m = tiny(copy, norm)
    g = torch.Generator().manual_seed(1)
    a, b = torch.randint(3, V, (1, 4), generator=g), torch.randint(3, V, (1, 9), generator=g)
    tin = torch.randint(3, V, (2, 6), generator=g)
    batch = torch.full((2, 9), PAD)
    batch[0, :4], batch[1] = a[0], b[0]
    together = m(batch, tin)
    torch.testing.assert_close(together[0], m(a, tin[:1])[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(together[1], m(b, tin[1:])[0], atol=1e-5, rtol=1e-5)


def test_dropout_is_active_in_training_only():
    m = tiny(dropout=0.3)
    src, tin = torch.randint(3, V, (2, 6)), torch.randint(3, V, (2, 4))
    torch.testing.assert_close(m(src, tin), m(src, tin))
    m.train()
    assert not torch.allclose(m(src, tin), m(src, tin))


@pytest.mark.parametrize("copy", [True, "cross"])
def test_return_attention_gives_weights_without_changing_outputs(copy):
    m = tiny(copy=copy)
    src = torch.randint(3, V, (2, 7))
    src[0, 5:] = PAD
    tin = torch.randint(3, V, (2, 4))
    lp, attn = m(src, tin, return_attention=True)
    torch.testing.assert_close(lp, m(src, tin))
    assert len(attn["cross"]) == 2
    for w in attn["cross"] + [attn["copy"][:, None]]:
        assert w.shape[0] == 2 and w.shape[-2:] == (4, 7)
        torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:-1]))
        assert w[0, ..., 5:].abs().max() == 0  # padding gets no attention
    if copy == "cross":
        torch.testing.assert_close(attn["copy"], attn["cross"][-1][:, 0])


# ------------------------------------------------------------------ incremental decoding


@pytest.mark.parametrize("copy,norm", VARIANTS)
def test_step_with_cache_equals_forward_on_the_prefix(copy, norm):
    m = tiny(copy, norm)
    src = torch.randint(3, V, (3, 7))
    src[1, 4:] = PAD
    tin = torch.randint(3, V, (3, 6))
    full = m(src, tin)
    enc = m.encode(src)
    state = m.init_state(enc)
    for t in range(tin.size(1)):
        lp, state = m.step(tin[:, t], enc, state)
        torch.testing.assert_close(lp, full[:, t], atol=1e-5, rtol=1e-5)


def test_reorder_selects_and_duplicates_rows():
    m = tiny(copy=True)
    src = torch.randint(3, V, (3, 7))
    src[2, 3:] = PAD
    tin = torch.randint(3, V, (3, 4))
    enc = m.encode(src)
    state = m.init_state(enc)
    for t in range(2):
        _, state = m.step(tin[:, t], enc, state)
    index = torch.tensor([2, 0, 0])
    enc, state = m.reorder(enc, state, index)
    for t in range(2, 4):
        lp, state = m.step(tin[index, t], enc, state)
    torch.testing.assert_close(lp, m(src[index], tin[index])[:, 3], atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------ loss


def test_sequence_loss_is_the_summed_label_smoothed_cross_entropy():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, V)
    targets = torch.randint(3, V, (2, 5))
    targets[0, 3:] = PAD
    for eps in (0.0, 0.1):
        loss, n = sequence_loss(logits.log_softmax(-1), targets, PAD, eps)
        ref = F.cross_entropy(logits.view(-1, V), targets.view(-1), ignore_index=PAD, label_smoothing=eps, reduction="sum")
        assert n == 8
        torch.testing.assert_close(loss, ref)
    full = torch.randint(3, V, (2, 5))  # no padding: the path that skips the masked copy, (B,T) and (N,)
    ref = F.cross_entropy(logits.view(-1, V), full.view(-1), label_smoothing=0.1, reduction="sum")
    for lp, tgt in ((logits.log_softmax(-1), full), (logits.view(-1, V).log_softmax(-1), full.view(-1))):
        loss, n = sequence_loss(lp, tgt, PAD, 0.1)
        assert n == 10
        torch.testing.assert_close(loss, ref)


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_sequence_loss_gradient_is_cross_entropys(eps):
    """Training follows this gradient: it must be that of torch's own
    label-smoothed cross-entropy, padding ignored, whatever the upstream factor."""
    torch.manual_seed(1)
    logits = torch.randn(3, 7, V, requires_grad=True)
    targets = torch.randint(3, V, (3, 7))
    targets[1, 4:] = PAD
    loss, _ = sequence_loss(logits.log_softmax(-1), targets, PAD, eps)
    (2.5 * loss).backward()  # an upstream factor, as the engine's division by the step's tokens
    ours = logits.grad.clone()
    logits.grad = None
    ref = F.cross_entropy(logits.view(-1, V), targets.view(-1), ignore_index=PAD, label_smoothing=eps, reduction="sum")
    (2.5 * ref).backward()
    torch.testing.assert_close(ours, logits.grad)


@pytest.mark.parametrize("copy", [False, True, "cross"])
def test_model_loss_skips_padding_and_equals_forward_plus_sequence_loss(copy):
    m = tiny(copy)
    src, tin, tout = copy_batch(random_rows(torch.Generator().manual_seed(2), 4, 3, V))
    loss, n = m.loss(src, tin, tout, 0.1)
    ref, n_ref = sequence_loss(m(src, tin), tout, PAD, 0.1)
    assert n == n_ref == int((tout != PAD).sum())
    torch.testing.assert_close(loss, ref)


# ------------------------------------------------------------------ learning


def train(m, batches, steps, lr=1e-2):
    m.train()
    opt = torch.optim.Adam(m.parameters(), lr)
    for step in range(steps):
        src, tin, tout = batches(step)
        loss, n = m.loss(src, tin, tout)
        opt.zero_grad()
        (loss / n).backward()
        opt.step()
    return m.eval()


@pytest.mark.parametrize("copy", [False, True, "cross"])
def test_tiny_overfit_on_a_copy_task(copy):
    from triptych.text.generation.search import greedy

    rows = random_rows(torch.Generator().manual_seed(3), 8, 3, V)
    m = tiny(copy, dropout=0.0, encoder_layers=1, decoder_layers=1)
    batch = copy_batch(rows)
    target = [r.tolist() for r in rows]
    train(m, lambda step: batch, 150)
    for _ in range(6):  # more steps where this CPU's rounding made Adam slower to get there
        if (got := greedy(m, batch[0], bos=BOS, eos=EOS, max_len=10)) == target:
            break
        train(m, lambda step: batch, 25)
    assert got == target


@pytest.mark.slow
def test_copy_attention_reproduces_tokens_never_seen_as_targets():
    """Train copying on tokens 3..99; test on sentences holding one token of
    100..129, which the vocabulary softmax never saw as a target. Only the
    copy distribution can put it back in place."""
    hi, rates = 100, {}
    for copy in (True, "cross", False):
        g = torch.Generator().manual_seed(0)
        m = tiny(copy, vocab=hi + 30, dropout=0.0, heads=2, encoder_layers=1, decoder_layers=1)
        train(m, lambda step: copy_batch(random_rows(g, 32, 3, hi)), 300)
        rows, where = random_rows(g, 64, 3, hi), []
        for r in rows:
            where.append(int(torch.randint(0, len(r), (1,), generator=g)))
            r[where[-1]] = int(torch.randint(hi, hi + 30, (1,), generator=g))
        src, tin, _ = copy_batch(rows)
        with torch.no_grad():
            pred = m(src, tin).argmax(-1)
        rates[copy] = sum(int(pred[i, p] == rows[i][p]) for i, p in enumerate(where)) / len(rows)
    assert rates[False] == 0.0
    assert rates[True] >= 0.3 and rates["cross"] >= 0.3, rates


def test_config_fields_are_the_documented_recipe_keys():
    names = [f.name for f in dataclasses.fields(TransformerConfig)]
    assert names == [
        "d_model", "heads", "encoder_layers", "decoder_layers", "ffn", "dropout",
        "attention_dropout", "norm", "copy", "copy_attention", "max_positions", "tie_embeddings",
    ]  # fmt: skip


def test_fast_dropout_keeps_one_minus_p_scales_and_backpropagates_through_the_mask():
    from triptych.text.models.dropout import dropout

    x = torch.ones(1001, 257, requires_grad=True)  # an odd size: the last int64 is partly used
    torch.manual_seed(0)
    y = dropout(x, 0.1, True)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.9) < 0.003
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 1 / 0.9))
    y.sum().backward()
    torch.testing.assert_close(x.grad, y.detach())
    torch.manual_seed(0)
    torch.testing.assert_close(dropout(x, 0.1, True), y)  # the global seed decides
    assert dropout(x, 0.1, False) is x
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert dropout(x.bfloat16(), 0.5, True).dtype == torch.bfloat16


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float64])
def test_fast_dropout_in_other_float_widths_scales_in_their_own_dtype(dtype):
    from triptych.text.models.dropout import dropout

    torch.manual_seed(1)
    y = dropout(torch.ones(3, 5, 7, dtype=dtype), 0.1, True)
    assert y.dtype == dtype and y.shape == (3, 5, 7)
    assert set(y.unique().tolist()) <= {0.0, torch.tensor(1 / 0.9, dtype=dtype).item()}


def test_dropout_mask_stream_is_uniform_and_decided_by_the_seed():
    """The counter-based words behind the masks: every 16-bit lane uniform (a chi-square
    over 64 bins of each lane position), a seed's stream reproducible, another seed's different."""
    import numpy as np

    from triptych.text.models.dropout_mask import fill_mask

    n = 1 << 20
    lanes = np.empty(n, np.uint16)  # threshold 0 with keep = identity would hide the lanes: read them as the mask's bits
    for threshold, expect_kept in ((0, 1.0), (32768, 0.5), (6554, 0.9)):
        fill_mask(lanes, np.uint64(7), np.uint16(threshold), np.uint16(1))
        assert abs(lanes.mean() - expect_kept) < 0.003
    edges = np.arange(0, 65537, 1024)
    kept_per_bin = []
    for lo in edges[:-1]:
        fill_mask(lanes, np.uint64(7), np.uint16(lo), np.uint16(1))
        kept_per_bin.append(lanes.reshape(-1, 4).sum(0))  # kept at or above lo, per lane position
    counts = -np.diff(np.array(kept_per_bin + [np.zeros(4)]), axis=0)  # [64 bins, 4 lane positions]
    chi2 = ((counts - n / 4 / 64) ** 2 / (n / 4 / 64)).sum(0)
    assert (chi2 < 120).all(), chi2  # 63 degrees of freedom: p < 1e-5 beyond 120
    again = np.empty(n, np.uint16)
    fill_mask(again, np.uint64(7), np.uint16(32768), np.uint16(1))
    fill_mask(lanes, np.uint64(7), np.uint16(32768), np.uint16(1))
    assert np.array_equal(again, lanes)
    fill_mask(again, np.uint64(8), np.uint16(32768), np.uint16(1))
    assert 0.45 < (again == lanes).mean() < 0.55


@pytest.mark.parametrize("copy", [False, "cross"])
def test_step_scores_rank_as_the_log_probabilities(copy):
    """Greedy's step: the logits (their log-softmax is step's answer); with
    copy attention, the log-probabilities themselves."""
    m = tiny(copy)
    src = torch.randint(3, V, (3, 7))
    src[1, 4:] = PAD
    with torch.inference_mode():
        enc = m.encode(src)
        tokens = torch.full((3,), BOS)
        log_p, state = m.step(tokens, enc, m.init_state(enc))
        scores, state2 = m.step_scores(tokens, enc, m.init_state(enc))
    assert state2["pos"] == state["pos"] == 1
    if copy:
        assert torch.equal(scores, log_p)
    else:
        torch.testing.assert_close(scores.float().log_softmax(-1), log_p)
        assert torch.equal(scores.argmax(-1), log_p.argmax(-1))


def test_greedy_from_the_scores_equals_greedy_from_the_log_probabilities(monkeypatch):
    from triptych.text.generation.search import greedy

    m = tiny()
    src = torch.randint(3, V, (4, 9))
    src[2, 3:] = PAD
    fast = greedy(m, src, bos=BOS, eos=EOS, max_len=15, no_repeat_ngram=2, min_len=3)
    monkeypatch.setattr(m, "step_scores", m.step)
    assert fast == greedy(m, src, bos=BOS, eos=EOS, max_len=15, no_repeat_ngram=2, min_len=3)
