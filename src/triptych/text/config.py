"""The text domain's config: one dataclass a section, mirrored by the YAML recipes."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from triptych.config import TrainConfig
from triptych.errors import SettingError, UserError
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


# What each DecodeConfig field means; `text` commands take each as a flag
# (`--max-len` for max_len) with this help, so a new field is a new flag.
DECODE_HELP = {
    "beam": "beam size (1 = greedy); default from the checkpoint's config",
    "max_len": "maximum summary length in tokens",
    "min_len": "fewest tokens before the summary may end",
    "length_penalty": "GNMT alpha of the beam's length normalisation",
    "no_repeat_ngram": "forbid repeating n-grams of this size (0 = off)",
    "batch_size": "documents decoded together",
    "nbest": "keep the beam's N best candidates (with --json, summarize prints them)",
    "rerank": "choose among the n-best with the reranker fitted by `text rerank fit`",
    "top_k": "sample each token from the K likeliest (0 = off: beam or greedy)",
    "top_p": "sample each token from the smallest set of probability P (1 = off)",
    "seed": "the draws of sampling (default: unseeded)",
}


class DecodeError(SettingError):
    """A decoding setting out of range; a recipe reads its names as `decode.beam`."""

    def __init__(self, template: str):
        super().__init__(template, lambda name: f"decode.{name}")


@dataclass(frozen=True)
class DecodeConfig:
    """How summaries are generated: the one decoding currency.

    The CLI, the server, evaluation, captions and the report all build one
    and hand it to `triptych.text.generation.generate`; it is checked here,
    once, whoever builds it (a recipe, `--beam`, a request, `replace`).
    """

    beam: int = bounded(4, ge=1, le=MAX_BEAM)
    max_len: int = bounded(40, ge=1, le=MAX_LEN)
    min_len: int = bounded(1, ge=0, le=MAX_LEN)
    length_penalty: float = 0.6  # GNMT alpha (any finite number)
    no_repeat_ngram: int = bounded(3, ge=0)
    batch_size: int = bounded(64, ge=1)
    nbest: int | None = None
    rerank: bool = False
    top_k: int = 0
    top_p: float = 1.0
    seed: int | None = None

    def __post_init__(self):
        for name, low in (("beam", 1), ("max_len", 1), ("batch_size", 1), ("min_len", 0), ("no_repeat_ngram", 0)):
            value = getattr(self, name)
            if value < low:
                raise DecodeError(f"{{{name}}} {value}: out of range (at least {low})")
        for name, high in (("beam", MAX_BEAM), ("max_len", MAX_LEN), ("min_len", MAX_LEN)):
            if getattr(self, name) > high:
                raise DecodeError(f"{{{name}}} {getattr(self, name)}: out of range (at most {high})")
        if not math.isfinite(float(self.length_penalty)):
            raise DecodeError(f"{{length_penalty}} {self.length_penalty}: expected a finite number")
        if self.min_len > self.max_len:
            raise DecodeError(f"{{min_len}} {self.min_len}: is more than {{max_len}} {self.max_len}")
        if self.rerank and self.beam < 2:
            raise DecodeError(f"{{rerank}} needs an n-best list, but {{beam}} {self.beam} keeps one candidate (use {{beam}} 4 or more)")
        if self.nbest is not None and not 1 <= self.nbest <= self.beam:
            raise DecodeError(f"{{nbest}} {self.nbest}: must be between 1 and the beam size ({self.beam})")
        if self.rerank and self.nbest is not None and self.nbest < 2:
            raise DecodeError("{rerank} needs an n-best list of at least 2 candidates ({nbest} 2 or more)")
        if self.top_k < 0 or not 0 < self.top_p <= 1:
            raise DecodeError(f"{{top_k}} {self.top_k} / {{top_p}} {self.top_p}: out of range (top_k >= 0, 0 < top_p <= 1)")
        if self.sampling and (self.rerank or self.nbest is not None):
            raise DecodeError("{top_k} / {top_p}: sampling draws one candidate a document; {nbest} and {rerank} need beam search")
        if self.seed is not None and not self.sampling:
            raise DecodeError("{seed}: only sampling draws ({top_k} or {top_p})")

    @property
    def sampling(self) -> bool:
        """Tokens drawn (top-k / top-p), not searched (greedy / beam)."""
        return self.top_k > 0 or self.top_p < 1.0

    def candidates(self, fitted: int | None = None) -> int:
        """Candidates a document to decode: `nbest`, else the reranker's `fitted` size
        (within the beam) when reranking, else 1."""
        if self.nbest is not None:
            return self.nbest
        return min(fitted or self.beam, self.beam) if self.rerank else 1

    def greedy(self) -> "DecodeConfig":
        """The same limits, decoded greedily (one candidate): what validation scores."""
        return dataclasses.replace(self, beam=1, nbest=None, rerank=False, top_k=0, top_p=1.0, seed=None)

    def replace(self, **changes) -> "DecodeConfig":
        """A copy with `changes` (None values ignored), checked again."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


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

