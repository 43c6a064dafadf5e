"""Linear layers on prepacked oneDNN weights equal `F.linear`, within `packed_weights()` alone."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from triptych.nn import prepacked

needs_onednn = pytest.mark.skipif(not prepacked._onednn_available(), reason="this torch has no oneDNN linear ops")


@pytest.fixture(autouse=True)
def pack_any_size(monkeypatch):
    """The tests' layers are small; the size rule has a test of its own."""
    monkeypatch.setattr(prepacked, "MIN_MACS", 0)


def layer(n_in=64, n_out=300, bias=True):
    torch.manual_seed(0)
    return prepacked.Linear(n_in, n_out, bias=bias)


def packed_ids():
    return set((prepacked._packed.get() or {}).keys())


@needs_onednn
@pytest.mark.parametrize("shape", [(1, 64), (32, 64), (700, 64), (4, 3, 64)])
@pytest.mark.parametrize("bias", [True, False])
def test_inference_goes_through_the_packed_weight_and_equals_f_linear(shape, bias):
    m, x = layer(bias=bias), torch.randn(shape)
    want = F.linear(x, m.weight, m.bias)
    with torch.inference_mode(), prepacked.packed_weights():
        got = m(x)
        assert packed_ids() == {id(m.weight)}  # the packed path ran
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@needs_onednn
def test_a_non_contiguous_input_is_read_right():
    m, x = layer(), torch.randn(64, 10).t()  # (10, 64), transposed
    with torch.inference_mode(), prepacked.packed_weights():
        got = m(x)
    torch.testing.assert_close(got, F.linear(x, m.weight, m.bias), rtol=1e-5, atol=1e-5)


@needs_onednn
def test_copies_last_as_long_as_the_outermost_context():
    """A weight is packed once within a context, nested contexts included;
    after it, a changed weight (fused AdamW moves no version counter) is read
    afresh."""
    m, x = layer(), torch.randn(8, 64)
    with torch.inference_mode(), prepacked.packed_weights():
        m(x)
        copy = prepacked._packed.get()[id(m.weight)][1]
        with prepacked.packed_weights():
            m(x)
            assert prepacked._packed.get()[id(m.weight)][1] is copy
    assert prepacked._packed.get() is None
    m.weight.grad, m.bias.grad = torch.ones_like(m.weight), torch.ones_like(m.bias)
    torch.optim.AdamW(m.parameters(), lr=0.5, fused=True).step()
    with torch.inference_mode(), prepacked.packed_weights():
        torch.testing.assert_close(m(x), F.linear(x, m.weight, m.bias), rtol=1e-5, atol=1e-5)


def test_outside_the_context_training_autocast_and_float64_keep_f_linear():
    """No context, no packing; inside one, autograd flows (the packed op has
    none), bf16 autocast still casts, float64 stays float64, and none of them
    packs a weight."""
    m, x = layer(), torch.randn(5, 64)
    with torch.inference_mode():
        assert torch.equal(m(x), F.linear(x, m.weight, m.bias))
    with prepacked.packed_weights():
        xg = x.clone().requires_grad_()
        m(xg).sum().backward()
        assert xg.grad is not None and m.weight.grad is not None
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            assert m(x).dtype == torch.bfloat16
        m64 = layer().double()
        with torch.inference_mode():
            assert m64(x.double()).dtype == torch.float64
        assert not packed_ids()


@needs_onednn
def test_products_too_small_to_gain_keep_f_linear(monkeypatch):
    monkeypatch.setattr(prepacked, "MIN_MACS", 64 * 300 * 4)
    m = layer()
    with torch.inference_mode(), prepacked.packed_weights():
        m(torch.randn(3, 64))
        assert not packed_ids()
        m(torch.randn(2, 2, 64))
        assert packed_ids() == {id(m.weight)}


@needs_onednn
def test_a_big_weight_is_packed_even_for_one_row(monkeypatch):
    """MKL re-lays a big weight out at every call, whatever the rows: the packed copy serves one row too."""
    monkeypatch.setattr(prepacked, "MIN_MACS", 64 * 300 * 4)
    monkeypatch.setattr(prepacked, "BIG_WEIGHT", 64 * 300)
    m = layer()
    with torch.inference_mode(), prepacked.packed_weights():
        got = m(torch.randn(1, 64))
        assert packed_ids() == {id(m.weight)}
    monkeypatch.setattr(prepacked, "BIG_WEIGHT", 64 * 300 + 1)
    with torch.inference_mode(), prepacked.packed_weights():
        m(torch.randn(1, 64))
        assert not packed_ids()
    assert got.shape == (1, 300)


def test_a_computed_weight_keeps_f_linear():
    """Weight norm computes the weight anew at each call: a new tensor, which
    a cache found by identity would pack every time and keep."""
    m = torch.nn.utils.parametrizations.weight_norm(layer())
    x = torch.randn(4, 64)
    with torch.inference_mode(), prepacked.packed_weights():
        got = m(x)
        assert not packed_ids()
    torch.testing.assert_close(got, F.linear(x, m.weight, m.bias))


