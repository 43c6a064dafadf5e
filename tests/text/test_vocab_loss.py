"""The chunked projection + label-smoothed NLL (`vocab_loss.projected_nll`)
against the plain F.linear + cross-entropy, values and every gradient."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from triptych.text.models import build_model, sequence_loss
from triptych.text.models import vocab_loss
from triptych.text.models.vocab_loss import projected_nll

V, C, PAD = 37, 12, 0


def inputs(n=23, bias=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(n, C, generator=g, requires_grad=True)
    w = (0.5 * torch.randn(V, C, generator=g)).requires_grad_()
    b = (0.1 * torch.randn(V, generator=g)).requires_grad_() if bias else None
    t = torch.randint(0, V, (n,), generator=g)
    return h, w, b, t


def plain(h, w, b, t, eps):
    return F.cross_entropy(F.linear(h, w, b).float(), t, label_smoothing=eps, reduction="sum")


def value_and_grads(fn, h, w, b, t, eps):
    leaves = [x for x in (h, w, b) if x is not None]
    loss = fn(h, w, b, t, eps)
    return (loss, *torch.autograd.grad(2.5 * loss, leaves))  # an upstream factor, as the engine's 1/tokens


@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("bias", [True, False])
def test_equals_linear_plus_cross_entropy_across_chunk_boundaries(monkeypatch, eps, bias):
    monkeypatch.setattr(vocab_loss, "CHUNK_BYTES", 4 * V * 16)  # chunks of 16 rows: 23 = 16 + 7
    h, w, b, t = inputs(bias=bias)
    ours = value_and_grads(projected_nll, h, w, b, t, eps)
    ref = value_and_grads(plain, h, w, b, t, eps)
    for a, r in zip(ours, ref):
        assert a.dtype == r.dtype
        torch.testing.assert_close(a, r)


def test_under_bf16_autocast_as_close_to_float64_as_the_plain_path():
    h, w, b, t = inputs(n=40)
    exact = value_and_grads(plain, *(x.double().detach().requires_grad_() for x in (h, w, b)), t, 0.1)
    truth = [x.detach() for x in exact]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours = value_and_grads(projected_nll, h, w, b, t, 0.1)
        ref = value_and_grads(plain, h, w, b, t, 0.1)
    for a, r, exact in zip(ours, ref, truth):
        assert a.dtype == r.dtype == torch.float32  # float32 parameters get float32 gradients
        err, ref_err = float((a.detach().double() - exact).abs().max()), float((r.detach().double() - exact).abs().max())
        assert err <= 2 * ref_err + 1e-6, (err, ref_err)
        assert err < 0.05 * float(exact.abs().max())  # and it is bf16's error, not a wrong gradient


def test_without_gradients_and_with_a_frozen_weight():
    h, w, b, t = inputs()
    with torch.no_grad():
        torch.testing.assert_close(projected_nll(h, w, b, t, 0.1), plain(h, w, b, t, 0.1))
    with torch.inference_mode():
        torch.testing.assert_close(projected_nll(h, w, b, t, 0.1), plain(h, w, b, t, 0.1))
    w.requires_grad_(False)
    (gh,) = torch.autograd.grad(projected_nll(h, w, None, t, 0.1), [h])
    (ref,) = torch.autograd.grad(plain(h, w, None, t, 0.1), [h])
    torch.testing.assert_close(gh, ref)


def test_no_positions_gives_zero_and_zero_gradients():
    h, w, b, t = inputs(n=0)
    loss = projected_nll(h, w, b, t, 0.1)
    loss.backward()
    assert float(loss.detach()) == 0.0 and float(w.grad.abs().sum()) == 0.0 and h.grad.shape == (0, C)


FAMILIES = {
    "transformer": dict(d_model=16, heads=2, encoder_layers=1, decoder_layers=2, ffn=32, dropout=0.0),
    "rnn": dict(embed_dim=12, hidden=16, encoder_hidden=8, encoder_layers=1, decoder_layers=2, attention_size=10,
                dropout=0.0),
    "conv": dict(embed_dim=16, encoder_layers=1, encoder_channels=[16], encoder_kernel=[3], decoder_layers=2,
                 decoder_channels=[16, 16], decoder_kernel=[3, 2], out_dim=16, dropout=0.0),
}  # fmt: skip


@pytest.mark.parametrize("tie", [True, False])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_loss_gradients_equal_forward_plus_sequence_loss(family, tie):
    """Every parameter's gradient, the tied embedding's (three uses) included,
    as through the whole-vocabulary log-probabilities of `forward`."""
    torch.manual_seed(0)
    m = build_model(family, dict(FAMILIES[family], tie_embeddings=tie), V, PAD).train()
    g = torch.Generator().manual_seed(1)
    src, tgt = torch.randint(3, V, (3, 7), generator=g), torch.randint(3, V, (3, 6), generator=g)
    src[0, 5:] = PAD
    tgt[1, 3:] = PAD
    tin, tout = tgt[:, :-1], tgt[:, 1:]
    params = [p for p in m.parameters() if p.requires_grad]
    loss, n = m.loss(src, tin, tout, 0.1)
    ours = torch.autograd.grad(loss, params, allow_unused=True)
    ref, n_ref = sequence_loss(m(src, tin), tout, PAD, 0.1)
    expected = torch.autograd.grad(ref, params, allow_unused=True)
    assert n == n_ref
    torch.testing.assert_close(loss, ref)
    for (name, _), a, e in zip(m.named_parameters(), ours, expected):
        if e is None:
            continue
        torch.testing.assert_close(a, e, atol=1e-5, rtol=1e-4, msg=name)
