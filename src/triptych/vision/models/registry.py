"""The model registry and the interface every vision model shares.

Every network is an `ImageClassifier`: a trunk that turns images into a
feature vector (`embed`, the penultimate layer) and a last linear layer
(`head`) that turns it into class logits. Keeping that split explicit is
what lets video (CNN frame features) and captioning reuse a trained
classifier without knowing which family it is.

Models are registered by name with the parameter count of their reference
configuration (ImageNet: 1000 classes, 3x224x224; LeNet-5: 10 classes,
1x32x32). For the families torchvision also defines, that count is
torchvision's published number, and a test builds each model and checks
it, so a wrong layer cannot hide.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from triptych.registry import Registry


class ImageClassifier(nn.Module):
    """logits = head(embed(x)); embed(x) = pool(feature_map(x)) + any hidden layers."""

    embed_dim: int  # size of the penultimate feature vector
    head: nn.Linear

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) images -> (B, C', H', W') output of the last conv stage."""
        raise NotImplementedError

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) images -> (B, embed_dim) penultimate features."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))  # (B, num_classes)


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: how to build it and what it is at its reference size."""

    name: str
    builder: Callable[..., ImageClassifier]
    family: str
    params: int  # trainable parameters at the reference configuration
    num_classes: int = 1000
    in_channels: int = 3
    image_size: int = 224
    summary: str = ""
    reference: dict = field(default_factory=dict)  # e.g. {"torchvision": "resnet50"}


MODELS: Registry[ModelSpec] = Registry("vision model")


def register_model(
    name: str,
    *,
    family: str,
    params: int,
    num_classes: int = 1000,
    in_channels: int = 3,
    image_size: int = 224,
    summary: str = "",
    reference: dict | None = None,
):
    """Decorator: register a builder under `name`; a second use of a name is a bug."""

    def decorate(builder: Callable[..., ImageClassifier]):
        MODELS.register(name, ModelSpec(
            name=name,
            builder=builder,
            family=family,
            params=params,
            num_classes=num_classes,
            in_channels=in_channels,
            image_size=image_size,
            summary=summary or ((builder.__doc__ or "").strip().splitlines() or [""])[0],
            reference=dict(reference or {}),
        ))
        return builder

    return decorate


def list_models(pattern: str | None = None) -> list[str]:
    """Registered names in registry order, optionally filtered by a glob (`resnet*`)."""
    return MODELS.list(pattern)


def model_spec(name: str) -> ModelSpec:
    return MODELS.get(name)


def get_model(name: str, **kwargs) -> ImageClassifier:
    """Build a registered model; kwargs such as num_classes, in_channels, small_input."""
    return model_spec(name).builder(**kwargs)


def scaled_channels(channels: int, width: float) -> int:
    """A layer's channels under a width multiplier (`model.width`): the
    published count at 1.0; otherwise rounded, and never below 8.

    Narrow versions of the famous networks are how their recipes fit a small
    CPU: the cost of a convolution falls with the square of the width, the
    depth and the shape of the network stay the paper's."""
    if width <= 0:
        raise ValueError(f"width must be > 0, got {width}")
    return channels if width == 1 else max(8, int(round(channels * width)))


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def penultimate_features(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, D): the layer before the classifier, for video/captioning."""
    if not isinstance(model, ImageClassifier):
        raise TypeError(f"{type(model).__name__} is not a triptych vision model")
    return model.embed(images)