def test_without_onednn_f_linear_serves(monkeypatch):
    monkeypatch.setattr(prepacked, "_available", False)
    m, x = layer(), torch.randn(3, 64)
    with torch.inference_mode(), prepacked.packed_weights():
        assert torch.equal(m(x), F.linear(x, m.weight, m.bias))
        assert not packed_ids()


@needs_onednn
def test_decoding_packs_the_transformer_for_the_call_and_drops_the_copies():
    from triptych.text.generation.search import greedy
    from triptych.text.models import build_model

    torch.manual_seed(0)
    cfg = dict(d_model=32, heads=4, encoder_layers=1, decoder_layers=1, ffn=64)
    model = build_model("transformer", cfg, 40, 0).eval()
    src = torch.randint(3, 40, (3, 7))
    seen = []  # how many weights were packed when each linear layer ran
    forward = prepacked.Linear.forward
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(prepacked.Linear, "forward", lambda self, x: seen.append(len(packed_ids())) or forward(self, x))
        mp.setattr(prepacked, "_available", False)  # the same decoding through F.linear
        plain = greedy(model, src, bos=1, eos=2, max_len=6)
        assert not any(seen)
        mp.setattr(prepacked, "_available", True)
        packed = greedy(model, src, bos=1, eos=2, max_len=6)
    assert max(seen) >= 7  # the layers' weights and the tied output projection's
    assert packed == plain
    assert prepacked._packed.get() is None


@needs_onednn
@pytest.mark.parametrize("shape", [(1, 64), (32, 64), (4, 3, 64)])
@pytest.mark.parametrize("bias", [True, False])
def test_bf16_packing_takes_bf16_products_and_returns_float32(shape, bias, bf16_kernels):
    m, x = layer(bias=bias), torch.randn(shape)
    want = F.linear(x, m.weight, m.bias)
    with torch.inference_mode(), prepacked.packed_weights("bfloat16"):
        got = m(x)
        assert prepacked._packed.get()[id(m.weight)][1].dtype == torch.bfloat16  # the bf16 path ran
    assert got.dtype == torch.float32 and got.shape == want.shape
    # bf16 keeps 8 bits of mantissa: each of 64 products is off by up to ~2^-8 relative
    torch.testing.assert_close(got, want, rtol=0.05, atol=0.05)
    assert not torch.equal(got, want)  # and it is not float32 in disguise


def test_the_packing_dtype_follows_the_environment(monkeypatch):
    from triptych import hardware

    monkeypatch.setattr(hardware, "bf16_kernels", lambda: True)  # the choice, not the products
    monkeypatch.setenv("TRIPTYCH_INFERENCE_DTYPE", "bfloat16")
    with prepacked.packed_weights():
        assert prepacked._dtype.get() == "bfloat16"
        with prepacked.packed_weights("float32"):  # nested: the outermost context rules
            assert prepacked._dtype.get() == "bfloat16"
    monkeypatch.setenv("TRIPTYCH_INFERENCE_DTYPE", "float32")
    with prepacked.packed_weights():
        assert prepacked._dtype.get() == "float32"
    with pytest.raises(ValueError, match="float32 or bfloat16"):
        with prepacked.packed_weights("float16"):
            pass
    assert prepacked._packed.get() is None  # a refused dtype leaves no context open


def test_bf16_packing_is_refused_where_the_cpu_has_no_bf16_kernels(monkeypatch):
    from triptych import hardware
    from triptych.errors import UserError

    monkeypatch.setattr(hardware, "bf16_kernels", lambda: False)
    with pytest.raises(UserError, match="no bf16 kernels"):
        with prepacked.packed_weights("bfloat16"):
            pass
    assert prepacked._packed.get() is None


@needs_onednn
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("shape", [(1, 64), (32, 64), (4, 3, 64)])
def test_relu_mlp_fused_equals_the_three_calls_apart(dtype, shape, request):
    if dtype == "bfloat16":
        request.getfixturevalue("bf16_kernels")
    first, x = layer(64, 200), torch.randn(shape)
    torch.manual_seed(1)
    second = prepacked.Linear(200, 64)
    with torch.inference_mode(), prepacked.packed_weights(dtype):
        apart = second(F.relu(first(x)))
        fused = prepacked.relu_mlp(x, first, second)
        assert packed_ids() == {id(first.weight), id(second.weight)}
    assert fused.dtype == torch.float32 and fused.shape == apart.shape
    torch.testing.assert_close(fused, apart, rtol=0, atol=0)  # a ReLU commutes with rounding: bit for bit
    with torch.inference_mode():  # no packing context: plain F.linear, the same function
        plain = F.linear(F.relu(F.linear(x, first.weight, first.bias)), second.weight, second.bias)
        torch.testing.assert_close(prepacked.relu_mlp(x, first, second), plain)
