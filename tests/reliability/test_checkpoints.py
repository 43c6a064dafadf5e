"""Checkpoints carry a checksum of their weights and refuse non-finite ones (issue 18)."""

import json

import pytest
import torch
from torch import nn

from triptych.engine import checkpoint as ckpt
from triptych.errors import UserError


def _model(fill=None):
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    if fill is not None:
        with torch.no_grad():
            m[2].weight[1, 3] = fill
    return m


def test_a_flipped_bit_is_caught(tmp_path):
    d = ckpt.save_checkpoint(tmp_path / "c", _model(), domain="vision", config={})
    assert len(json.loads((d / ckpt.META).read_text())["weights_crc32"]) == 8
    ckpt.load_weights(d, _model())  # intact: loads
    raw = bytearray((d / ckpt.WEIGHTS).read_bytes())
    raw[-5] ^= 0x10  # one bit of the last tensor's data
    (d / ckpt.WEIGHTS).write_bytes(bytes(raw))
    with pytest.raises(UserError, match=r"model\.safetensors: corrupt weights file \(checksum mismatch"):
        ckpt.load_weights(d, _model())


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_weights_are_refused_naming_the_tensor(tmp_path, bad):
    d = ckpt.save_checkpoint(tmp_path / "c", _model(bad), domain="vision", config={})
    with pytest.raises(UserError, match=r"model\.safetensors: tensor 2\.weight holds NaN or infinite"):
        ckpt.load_weights(d, _model())


def test_checkpoints_without_a_checksum_still_load(tmp_path):
    d = ckpt.save_checkpoint(tmp_path / "c", _model(), domain="vision", config={})
    meta = json.loads((d / ckpt.META).read_text())
    del meta["weights_crc32"]
    (d / ckpt.META).write_text(json.dumps(meta))
    ckpt.load_weights(d, _model())
