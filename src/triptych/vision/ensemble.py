"""Several trained classifiers answering as one: the mean of their probability distributions.

The ImageNet results of the talk's networks are ensembles: AlexNet's best
entry averaged 7 CNNs, GoogLeNet's 7 models, ResNet's 6 networks of
different depths. `triptych vision eval --checkpoint A --checkpoint B ...`
does the same with any trained checkpoints of one class list. Each member
reads the set through its own checkpoint's preprocessing (image size,
normalisation), so a LeNet-5 at 32 pixels and a ResNet-18 at 28 can vote
together; averaging probabilities rather than logits keeps a member whose
logits run large from outvoting the others.
"""

from __future__ import annotations

import math

import torch

from triptych.errors import UserError
from triptych.vision.predictor import Classifier
from triptych.vision.task import classification_metrics


def evaluate_ensemble(members: list[Classifier], spec: str | None, flip: bool = False) -> tuple[str, dict]:
    """(the set's name, `vision eval`'s metrics of the mean distribution + "members": each one's own accuracy)."""
    first = members[0]
    for m in members[1:]:
        if m.classes != first.classes:
            raise UserError(f"{m.checkpoint}: its classes differ from {first.checkpoint}'s; "
                            "the members of an ensemble must share one class list")
    total = labels = name = None
    reports = []
    for m in members:
        images = m.dataset(spec)
        log_probs, y = m.log_probabilities(images, flip=flip)
        if labels is None:
            labels, name = y, images.name
        elif images.name != name or not torch.equal(y, labels):
            raise UserError(f"{m.checkpoint}: reads {images.name} ({len(y)} images) where {first.checkpoint} "
                            f"reads {name} ({len(labels)}); the members must see the same images")
        reports.append({"checkpoint": str(m.checkpoint), "model": m.name,
                        "accuracy": float((log_probs.argmax(1) == y).float().mean())})
        probs = log_probs.double().exp()  # one (N, classes) sum, not one per member: memory stays flat
        total = probs if total is None else total.add_(probs)
    mean_log = (total / len(members)).clamp_min(1e-300).log().float()
    return name, {**classification_metrics(mean_log, labels, len(first.classes)), "members": reports}
