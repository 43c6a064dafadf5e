"""Tokenisation: byte-level BPE, BPE on characters or a word vocabulary (Hugging Face `tokenizers`).

Byte-level BPE has no unknown tokens: any UTF-8 text (English, Chinese,
code) encodes, and words the vocabulary never saw fall apart into smaller
pieces instead of becoming `<unk>` — the talk's remedy for the rare-word
problem. A leading space is added so that a word is the same token at the
start of a text and in its middle.

The word vocabulary (`tokenizer.kind: word`) is the thing BPE is measured
against: the text is split into words and punctuation marks, the N most
frequent keep an id and every other word becomes `<unk>` (shown as
``<unk>`` in decoded text, so the loss is visible). Text without spaces
(Chinese) splits only at punctuation there, so whole phrases are "words":
another reason BPE is the default.

BPE on characters (`tokenizer.kind: bpe-char`, SentencePiece-style: spaces
kept as a `▁` mark) starts its merges from characters instead of bytes.
Chinese is where it matters: a byte-level vocabulary that is small for the
script splits a character into its 3 UTF-8 bytes, and a model can then
emit half a character; over characters every token is whole text, and only
a character never seen in training becomes `<unk>`. All kinds are the same
`Tokenizer` class over a Hugging Face model, saved as one `tokenizer.json`
file that travels inside every text checkpoint.

By default one vocabulary serves both sides (`tokenizer.shared: true`): the
models share their source and target embeddings and copy attention can
point at source tokens. With `tokenizer.shared: false` the source side has a
tokenizer of its own, `source-tokenizer.json` beside `tokenizer.json` (which
stays the target's, so every older checkpoint reads as before);
`load_tokenizers` reads either layout.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Iterable

from triptych.errors import UserError
from triptych.files import atomic_path

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
SPECIAL_TOKENS = [PAD, UNK, BOS, EOS]
FILENAME = "tokenizer.json"  # the target side's (both sides' when shared)
SOURCE_FILENAME = "source-tokenizer.json"  # the source side's, with tokenizer.shared: false
from triptych.text.config import KINDS  # noqa: E402 - one list, beside tokenizer.kind


class Tokenizer:
    """A thin wrapper that fixes the special ids and batch-encodes fast."""

    def __init__(self, hf_tokenizer):
        self.hf = hf_tokenizer
        ids = [hf_tokenizer.token_to_id(t) for t in SPECIAL_TOKENS]
        if any(i is None for i in ids):
            raise UserError(f"tokenizer lacks the special tokens {SPECIAL_TOKENS}")
        self.pad_id, self.unk_id, self.bos_id, self.eos_id = ids
        # Words and BPE on characters show their `<unk>`s; pad/bos/eos are never text.
        model, pre = type(hf_tokenizer.model).__name__, type(hf_tokenizer.pre_tokenizer).__name__
        self.kind = "word" if model == "WordLevel" else "bpe-char" if pre == "Metaspace" else "bpe"
        self._hidden = {self.pad_id, self.bos_id, self.eos_id}

    @property
    def vocab_size(self) -> int:
        return self.hf.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        try:
            return self.hf.encode(text).ids
        except (TypeError, UnicodeEncodeError):
            _name_bad_text([text])
            raise

    def encode_batch(self, texts: list[str], chunk: int = 2048) -> list[list[int]]:
        # In chunks: an HF Encoding also holds tokens, offsets and masks, and
        # 50k of them at once cost a gigabyte that the ids alone do not need.
        ids: list[list[int]] = []
        for start in range(0, len(texts), chunk):
            try:
                ids.extend(e.ids for e in self.hf.encode_batch(texts[start : start + chunk]))
            except (TypeError, UnicodeEncodeError):
                _name_bad_text(texts[start : start + chunk], start)
                raise
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        if self.kind != "bpe":  # the kinds that can have <unk>s show them
            return self.hf.decode([i for i in ids if i not in self._hidden], skip_special_tokens=False).strip()
        return self.hf.decode(list(ids), skip_special_tokens=True).strip()

    def decode_batch(self, batch: list[list[int]]) -> list[str]:
        if self.kind != "bpe":
            return [self.decode(ids) for ids in batch]
        return [s.strip() for s in self.hf.decode_batch(batch, skip_special_tokens=True)]

    def fingerprint(self) -> str:
        """A short hash of the vocabulary and rules: what an n-gram LM records
        so it is never applied with another tokenizer's ids."""
        import hashlib

        return hashlib.sha256(self.hf.to_str().encode("utf-8")).hexdigest()[:16]

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


