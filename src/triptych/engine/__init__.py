"""Domain-free training machinery: the loop, checkpoints, DDP, progress.

The one contract between a domain and the engine is `Task` below. A task
(`vision/task.py`, `video/task.py`, `text/task.py`) builds its model and data
from a config; the engine owns everything about optimisation, schedules,
checkpoints, resumption, distributed training and logging.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn


class Task(Protocol):
    """What a domain hands to `engine.trainer.train`.

    Batches are planned as lists of example indices so that the engine can
    shard them over DDP ranks (`indices[rank::world_size]`) and skip to the
    exact position of a checkpoint on `--resume`; a plan must therefore be a
    pure function of (the task's seed, epoch).
    """

    domain: str  # "text" | "vision" | "video": recorded in every checkpoint
    unit_name: str  # what `batch_units` counts, for the progress bar: "tok", "img", "video"
    model: nn.Module

    def batch_plan(self, epoch: int) -> list[list[int]]:
        """Micro-batches of example indices for one epoch (global, before sharding)."""

    def collate(self, indices: list[int], device: torch.device) -> Any:
        """Turn example indices into a batch on `device`."""

    def batch_units(self, batch: Any) -> int:
        """How many units (target tokens, images, videos) the loss is summed over."""

    def loss(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
        """The SUM of per-unit losses over the batch (not the mean), and extra logs.

        The engine divides by the units of the whole optimiser step (all
        micro-batches, all ranks), so gradient accumulation and DDP give
        exactly the gradient of single-process training on the global batch.
        Under `precision: bf16` the forward runs in autocast: compute the sum
        in float32 (e.g. `logits.float()` before the loss), or a bf16 sum of
        thousands of terms loses most of its digits.
        """

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Validation metrics (rank 0 only); must include `train.metric`."""

    def save_artifacts(self, directory: Path) -> None:
        """Write what inference needs beside the weights (e.g. tokenizer.json)."""
