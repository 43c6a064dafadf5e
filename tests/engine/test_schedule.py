"""Learning-rate schedule shapes, by steps and timed to a budget."""

from __future__ import annotations

import math

import pytest

from triptych.config import TrainConfig
from triptych.engine.schedule import from_config, lr_multiplier
from triptych.errors import UserError


def curve(schedule, steps=100, **kw):
    kw.setdefault("warmup_steps", 10)
    return [lr_multiplier(s, schedule=schedule, max_steps=steps, **kw) for s in range(steps)]


@pytest.mark.parametrize("name", ["constant", "inverse_sqrt", "cosine", "linear"])
def test_warmup_ramps_linearly_to_one(name):
    c = curve(name, min_lr_ratio=0.1)
    assert c[:10] == pytest.approx([(s + 1) / 10 for s in range(10)])
    assert max(c) == pytest.approx(1.0)


def test_constant_stays_at_one():
    assert curve("constant")[10:] == pytest.approx([1.0] * 90)


def test_inverse_sqrt_decays_as_one_over_root_step():
    c = curve("inverse_sqrt")
    assert c[39] == pytest.approx(math.sqrt(10 / 40))
    assert c[99] == pytest.approx(math.sqrt(10 / 100))


def test_cosine_and_linear_reach_the_floor_at_max_steps():
    cos = [lr_multiplier(s, schedule="cosine", warmup_steps=10, max_steps=100, min_lr_ratio=0.1) for s in range(10, 101)]
    lin = [lr_multiplier(s, schedule="linear", warmup_steps=10, max_steps=100, min_lr_ratio=0.1) for s in range(10, 101)]
    assert cos[0] == pytest.approx(1.0) and cos[-1] == pytest.approx(0.1)
    assert lin[0] == pytest.approx(1.0) and lin[-1] == pytest.approx(0.1)
    assert cos[45] == pytest.approx(0.55) and lin[45] == pytest.approx(0.55)  # half-way: the same midpoint
    assert cos[20] > lin[20] and cos[70] < lin[70]  # cosine: slow start, fast middle, slow end
    assert all(a >= b for a, b in zip(cos, cos[1:])) and all(a >= b for a, b in zip(lin, lin[1:]))


def test_time_budget_ends_the_decay_with_the_budget():
    kw = dict(schedule="cosine", warmup_steps=0, max_steps=1_000_000, max_minutes=10, min_lr_ratio=0.0)
    assert lr_multiplier(50, 0.0, **kw) == pytest.approx(1.0, abs=1e-3)
    assert lr_multiplier(50, 300.0, **kw) == pytest.approx(0.5, abs=1e-3)  # half the time: cosine midpoint
    assert lr_multiplier(50, 600.0, **kw) == pytest.approx(0.0, abs=1e-9)
    # whichever runs out first sets the pace: here the steps
    assert lr_multiplier(999_999, 60.0, **kw) == pytest.approx(0.0, abs=1e-6)


def test_from_config_and_bad_names():
    f = from_config(TrainConfig(schedule="linear", warmup_steps=0, max_steps=10, min_lr_ratio=0.0))
    assert f(5) == pytest.approx(0.5)
    with pytest.raises(UserError, match="train.schedule: unknown schedule 'cosnie'"):
        from_config(TrainConfig(schedule="cosnie"))
    with pytest.raises(UserError, match="min_lr_ratio"):
        from_config(TrainConfig(min_lr_ratio=2.0))


def test_step_schedule_decays_like_the_youtube8m_starter():
    # x0.8 every 4M examples at batch 80 = every 50,000 updates, staircase
    from triptych.engine.schedule import lr_multiplier as m

    kw = dict(schedule="step", decay_rate=0.8, decay_steps=50_000)
    assert m(0, **kw) == 1.0 and m(49_999, **kw) == 1.0
    assert m(50_000, **kw) == pytest.approx(0.8) and m(149_999, **kw) == pytest.approx(0.64)
    assert m(4, warmup_steps=10, **kw) == pytest.approx(0.5)  # warm-up still ramps first
