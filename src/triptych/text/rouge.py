"""ROUGE-N, ROUGE-L and ROUGE-Lsum, equal to Google's `rouge-score` 0.1.2.

Why our own: summarization numbers are only comparable when computed the
way everyone computes them, and `rouge-score` is that reference — but it is
slow (it re-runs nltk's Porter stemmer on every word of every text, twice
when ROUGE-Lsum is asked for, and fills full Python LCS tables). This
module gives the same numbers (tested to 1e-6 on real and perturbed pairs)
several times faster, which matters when ROUGE is a reinforcement-learning
reward computed on every sampled summary.

English mode reproduces `rouge-score` exactly:

- tokens: the text is lower-cased, every character outside ``[a-z0-9]`` is
  a separator, the remaining runs are the tokens. **Everything that is not
  ASCII is deleted** — accented letters split words, and Chinese, Japanese
  or Korean text has no tokens at all (every score is 0). Use ``cjk=True``
  for such text.
- stemming (``stem=True``, `rouge-score`'s ``use_stemmer=True``): nltk's
  Porter stemmer in its default (NLTK_EXTENSIONS) mode, applied only to
  tokens longer than 3 characters. Results are cached per distinct token.
- ROUGE-N: clipped n-gram overlap; precision over the prediction's n-grams,
  recall over the reference's (each denominator at least 1).
- ROUGE-L: longest common subsequence of the whole token sequences
  (computed bit-parallel, O(len) big-integer operations).
- ROUGE-Lsum: the texts are split into sentences on ``"\\n"`` (and only
  there); for every reference sentence the union of its LCS with each
  prediction sentence is taken (one particular LCS: the one `rouge-score`'s
  table backtrack picks), and hits are clipped by token counts as in
  ROUGE-1.5.5. On single-line texts ROUGE-Lsum equals ROUGE-L.
- empty texts (or texts with no tokens) score 0 for every type.

CJK mode (``cjk=True``) scores by characters: after NFKC normalisation
(full-width ``ＡＢＣ１２３`` become ASCII) and lower-casing, every Han,
Hiragana, Katakana or Hangul character is one token (CJK punctuation such
as ``，。、・「」`` is not a token), and runs of ASCII letters and digits
are word tokens (stemmed like English ones when ``stem=True``). Everything
else is a separator, as in English mode.

F-measure is the balanced F1 = 2PR / (P + R), 0 when P + R = 0. All scores
are fractions in [0, 1]; `rouge_f1_x100` gives the x100 figures papers
print.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from typing import NamedTuple, Sequence

import numpy as np

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")

_ASCII_WORD = re.compile(r"[a-z0-9]+")
_VALID_TOKEN = re.compile(r"[a-z0-9]+")
# Han (URO, Ext A, compatibility, Ext B-F and supplements), Hiragana,
# Katakana (without the punctuation U+30A0 and U+30FB), Katakana phonetic
# extensions, Hangul Jamo, compatibility Jamo and syllables.
_CJK_CHARS = (
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
    "\u3041-\u309f\u30a1-\u30fa\u30fc-\u30ff\u31f0-\u31ff"
    "\u1100-\u11ff\u3131-\u318e\uac00-\ud7af"
)
_CJK_TOKEN = re.compile(f"[a-z0-9]+|[{_CJK_CHARS}]")


class Score(NamedTuple):
    """One ROUGE score, as fractions (the field names of rouge-score's)."""

    precision: float
    recall: float
    fmeasure: float


_ZERO = Score(0.0, 0.0, 0.0)


def _score(hits: int, n_pred: int, n_ref: int) -> Score:
    # Same operations, in the same order, as rouge-score: bit-equal floats.
    precision = hits / max(n_pred, 1)
    recall = hits / max(n_ref, 1)
    if precision + recall > 0:
        return Score(precision, recall, 2 * precision * recall / (precision + recall))
    return Score(precision, recall, 0.0)


class _StemCache(dict):
    """token -> stemmed token ('' when the stem is not a valid token).

    A dict whose misses run the stemmer: ``list(map(cache.__getitem__,
    tokens))`` then costs one C-level lookup per already-seen token.
    """

    def __init__(self, stem: bool):
        super().__init__()
        self._stemmer = None
        if stem:
            from nltk.stem.porter import PorterStemmer  # rouge-score's stemmer

            self._stemmer = PorterStemmer()

    def __missing__(self, token: str) -> str:
        out = token
        if self._stemmer is not None and len(token) > 3:
            out = self._stemmer.stem(token)
            if not _VALID_TOKEN.fullmatch(out):
                out = ""
        self[token] = out
        return out


# Shared by every scorer: stemming is a pure function of the token.
_CACHES = {True: _StemCache(True), False: _StemCache(False)}


def _lcs_rows(a: Sequence[str], b: Sequence[str]) -> list[int]:
    """Bit-parallel LCS (Hyyro 2004): one bit vector over `b` per prefix of `a`.

    Bit j of row i is 0 exactly where the LCS table steps up, so
    ``T[i][j] = j - popcount(row[i] & (2**j - 1))`` and ``len(b) -
    popcount(row[-1])`` is the LCS length.
    """
    masks: dict[str, int] = {}
    for j, tok in enumerate(b):
        masks[tok] = masks.get(tok, 0) | (1 << j)
    full = (1 << len(b)) - 1
    v = full
    rows = [v]
    get = masks.get
    for tok in a:
        m = get(tok)
        if m:
            u = v & m
            v = ((v + u) | (v - u)) & full
        rows.append(v)
    return rows


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token sequences."""
    if not a or not b:
        return 0
    if len(a) > len(b):  # loop over the shorter one, bits over the longer
        a, b = b, a
    masks: dict[str, int] = {}
    for j, tok in enumerate(b):
        masks[tok] = masks.get(tok, 0) | (1 << j)
    full = (1 << len(b)) - 1
    v = full
    get = masks.get
    for tok in a:
        m = get(tok)
        if m:
            u = v & m
            v = ((v + u) | (v - u)) & full
    return len(b) - v.bit_count()


def _lcs_indices(ref: Sequence[str], can: Sequence[str]) -> list[int]:
    """Indices into `ref` of the LCS that rouge-score's backtrack reads out.

    Walking back from the table's corner: take a match; otherwise step left
    when the cell to the left is strictly larger than the cell above, else
    step up. Tie-breaking matters: ROUGE-Lsum unions these index sets.
    """
    rows = _lcs_rows(ref, can)
    i, j = len(ref), len(can)
    out = []
    while i > 0 and j > 0:
        if ref[i - 1] == can[j - 1]:
            out.append(i - 1)
            i -= 1
            j -= 1
            continue
        left = (j - 1) - (rows[i] & ((1 << (j - 1)) - 1)).bit_count()
        up = j - (rows[i - 1] & ((1 << j) - 1)).bit_count()
        if left > up:
            j -= 1
        else:
            i -= 1
    return out


def _lsum_hits(ref_lines: list[list[str]], pred_lines: list[list[str]]) -> int:
    """Summary-level LCS hits (ROUGE paper section 3.2, as ROUGE-1.5.5 clips)."""
    union_tokens: Counter = Counter()
    pred_vocab = set().union(*pred_lines)
    for r in ref_lines:
        if pred_vocab.isdisjoint(r):
            continue
        picked: set[int] = set()
        for c in pred_lines:
            picked.update(_lcs_indices(r, c))
        union_tokens.update(r[i] for i in picked)
    pred_counts = Counter()
    for c in pred_lines:
        pred_counts.update(c)
    # Reference counts never clip: union indices are distinct reference tokens.
    return sum(min(n, pred_counts[t]) for t, n in union_tokens.items())


def _overlap(a: Counter, b: Counter) -> int:
    if len(a) > len(b):
        a, b = b, a
    get = b.get
    return sum([min(n, get(k, 0)) for k, n in a.items()])


def _ngrams(tokens: list[str], n: int) -> Counter:
    if n == 1:
        return Counter(tokens)
    if n == 2:
        return Counter(zip(tokens, tokens[1:]))
    return Counter(zip(*(tokens[i:] for i in range(n))))


class RougeScorer:
    """Scores (prediction, reference) pairs; reusable, with optional caching.

    ``cache_references=True`` memoises the tokenisation of reference texts
    (bounded), which pays off when the same references are scored again and
    again, e.g. as a reinforcement-learning reward over many samples.
    """

    def __init__(self, types: Sequence[str] = ROUGE_TYPES, *, stem: bool = True,
                 cjk: bool = False, cache_references: bool = False,
                 cache_size: int = 100_000):
        self.types = tuple(types)
        self.orders = {}
        for t in self.types:
            if t in ("rougeL", "rougeLsum"):
                continue
            m = re.fullmatch(r"rouge([1-9])", t)
            if not m:
                raise ValueError(f"unknown ROUGE type {t!r} (rouge1..rouge9, rougeL, rougeLsum)")
            self.orders[t] = int(m.group(1))
        self.stem = stem
        self.cjk = cjk
        self._stems = _CACHES[bool(stem)]
        self._pattern = _CJK_TOKEN if cjk else _ASCII_WORD
        self._ref_cache: dict[str, tuple] | None = {} if cache_references else None
        self._cache_size = cache_size

    def tokenize_lines(self, text: str) -> list[list[str]]:
        """Tokens of each line that has any (lines = ROUGE-Lsum's sentences)."""
        if self.cjk:
            text = unicodedata.normalize("NFKC", text)
        text = text.lower()
        findall = self._pattern.findall
        get = self._stems.__getitem__
        out = []
        for line in text.split("\n") if "\n" in text else (text,):
            toks = findall(line)
            if toks:
                toks = list(map(get, toks))
                if "" in toks:
                    toks = [t for t in toks if t]
                if toks:
                    out.append(toks)
        return out

    def tokenize(self, text: str) -> list[str]:
        """The token sequence that ROUGE-N and ROUGE-L compare."""
        return [t for line in self.tokenize_lines(text) for t in line]

    def _analyse(self, text: str) -> tuple[list[list[str]], list[str]]:
        lines = self.tokenize_lines(text)
        tokens = lines[0] if len(lines) == 1 else [t for line in lines for t in line]
        return lines, tokens

    def _analyse_reference(self, text: str):
        cache = self._ref_cache
        if cache is None:
            return self._analyse(text)
        hit = cache.get(text)
        if hit is None:
            if len(cache) >= self._cache_size:
                cache.clear()
            hit = cache[text] = self._analyse(text)
        return hit

    def score(self, prediction: str, reference: str) -> dict[str, Score]:
        """All requested types for one pair (note: prediction first)."""
        p_lines, p_tok = self._analyse(prediction)
        r_lines, r_tok = self._analyse_reference(reference)
        out = {}
        lcs = None
        for t in self.types:
            if not p_tok or not r_tok:
                out[t] = _ZERO
            elif t == "rougeL" or (t == "rougeLsum" and len(p_lines) == 1 and len(r_lines) == 1):
                if lcs is None:
                    lcs = lcs_length(r_tok, p_tok)
                out[t] = _score(lcs, len(p_tok), len(r_tok))
            elif t == "rougeLsum":
                out[t] = _score(_lsum_hits(r_lines, p_lines), len(p_tok), len(r_tok))
            else:
                n = self.orders[t]
                hits = _overlap(_ngrams(p_tok, n), _ngrams(r_tok, n))
                out[t] = _score(hits, len(p_tok) - n + 1, len(r_tok) - n + 1)
        return out

    def score_many(self, predictions: Sequence[str], references: Sequence[str]) -> list[dict[str, Score]]:
        if len(predictions) != len(references):
            raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
        score = self.score
        return [score(p, r) for p, r in zip(predictions, references)]


def score_pairs(predictions: Sequence[str], references: Sequence[str], *, stem: bool = True,
                cjk: bool = False, types: Sequence[str] = ROUGE_TYPES) -> list[dict[str, Score]]:
    """ROUGE of each prediction against its reference: one dict per pair."""
    return RougeScorer(types, stem=stem, cjk=cjk).score_many(predictions, references)


def mean_scores(per_pair: Sequence[dict[str, Score]]) -> dict[str, Score]:
    """Mean precision, recall and F1 over pairs (each pair weighs the same)."""
    if not per_pair:
        raise ValueError("no pairs to average")
    out = {}
    for t in per_pair[0]:
        m = np.array([s[t] for s in per_pair], dtype=np.float64).mean(axis=0)
        out[t] = Score(float(m[0]), float(m[1]), float(m[2]))
    return out


def bootstrap_intervals(per_pair: Sequence[dict[str, Score]], *, samples: int = 1000,
                        confidence: float = 0.95, seed: int = 0) -> dict[str, dict]:
    """Percentile-bootstrap confidence interval of the mean F1 of each type.

    Resamples the pairs with replacement `samples` times (numpy, in chunks
    that keep memory small) and takes the (1-confidence)/2 and
    (1+confidence)/2 percentiles of the resampled means. Returns, per type,
    ``{"mean", "low", "high"}`` as fractions plus the settings used.
    Deterministic for a given seed.
    """
    if not per_pair:
        raise ValueError("no pairs to bootstrap")
    if not 0 < confidence < 1:
        raise ValueError("confidence must be in (0, 1)")
    if samples < 1:
        raise ValueError("samples must be positive")
    types = list(per_pair[0])
    f1 = np.array([[s[t].fmeasure for t in types] for s in per_pair], dtype=np.float64)  # (N, T)
    n = len(f1)
    rng = np.random.default_rng(seed)
    means = np.empty((samples, len(types)))
    chunk = max(1, 4_000_000 // (n * len(types)))
    for start in range(0, samples, chunk):
        stop = min(samples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = f1[idx].mean(axis=1)  # (chunk, N, T) -> (chunk, T)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(means, [tail, 100 - tail], axis=0)
    point = f1.mean(axis=0)
    return {
        t: {"mean": float(point[k]), "low": float(low[k]), "high": float(high[k]),
            "confidence": confidence, "samples": samples}
        for k, t in enumerate(types)
    }


def rouge_f1_x100(predictions: Sequence[str], references: Sequence[str], **kw) -> dict[str, float]:
    """Mean F1 x 100 per type: the figures `triptych text rouge --json` prints."""
    means = mean_scores(score_pairs(predictions, references, **kw))
    return {t: 100.0 * s.fmeasure for t, s in means.items()}