def check_pair(source: Tokenizer, target: Tokenizer, where: str | os.PathLike) -> None:
    """Separate source and target vocabularies must agree on the special ids:
    the source is padded with the target's pad id, and a model has one."""
    src = (source.pad_id, source.unk_id, source.bos_id, source.eos_id)
    tgt = (target.pad_id, target.unk_id, target.bos_id, target.eos_id)
    if src != tgt:
        raise UserError(f"{where}: the source tokenizer's special ids {src} differ from the target's {tgt} (pad, unk, bos, eos)")
    if source.kind != target.kind:
        raise UserError(f"{where}: the source tokenizer is {source.kind!r} but the target's is {target.kind!r}; both sides use one kind")


def load_tokenizers(directory: str | os.PathLike, shared: bool = True) -> tuple[Tokenizer, Tokenizer]:
    """The (target, source) tokenizers of a run or checkpoint directory; one
    object twice when `shared` (what every checkpoint from before separate
    vocabularies is)."""
    directory = Path(directory)
    target = Tokenizer.load(directory)  # a directory's tokenizer.json, or the file itself
    if shared:
        return target, target
    path = directory / SOURCE_FILENAME
    if not path.is_file():
        raise UserError(f"{path}: no source tokenizer, yet its config.yaml says tokenizer.shared: false")
    source = Tokenizer.load(path)
    check_pair(source, target, path)
    return target, source


def tokenizers_of(path: str | os.PathLike) -> tuple[Tokenizer, Tokenizer]:
    """(target, source) of a tokenizer.json file (one object twice) or of a run
    or checkpoint directory (its source-tokenizer.json, when it has one)."""
    path = Path(path)
    return load_tokenizers(path, shared=not (path.is_dir() and (path / SOURCE_FILENAME).is_file()))


def train_bpe(
    texts: Iterable[str],
    *,
    vocab_size: int = 8000,
    lowercase: bool = False,
    min_frequency: int = 2,
    extra_special_tokens: list[str] | None = None,
    unit: str = "byte",
) -> Tokenizer:
    """Train a BPE tokenizer on an iterator of texts: byte-level (`unit="byte"`,
    no `<unk>` ever) or over characters (`unit="char"`, for Chinese)."""
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import decoders, models, pre_tokenizers, trainers

    if unit == "char":
        return _train_char_bpe(texts, vocab_size=vocab_size, lowercase=lowercase, min_frequency=min_frequency, extra_special_tokens=extra_special_tokens)
    if vocab_size < 300:
        raise UserError(f"vocabulary size {vocab_size} is too small: byte-level BPE needs at least 300 (256 bytes + specials)")
    tok = HFTokenizer(models.BPE(unk_token=UNK))
    tok.normalizer = _normalizer(lowercase)
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


def _normalizer(lowercase: bool):
    from tokenizers import normalizers

    return normalizers.Sequence([normalizers.NFC()] + ([normalizers.Lowercase()] if lowercase else []))


def _train_char_bpe(texts, *, vocab_size, lowercase, min_frequency, extra_special_tokens) -> Tokenizer:
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import decoders, models, pre_tokenizers, trainers

    specials = SPECIAL_TOKENS + [t for t in (extra_special_tokens or []) if t not in SPECIAL_TOKENS]
    if vocab_size <= len(specials):
        raise UserError(f"vocabulary size {vocab_size} is too small for BPE on characters")
    tok = HFTokenizer(models.BPE(unk_token=UNK))
    tok.normalizer = _normalizer(lowercase)
    tok.pre_tokenizer = pre_tokenizers.Metaspace()  # spaces become "▁", kept in the tokens
    tok.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=specials, show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return Tokenizer(tok)


