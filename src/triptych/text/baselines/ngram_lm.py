"""An n-gram language model of summaries with interpolated Kneser-Ney smoothing.

Why: the reranker asks "does this candidate read like a summary?" — a
question the summarizer's own log-probability answers only through the
source. A count-based LM of the training summaries is the classic second
opinion (the talk's "rerank the beam with other models"); it costs a few
seconds to build and microseconds to query.

Smoothing (Kneser & Ney 1995; Chen & Goodman 1998, interpolated form), for
an order-n model over token ids, with one absolute discount `d_k` per
order k:

    P_k(w | h) = max(c_k(h w) - d_k, 0) / c_k(h •)
                 + d_k * N1+(h •) / c_k(h •) * P_{k-1}(w | h[1:])

where c_n is the raw count at the highest order and, below it, c_k(h w) is
the *continuation* count N1+(• h w) (how many distinct words precede h w):
a word that only ever follows one context ("Francisco") gets little
lower-order mass. A context never seen falls through to the next order
(alpha 0, gamma 1). The unigram level is N1+(• w) / N1+(• •) discounted by
`d_1` and interpolated with the uniform distribution over the vocabulary, so
every token id, even one never seen in a summary, has a probability and each
distribution sums to one. With `d_1 = 0` (no uniform floor) the model is
nltk's `KneserNeyInterpolated` given the same n-grams (tests check this to
1e-12). Discounts default to Ney's estimate n1 / (n1 + 2 n2) of each order.
Modified Kneser-Ney (three discounts an order) is not implemented.

Sentences are padded with n-1 `<s>` on the left and one `</s>` on the right;
all k-grams (k <= n) of the padded sequence are counted. The file records
the tokenizer's fingerprint, so an LM is never applied to another
tokenizer's ids.
"""

from __future__ import annotations

import gzip
import json
import math
import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable, Sequence

from triptych.errors import UserError
from triptych.files import atomic_path

FORMAT = "triptych-kneser-ney-lm"
VERSION = 1


def ney_discount(counts: Iterable[int]) -> float:
    """n1 / (n1 + 2 n2) from the count-of-counts; 0.75 when undefined."""
    n1 = n2 = 0
    for c in counts:
        n1 += c == 1
        n2 += c == 2
    d = n1 / (n1 + 2 * n2) if n1 + n2 else 0.75
    return min(max(d, 0.05), 0.95)


