"""Summarizing with a trained checkpoint: load it, batch documents, decode.

Documents are decoded in length-sorted batches (little padding) and the
summaries returned in the caller's order.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from triptych.errors import UserError
from triptych.text.config import DecodeConfig, TextConfig
from triptych.nn.prepacked import packed_weights
from triptych.text.tokenizer import Tokenizer, load_tokenizers


class Summarizer:
    """A loaded text checkpoint: config, tokenizer(s) and model in eval mode."""

    def __init__(self, checkpoint: str | Path, device: str = "cpu"):
        from triptych.engine.checkpoint import load_weights
        from triptych.text.task import build_model

        self.directory = Path(checkpoint)
        self.meta, self.cfg = self._read(self.directory)
        # The target's tokenizer (decodes), and the source's (encodes): one object unless tokenizer.shared is false.
        self.tokenizer, self.source_tokenizer = load_tokenizers(self.directory, self.cfg.tokenizer.shared)
        self.model = build_model(self.cfg, self.tokenizer, self.source_tokenizer)
        try:
            load_weights(self.directory, self.model)
        except UserError as e:
            if "do not fit" not in str(e):
                raise
            name = self.cfg.model.get("name", "transformer")  # weights of another family (or size) than config.yaml says
            raise UserError(f"{e}; its config.yaml describes a {name!r} model (model.name), the weights another architecture") from None
        self.device = torch.device(device)
        self.model.to(self.device).eval()

    @staticmethod
    def _read(directory: Path) -> tuple[dict, TextConfig]:
        from triptych import config as configs
        from triptych.engine.checkpoint import load_checkpoint_meta

        meta, config_dict = load_checkpoint_meta(directory, expected_domain="text")
        return meta, configs.from_dict(TextConfig, config_dict, str(directory / "config.yaml"))

    @classmethod
    def read_config(cls, checkpoint: str | Path) -> TextConfig:
        """A checkpoint's config without loading its weights (checked the same way)."""
        return cls._read(Path(checkpoint))[1]

    def encode_documents(self, documents: list[str], source: str = "input") -> list[list[int]]:
        limit = self.cfg.data.max_source_len
        ids = self.source_tokenizer.encode_batch(documents)
        long = sum(len(x) > limit for x in ids)
        if long:
            print(f"triptych: {source}: truncated {long} document(s) to the model's {limit} tokens", file=sys.stderr)
        return [x[:limit] or [self.source_tokenizer.unk_id] for x in ids]

    def summarize(self, documents: list[str], decode: DecodeConfig | None = None, source: str = "input", **overrides) -> list[str]:
        decode = decode or self.cfg.decode
        ids = self.encode_documents(documents, source)
        return summarize_ids(self.model, self.tokenizer, ids, decode, device=self.device, **overrides)


@torch.inference_mode()
@packed_weights()  # packed once for all the batches
def summarize_ids(model, tokenizer: Tokenizer, sources: list[list[int]], decode: DecodeConfig, *, device, beam: int | None = None, progress=None) -> list[str]:
    """Decode summaries of already-encoded documents, in the input order."""
    from triptych.text.generation.search import beam_search, greedy
    from triptych.text.task import pad

    beam = decode.beam if beam is None else beam
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    out: list[str | None] = [None] * len(sources)
    common = dict(bos=tokenizer.bos_id, eos=tokenizer.eos_id, max_len=decode.max_len, min_len=decode.min_len, no_repeat_ngram=decode.no_repeat_ngram)
    for start in range(0, len(order), decode.batch_size):
        chunk = order[start : start + decode.batch_size]
        src = pad([sources[i] for i in chunk], tokenizer.pad_id).to(device)
        if beam <= 1:
            tokens = greedy(model, src, **common)
        else:
            hyps = beam_search(model, src, beam=beam, length_penalty=decode.length_penalty, **common)
            tokens = [h[0].tokens for h in hyps]
        for i, text in zip(chunk, tokenizer.decode_batch([list(t) for t in tokens])):
            out[i] = text
        if progress is not None:
            progress.update(len(chunk))
    return out  # type: ignore[return-value]


@torch.inference_mode()
@packed_weights()
def nbest_ids(model, tokenizer: Tokenizer, sources: list[list[int]], decode: DecodeConfig, *, nbest: int, device, progress=None) -> list:
    """Beam search keeping each document's `nbest` hypotheses (`Hypothesis`:
    tokens, GNMT score, log-prob), best score first, in the input order: the
    candidates a reranker chooses among."""
    from triptych.text.generation.search import beam_search
    from triptych.text.task import pad

    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    out: list = [None] * len(sources)
    for start in range(0, len(order), decode.batch_size):
        chunk = order[start : start + decode.batch_size]
        src = pad([sources[i] for i in chunk], tokenizer.pad_id).to(device)
        hyps = beam_search(model, src, beam=decode.beam, nbest=nbest, length_penalty=decode.length_penalty, bos=tokenizer.bos_id,
                           eos=tokenizer.eos_id, max_len=decode.max_len, min_len=decode.min_len, no_repeat_ngram=decode.no_repeat_ngram)
        for i, h in zip(chunk, hyps):
            out[i] = h
        if progress is not None:
            progress.update(len(chunk))
    return out
