"""Subword tokenisation: byte-level BPE trained with Hugging Face `tokenizers`.

Byte-level BPE has no unknown tokens: any UTF-8 text (English, Chinese,
code) encodes, and words the vocabulary never saw fall apart into smaller
pieces instead of becoming `<unk>` — the talk's remedy for the rare-word
problem. A leading space is added so that a word is the same token at the
start of a text and in its middle. The tokenizer file travels inside every
text checkpoint.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

from triptych.errors import UserError
from triptych.files import atomic_path

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
SPECIAL_TOKENS = [PAD, UNK, BOS, EOS]
FILENAME = "tokenizer.json"


class Tokenizer:
    """A thin wrapper that fixes the special ids and batch-encodes fast."""

    def __init__(self, hf_tokenizer):
        self.hf = hf_tokenizer
        ids = [hf_tokenizer.token_to_id(t) for t in SPECIAL_TOKENS]
        if any(i is None for i in ids):
            raise UserError(f"tokenizer lacks the special tokens {SPECIAL_TOKENS}")
        self.pad_id, self.unk_id, self.bos_id, self.eos_id = ids

    @property
    def vocab_size(self) -> int:
        return self.hf.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return self.hf.encode(text).ids

    def encode_batch(self, texts: list[str], chunk: int = 2048) -> list[list[int]]:
        # In chunks: an HF Encoding also holds tokens, offsets and masks, and
        # 50k of them at once cost a gigabyte that the ids alone do not need.
        ids: list[list[int]] = []
        for start in range(0, len(texts), chunk):
            ids.extend(e.ids for e in self.hf.encode_batch(texts[start : start + chunk]))
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        return self.hf.decode(list(ids), skip_special_tokens=True).strip()

    def decode_batch(self, batch: list[list[int]]) -> list[str]:
        return [s.strip() for s in self.hf.decode_batch(batch, skip_special_tokens=True)]

    def pieces(self, ids: Iterable[int]) -> list[str]:
        """Readable text of each token on its own (for attention maps)."""
        return [self.hf.decode([i], skip_special_tokens=False) for i in ids]

    def save(self, path: str | os.PathLike) -> None:
        path = Path(path)
        if path.is_dir():
            path = path / FILENAME
        with atomic_path(path) as tmp:
            self.hf.save(str(tmp))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Tokenizer":
        from tokenizers import Tokenizer as HFTokenizer

        path = Path(path)
        if path.is_dir():
            path = path / FILENAME
        if not path.is_file():
            raise UserError(f"{path}: no tokenizer file")
        try:
            return cls(HFTokenizer.from_file(str(path)))
        except Exception as e:  # the Rust side raises a generic Exception
            raise UserError(f"{path}: not a valid tokenizer file ({str(e).splitlines()[0][:120]})") from None


def train_bpe(
    texts: Iterable[str],
    *,
    vocab_size: int = 8000,
    lowercase: bool = False,
    min_frequency: int = 2,
    extra_special_tokens: list[str] | None = None,
) -> Tokenizer:
    """Train a byte-level BPE tokenizer on an iterator of texts."""
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import decoders, models, normalizers, pre_tokenizers, trainers

    if vocab_size < 300:
        raise UserError(f"vocabulary size {vocab_size} is too small: byte-level BPE needs at least 300 (256 bytes + specials)")
    tok = HFTokenizer(models.BPE(unk_token=UNK))
    steps = [normalizers.NFC()] + ([normalizers.Lowercase()] if lowercase else [])
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    specials = SPECIAL_TOKENS + [t for t in (extra_special_tokens or []) if t not in SPECIAL_TOKENS]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return Tokenizer(tok)


def describe(tokenizer: Tokenizer) -> dict:
    """A summary for `--json` output."""
    model = json.loads(tokenizer.hf.to_str())
    return {
        "vocab_size": tokenizer.vocab_size,
        "special_tokens": SPECIAL_TOKENS,
        "lowercase": "Lowercase" in json.dumps(model.get("normalizer")),
    }
