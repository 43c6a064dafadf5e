"""Fine-tuning an imported torchvision-format checkpoint on a small generated ImageFolder."""

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from triptych.engine.checkpoint import load_weights
from triptych.errors import UserError
from triptych.vision.models import get_model
from triptych.vision.torchvision_weights import import_torchvision, key_table
from triptych.vision.train import run_training


def colour_folder(root, per_class=12, seed=0):
    """Two classes a linear probe can tell apart: reddish and bluish noisy photos of varied sizes."""
    rng = np.random.default_rng(seed)
    for label, channel in (("red", 0), ("blue", 2)):
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            h, w = rng.integers(40, 70, size=2)
            img = rng.integers(0, 90, size=(h, w, 3)).astype(np.uint8)
            img[..., channel] = rng.integers(150, 255, size=(h, w))
            Image.fromarray(img).save(root / label / f"{i}.jpg", quality=90)
    return root


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tv")
    torch.manual_seed(0)
    model = get_model("resnet18")  # 1000 ImageNet classes, as torchvision's file would have
    torch.save({tv: model.state_dict()[o] for tv, o in key_table("resnet18", model).items()}, tmp / "r18.pth")
    import_torchvision(tmp / "r18.pth", "resnet18", tmp / "ckpt")
    return tmp / "ckpt"


def recipe(tmp_path, imported, **extra):
    cfg = {
        "seed": 1, "init_from": str(imported), "model": {"name": "resnet18"},
        "data": {"name": "folder", "train": str(colour_folder(tmp_path / "photos")), "valid_fraction": 0.25,
                 "image_size": 32, "batch_size": 8, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
        "train": {"lr": 0.01, "warmup_steps": 1, "max_steps": 15, "eval_every": 15, "save_every": 15,
                  "log_every": 0, "metric": "accuracy", "metric_mode": "max", "threads": 1, "weight_decay": 0.0},
        **extra,
    }
    path = tmp_path / "finetune.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_new_head_frozen_backbone(tmp_path, imported):
    summary = run_training(str(recipe(tmp_path, imported, freeze_backbone=True)), out=str(tmp_path / "run"),
                           progress=False)
    assert summary["best_metric"] >= 0.8  # 6 valid photos, colour is all it takes
    start = get_model("resnet18")
    load_weights(imported, start)
    tuned = get_model("resnet18", num_classes=2)
    load_weights(tmp_path / "run" / "best", tuned)
    a, b = start.state_dict(), tuned.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a if not k.startswith("head."))  # incl. BN running stats
    assert b["head.weight"].shape == (2, 512)


def test_trunk_trains_without_freezing(tmp_path, imported):
    run_training(str(recipe(tmp_path, imported)), out=str(tmp_path / "run"), progress=False)
    start, tuned = get_model("resnet18"), get_model("resnet18", num_classes=2)
    load_weights(imported, start)
    load_weights(tmp_path / "run" / "best", tuned)
    assert not torch.equal(start.state_dict()["stem.0.0.weight"], tuned.state_dict()["stem.0.0.weight"])


def test_init_from_another_architecture_is_one_line(tmp_path, imported):
    path = recipe(tmp_path, imported, model={"name": "resnet34"})
    with pytest.raises(UserError, match=r"init_from weights do not fit this model: .*\(missing\).* more"):
        run_training(str(path), out=str(tmp_path / "run"), progress=False)
    assert not (tmp_path / "run").exists()
