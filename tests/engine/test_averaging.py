"""The moving average of the weights: its definition, and where the trainer uses it (validation, best/, resume)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.engine.toy_task import ToyModel, ToyTask, make, max_diff, weights
from triptych.engine import checkpoint as ckpt
from triptych.engine.averaging import WeightAverage
from triptych.engine.trainer import train
from triptych.errors import UserError


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))


def test_the_average_follows_its_definition():
    net, decay = _net(), 0.9
    average = WeightAverage(net, decay)
    reference = {k: v.double().clone() for k, v in net.state_dict().items() if v.is_floating_point()}
    for n in range(30):
        net.train()(torch.randn(8, 3))  # moves batch norm's running statistics and its counter
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p))
        average.update(net)
        keep = min(decay, (1 + n) / (10 + n))
        for k, v in net.state_dict().items():
            if k in reference:
                reference[k] = keep * reference[k] + (1 - keep) * v.double()
    state = average.state_dict()
    assert state["updates"] == 30 and state["decay"] == decay
    for k, v in reference.items():
        assert torch.allclose(state["average"][k].double(), v, atol=1e-5), k
    assert int(state["average"]["1.num_batches_tracked"]) == 30  # counters follow the model


def test_swapped_in_gives_the_weights_back_even_after_an_error():
    net = _net()
    average = WeightAverage(net, 0.5)
    trained = weights(net)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    average.update(net)
    moved = weights(net)
    with pytest.raises(RuntimeError), average.swapped_in(net):
        assert max_diff(weights(net), {k: v for k, v in average.state_dict()["average"].items()}) == 0
        assert max_diff(weights(net), trained) > 0.1  # neither the old nor the new weights
        raise RuntimeError("evaluation failed")
    assert max_diff(weights(net), moved) == 0


def test_a_saved_average_of_another_model_is_refused():
    average = WeightAverage(_net(), 0.9)
    other = WeightAverage(nn.Sequential(nn.Linear(3, 4)), 0.9)
    with pytest.raises(UserError, match="run-x: the checkpoint's weight average does not fit this model"):
        average.load_state_dict(other.state_dict(), "run-x")


class _Recording(ToyTask):
    """Records the weights each step starts from: after step k, the weights of call k+1."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.seen: list[dict] = []

    def loss(self, model, batch):
        self.seen.append(weights(model))
        return super().loss(model, batch)


def _recorded(settings: dict) -> tuple[_Recording, object]:
    _, cfg = make(settings)
    return _Recording(cfg), cfg


def _average_of(trajectory: list[dict], decay: float, start: int = 0) -> dict:
    """From the definition, in float64: the average started at `trajectory[start]`."""
    avg = {k: v.double() for k, v in trajectory[start].items()}
    for n, w in enumerate(trajectory[start + 1 :]):
        keep = min(decay, (1 + n) / (10 + n))
        avg = {k: keep * avg[k] + (1 - keep) * w[k].double() for k in avg}
    return avg


def _loaded(directory) -> dict:
    model = ToyModel(make()[1].model)
    ckpt.load_weights(directory, model)
    return weights(model)


def test_best_holds_the_average_and_the_checkpoints_the_trained_weights(tmp_path):
    task, cfg = _recorded({"max_steps": 12, "eval_every": 12, "save_every": 12, "ema_decay": 0.8})
    summary = train(task, cfg.train, tmp_path, full_config=cfg, seed=0, progress=False)
    assert summary["best_step"] == 12
    trained = weights(task.model)
    expected = _average_of(task.seen + [trained], 0.8)
    best = _loaded(tmp_path / "best")
    assert max_diff(best, expected) < 1e-5
    assert max_diff(best, trained) > 1e-3  # the average, not the last step
    assert max_diff(_loaded(ckpt.latest_checkpoint(tmp_path)), trained) == 0
    state = ckpt.load_trainer_state(ckpt.latest_checkpoint(tmp_path))
    assert state["weight_average"]["updates"] == 12


def test_resume_continues_the_average_exactly(tmp_path):
    settings = {"max_steps": 16, "eval_every": 4, "save_every": 5, "ema_decay": 0.9}
    task, cfg = make(settings)
    train(task, cfg.train, tmp_path / "straight", full_config=cfg, seed=3, progress=False)
    task, cfg = make(settings, signal_after=7)  # stopped inside step 7
    assert train(task, cfg.train, tmp_path / "run", full_config=cfg, seed=3, progress=False)["steps"] == 7
    task, cfg = make(settings)
    summary = train(task, cfg.train, tmp_path / "run", full_config=cfg, seed=3, resume=True, progress=False)
    assert summary["steps"] == 16
    assert max_diff(_loaded(tmp_path / "run" / "best"), _loaded(tmp_path / "straight" / "best")) < 1e-6


def test_an_average_starts_when_a_run_without_one_is_resumed_with_it(tmp_path, capsys):
    task, cfg = make({"max_steps": 6, "save_every": 6})
    train(task, cfg.train, tmp_path, full_config=cfg, seed=0, progress=False)
    task, cfg = _recorded({"max_steps": 10, "eval_every": 10, "ema_decay": 0.7})
    train(task, cfg.train, tmp_path, full_config=cfg, seed=0, resume=True, progress=False)
    assert "holds no weight average; train.ema_decay starts one at step 6" in capsys.readouterr().err
    expected = _average_of(task.seen + [weights(task.model)], 0.7)  # from step 6's weights
    best = _loaded(tmp_path / "best")
    assert max_diff(best, expected) < 1e-5
