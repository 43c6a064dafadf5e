"""The captioning recipes load and build their models (backbone feature map -> decoder)."""

from pathlib import Path

import pytest
import torch

from triptych import config as configs
from triptych.caption.config import CaptionConfig
from triptych.caption.models import build_caption_model

RECIPES = sorted((Path(__file__).resolve().parents[2] / "configs" / "caption").glob("*.yaml"))


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_recipe_builds(recipe):
    cfg = configs.load(CaptionConfig, recipe)
    assert cfg.task == "caption" and cfg.train.metric == "bleu"
    model = build_caption_model(cfg, 40, 0)
    x = torch.rand(2, cfg.data.channels, cfg.data.image_size, cfg.data.image_size)
    assert model(x, torch.randint(4, 40, (2, 3))).shape == (2, 3, 40)
    assert model.image.grid == (8, 8)  # LeNet-5's map: 64 regions of 4x4 pixels


def test_two_recipes():
    assert {p.stem for p in RECIPES} >= {"digit-scenes", "digit-scenes-transformer"}
