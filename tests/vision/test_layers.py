import pytest
import torch

from triptych.vision.layers import LocallyConnected2d, param_counts


def loop_reference(layer: LocallyConnected2d, x: torch.Tensor) -> torch.Tensor:
    """The definition, one output position at a time."""
    kh, kw = layer.kernel_size
    sh, sw = layer.stride
    ph, pw = layer.padding
    xp = torch.nn.functional.pad(x, (pw, pw, ph, ph))
    oh, ow = layer.output_size
    out = torch.zeros(x.shape[0], layer.out_channels, oh, ow)
    for i in range(oh):
        for j in range(ow):
            window = xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw].reshape(x.shape[0], -1)
            out[:, :, i, j] = window @ layer.weight[i * ow + j]
    if layer.bias is not None:
        out += layer.bias
    return out


@pytest.mark.parametrize("stride,padding,size", [(1, 0, (7, 7)), (2, 1, (9, 6)), (1, 2, (5, 5))])
def test_locally_connected_equals_loop(stride, padding, size):
    torch.manual_seed(0)
    layer = LocallyConnected2d(3, 4, size, kernel_size=3, stride=stride, padding=padding)
    x = torch.randn(2, 3, *size)
    assert torch.allclose(layer(x), loop_reference(layer, x), atol=1e-5)


def test_locally_connected_with_shared_weights_is_a_convolution():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(2, 5, 3, padding=1)
    layer = LocallyConnected2d(2, 5, 6, kernel_size=3, padding=1)
    with torch.no_grad():
        layer.weight.copy_(conv.weight.reshape(5, -1).t().expand(36, -1, -1))
        layer.bias.copy_(conv.bias[:, None, None].expand(5, 6, 6))
    x = torch.randn(3, 2, 6, 6)
    assert torch.allclose(layer(x), conv(x), atol=1e-5)


def test_locally_connected_rejects_other_sizes():
    layer = LocallyConnected2d(1, 1, 6, kernel_size=3)
    with pytest.raises(ValueError, match="built for"):
        layer(torch.randn(1, 1, 7, 7))


def test_the_talks_example():
    c = param_counts()
    assert (c["fully_connected"], c["locally_connected"], c["convolutional"]) == (10**12, 10**8, 10**4)


@pytest.mark.parametrize("size,ch,k,maps,stride,bias", [(12, 3, 3, 2, 1, True), (10, 1, 5, 4, 2, False), (9, 2, 4, 1, 1, True)])
def test_param_counts_match_real_layers(size, ch, k, maps, stride, bias):
    pad = (k - 1) // 2
    c = param_counts(size, ch, k, hidden_maps=maps, filters=maps, stride=stride, padding=pad, bias=bias)
    lc = LocallyConnected2d(ch, maps, size, k, stride=stride, padding=pad, bias=bias)
    conv = torch.nn.Conv2d(ch, maps, k, stride=stride, padding=pad, bias=bias)
    out = lc.output_size[0]
    fc = torch.nn.Linear(size * size * ch, out * out * maps, bias=bias)
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert (c["locally_connected"], c["convolutional"], c["fully_connected"]) == (n(lc), n(conv), n(fc))
