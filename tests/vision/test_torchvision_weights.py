"""torchvision-format weights: names, round trips, and every way a file can be wrong.

torchvision itself does not import beside this venv's torch; the logit parity
against the real torchvision models runs in its own environment:
benchmarks/vision_torchvision_parity.py (see docs/history/2026-12-03-vision-fashion.md).
"""

import pytest
import torch

from triptych.cli import main
from triptych.errors import UserError
from triptych.vision.predictor import Classifier
from triptych.vision.models import get_model
from triptych.vision.torchvision_weights import (
    SUPPORTED, export_torchvision, import_torchvision, key_table, read_state_dict,
)

# A few keys each of torchvision's own state dicts (torchvision/models/*.py).
TORCHVISION_KEYS = {
    "alexnet": ["features.0.weight", "features.10.bias", "classifier.1.weight", "classifier.4.weight", "classifier.6.bias"],
    "vgg16_bn": ["features.0.weight", "features.1.running_var", "features.41.weight", "classifier.0.weight",
                 "classifier.3.bias", "classifier.6.weight"],
    "vgg11": ["features.18.weight", "classifier.3.weight"],
    "googlenet": ["conv1.conv.weight", "conv1.bn.running_mean", "conv3.bn.weight", "inception3a.branch2.1.conv.weight",
                  "inception4e.branch4.1.bn.bias", "inception5b.branch3.0.conv.weight", "aux1.conv.conv.weight",
                  "aux2.fc2.weight", "fc.bias"],
    "resnet18": ["conv1.weight", "bn1.num_batches_tracked", "layer1.1.bn2.weight", "layer2.0.downsample.0.weight",
                 "layer4.1.conv2.weight", "fc.weight"],
    "resnet50": ["layer1.0.conv3.weight", "layer1.0.downsample.1.running_var", "layer3.5.bn3.bias"],
    "resnet152": ["layer3.35.conv2.weight", "layer2.7.bn1.weight"],
}


def meta_model(name, **kw):
    with torch.device("meta"):
        return get_model(name, **kw)


@pytest.mark.parametrize("name", SUPPORTED)
def test_every_key_has_a_distinct_torchvision_name(name):
    model = meta_model(name, **({"aux_logits": True} if name == "googlenet" else {}))
    table = key_table(name, model)
    assert len(table) == len(model.state_dict())  # one-to-one
    for key in TORCHVISION_KEYS.get(name, []):
        assert key in table, key


def save_resnet18(path, classes=5, **kw):
    torch.manual_seed(0)
    model = get_model("resnet18", num_classes=classes)
    tv = {tv: model.state_dict()[ours] for tv, ours in key_table("resnet18", model).items()}
    if str(path).endswith(".safetensors"):
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in tv.items()}, str(path))
    else:
        torch.save(tv, path)
    return model.eval(), tv


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_import_export_round_trip_keeps_weights_and_logits(tmp_path, suffix):
    model, tv = save_resnet18(tmp_path / f"w{suffix}")
    summary = import_torchvision(tmp_path / f"w{suffix}", "resnet18", tmp_path / "ckpt")
    assert summary["num_classes"] == 5 and summary["tensors"] == len(tv)
    clf = Classifier(tmp_path / "ckpt")
    assert clf.cfg.data.image_size == 224 and clf.cfg.data.mean == [0.485, 0.456, 0.406]
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(clf.model(x), model(x), atol=1e-6)
    export_torchvision(tmp_path / "ckpt", tmp_path / "back.pth")
    back = torch.load(tmp_path / "back.pth", weights_only=True)
    assert back.keys() == tv.keys() and all(torch.equal(back[k], tv[k]) for k in tv)


def test_googlenet_keeps_its_aux_heads(tmp_path):
    torch.manual_seed(0)
    model = get_model("googlenet", num_classes=3, aux_logits=True)
    torch.save({tv: model.state_dict()[o] for tv, o in key_table("googlenet", model).items()}, tmp_path / "g.pth")
    import_torchvision(tmp_path / "g.pth", "googlenet", tmp_path / "ckpt")
    clf = Classifier(tmp_path / "ckpt")
    assert clf.cfg.model["aux_logits"] is True and clf.model.aux1 is not None


def test_mismatches_name_the_first_three_keys(tmp_path, capsys):
    _, tv = save_resnet18(tmp_path / "ok.pth")
    bad = dict(tv)
    del bad["layer1.0.conv1.weight"]
    bad["layer1.0.bn1.weight"] = torch.zeros(3)
    bad["extra.weight"] = torch.zeros(1)
    bad["more.weight"] = torch.zeros(1)
    torch.save(bad, tmp_path / "bad.pth")
    status = main(["vision", "import", "--from", "torchvision", str(tmp_path / "bad.pth"), "--model", "resnet18",
                   "--out", str(tmp_path / "ckpt")])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1 and not (tmp_path / "ckpt").exists()
    assert "layer1.0.conv1.weight (missing)" in err and "layer1.0.bn1.weight (shape (3,)" in err
    assert "extra.weight (unexpected)" in err and "and 1 more" in err
    with pytest.raises(UserError, match="layer1.2.conv1.weight .missing.*and 77 more"):  # ResNet-34 has more blocks
        import_torchvision(tmp_path / "ok.pth", "resnet34", tmp_path / "ckpt")


class NotATensor:
    pass


def test_pickle_only_and_unreadable_files_are_refused(tmp_path):
    torch.save({"fc.weight": torch.zeros(2, 2), "hook": NotATensor()}, tmp_path / "pickled.pth")
    with pytest.raises(UserError, match=r"refused by torch.load\(weights_only=True\)"):
        read_state_dict(tmp_path / "pickled.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="junk.pth: not a readable PyTorch weights file"):
        read_state_dict(tmp_path / "junk.pth")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 3)
    with pytest.raises(UserError, match="junk.safetensors: not a readable safetensors file"):
        read_state_dict(tmp_path / "junk.safetensors")
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(UserError, match="not a state dict"):
        read_state_dict(tmp_path / "list.pth")


def test_wrappers_and_ddp_prefix_are_unwrapped(tmp_path):
    torch.save({"state_dict": {"module.fc.weight": torch.ones(1)}}, tmp_path / "w.pth")
    assert list(read_state_dict(tmp_path / "w.pth")) == ["fc.weight"]


def test_export_refuses_models_torchvision_does_not_have(tmp_path, capsys):
    from triptych.engine.checkpoint import save_checkpoint
    from triptych.config import to_dict
    from triptych.vision.config import DataConfig, VisionConfig

    cfg = VisionConfig(model={"name": "resnet18", "small_input": True}, data=DataConfig(mean=[0.5], std=[0.5]))
    model = get_model("resnet18", num_classes=2, in_channels=1, small_input=True)
    save_checkpoint(tmp_path / "c", model, domain="vision", config=to_dict(cfg),
                    save_artifacts=lambda d: (d / "classes.json").write_text('["a", "b"]'))
    status = main(["vision", "export", "--to", "torchvision", str(tmp_path / "c"), "--out", str(tmp_path / "x.pth")])
    assert status == 2 and "small_input" in capsys.readouterr().err and not (tmp_path / "x.pth").exists()
    status = main(["vision", "import", "--from", "torchvision", str(tmp_path / "x.pth"), "--model", "lenet5",
                   "--out", str(tmp_path / "d")])
    assert status == 2 and "torchvision weights exist for" in capsys.readouterr().err
