"""The convolution whose weight gradient is a patch product (AMX CPUs): same
values and gradients as nn.Conv2d, taken only where the measured rule says."""

import pytest
import torch
import torch.nn.functional as F

from triptych.vision.models import conv as conv_module
from triptych.vision.models import get_model
from triptych.vision.models.conv import Conv2d, _PatchProductConv, patches, uses_patch_product


@pytest.mark.parametrize(
    "shape, out_channels, kernel, stride, padding, bias, channels_last",
    [
        ((3, 5, 4, 4), 6, (3, 3), (1, 1), (1, 1), False, True),
        ((2, 4, 7, 7), 3, (3, 3), (2, 2), (1, 1), True, True),
        ((2, 4, 7, 6), 5, (1, 1), (2, 2), (0, 0), False, False),
        ((2, 3, 5, 5), 2, (3, 2), (1, 2), (0, 1), True, False),
    ],
)
def test_patch_product_matches_conv2d_in_value_and_every_gradient(
    shape, out_channels, kernel, stride, padding, bias, channels_last
):
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(shape, dtype=torch.float64).to(memory_format=fmt).requires_grad_()
    w = torch.randn(out_channels, shape[1], *kernel, dtype=torch.float64).to(memory_format=fmt).requires_grad_()
    b = torch.randn(out_channels, dtype=torch.float64, requires_grad=True) if bias else None
    y = _PatchProductConv.apply(x, w, b, stride, padding)
    y_ref = F.conv2d(x, w, b, stride, padding)
    torch.testing.assert_close(y, y_ref)
    g = torch.randn_like(y_ref)
    inputs = [x, w] + ([b] if bias else [])
    got = torch.autograd.grad(y, inputs, g)
    want = torch.autograd.grad(y_ref, inputs, g)
    for a, e in zip(got, want):
        assert a.shape == e.shape
        torch.testing.assert_close(a, e)


def test_patches_are_the_windows_of_unfold_in_channels_last_order():
    x = torch.randn(2, 3, 6, 5)
    rows = patches(x, (3, 3), (2, 1), (1, 1))  # (B*H'*W', kh*kw*C)
    ref = F.unfold(x, (3, 3), padding=1, stride=(2, 1))  # (B, C*kh*kw, H'*W'), ordered (C, kh, kw)
    ref = ref.view(2, 3, 9, -1).permute(0, 3, 2, 1).reshape(rows.shape)  # -> (B, positions, kh*kw, C)
    torch.testing.assert_close(rows, ref)


def test_the_rule_takes_the_measured_winners_and_leaves_the_losers():
    assert uses_patch_product(512, (3, 3), 16)  # ResNet-18's last stage at 28x28: 4.4x
    assert uses_patch_product(256, (1, 1), 16)  # its strided shortcut: 3.5x
    assert uses_patch_product(384, (3, 3), 49)  # ZFNet at 7x7: 1.39x
    assert not uses_patch_product(128, (3, 3), 49)  # VGG-16-BN at 7x7: 0.90x
    assert not uses_patch_product(416, (1, 1), 49)  # GoogLeNet's 1x1 reductions: 0.5-0.9x
    assert not uses_patch_product(512, (3, 3), 196)  # larger maps: oneDNN's kernel is fast


@pytest.mark.parametrize("amx", [True, False])
def test_resnet_under_bf16_autocast_takes_the_path_only_with_amx_and_trains_alike(monkeypatch, amx):
    monkeypatch.setattr(conv_module, "_amx", lambda: amx)
    assert conv_module.FORCE is None  # the CPU decides
    calls = []
    real_apply = _PatchProductConv.apply
    monkeypatch.setattr(_PatchProductConv, "apply", lambda *a: calls.append(1) or real_apply(*a))
    torch.manual_seed(0)
    model = get_model("resnet18", num_classes=10, in_channels=1, small_input=True, width=0.25)
    x, y = torch.randn(4, 1, 28, 28), torch.randint(0, 10, (4,))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = F.cross_entropy(model(x), y)
    loss.backward()
    # width 0.25: the last stage maps 4x4 with 128 channels: its four 3x3 convolutions (depth
    # 576 for the strided first, 1,152 after) take the path, its 1x1 shortcut (64 in) does not,
    # and neither do the third stage's (7x7, depth 288 and 576).
    assert len(calls) == (4 if amx else 0)
    for p in model.parameters():
        assert p.grad is not None and p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all()
    with torch.no_grad():  # no gradient: plain nn.Conv2d whatever the CPU
        calls.clear()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            model(x)
        assert calls == []


def test_conv2d_keeps_nn_conv2d_parameters_and_state_dict_keys():
    layer = Conv2d(4, 8, 3, padding=1, bias=False)
    assert isinstance(layer, torch.nn.Conv2d)
    assert list(layer.state_dict()) == list(torch.nn.Conv2d(4, 8, 3, padding=1, bias=False).state_dict())
