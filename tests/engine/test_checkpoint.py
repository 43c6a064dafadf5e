"""Checkpoints: round trip, atomic replacement, and one-line errors for bad ones."""

from __future__ import annotations

import json
import os

import pytest
import torch

from tests.engine.toy_task import ToyModel, ToyModelConfig, max_diff, weights
from triptych.engine import checkpoint as ckpt
from triptych.errors import UserError


def _model(seed: int) -> ToyModel:
    torch.manual_seed(seed)
    return ToyModel(ToyModelConfig())


def _save(directory, model, **kw):
    kw.setdefault("domain", "toy")
    kw.setdefault("config", {"model": {"hidden": 16}})
    return ckpt.save_checkpoint(directory, model, **kw)


def test_round_trip_keeps_tied_weights_and_metadata(tmp_path):
    model = _model(0)
    state = {"step": 7, "epoch": 1, "position": 3, "elapsed": 1.5, "rng": [{"torch": torch.get_rng_state()}]}
    _save(tmp_path / "c", model, trainer_state=state, metrics={"valid_loss": torch.tensor(1.25)},
          save_artifacts=lambda d: (d / "tokenizer.json").write_text("{}"))
    meta, config = ckpt.load_checkpoint_meta(tmp_path / "c", "toy")
    assert meta == {"format": "triptych-checkpoint", "version": 1, "domain": "toy", "step": 7,
                    "metrics": {"valid_loss": 1.25}, "weights_crc32": ckpt.file_crc32(tmp_path / "c" / ckpt.WEIGHTS)}
    assert config == {"model": {"hidden": 16}}
    assert (tmp_path / "c" / "tokenizer.json").is_file()
    other = _model(1)
    ckpt.load_weights(tmp_path / "c", other)
    assert max_diff(weights(model), weights(other)) == 0
    assert other.head.weight is other.embed.weight  # still tied after loading
    loaded = ckpt.load_trainer_state(tmp_path / "c")
    assert loaded["position"] == 3 and torch.equal(loaded["rng"][0]["torch"], state["rng"][0]["torch"])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind


def test_crash_while_writing_leaves_the_previous_checkpoint(tmp_path):
    old = _model(0)
    _save(tmp_path / "best", old, step=1)

    def crash(directory):
        raise KeyboardInterrupt  # a kill half-way through writing the new one

    with pytest.raises(KeyboardInterrupt):
        _save(tmp_path / "best", _model(1), step=2, save_artifacts=crash)
    meta, _ = ckpt.load_checkpoint_meta(tmp_path / "best", "toy")
    assert meta["step"] == 1
    loaded = _model(2)
    ckpt.load_weights(tmp_path / "best", loaded)
    assert max_diff(weights(old), weights(loaded)) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best"]


