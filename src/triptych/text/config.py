"""The text domain's config: one dataclass a section, mirrored by the YAML recipes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from triptych.config import TrainConfig
from triptych.errors import UserError
from triptych.schema import bounded

DEBIAN = "data/debian-descriptions"
MAX_VOCAB = 1 << 24  # 16.7M tokens; 2^32 makes the tokenizers library abort the process
MAX_MIN_FREQUENCY = (1 << 32) - 1  # the library's u32
MAX_BEAM = 256  # each beam row holds the decoder state of every layer: 256 is far past any useful beam
MAX_LEN = 100_000  # tokens a summary may have; the decoder allocates per step up to this
KINDS = ("bpe", "bpe-char", "word")


@dataclass
class DataConfig:
    train: str = f"{DEBIAN}/train.jsonl.gz"
    valid: str = f"{DEBIAN}/valid.jsonl.gz"
    test: str = f"{DEBIAN}/test.jsonl.gz"
    # JSONL field names; when unset the first known pair present is used
    # (document/summary, article/highlights, text/summary, source/target).
    source_field: str | None = None
    target_field: str | None = None
    max_source_len: int = bounded(256, ge=1, le=MAX_LEN)  # tokens; longer documents are truncated (counted)
    max_target_len: int = bounded(48, ge=2, le=MAX_LEN)  # with the end-of-summary token
    batch_tokens: int = bounded(4000, ge=1)  # padded source + target tokens per micro-batch
    limit_train: int | None = bounded(None, ge=1)  # use only the first N training pairs (tests, smoke runs)

    def __post_init__(self):
        if self.batch_tokens < self.max_source_len + self.max_target_len:
            raise UserError(f"data.batch_tokens: {self.batch_tokens} cannot hold one sequence (max_source_len "
                            f"{self.max_source_len} + max_target_len {self.max_target_len}); allowed: at least "
                            f"{self.max_source_len + self.max_target_len}")


@dataclass
class TokenizerConfig:
    path: str | None = None  # an existing tokenizer.json; otherwise trained on data.train
    kind: str = bounded("bpe", choices=KINDS)  # bpe (byte-level) | bpe-char (BPE on characters, for Chinese) | word (top vocab_size words, the rest <unk>)
    vocab_size: int = bounded(8000, ge=1, le=MAX_VOCAB)  # the target's (and, when shared, the source's) vocabulary
    lowercase: bool = False
    min_frequency: int = bounded(2, ge=0, le=MAX_MIN_FREQUENCY)
    # true: one vocabulary trained on both sides (embeddings shared, copy
    # attention possible). false: the source side gets its own tokenizer
    # (saved as source-tokenizer.json beside tokenizer.json, the target's)
    # and the model its own source embedding; for language pairs whose
    # scripts or words share little.
    shared: bool = True
    source_vocab_size: int | None = bounded(None, ge=1, le=MAX_VOCAB)  # shared: false only; default: vocab_size
    source_path: str | None = None  # shared: false only: an existing source tokenizer.json (with `path`)

    def __post_init__(self):
        if self.shared:
            for name in ("source_vocab_size", "source_path"):
                if getattr(self, name) is not None:
                    raise UserError(f"tokenizer.{name}: only used with tokenizer.shared: false (one vocabulary serves both sides now)")
        elif bool(self.path) != bool(self.source_path):
            raise UserError("tokenizer.path and tokenizer.source_path: with tokenizer.shared: false give both files (target and source) or neither")


@dataclass
class DecodeConfig:
    beam: int = bounded(4, ge=1, le=MAX_BEAM)
    max_len: int = bounded(40, ge=1, le=MAX_LEN)
    min_len: int = bounded(1, ge=0, le=MAX_LEN)
    length_penalty: float = 0.6  # GNMT alpha (any finite number)
    no_repeat_ngram: int = bounded(3, ge=0)
    batch_size: int = bounded(64, ge=1)

    def __post_init__(self):
        check_decode(self)


@dataclass
class EvalConfig:
    valid_rouge_samples: int = bounded(500, ge=0)  # greedy-decoded valid pairs scored at each evaluation
    stem: bool = True


@dataclass
class RLConfig:
    """Self-critical RL fine-tuning (see triptych/text/rl.py); needs init_from."""

    enabled: bool = False  # true: train with the ROUGE reward instead of maximum likelihood alone
    reward: str = "rougeL"  # rouge1 | rouge2 | rougeL | a weighted sum, e.g. 0.5*rouge2+0.5*rougeL
    gamma: float = bounded(0.9984, ge=0, le=1)  # loss = gamma * L_rl + (1 - gamma) * L_ml (Paulus et al. 2017)
    temperature: float = bounded(1.0, gt=0)  # of the sampling distribution
    no_repeat_ngram: int | None = bounded(None, ge=0)  # for the sample and the greedy baseline; None: decode's


@dataclass
class TextConfig:
    task: str = "text"
    seed: int = 1
    init_from: str | None = None  # a checkpoint whose weights start the run (fine-tuning)
    label_smoothing: float = bounded(0.1, ge=0, lt=1)
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    # `name` picks the family (transformer, ...); the other keys are that
    # family's config fields, checked by the model registry.
    model: dict[str, Any] = field(default_factory=lambda: {"name": "transformer"})
    train: TrainConfig = field(default_factory=lambda: TrainConfig(metric="rougeL", metric_mode="max"))
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    rl: RLConfig = field(default_factory=RLConfig)

    def __post_init__(self):
        from triptych.schema import check_metric

        rouge = ("rouge1", "rouge2", "rougeL", "rougeLsum") if self.eval.valid_rouge_samples > 0 else ()
        check_metric(self.train.metric, ("valid_loss", *rouge), "" if rouge else "eval.valid_rouge_samples is 0: no ROUGE is measured")
        # Copy attention scatters source token ids onto the target distribution:
        # it needs one vocabulary for both sides. Refused before any work is done.
        if not self.tokenizer.shared and self.model.get("copy"):
            raise UserError(
                "model.copy: copy attention needs one vocabulary for source and target, but tokenizer.shared is false; "
                "set model.copy=false or tokenizer.shared=true"
            )


def check_decode(d: DecodeConfig, prefix: str = "decode.") -> None:
    """The decoding values that depend on each other, and bounds for values set in code
    (the CLI's --beam, --min-len, ... are applied with dataclasses.replace)."""
    from triptych.schema import check_finite, check_section

    check_section(d, prefix)
    check_finite(float(d.length_penalty), f"{prefix}length_penalty")
    if d.min_len > d.max_len:
        raise UserError(f"{prefix}min_len: {d.min_len} is larger than {prefix}max_len {d.max_len}; allowed: at most max_len")
