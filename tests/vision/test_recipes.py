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


def test_googlenet_aux_heads_switch_off_by_config():
    """`--set model.aux_logits=false`: fewer parameters, and the training loss
    is the main head's alone (with the heads it adds aux_weight x theirs)."""
    import torch
    import torch.nn.functional as F

    from triptych.vision.task import VisionTask

    digits = ["data.name=digits", "data.image_size=16", "data.augment=false", "data.batch_size=8"]
    tasks = {}
    for aux in (True, False):
        cfg = load_config("configs/vision/googlenet-fashion.yaml", digits + [f"model.aux_logits={str(aux).lower()}"])
        torch.manual_seed(0)
        tasks[aux] = VisionTask(cfg)
    on, off = tasks[True], tasks[False]
    heads = sum(p.numel() for h in (on.model.aux1, on.model.aux2) for p in h.parameters())
    assert off.model.aux1 is None and off.model.aux2 is None and heads > 0
    assert sum(p.numel() for p in on.model.parameters()) == sum(p.numel() for p in off.model.parameters()) + heads
    batch = on.collate(list(range(8)), "cpu")
    x, y = batch
    off.model.load_state_dict({k: v for k, v in on.model.state_dict().items() if not k.startswith("aux")})
    for task in (on, off):
        task.model.train()  # batch statistics; no dropout, so both networks compute the same main head
        for m in task.model.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
    loss_on, _ = on.loss(on.model, batch)
    loss_off, _ = off.loss(off.model, batch)
    with torch.no_grad():
        logits, aux = on.model.forward_with_aux(x)
    ce = lambda z: F.cross_entropy(z, y, reduction="sum", label_smoothing=on.cfg.label_smoothing)  # noqa: E731
    aux_terms = sum(ce(a) for a in aux)
    assert torch.allclose(loss_off, ce(logits), rtol=1e-4)
    assert torch.allclose(loss_on, loss_off + on.cfg.aux_weight * aux_terms, rtol=1e-4)
    assert aux_terms.item() > 0.1
