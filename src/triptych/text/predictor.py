"""Summarizing with a trained checkpoint: load it, encode documents, decode.

Decoding itself is `triptych.text.generation`'s: documents go in
length-sorted batches (little padding) and come back in the caller's order.
"""

from __future__ import annotations

import sys
from pathlib import Path


from triptych.text.config import DecodeConfig, TextConfig
from triptych.text.generation.generate import decode_documents
from triptych.text.generation.rerank import Candidate, candidates_from
from triptych.text.tokenizer import load_tokenizers


class Summarizer:
    """A loaded text checkpoint: config, tokenizer(s) and model in eval mode."""

    def __init__(self, checkpoint: str | Path, device: str = "cpu"):
        from triptych.engine.checkpoint import load_for_inference
        from triptych.text.task import build_seq2seq

        def build(cfg: TextConfig):
            # The target's tokenizer (decodes), and the source's (encodes): one object unless tokenizer.shared is false.
            self.tokenizer, self.source_tokenizer = load_tokenizers(Path(checkpoint), cfg.tokenizer.shared)
            return build_seq2seq(cfg, self.tokenizer, self.source_tokenizer)

        loaded = load_for_inference(checkpoint, TextConfig, "text", build, device=device,
                                    name=lambda cfg: cfg.model.get("name", "transformer"))
        self.directory, self.meta, self.cfg, self.model, self.device = loaded.directory, loaded.meta, loaded.cfg, loaded.model, loaded.device

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

    def summarize(self, documents: list[str], decode: DecodeConfig | None = None, source: str = "input", progress=None,
                  **changes) -> list[str]:
        """Each document's summary, decoded as `decode` (default: the checkpoint's)
        with `changes` (e.g. beam=1) says."""
        decode = (decode or self.cfg.decode).replace(**changes)
        return decode_documents(self.model, self.tokenizer, self.encode_documents(documents, source), decode,
                                device=self.device, progress=progress)

    def candidates(self, sources: list[list[int]], decode: DecodeConfig, nbest: int, progress=None) -> list[list[Candidate]]:
        """Each encoded document's `nbest` beam candidates, decoded, best GNMT score first."""
        hyps = decode_documents(self.model, self.tokenizer, sources, decode, nbest=nbest, device=self.device, progress=progress)
        return [candidates_from(h, self.tokenizer) for h in hyps]
