from pathlib import Path

import pytest

from triptych.vision.task import build_classifier
from triptych.vision.train import load_config

RECIPES = sorted(Path("configs/vision").glob("*.yaml"))


def test_there_are_recipes():
    assert {"lenet5-digits.yaml", "resnet18-digits.yaml"} <= {p.name for p in RECIPES}


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_loads_and_builds(path):
    cfg = load_config(str(path), [])
    channels = cfg.data.channels or (1 if cfg.data.name == "digits" else 3)
    model = build_classifier(cfg, 10, channels)
    assert sum(p.numel() for p in model.parameters()) > 0
