"""Every registered model: torchvision's parameter counts, shapes at small input, features."""

import pytest
import torch

from triptych.vision.models import count_params, get_model, list_models, model_spec, penultimate_features
from triptych.vision.models.registry import register_model

# torchvision's published numbers (its docs' "num_params"); our builders must equal them.
TORCHVISION = {
    "alexnet": 61_100_840,
    "vgg11": 132_863_336, "vgg11_bn": 132_868_840,
    "vgg13": 133_047_848, "vgg13_bn": 133_053_736,
    "vgg16": 138_357_544, "vgg16_bn": 138_365_992,
    "vgg19": 143_667_240, "vgg19_bn": 143_678_248,
    "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032,
    "resnet101": 44_549_160, "resnet152": 60_192_808,
    "googlenet": 6_624_904,
}


def build_meta(name, **kw):
    with torch.device("meta"):  # no memory, no init: a 143M model counts instantly
        return get_model(name, **kw)


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_param_count_equals_torchvision(name):
    assert count_params(build_meta(name)) == TORCHVISION[name] == model_spec(name).params


@pytest.mark.parametrize("name", list_models())
def test_registry_metadata_and_reference_shape(name):
    spec = model_spec(name)
    model = build_meta(name)
    assert count_params(model) == spec.params
    x = torch.empty(2, spec.in_channels, spec.image_size, spec.image_size, device="meta")
    assert model(x).shape == (2, spec.num_classes)


def test_known_counts_of_models_torchvision_lacks():
    assert model_spec("lenet5").params == 61_706
    assert model_spec("zfnet").params == 62_357_608
    assert count_params(build_meta("googlenet", aux_logits=True)) == 13_004_888


def test_registry_lists_and_rejects_duplicates():
    names = list_models()
    for expected in ("lenet5", "alexnet", "zfnet", "vgg16", "vgg16_bn", "googlenet", "resnet50"):
        assert expected in names
    assert list_models("resnet*") == ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]
    with pytest.raises(ValueError, match="twice"):
        register_model("resnet18", family="resnet", params=1)(lambda **kw: None)


SMALL_KW = {"alexnet": {"hidden": 64}, "zfnet": {"hidden": 64}, "lenet5_local": {"input_size": 8}}


# Deep variants of a family already run for real through a shallower sibling;
# on the meta device they still prove every stage's shapes line up.
META_ONLY = {"resnet34", "resnet101", "resnet152", "vgg13", "vgg13_bn", "vgg16", "vgg19", "vgg19_bn"}


@pytest.mark.parametrize("name", list_models())
def test_small_input_shapes_and_features(name):
    torch.manual_seed(0)
    kw = dict(SMALL_KW.get(name, {"hidden": 64} if name.startswith("vgg") else {}))
    if name in META_ONLY:
        model = build_meta(name, num_classes=7, in_channels=1, small_input=True, **kw).eval()
        x = torch.empty(2, 1, 8, 8, device="meta")
        assert model(x).shape == (2, 7) and penultimate_features(model, x).shape == (2, model.embed_dim)
        return
    model = get_model(name, num_classes=7, in_channels=1, small_input=True, **kw).eval()
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        logits = model(x)
        feats = penultimate_features(model, x)
    assert logits.shape == (2, 7)
    assert feats.shape == (2, model.embed_dim)
    assert torch.allclose(model.head(feats), logits, atol=1e-5)


@pytest.mark.parametrize("name", ["lenet5", "resnet18", "googlenet"])
def test_small_input_32x32_rgb(name):
    model = get_model(name, num_classes=3, in_channels=3, small_input=True).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 3)


def test_lenet5_at_its_paper_size():
    model = get_model("lenet5").eval()
    assert model.feature_map(torch.randn(1, 1, 32, 32)).shape == (1, 120, 1, 1)


def test_googlenet_aux_heads_in_training():
    model = get_model("googlenet", num_classes=5, small_input=True, aux_logits=True)
    logits, aux = model.forward_with_aux(torch.randn(2, 3, 16, 16))
    assert logits.shape == (2, 5) and [a.shape for a in aux] == [(2, 5), (2, 5)]


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "googlenet", "vgg16_bn"])
def test_width_multiplier_narrows_every_layer(name):
    full = count_params(build_meta(name, num_classes=10, in_channels=1, small_input=True, aux_logits=True)
                        if name == "googlenet" else build_meta(name, num_classes=10, in_channels=1, small_input=True))
    assert count_params(build_meta(name, width=1.0)) == TORCHVISION[name]  # 1.0 is the published network
    kw = {"aux_logits": True} if name == "googlenet" else {}
    if name.startswith("vgg"):  # the fully-connected layers have their own knob (hidden)
        full = count_params(build_meta(name, num_classes=10, in_channels=1, small_input=True, hidden=64))
        kw = {"hidden": 64}
    half = get_model(name, num_classes=10, in_channels=1, small_input=True, width=0.5, **kw)
    assert 0.2 * full < count_params(half) < 0.3 * full  # weights go with the square of the width
    if name == "googlenet":
        logits, aux = half.forward_with_aux(torch.randn(2, 1, 28, 28))
        assert logits.shape == (2, 10) and [a.shape for a in aux] == [(2, 10), (2, 10)]
    else:
        assert half(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert half.embed_dim == half.head.in_features
    with pytest.raises(ValueError, match="width must be > 0"):
        get_model(name, width=0)


def test_unknown_model_is_a_user_error():
    from triptych.errors import UserError

    with pytest.raises(UserError, match="unknown vision model 'resnet19'"):
        get_model("resnet19")


def test_tiny_overfit_lenet():
    """A model that cannot memorise 16 images has a bug in its wiring."""
    torch.manual_seed(0)
    model = get_model("lenet5", num_classes=4, small_input=True, activation="relu")
    x, y = torch.randn(16, 1, 8, 8), torch.arange(16) % 4
    opt = torch.optim.Adam(model.parameters(), lr=2e-2)
    for _ in range(60):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
    assert (model(x).argmax(1) == y).all()
