"""The ConvS2S family: shapes, masks, causality, rolling buffers, copy, beam search, options."""

from __future__ import annotations

import math

import pytest
import torch

from triptych.errors import UserError
from triptych.text.generation.search import beam_search, greedy
from triptych.text.models import Seq2Seq, build_model, list_models, sequence_loss
from triptych.text.models.conv import ConvS2S, _GradScale, linear

PAD, BOS, EOS = 0, 1, 2
V = 40


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/text/conftest.py


def tiny(copy=False, **kw):
    """Mixed widths and kernels on purpose: residual projections, a K=1 layer
    (no buffer at all) and an even causal kernel all get exercised."""
    torch.manual_seed(0)
    cfg = dict(
        embed_dim=16, encoder_layers=2, encoder_channels=[24, 32], encoder_kernel=[3, 5],
        decoder_layers=3, decoder_channels=[24, 24, 32], decoder_kernel=[3, 2, 1], out_dim=16, copy=copy,
    )  # fmt: skip
    cfg.update(kw)
    return build_model("conv", cfg, V, PAD).eval()


def sources(n=3, S=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(3, V, (n, S), generator=g)
    src[1, 4:] = PAD
    return src


def targets(n=3, T=6, seed=1):
    return torch.randint(3, V, (n, T), generator=torch.Generator().manual_seed(seed))


def copy_batch(rows):
    """Copy task: target = source. Returns src (B,S), tgt_in (B,S+1), tgt_out (B,S+1)."""
    n, S = len(rows), max(len(r) for r in rows)
    src, tin, tout = torch.full((n, S), PAD), torch.full((n, S + 1), PAD), torch.full((n, S + 1), PAD)
    for i, r in enumerate(rows):
        r = torch.as_tensor(r)
        src[i, : len(r)] = r
        tin[i, 0], tin[i, 1 : len(r) + 1] = BOS, r
        tout[i, : len(r)], tout[i, len(r)] = r, EOS
    return src, tin, tout


# ------------------------------------------------------------------ forward


def test_registered_as_conv():
    assert "conv" in list_models()
    m = build_model("conv", {"name": "conv", "embed_dim": 16, "out_dim": 16}, 30, PAD)
    assert isinstance(m, ConvS2S) and isinstance(m, Seq2Seq)
    assert m.cfg.encoder_channels == [256] * 6 and m.cfg.decoder_kernel == [3] * 4  # ints widen to per-layer lists


@pytest.mark.parametrize("copy", [False, True])
def test_forward_returns_normalised_log_probs(copy):
    m = tiny(copy)
    lp = m(sources(), targets())
    assert lp.shape == (3, 6, V)
    torch.testing.assert_close(lp.exp().sum(-1), torch.ones(3, 6))


@pytest.mark.parametrize("copy", [False, True])
def test_padding_invariance(copy):
    """A sentence padded inside a batch gets the outputs it gets alone: pads
    are zeroed before every encoder convolution and masked in attention."""
    m = tiny(copy)
    g = torch.Generator().manual_seed(1)
    a, b = torch.randint(3, V, (1, 4), generator=g), torch.randint(3, V, (1, 9), generator=g)
    tin = torch.randint(3, V, (2, 6), generator=g)
    batch = torch.full((2, 9), PAD)
    batch[0, :4], batch[1] = a[0], b[0]
    together = m(batch, tin)
    torch.testing.assert_close(together[0], m(a, tin[:1])[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(together[1], m(b, tin[1:])[0], atol=1e-5, rtol=1e-5)
    # A target padded on the right: its real positions do not see the pads.
    short = m(a, tin[:1, :3])
    torch.testing.assert_close(short[0], together[0, :3], atol=1e-5, rtol=1e-5)


def test_all_padding_source_gives_finite_outputs():
    m = tiny(True)
    lp = m(torch.full((2, 5), PAD), targets(2, 3))
    assert torch.isfinite(lp).all()


@pytest.mark.parametrize("copy", [False, True])
def test_causality_a_future_target_token_changes_no_earlier_output(copy):
    m = tiny(copy)
    src, tin = sources(), targets()
    before = m(src, tin)
    for t in (1, 3, 5):
        changed = tin.clone()
        changed[:, t] = (changed[:, t] + 1 - 3) % (V - 3) + 3
        after = m(src, changed)
        torch.testing.assert_close(after[:, :t], before[:, :t], atol=0, rtol=0)
        assert (after[:, t] - before[:, t]).abs().max() > 1e-4  # the test can see a change


def test_return_attention_gives_one_map_per_layer_without_changing_outputs():
    m = tiny(copy=True)
    src, tin = sources(2, 7), targets(2, 4)
    src[0, 5:] = PAD
    lp, attn = m(src, tin, return_attention=True)
    torch.testing.assert_close(lp, m(src, tin))
    assert len(attn["cross"]) == 3
    for w in attn["cross"]:
        assert w.shape == (2, 1, 4, 7)
        torch.testing.assert_close(w.sum(-1), torch.ones(2, 1, 4))
        assert w[0, ..., 5:].abs().max() == 0  # padding gets no attention
    torch.testing.assert_close(attn["copy"], attn["cross"][-1][:, 0])  # copy = the last layer's attention
    assert "copy" not in tiny(copy=False)(src, tin, return_attention=True)[1]


def test_dropout_is_active_in_training_only():
    m = tiny(dropout=0.3)
    src, tin = sources(), targets()
    torch.testing.assert_close(m(src, tin), m(src, tin))
    m.train()
    assert not torch.allclose(m(src, tin), m(src, tin))


# ------------------------------------------------------------------ incremental decoding


@pytest.mark.parametrize("copy", [False, True])
def test_step_with_rolling_buffers_equals_forward_on_the_prefix(copy):
    m = tiny(copy)
    src, tin = sources(), targets(T=8)
    full = m(src, tin)
    enc = m.encode(src)
    state = m.init_state(enc)
    assert [b.shape[1] for b in state["buffers"]] == [2, 1, 0]  # K-1 inputs kept per layer
    for t in range(tin.size(1)):
        lp, state = m.step(tin[:, t], enc, state)
        torch.testing.assert_close(lp, full[:, t], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("copy", [False, True])
def test_grouped_steps_read_one_encoder_row_for_g_hypotheses(copy):
    """Beam search steps G*B rows against B encoder rows (row r reads encoder row r // G)."""
    m = tiny(copy)
    src, G = sources(), 3
    tin = targets(3 * G, 5)
    full = m(src.repeat_interleave(G, 0), tin)
    enc = m.encode(src)
    _, state = m.reorder(enc, m.init_state(enc), torch.arange(3).repeat_interleave(G))
    for t in range(5):
        lp, state = m.step(tin[:, t], enc, state)
        torch.testing.assert_close(lp, full[:, t], atol=1e-5, rtol=1e-5)


def test_reorder_selects_and_duplicates_rows():
    m = tiny(copy=True)
    src, tin = sources(), targets(T=4)
    enc = m.encode(src)
    state = m.init_state(enc)
    for t in range(2):
        _, state = m.step(tin[:, t], enc, state)
    index = torch.tensor([2, 0, 0])
    enc, state = m.reorder(enc, state, index)
    for t in range(2, 4):
        lp, state = m.step(tin[index, t], enc, state)
    torch.testing.assert_close(lp, m(src[index], tin[index])[:, 3], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("copy", [False, True])
def test_beam_one_equals_greedy_and_cached_beam_equals_recomputation(copy):
    m = tiny(copy)
    src = sources(4, 9, seed=5)
    common = dict(bos=BOS, eos=EOS, max_len=10)
    g = greedy(m, src, **common)
    assert [h[0].tokens for h in beam_search(m, src, beam=1, length_penalty=0.0, **common)] == g
    assert greedy(m, src, use_cache=False, **common) == g
    fast = beam_search(m, src, beam=4, nbest=4, **common)
    slow = beam_search(m, src, beam=4, nbest=4, use_cache=False, **common)
    for a, b in zip(fast, slow):
        assert [h.tokens for h in a] == [h.tokens for h in b]
        for x, y in zip(a, b):
            assert math.isclose(x.score, y.score, rel_tol=1e-5, abs_tol=1e-5)


# ------------------------------------------------------------------ loss, gradient scaling


@pytest.mark.parametrize("copy", [False, True])
def test_model_loss_skips_padding_and_equals_forward_plus_sequence_loss(copy):
    m = tiny(copy)
    g = torch.Generator().manual_seed(2)
    rows = [torch.randint(3, V, (int(torch.randint(4, 9, (1,), generator=g)),), generator=g) for _ in range(4)]
    src, tin, tout = copy_batch(rows)
    loss, n = m.loss(src, tin, tout, 0.1)
    ref, n_ref = sequence_loss(m(src, tin), tout, PAD, 0.1)
    assert n == n_ref == int((tout != PAD).sum())
    torch.testing.assert_close(loss, ref)


def test_encoder_gradient_is_scaled_by_one_over_twice_the_attention_layers():
    x = torch.ones(3, requires_grad=True)
    y = _GradScale.apply(x, 0.125)
    assert torch.equal(y, x)
    y.sum().backward()
    torch.testing.assert_close(x.grad, torch.full((3,), 0.125))
    # In the model: the encoder's final layer gets 1/(2*3) of its unscaled gradient.
    m = tiny(dropout=0.0).train()
    src, tin = sources(), targets()
    grads = []
    for scale in (m.encoder_grad_scale, 1.0):
        assert scale in (1.0 / 6, 1.0)
        m.encoder_grad_scale = scale
        m.zero_grad()
        h, *_ = m._decode(tin, m.encode(src))
        h.sum().backward()
        grads.append(m.encoder.fc_out.parametrizations.weight.original1.grad.clone())
    torch.testing.assert_close(grads[0], grads[1] / 6)


def test_paper_initialisation_keeps_the_variance():
    """N(0, sqrt((1-p)/n_in)) weights: unit-variance inputs give outputs of
    variance 1-p (dropout then restores 1)."""
    torch.manual_seed(0)
    lin = linear(512, 512, 0.2)
    x = torch.randn(4096, 512)
    with torch.no_grad():
        assert abs(lin(x).var().item() - 0.8) < 0.05


# ------------------------------------------------------------------ options and size


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"encoder_kernel": 4}, r"model\.encoder_kernel.*odd"),
        ({"encoder_layers": 3, "encoder_channels": [64, 64]}, r"model\.encoder_channels: lists 2 values but model\.encoder_layers is 3"),
        ({"decoder_kernel": [3, 3]}, r"model\.decoder_kernel: lists 2 values but model\.decoder_layers is 4"),
        ({"decoder_channels": 0}, r"model\.decoder_channels: must be positive"),
        ({"decoder_layers": 0}, r"model\.decoder_layers"),
        ({"out_dim": 128}, r"model\.tie_embeddings.*out_dim \(128\).*embed_dim \(256\)"),
        ({"dropout": 1.0}, r"model\.dropout"),
        ({"kernel": 3}, r"'kernel'.*encoder_kernel"),
    ],
)
def test_bad_options_name_the_option(bad, match):
    with pytest.raises(UserError, match=match):
        build_model("conv", bad, 30, PAD)


def test_even_decoder_kernels_are_allowed():
    m = tiny(decoder_kernel=[4, 2, 2])
    assert [layer.kernel for layer in m.decoder] == [4, 2, 2]


def lin(n_in, n_out):  # weight-normalised linear: v, g (one per output), bias
    return n_in * n_out + 2 * n_out


def glu(n_in, n_out, k):  # weight-normalised conv to 2*n_out channels
    return 2 * n_out * n_in * k + 2 * (2 * n_out)


def test_parameter_count_by_hand():
    E, P = 16, 1024  # the tiny config; max_positions 1024 for source and target
    enc = lin(E, 24) + lin(24, 32) + glu(24, 24, 3) + glu(24, 32, 5) + lin(32, E)
    dec = lin(E, 24) + lin(24, 32)  # decoder input; the residual projection of the 24 -> 32 layer
    dec += glu(24, 24, 3) + glu(24, 24, 2) + glu(24, 32, 1)
    dec += lin(24, E) + lin(E, 24) + lin(24, E) + lin(E, 24) + lin(32, E) + lin(E, 32)  # attentions
    dec += lin(32, 16)  # decoder output
    total = V * E + 2 * P * E + enc + dec
    assert tiny().num_parameters() == total
    assert tiny(copy=True).num_parameters() == total + lin(16 + 2 * E, 1)  # the gate only
    assert tiny(tie_embeddings=False).num_parameters() == total + lin(16, V)


def test_parameter_count_of_the_default_size():
    """The default size (embed 256, 6 encoder + 4 decoder layers of 256
    channels, kernel 3, vocabulary 8000, tied, copy)."""
    C, Vr = 256, 8000
    expected = Vr * C + 2 * 1024 * C
    expected += lin(C, C) + 6 * glu(C, C, 3) + lin(C, C)  # encoder
    expected += lin(C, C) + 4 * (glu(C, C, 3) + 2 * lin(C, C)) + lin(C, C)  # decoder
    expected += lin(3 * C, 1)
    assert expected == 7_308_034
    assert build_model("conv", {"copy": True}, Vr, PAD).num_parameters() == expected


# ------------------------------------------------------------------ learning


@pytest.mark.parametrize("copy", [False, True])
def test_tiny_overfit_on_a_copy_task(copy):
    g = torch.Generator().manual_seed(3)
    rows = [torch.randint(3, V, (int(torch.randint(4, 9, (1,), generator=g)),), generator=g) for _ in range(8)]
    m = tiny(copy, dropout=0.0).train()
    src, tin, tout = copy_batch(rows)
    opt = torch.optim.Adam(m.parameters(), 1e-2)
    target, got = [r.tolist() for r in rows], None
    for step in range(1, 301):  # checked every 25 steps: how fast Adam gets there varies with the CPU's rounding
        m.train()
        loss, n = m.loss(src, tin, tout)
        opt.zero_grad()
        (loss / n).backward()
        opt.step()
        if step % 25 == 0 and (got := greedy(m.eval(), src, bos=BOS, eos=EOS, max_len=10)) == target:
            break
    assert got == target
