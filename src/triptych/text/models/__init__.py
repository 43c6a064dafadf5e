"""The sequence-to-sequence contract every text model family honours, and the registry.

Decoding (`triptych.text.generation.search`), training (`triptych.text.task`) and the
attention pictures only ever talk to a model through `Seq2Seq` below, so an
RNN, a ConvS2S and a Transformer are interchangeable behind `model.name`.

The contract, with B sentences (or B*K beam hypotheses), S source and T
target positions and V vocabulary entries:

- ``forward(src (B,S), tgt_in (B,T)) -> log_probs (B,T,V)``: teacher forcing;
  `src` holds ids of the source vocabulary (the target's unless a family was
  built with `source_vocab_size`, when it has a source embedding of its own);
  source pads are masked. ``return_attention=True`` also returns a dict of
  attention weights for the heat-maps (the default path computes none).
- ``encode(src) -> enc``: a dict of batch-first tensors (the source mask and
  ids among them, so copy attention can scatter onto the vocabulary).
- ``init_state(enc) -> state`` and ``step(tokens (B,), enc, state) ->
  (log_probs (B,V), state)``: incremental decoding, one token at a time;
  ``step_scores``, the same for greedy search, may return unnormalised
  scores in the same order (the Transformer's logits).
- ``reorder(enc, state, index (N,)) -> (enc, state)``: keep/duplicate/permute
  rows; beam search expands B to B*K once with it and then, every step, calls
  only ``reorder_state`` because hypotheses never change sentence.
- ``loss(src, tgt_in, tgt_out, label_smoothing) -> (loss_sum, n_tokens)``:
  the summed training loss; families may override it with a faster path.

`enc` and `state` are plain dicts (values: tensors, or lists/tuples/dicts of
tensors, or non-tensor scalars), batch-first, so the default reorder below
works for every family that keeps to that shape.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import torch
from torch import nn

from triptych.errors import UserError
from triptych.registry import Registry
from triptych.text.models.vocab_loss import projected_nll

__all__ = [
    "Seq2Seq",
    "sequence_loss",
    "register_model",
    "build_model",
    "list_models",
    "select_rows",
]


def select_rows(tree: Any, index: torch.Tensor) -> Any:
    """`index_select(0, index)` on every tensor in a nest of dicts/lists/tuples.

    Non-tensor leaves (a step counter, a flag) are shared unchanged.
    """
    if isinstance(tree, torch.Tensor):
        return tree.index_select(0, index)
    if isinstance(tree, dict):
        return {k: select_rows(v, index) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(select_rows(v, index) for v in tree)
    return tree


def sequence_loss(
    log_probs: torch.Tensor, targets: torch.Tensor, pad_id: int, label_smoothing: float = 0.0
) -> tuple[torch.Tensor, int]:
    """Label-smoothed NLL summed over the non-pad targets, and their count.

    log_probs (B,T,V) or (N,V), targets (B,T) or (N,). The engine divides the
    SUM by the tokens of the whole optimiser step, so accumulation and DDP
    give the gradient of one big batch. Smoothing spreads `label_smoothing`
    of the target mass uniformly over the vocabulary (Szegedy et al. 2016).
    """
    keep = targets != pad_id
    if keep.all():  # the families' loss() pass real positions only; a masked copy costs ~25% here
        lp, tgt = log_probs.reshape(-1, log_probs.size(-1)), targets.reshape(-1)
    else:
        lp, tgt = log_probs[keep], targets[keep]  # (N, V): only real tokens cost anything
    nll = -lp.gather(-1, tgt.unsqueeze(-1)).squeeze(-1)  # (N,)
    if label_smoothing > 0.0:
        smooth = -lp.mean(-1)  # (N,) cross-entropy with the uniform distribution
        loss = (1.0 - label_smoothing) * nll + label_smoothing * smooth
    else:
        loss = nll
    return loss.sum(), int(tgt.numel())


class Seq2Seq(nn.Module):
    """Base class of the text model families; see the module docstring."""

    pad_id: int
    # True when step() accepts G*B token rows against an `enc` of B rows (row
    # r reading encoder row r // G): beam search then never copies the
    # encoder's tensors K times. False: beam search expands `enc` to B*K rows.
    grouped_steps: bool = False

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor, return_attention: bool = False):
        raise NotImplementedError

    def encode(self, src: torch.Tensor) -> dict:
        raise NotImplementedError

    def init_state(self, enc: dict) -> dict:
        raise NotImplementedError

    def step(self, tokens: torch.Tensor, enc: dict, state: dict) -> tuple[torch.Tensor, dict]:
        raise NotImplementedError

    def step_scores(self, tokens: torch.Tensor, enc: dict, state: dict) -> tuple[torch.Tensor, dict]:
        """`step` for a search that only ranks each row's next tokens (greedy):
        scores (N, V) in the log-probabilities' order, in any float dtype. A
        family may skip the normalisation; by default, the log-probabilities."""
        return self.step(tokens, enc, state)

    def reorder_encoder(self, enc: dict, index: torch.Tensor) -> dict:
        return select_rows(enc, index)

    def reorder_state(self, state: dict, index: torch.Tensor) -> dict:
        return select_rows(state, index)

    def reorder(self, enc: dict, state: dict, index: torch.Tensor) -> tuple[dict, dict]:
        return self.reorder_encoder(enc, index), self.reorder_state(state, index)

    def loss(
        self,
        src: torch.Tensor,
        tgt_in: torch.Tensor,
        tgt_out: torch.Tensor,
        label_smoothing: float = 0.0,
    ) -> tuple[torch.Tensor, int]:
        return sequence_loss(self(src, tgt_in), tgt_out, self.pad_id, label_smoothing)

    def projected_loss(
        self, h: torch.Tensor, targets: torch.Tensor, label_smoothing: float
    ) -> tuple[torch.Tensor, int]:
        """`loss` for a family whose output is the plain projection (no copy
        attention) of h (N, C): through its `output` layer, or the tied
        `embed` table where it has none, in one chunked pass (`vocab_loss`)."""
        weight, bias = (self.embed.weight, None) if self.output is None else (self.output.weight, self.output.bias)
        return projected_nll(h, weight, bias, targets, label_smoothing), int(targets.numel())


# name -> (config dataclass, model class); filled by @register_model in each family's file.
MODELS: Registry[tuple[type, Callable[..., Seq2Seq]]] = Registry("text model", key="model.name")


def register_model(name: str, config_cls: type):
    """Class decorator: make a family buildable as `model.name: <name>`."""

    def deco(cls):
        MODELS.register(name, (config_cls, cls))
        cls.model_name = name
        return cls

    return deco


def list_models() -> list[str]:
    return sorted(MODELS)


def model_config(name: str, model_cfg: dict | None, separate_vocab: bool = False):
    """Family `name`'s config dataclass from the YAML `model:` section (a
    plain dict), checked: a key the family does not know, or a value it does
    not allow, is a `UserError` that names it. Cheap, so training calls it
    before it reads the corpus or writes anything.

    The key `name` itself is ignored. `separate_vocab`: the source has a
    vocabulary of its own (tokenizer.shared: false).
    """
    if not isinstance(name, str):
        raise UserError(f"model.name: unknown model {name!r}; allowed: {', '.join(MODELS.list())}")
    config_cls = MODELS.get(name)[0]
    fields = {f.name for f in dataclasses.fields(config_cls)}
    values = {k: v for k, v in (model_cfg or {}).items() if k != "name"}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise UserError(
            f"model: unknown key {unknown[0]!r} for model {name!r}; allowed: {', '.join(sorted(fields))}"
        )
    from triptych.config import from_dict

    cfg = from_dict(config_cls, values, source=None, prefix="model.")  # types and bounds checked, key named
    if separate_vocab and getattr(cfg, "copy", False):  # copying scatters source ids onto target ids
        raise UserError("model.copy: copy attention needs one vocabulary for source and target (tokenizer.shared: true)")
    return cfg


def build_model(name: str, model_cfg: dict | None, vocab_size: int, pad_id: int,
                source_vocab_size: int | None = None) -> Seq2Seq:
    """Build family `name` from the YAML `model:` section, checked by `model_config`.

    `source_vocab_size`: None when source and target share the vocabulary
    (and the embedding); else the size of the source's own embedding.
    """
    cfg = model_config(name, model_cfg, separate_vocab=source_vocab_size is not None)
    return MODELS.get(name)[1](cfg, vocab_size, pad_id, source_vocab_size=source_vocab_size)


# Each family registers itself on import; keep this list at the bottom.
from triptych.text.models import transformer  # noqa: E402,F401
from triptych.text.models import conv  # noqa: E402,F401
from triptych.text.models import rnn  # noqa: E402,F401