class KneserNeyLM:
    """Interpolated Kneser-Ney over integer token ids (see the module docstring)."""

    def __init__(self, order: int, vocab_size: int, bos: int, eos: int, ngrams: dict[int, Counter],
                 discounts: Sequence[float] | None = None, tokenizer: str = ""):
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        if not ngrams.get(1):
            raise ValueError("an n-gram LM needs at least one sentence")
        self.order, self.vocab_size, self.bos, self.eos = order, vocab_size, bos, eos
        self.tokenizer = tokenizer
        self.ngrams = ngrams  # k -> Counter{k-gram tuple: raw count}, k = 1..order
        # c_k(h w): raw counts at the top order, continuation counts below it.
        self.counts: dict[int, Counter] = {order: ngrams[order]}
        for k in range(1, order):
            cont: Counter = Counter()
            for gram in ngrams[k + 1]:
                cont[gram[1:]] += 1
            self.counts[k] = cont
        # per context h: (sum_w c_k(h w), number of distinct w)
        self.context: dict[int, dict[tuple, tuple[int, int]]] = {}
        for k, table in self.counts.items():
            total: dict[tuple, int] = defaultdict(int)
            types: dict[tuple, int] = defaultdict(int)
            for gram, c in table.items():
                total[gram[:-1]] += c
                types[gram[:-1]] += 1
            self.context[k] = {h: (total[h], types[h]) for h in total}
        if discounts is None:
            discounts = [ney_discount(self.counts[k].values()) for k in range(1, order + 1)]
        if len(discounts) != order or not all(0.0 <= d < 1.0 for d in discounts):
            raise ValueError(f"need {order} discounts in [0, 1), got {list(discounts)}")
        self.discounts = list(discounts)

    # --- building -----------------------------------------------------------
    @classmethod
    def fit(cls, sentences: Iterable[Sequence[int]], *, order: int, vocab_size: int, bos: int, eos: int,
            discounts: Sequence[float] | None = None, tokenizer: str = "") -> "KneserNeyLM":
        ngrams: dict[int, Counter] = {k: Counter() for k in range(1, order + 1)}
        for sent in sentences:
            padded = (bos,) * (order - 1) + tuple(sent) + (eos,)
            for k in range(1, order + 1):
                table = ngrams[k]
                for i in range(len(padded) - k + 1):
                    table[padded[i : i + k]] += 1
        return cls(order, vocab_size, bos, eos, ngrams, discounts, tokenizer)

    # --- scoring ------------------------------------------------------------
    def prob(self, word: int, context: Sequence[int] = ()) -> float:
        """P(word | the last order-1 tokens of context)."""
        context = tuple(context)[-(self.order - 1) :] if self.order > 1 else ()
        return self._prob(word, context)

    def _prob(self, word: int, h: tuple) -> float:
        k = len(h) + 1
        d = self.discounts[k - 1]
        seen = self.context[k].get(h)
        if k == 1:
            total, types = seen  # N1+(• •) and the number of distinct words
            base = max(self.counts[1].get((word,), 0) - d, 0.0) / total
            return base + d * types / total / self.vocab_size
        if seen is None:  # an unseen context: defer to the shorter one
            return self._prob(word, h[1:])
        total, types = seen
        alpha = max(self.counts[k].get(h + (word,), 0) - d, 0.0) / total
        return alpha + d * types / total * self._prob(word, h[1:])

    def logprob(self, tokens: Sequence[int]) -> float:
        """Natural-log probability of a whole summary, its `</s>` included."""
        history = [self.bos] * (self.order - 1)
        total = 0.0
        for w in list(tokens) + [self.eos]:
            p = self._prob(w, tuple(history[len(history) - self.order + 1 :]) if self.order > 1 else ())
            total += math.log(p) if p > 0 else float("-inf")
            history.append(w)
        return total

    # --- files --------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        data = {
            "format": FORMAT, "version": VERSION, "order": self.order, "vocab_size": self.vocab_size,
            "bos": self.bos, "eos": self.eos, "discounts": self.discounts, "tokenizer": self.tokenizer,
            # one flat list a k: id_1, ..., id_k, count, id_1, ...
            "ngrams": {str(k): [x for gram, c in table.items() for x in (*gram, c)] for k, table in self.ngrams.items()},
        }
        with atomic_path(path) as tmp:
            with gzip.open(tmp, "wt", encoding="utf-8") as fh:
                json.dump(data, fh, separators=(",", ":"))

    @classmethod
    def load(cls, path: str | os.PathLike, tokenizer: str | None = None) -> "KneserNeyLM":
        """Read an LM file; `tokenizer`: the fingerprint it must have been built for."""
        path = Path(path)
        if not path.is_file():
            raise UserError(f"{path}: no n-gram LM file")
        try:
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                data = json.load(fh)
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise ValueError("not a triptych n-gram LM")
            if data.get("version") != VERSION:
                raise ValueError(f"format version {data.get('version')}, expected {VERSION}")
            order = int(data["order"])
            ngrams: dict[int, Counter] = {}
            for k in range(1, order + 1):
                flat = data["ngrams"][str(k)]
                if len(flat) % (k + 1):
                    raise ValueError(f"the {k}-gram table is truncated")
                ngrams[k] = Counter({tuple(flat[i : i + k]): flat[i + k] for i in range(0, len(flat), k + 1)})
            lm = cls(order, int(data["vocab_size"]), int(data["bos"]), int(data["eos"]), ngrams, data["discounts"], str(data["tokenizer"]))
        except (OSError, EOFError, ValueError, KeyError, TypeError, IndexError, gzip.BadGzipFile) as e:
            raise UserError(f"{path}: corrupt n-gram LM file ({str(e).splitlines()[0][:120] if str(e) else type(e).__name__})") from None
        if tokenizer is not None and lm.tokenizer != tokenizer:
            raise UserError(f"{path}: the n-gram LM was built for another tokenizer ({lm.tokenizer or 'unknown'}, the checkpoint's is {tokenizer})")
        return lm
