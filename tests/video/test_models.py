import pytest
import torch

from triptych.video import models
from triptych.video.heads import MoEHead
from triptych.video.pooling import POOLINGS, make_pooling

SMALL = dict(num_classes=12, clusters=4, hidden=16, rnn_size=8, rnn_layers=1)


def _batch(B=3, T=6, level="frame", seed=0):
    g = torch.Generator().manual_seed(seed)
    if level == "video":
        return {"rgb": torch.randn(B, 1024, generator=g), "audio": torch.randn(B, 128, generator=g)}
    mask = torch.ones(B, T)
    mask[1, 4:] = 0
    mask[2, 2:] = 0
    return {"rgb": torch.randn(B, T, 1024, generator=g), "audio": torch.randn(B, T, 128, generator=g), "mask": mask}


@pytest.mark.parametrize("name", models.list_models())
def test_every_model_shapes(name):
    torch.manual_seed(0)
    cfg = models.model_config(name, **SMALL)
    m = models.build(cfg)
    out = m(_batch(level=cfg.level))
    assert out["probs"].shape == (3, 12)
    assert ((out["probs"] >= 0) & (out["probs"] <= 1)).all()


@pytest.mark.parametrize("kind", POOLINGS)
def test_padding_never_changes_pooling(kind):
    torch.manual_seed(0)
    pool = make_pooling(kind, 10, clusters=4, hidden=6, layers=1).eval()
    x = torch.randn(2, 5, 10)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1.0]])
    a = pool(x, mask)
    x2 = torch.cat([x, torch.randn(2, 3, 10) * 50], 1)
    x2[0, 3:5] = 99.0  # garbage in padded frames
    mask2 = torch.cat([mask, torch.zeros(2, 3)], 1)
    b = pool(x2, mask2)
    assert a.shape == (2, pool.out_dim)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_moe_has_dummy_expert():
    head = MoEHead(5, 3, num_mixtures=2)
    assert head.gates.out_features == 3 * 3 and head.experts.out_features == 3 * 2 and head.gates.bias is None


def test_registry():
    assert "gated-netvlad" in models.list_models("gated-*")
    with pytest.raises(ValueError, match="already registered"):
        models.register_model("netvlad")
    with pytest.raises(ValueError, match="unknown video model"):
        models.model_config("nope")
    # parameter count of a known configuration: NetVLAD K=4 on rgb (1024) and K=2 on audio (128)
    m = models.get_model("netvlad", num_classes=12, clusters=4, hidden=16)
    vlad = (1024 * 4 + 4 * 2 + 1024 * 4) + (128 * 2 + 2 * 2 + 128 * 2)  # assign W, BN, centres
    hidden = (4 * 1024 + 2 * 128) * 16 + 16 * 2
    moe = 16 * 12 * 3 + (16 * 12 * 2 + 12 * 2)
    assert models.parameter_count(m) == vlad + hidden + moe


@pytest.mark.parametrize("name", ["mean-moe", "gated-netvlad", "lstm", "moe"])
def test_tiny_overfit(name):
    torch.manual_seed(0)
    cfg = models.model_config(name, **SMALL)
    m = models.build(cfg)
    batch = _batch(B=8, level=cfg.level, seed=1)
    labels = (torch.rand(8, 12, generator=torch.Generator().manual_seed(2)) < 0.3).float()
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    for _ in range(60):
        p = m(batch)["probs"].clamp(1e-6, 1 - 1e-6)
        loss = torch.nn.functional.binary_cross_entropy(p, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    assert ((m(batch)["probs"] > 0.5).float() == labels).float().mean() > 0.95
