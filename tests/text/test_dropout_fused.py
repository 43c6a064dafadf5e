"""Dropout fused with the ReLU before it and the residual sum after it
(`triptych.text.models.dropout.relu_dropout` / `add_dropout`): the same
numbers, bit for bit, as the unfused ops from the same generator state."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from triptych.text.models.dropout import add_dropout, dropout, relu_dropout

SHAPES = [(1001, 257), (3, 4099)]  # odd sizes: partial words, and rows across the kernels' 4,096-element chunks


def _values(shape, dtype, seed):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * 3
    x.view(-1)[:5] = torch.tensor([0.0, -0.0, float("inf"), float("-inf"), 1e-30])
    return x.to(dtype)


def _run(fn, inputs, grad, seed):
    """fn's output and its inputs' gradients, from torch's generator at `seed`."""
    leaves = [t.detach().clone().requires_grad_() for t in inputs]
    torch.manual_seed(seed)
    out = fn(*leaves)
    out.backward(grad)
    return out.detach(), [t.grad for t in leaves]


def _same(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    assert torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(), b.nan_to_num())


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_relu_dropout_is_dropout_of_relu_bit_for_bit(shape, dtype):
    x, grad = _values(shape, dtype, 0), _values(shape, dtype, 1)
    fused = _run(lambda t: relu_dropout(t, 0.1, True), [x], grad, seed=3)
    plain = _run(lambda t: dropout(F.relu(t), 0.1, True), [x], grad, seed=3)
    _same(fused[0], plain[0])
    _same(fused[1][0], plain[1][0])
    kept = (fused[0] != 0).float().mean().item()
    assert abs(kept - 0.9 * (x > 0).float().mean().item()) < 0.01


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("y_dtype", [torch.float32, torch.bfloat16])
def test_add_dropout_is_the_residual_sum_of_dropout_bit_for_bit(shape, y_dtype):
    """x float32 (the residual stream); y float32, or bf16 as autocast leaves a sub-layer's output."""
    x, y, grad = _values(shape, torch.float32, 0), _values(shape, y_dtype, 1), _values(shape, torch.float32, 2)
    fused = _run(lambda a, b: add_dropout(a, b, 0.1, True), [x, y], grad, seed=4)
    plain = _run(lambda a, b: a + dropout(b, 0.1, True), [x, y], grad, seed=4)
    _same(fused[0], plain[0])
    for f, p in zip(fused[1], plain[1]):
        _same(f, p)


def test_relu_dropout_keeps_no_mask_for_backward():
    """It saves its own output, which the next product keeps anyway: no extra tensor."""
    x = torch.randn(64, 256, requires_grad=True)
    y = relu_dropout(x, 0.1, True)
    (saved,) = y.grad_fn.saved_tensors
    assert saved.data_ptr() == y.data_ptr()
    assert add_dropout(torch.randn(64, 256), x, 0.1, True).grad_fn.saved_tensors == ()


def test_a_nan_goes_through_as_it_does_unfused():
    x = torch.tensor([float("nan"), 1.0, -1.0] * 100)
    torch.manual_seed(0)
    assert relu_dropout(x, 0.5, True).isnan().sum() == 100
    assert add_dropout(torch.zeros(300), x, 0.5, True).isnan().sum() == 100


def test_outside_the_fused_cases_the_plain_ops_serve():
    x = torch.randn(8, 6)
    assert torch.equal(relu_dropout(x, 0.1, False), F.relu(x))
    assert torch.equal(relu_dropout(x, 0.0, True), F.relu(x))
    assert torch.equal(add_dropout(x, x, 0.1, False), x + x)
    strided = torch.randn(6, 8).t()  # not contiguous
    for fused, plain in (
        (lambda: relu_dropout(strided, 0.3, True), lambda: dropout(F.relu(strided), 0.3, True)),
        (lambda: add_dropout(x, strided, 0.3, True), lambda: x + dropout(strided, 0.3, True)),
        (lambda: add_dropout(x, x[:1], 0.3, True), lambda: x + dropout(x[:1], 0.3, True)),  # broadcast
        (lambda: add_dropout(x.double(), x.double(), 0.3, True), lambda: x.double() + dropout(x.double(), 0.3, True)),
    ):
        torch.manual_seed(5)
        a = fused()
        torch.manual_seed(5)
        assert torch.equal(a, plain())


def test_the_masks_do_not_depend_on_the_threads():
    """The kernels split their chunks over torch's threads; each chunk draws its own words."""
    x = _values((3, 20000), torch.float32, 0)
    outs = []
    threads = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            torch.manual_seed(9)
            outs.append((relu_dropout(x, 0.2, True), add_dropout(x, x, 0.2, True), dropout(x, 0.2, True)))
    finally:
        torch.set_num_threads(threads)
    for one, two in zip(*outs):
        _same(one, two)