def test_a_temporary_left_by_a_hard_kill_is_ignored_and_cleaned(tmp_path):
    _save(tmp_path / "best", _model(0), step=1)
    (tmp_path / ".best.tmp-999-deadbeef").mkdir()  # as if SIGKILL hit mid-write
    (tmp_path / ".best.tmp-999-deadbeef" / "model.safetensors").write_bytes(b"half")
    assert ckpt.load_checkpoint_meta(tmp_path / "best", "toy")[0]["step"] == 1
    _save(tmp_path / "best", _model(1), step=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best"]


def test_kill_between_the_two_renames_is_recovered_on_load(tmp_path):
    _save(tmp_path / "best", _model(0), step=1)
    real_replace = os.replace
    calls = []

    def replace_then_die(src, dst):
        calls.append((src, dst))
        real_replace(src, dst)
        if len(calls) == 1:  # the old one went aside; the new one never came in
            raise KeyboardInterrupt

    os.replace = replace_then_die
    try:
        with pytest.raises(KeyboardInterrupt):
            _save(tmp_path / "best", _model(1), step=2)
    finally:
        os.replace = real_replace
    assert not (tmp_path / "best").exists() and (tmp_path / ".best.old").is_dir()
    meta, _ = ckpt.load_checkpoint_meta(tmp_path / "best", "toy")
    assert meta["step"] == 1 and (tmp_path / "best").is_dir()


def test_latest_falls_back_to_the_highest_complete_step(tmp_path):
    ckpts = tmp_path / "checkpoints"
    for step in (2, 4):
        _save(ckpts / ckpt.step_dir_name(step), _model(step), trainer_state={"step": step})
    ckpt.write_latest(ckpts, "step-0000009")  # points at nothing
    (ckpts / "step-0000006").mkdir()  # incomplete: no meta.json
    assert ckpt.latest_checkpoint(tmp_path).name == "step-0000004"
    ckpt.write_latest(ckpts, "step-0000002")
    assert ckpt.latest_checkpoint(tmp_path).name == "step-0000002"
    ckpt.prune(ckpts, keep=1)
    assert [p.name for _, p in ckpt.list_step_dirs(ckpts)] == ["step-0000004"]


def test_the_latest_pointer_and_a_run_directory_say_what_to_give(tmp_path):
    """Users pass what they see in a run: RUN/checkpoints/latest or RUN itself.
    Each is one line naming the checkpoint to give instead."""
    ckpts = tmp_path / "run" / "checkpoints"
    _save(ckpts / ckpt.step_dir_name(3), _model(3), trainer_state={"step": 3})
    ckpt.write_latest(ckpts, ckpt.step_dir_name(3))
    with pytest.raises(UserError, match=r"latest: the run's pointer to its newest checkpoint, not one; give .*run/checkpoints/step-0000003$"):
        ckpt.load_checkpoint_meta(ckpts / "latest", "toy")
    with pytest.raises(UserError, match=r"run: a run directory, not a checkpoint; give .*run/checkpoints/step-0000003$"):
        ckpt.load_checkpoint_meta(tmp_path / "run", "toy")
    _save(tmp_path / "run" / "best", _model(3))
    with pytest.raises(UserError, match=r"run: a run directory, not a checkpoint; give .*run/best or .*run/checkpoints/step-0000003$"):
        ckpt.load_checkpoint_meta(tmp_path / "run", "toy")


def _corrupt_meta(d):
    (d / "meta.json").write_text("{not json")


def _foreign_meta(d):
    (d / "meta.json").write_text(json.dumps({"format": "something-else"}))


def _truncate_weights(d):
    data = (d / "model.safetensors").read_bytes()
    (d / "model.safetensors").write_bytes(data[: len(data) // 2])


def _garbage_weights(d):
    (d / "model.safetensors").write_bytes(b"\x00" * 64)


def _no_weights(d):
    (d / "model.safetensors").unlink()


def _no_config(d):
    (d / "config.yaml").unlink()


def _corrupt_state(d):
    (d / "trainer_state.pt").write_bytes(b"PK\x03\x04 not a zip")


def _no_state(d):
    (d / "trainer_state.pt").unlink()


@pytest.mark.parametrize("damage, expect", [
    (_corrupt_meta, "corrupt checkpoint metadata"),
    (_foreign_meta, "not a triptych checkpoint"),
    (_truncate_weights, "corrupt weights"),
    (_garbage_weights, "corrupt weights"),
    (_no_weights, "has no model.safetensors"),
    (_no_config, "has no config.yaml"),
    (_corrupt_state, "corrupt training state"),
    (_no_state, "cannot be resumed"),
])
def test_damaged_checkpoint_is_one_line_user_error(tmp_path, damage, expect):
    d = _save(tmp_path / "c", _model(0), trainer_state={"step": 1})
    damage(d)
    with pytest.raises(UserError) as err:
        ckpt.load_checkpoint_meta(d, "toy")
        ckpt.load_weights(d, _model(1))
        ckpt.load_trainer_state(d)
    message = str(err.value)
    assert expect in message and str(d) in message and "\n" not in message


def test_missing_directory_and_other_domain(tmp_path):
    with pytest.raises(UserError, match="no such checkpoint directory"):
        ckpt.load_checkpoint_meta(tmp_path / "nope", "text")
    d = _save(tmp_path / "x" / "best", _model(0), domain="vision")
    with pytest.raises(UserError, match=r"x/best: a vision checkpoint, expected text$"):
        ckpt.load_checkpoint_meta(d, "text")


def test_weights_of_another_shape_are_a_user_error(tmp_path):
    d = _save(tmp_path / "c", _model(0))
    torch.manual_seed(0)
    bigger = ToyModel(ToyModelConfig(hidden=32))
    with pytest.raises(UserError, match="do not fit this model"):
        ckpt.load_weights(d, bigger)
