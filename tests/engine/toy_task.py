"""A tiny Task for engine tests: token-level classification with a tied embedding.

Small enough that a training step takes about a millisecond, yet it has
what makes the engine's job non-trivial:
- examples of different lengths, so the units (valid tokens) of a batch
  vary and the loss normalisation over micro-batches and ranks matters;
- dropout, so a resumed run must restore the RNG to match;
- an output layer tied to the input embedding (a shared tensor in
  safetensors) and a LayerNorm (no weight decay);
- a convolution over positions, whose 4-D weight the engine lays out
  channels-last (`train.memory_format`), so the optimizer's moments and
  the DDP gradient sum must follow that layout.
Other tests reuse it: `from tests.engine.toy_task import ToyTask, ToyConfig`.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from triptych.config import TrainConfig


@dataclass
class ToyModelConfig:
    vocab: int = 16
    hidden: int = 16
    max_len: int = 6
    dropout: float = 0.1


@dataclass
class ToyConfig:
    """The `full_config` a toy run saves: a model section and the engine's train section."""

    model: ToyModelConfig = field(default_factory=ToyModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    n_train: int = 96
    n_valid: int = 32
    batch_size: int = 8
    seed: int = 0


class ToyModel(nn.Module):
    def __init__(self, cfg: ToyModelConfig):
        super().__init__()
        self.embed = nn.Embedding(cfg.vocab, cfg.hidden)
        self.pos = nn.Parameter(torch.randn(cfg.max_len, cfg.hidden) * 0.1)
        self.conv = nn.Conv2d(cfg.hidden, cfg.hidden, (3, 1), padding=(1, 0))  # each position and its neighbours
        self.mix = nn.Linear(cfg.hidden, cfg.hidden)
        self.drop = nn.Dropout(cfg.dropout)
        self.norm = nn.LayerNorm(cfg.hidden)
        self.head = nn.Linear(cfg.hidden, cfg.vocab, bias=False)
        self.head.weight = self.embed.weight  # tied: one tensor under two names
        nn.init.normal_(self.embed.weight, std=0.3)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens) + self.pos[: tokens.shape[1]]  # (B, T, H)
        x = x + self.conv(x.transpose(1, 2).unsqueeze(-1)).squeeze(-1).transpose(1, 2)  # via (B, H, T, 1)
        x = self.norm(x + self.drop(F.gelu(self.mix(x))))
        return self.head(x)  # (B, T, V)


class ToyTask:
    """Predict (3 * token + position) mod vocab at every valid position."""

    domain = "toy"
    unit_name = "tok"

    def __init__(self, cfg: ToyConfig | None = None, *, delay: float = 0.0, eval_values: list[float] | None = None,
                 signal_after: int | None = None):
        self.cfg = cfg or ToyConfig()
        m = self.cfg.model
        g = torch.Generator().manual_seed(1234)
        n = self.cfg.n_train + self.cfg.n_valid
        self.tokens = torch.randint(1, m.vocab, (n, m.max_len), generator=g)
        self.lengths = torch.randint(1, m.max_len + 1, (n,), generator=g)
        pos = torch.arange(m.max_len)
        self.targets = (3 * self.tokens + pos) % m.vocab
        torch.manual_seed(self.cfg.seed)
        self.model = ToyModel(m)
        self.delay = delay  # seconds of sleep per micro-batch: lets a test catch a run mid-way
        self.eval_values = list(eval_values) if eval_values is not None else None  # scripted valid_loss
        self.evaluations = 0
        self.signal_after = signal_after  # send SIGTERM to this process after that many loss calls
        self.loss_calls = 0

    def batch_plan(self, epoch: int) -> list[list[int]]:
        g = torch.Generator().manual_seed(self.cfg.seed * 1000 + epoch)
        order = torch.randperm(self.cfg.n_train, generator=g).tolist()
        b = self.cfg.batch_size
        return [order[i:i + b] for i in range(0, len(order), b)]

    def collate(self, indices: list[int], device: torch.device):
        ix = torch.tensor(indices)
        mask = torch.arange(self.cfg.model.max_len)[None, :] < self.lengths[ix][:, None]
        return self.tokens[ix].to(device), self.targets[ix].to(device), mask.to(device)

    def batch_units(self, batch) -> int:
        return int(batch[2].sum())

    def loss(self, model: nn.Module, batch):
        tokens, targets, mask = batch
        if self.delay:
            time.sleep(self.delay)
        self.loss_calls += 1
        if self.signal_after is not None and self.loss_calls == self.signal_after:
            os.kill(os.getpid(), signal.SIGTERM)  # a real signal, arriving mid-step
        logits = model(tokens)
        losses = F.cross_entropy(logits.float().transpose(1, 2), targets, reduction="none")  # (B, T)
        return (losses * mask).sum(), {"examples": float(tokens.shape[0])}

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        self.evaluations += 1
        ix = list(range(self.cfg.n_train, self.cfg.n_train + self.cfg.n_valid))
        tokens, targets, mask = self.collate(ix, next(model.parameters()).device)
        logits = model(tokens).float()
        loss = (F.cross_entropy(logits.transpose(1, 2), targets, reduction="none") * mask).sum() / mask.sum()
        acc = ((logits.argmax(-1) == targets) & mask).sum() / mask.sum()
        metrics = {"valid_loss": float(loss), "accuracy": float(acc)}
        if self.eval_values is not None:  # a scripted metric curve for keep-best / early-stopping tests
            metrics["valid_loss"] = self.eval_values[min(self.evaluations - 1, len(self.eval_values) - 1)]
        return metrics

    def save_artifacts(self, directory: Path) -> None:
        (directory / "toy_vocab.json").write_text(json.dumps({"vocab": self.cfg.model.vocab}), encoding="utf-8")


def make(train: dict | None = None, *, dropout: float = 0.1, batch_size: int = 8, seed: int = 0,
         **task_kw) -> tuple[ToyTask, ToyConfig]:
    """A fresh task (same initial weights for the same seed) and its full config."""
    cfg = ToyConfig(model=ToyModelConfig(dropout=dropout), batch_size=batch_size, seed=seed)
    defaults = dict(lr=1e-2, warmup_steps=2, max_steps=20, eval_every=0, save_every=0, log_every=5,
                    clip_norm=1.0, schedule="cosine", threads=1)  # 1 thread: tiny ops lose to contention
    defaults.update(train or {})
    cfg.train = TrainConfig(**defaults)
    return ToyTask(cfg, **task_kw), cfg


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)