def train_word(
    texts: Iterable[str],
    *,
    vocab_size: int = 8000,
    lowercase: bool = False,
    min_frequency: int = 1,
    extra_special_tokens: list[str] | None = None,
) -> Tokenizer:
    """A word vocabulary: the `vocab_size` most frequent words (specials
    included), every other word `<unk>`. Words are runs of letters/digits,
    and each run of punctuation is a token of its own (HF `Whitespace`)."""
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import models, pre_tokenizers, trainers

    specials = SPECIAL_TOKENS + [t for t in (extra_special_tokens or []) if t not in SPECIAL_TOKENS]
    if vocab_size <= len(specials):
        raise UserError(f"vocabulary size {vocab_size} is too small: a word vocabulary needs more than its {len(specials)} special tokens")
    tok = HFTokenizer(models.WordLevel(unk_token=UNK))
    tok.normalizer = _normalizer(lowercase)
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=specials, show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return Tokenizer(tok)


def _name_bad_text(texts, first: int = 0) -> None:
    """The tokenizers library raises TypeError on text that is not valid Unicode:
    find it and say which (the readers check earlier; this is the last guard)."""
    from triptych.files import check_unicode

    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise UserError(f"text {first + i}: expected a string, got {type(t).__name__}")
        check_unicode(t, f"text {first + i}")


def train_tokenizer(texts: Iterable[str], *, kind: str = "bpe", **options) -> Tokenizer:
    """`kind` picks byte-level BPE, BPE on characters or words; the options are theirs."""
    if kind not in KINDS:
        raise UserError(f"tokenizer kind {kind!r}: expected one of {', '.join(KINDS)}")
    from triptych.text.config import MAX_MIN_FREQUENCY, MAX_VOCAB

    # Beyond these the tokenizers library aborts the whole process (rc 134) or overflows.
    if options.get("vocab_size", 0) > MAX_VOCAB:
        raise UserError(f"vocabulary size {options['vocab_size']} is too large (allowed: at most {MAX_VOCAB:,})")
    if not 0 <= options.get("min_frequency", 0) <= MAX_MIN_FREQUENCY:
        raise UserError(f"min_frequency {options['min_frequency']}: allowed 0 to {MAX_MIN_FREQUENCY:,}")
    if kind == "word":
        return train_word(texts, **options)
    return train_bpe(texts, unit="char" if kind == "bpe-char" else "byte", **options)


def unk_stats(tokenizer: Tokenizer, texts: list[str]) -> dict:
    """How much of `texts` the vocabulary loses: the share of tokens that are
    `<unk>` and the share of texts with at least one, plus tokens a text."""
    ids = tokenizer.encode_batch(texts)
    tokens = sum(len(x) for x in ids)
    unks = [sum(1 for i in x if i == tokenizer.unk_id) for x in ids]
    return {
        "texts": len(texts),
        "tokens": tokens,
        "unk_tokens": sum(unks),
        "unk_rate": sum(unks) / max(tokens, 1),
        "texts_with_unk": sum(1 for u in unks if u) / max(len(texts), 1),
        "tokens_per_text": tokens / max(len(texts), 1),
    }


def looks_cjk(texts: Iterable[str]) -> bool:
    """True when most non-empty texts hold a Han, kana or Hangul character:
    such text has no spaces between words and is scored by characters
    (ROUGE's CJK mode), which is chosen automatically from the references."""
    from triptych.text.metrics.rouge import _CJK_CHARS

    has = re.compile(f"[{_CJK_CHARS}]").search
    flags = [bool(has(t)) for t in texts if t.strip()]
    return bool(flags) and sum(flags) * 2 > len(flags)


def describe(tokenizer: Tokenizer) -> dict:
    """A summary for `--json` output."""
    model = json.loads(tokenizer.hf.to_str())
    return {
        "kind": tokenizer.kind,
        "vocab_size": tokenizer.vocab_size,
        "special_tokens": SPECIAL_TOKENS,
        "lowercase": "Lowercase" in json.dumps(model.get("normalizer")),
    }
