"""Progress and logs: stderr only, metrics.jsonl records, optimizer groups."""

from __future__ import annotations

import json

from tests.engine.toy_task import make
from triptych.engine.progress import MetricsLog, ProgressBar, read_metrics
from triptych.engine.state import build_optimizer
from triptych.engine.trainer import train


def test_training_prints_nothing_on_stdout(tmp_path, capsys):
    task, cfg = make({"max_steps": 4, "log_every": 2, "eval_every": 2})
    train(task, cfg.train, tmp_path, full_config=cfg, seed=0, progress=True)
    out = capsys.readouterr()
    assert out.out == ""  # stdout belongs to a command's --json object
    records = read_metrics(tmp_path)
    assert [(r["step"], r["kind"]) for r in records] == [(2, "train"), (2, "valid"), (4, "train"), (4, "valid")]
    train_rec = records[0]
    assert {"loss", "lr", "tok/s", "grad_norm", "epoch", "elapsed"} <= train_rec.keys()


def test_metrics_log_records_and_truncation(tmp_path):
    log = MetricsLog(tmp_path, tensorboard=False)
    log.log("train", 1, {"loss": 2.0}, 0.5)
    log.log("valid", 2, {"valid_loss": float("nan")}, 1.0)
    log.log("train", 3, {"loss": 1.0}, 1.5)
    with open(tmp_path / "metrics.jsonl", "a") as fh:
        fh.write('{"step": 4, "kin')  # a line cut short by a kill
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert json.loads(lines[0]) == {"step": 1, "kind": "train", "loss": 2.0, "elapsed": 0.5}
    assert json.loads(lines[1])["valid_loss"] == "nan"  # strict JSON: no NaN literal
    log.truncate_after(2)
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2]


def test_disabled_log_and_bar_write_nothing(tmp_path, capsys):
    log = MetricsLog(tmp_path, enabled=False)  # what ranks other than 0 get
    log.log("train", 1, {"loss": 2.0}, 0.5)
    bar = ProgressBar(10, enabled=False)
    bar.show(1, {"loss": 1.0})
    bar.write("hello")
    assert not (tmp_path / "metrics.jsonl").exists() and capsys.readouterr() == ("", "")


def test_plain_progress_lines_go_to_stderr(capsys):
    bar = ProgressBar(10, force=False)
    bar.show(3, {"loss": 1.23456, "lr": 1e-4, "tok/s": 1234.5})
    bar.close()
    out = capsys.readouterr()
    assert out.out == "" and out.err == "step 3 loss 1.235 lr 0.0001 tok/s 1234\n"


def test_no_weight_decay_on_biases_norms_and_embeddings():
    task, cfg = make()
    opt = build_optimizer(task.model, cfg.train)
    decayed = {id(p) for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    m = task.model
    assert decayed == {id(m.conv.weight), id(m.mix.weight), id(m.pos)}  # the tied embedding/head is not decayed
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(m.parameters()))


def test_sgd_is_nesterov_with_l2_on_the_decayed_group_only():
    """Two steps of `train.optimizer: sgd` equal Nesterov momentum written out by hand."""
    import torch

    task, cfg = make({"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 0.01})
    opt = build_optimizer(task.model, cfg.train)
    assert isinstance(opt, torch.optim.SGD) and all(g["nesterov"] for g in opt.param_groups)
    decayed = {id(p) for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    params = [p for p in task.model.parameters() if p.requires_grad]
    expected, velocity = {}, {}
    for p in params:
        expected[p] = p.detach().clone()
    torch.manual_seed(0)
    for _ in range(2):
        for p in params:
            p.grad = torch.randn_like(p)
            wd = 0.01 if id(p) in decayed else 0.0
            g = p.grad + wd * expected[p]
            velocity[p] = g if p not in velocity else 0.9 * velocity[p] + g
            expected[p] = expected[p] - 0.1 * (g + 0.9 * velocity[p])
        opt.step()
    for p in params:
        assert torch.allclose(p.detach(), expected[p], atol=1e-6)
