"""The contract every image source meets, apart from any one source (so
sources in their own files, e.g. Fashion-MNIST, need not import data.py,
which picks among them)."""

from __future__ import annotations

import torch


class ImageSet:
    """Labelled images; `batch` returns (B, C, S, S) floats in [0, 1] and (B,) labels."""

    name: str
    classes: list[str]
    labels: list[int]
    channels: int

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, indices: list[int], train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError
