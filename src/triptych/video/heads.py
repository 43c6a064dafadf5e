"""Video-level classifiers: a video vector [B, D] -> class scores [B, C].

Every head returns a dict with `probs` [B, C] in [0, 1] and, where the head
has them, `logits` [B, C] (then the loss is computed from logits, which is
exact and stable; MoE heads give probabilities only and the loss clamps
them as the reference does, see `video/task.py`).
"""

from __future__ import annotations

import torch
from torch import nn

from triptych.video.pooling import ContextGating


class LogisticHead(nn.Module):
    """One logistic regression a class (youtube-8m LogisticModel)."""

    def __init__(self, dim: int, num_classes: int):
        super().__init__()
        self.fc = nn.Linear(dim, num_classes)

    def forward(self, x):  # (B, D) -> probs, logits (B, C)
        logits = self.fc(x)
        return {"probs": torch.sigmoid(logits), "logits": logits}


class MoEHead(nn.Module):
    """Mixture of experts a class (youtube-8m MoeModel).

    For every class, `num_mixtures` logistic experts and num_mixtures + 1
    softmax gates; the extra gate belongs to a "dummy" expert that always
    says 0, so a class can be switched off without pushing every expert to
    -inf. p(c|x) = sum_m gate_m(x) * sigmoid(expert_m(x)), m < num_mixtures.
    Gates have no bias, as in the starter code.
    """

    def __init__(self, dim: int, num_classes: int, num_mixtures: int = 2):
        super().__init__()
        self.C, self.M = num_classes, num_mixtures
        self.gates = nn.Linear(dim, num_classes * (num_mixtures + 1), bias=False)
        self.experts = nn.Linear(dim, num_classes * num_mixtures)

    def forward(self, x):  # (B, D) -> probs (B, C)
        B = x.shape[0]
        gates = torch.softmax(self.gates(x).view(B, self.C, self.M + 1), -1)  # (B, C, M+1)
        experts = torch.sigmoid(self.experts(x).view(B, self.C, self.M))  # (B, C, M)
        return {"probs": (gates[..., : self.M] * experts).sum(-1)}


class GatedHead(nn.Module):
    """A head followed by Context Gating of its probabilities (Miech et al.'s
    gated MoE: classes re-weight each other, e.g. "skiing" lifts "snow")."""

    def __init__(self, head: nn.Module, num_classes: int):
        super().__init__()
        self.head, self.gate = head, ContextGating(num_classes)

    def forward(self, x):
        return {"probs": self.gate(self.head(x)["probs"])}


def make_head(kind: str, dim: int, num_classes: int, num_mixtures: int = 2, gated: bool = False) -> nn.Module:
    if kind == "logistic":
        head = LogisticHead(dim, num_classes)
    elif kind == "moe":
        head = MoEHead(dim, num_classes, num_mixtures)
    else:
        raise ValueError(f"unknown head '{kind}' (logistic, moe)")
    return GatedHead(head, num_classes) if gated else head
