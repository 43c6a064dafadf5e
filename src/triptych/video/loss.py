"""The video models' loss and batch transfer, below the task so that the
streaming evaluation and the classical baselines use them without importing
the task (which imports both)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

EPSILON = 1e-5  # keeps log() finite for heads that output probabilities


def to_device(batch: dict, device) -> dict:
    """numpy batch -> tensors on `device`."""
    return {k: torch.from_numpy(v).to(device) for k, v in batch.items()}


def bce_sum(out: dict, labels: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy summed over videos and classes."""
    if "logits" in out:
        return F.binary_cross_entropy_with_logits(out["logits"].float(), labels, reduction="sum")
    p = out["probs"].float()
    return -(labels * torch.log(p + EPSILON) + (1 - labels) * torch.log(1 - p + EPSILON)).sum()
