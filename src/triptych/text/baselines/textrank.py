"""TextRank (Mihalcea & Tarau 2004): extractive summaries and keywords by PageRank on a text graph.

**Sentences.** The vertices are the document's sentences, split by
`triptych.text.baselines.extractive.split_sentences` (so Lead and TextRank see the same
sentences); the undirected edge between S_i and S_j has the paper's weight

    sim(S_i, S_j) = |{w : w in S_i and w in S_j}| / (log |S_i| + log |S_j|)

where |S| counts the sentence's words and the numerator its distinct shared
words. There are no self-loops. When both sentences are one word long the
denominator is 0 and the weight is the overlap itself (0 or 1); a sentence
without words has no edges.

**Ranking.** The paper's weighted PageRank with damping d = 0.85,

    WS(V_i) = (1 - d) + d * sum_j  w_ji / (sum_k w_jk) * WS(V_j),

is the linear system (I - d P^T) WS = (1 - d) 1 with P the row-normalised
weight matrix. It is solved by power iteration from WS = 1 until no score
moves by more than `tol`; the map contracts by d in the L1 norm, so this
always converges. `textrank_many` ranks every document of a corpus in one
iteration over the union of their graphs (they share no edges), which costs
the same numpy calls as ranking a single document.

**Words** are lower-cased (after NFKC normalisation) runs of letters and
digits, and every CJK character is a word of its own, as ROUGE's CJK mode
counts them: Chinese has no spaces, and single characters are what its
sentences share.

**Selection.** The top `sentences` by score (ties: the earlier sentence),
returned in document order. With a `words` budget, sentences are taken in
score order while they fit; the first one that does not fit is cut to the
words left and the selection stops, so a summary never exceeds the budget
and is never empty for a document with words. Budget words are
whitespace-separated words, each CJK character counting as one and CJK
punctuation as none (on English text this is Lead's unit).

**Keywords** (section 3 of the paper): the candidate words are the words
that pass a filter (the paper keeps nouns and adjectives with a tagger; we
keep alphabetic words of two letters or more that are not stop words), the
vertices are the distinct candidates, and two are joined when they occur
within `window` positions of each other in the sequence of candidates
(unweighted, undirected; the paper's best window is 2). After ranking, the
top third of the vertices (or `top`) are keywords, and runs of keywords
adjacent in the text are collapsed into multi-word keyphrases, scored by
their best word. Text without spaces (Chinese) yields no keywords: single
characters are not words, and finding words there needs a segmenter.
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Sequence

import numpy as np

from triptych.text.baselines.extractive import split_sentences
from triptych.text.metrics.rouge import _CJK_CHARS

DAMPING = 0.85

_WORD = re.compile(f"[{_CJK_CHARS}]|[^\\W{_CJK_CHARS}]+")
# CJK punctuation (U+3000-303F, full-width forms U+FF00-FFEF) is not a budget word.
_BUDGET_WORD = re.compile(f"[{_CJK_CHARS}]|[^\\s{_CJK_CHARS}\u3000-\u303f\uff00-\uffef]+")
_CJK_END = re.compile(f"[{_CJK_CHARS}。！？」』”）]$")

# Function words that carry no topic: a keyword candidate is never one of these.
STOP_WORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being below
between both but by can could did do does doing down during each either etc few for from further had has
have having he her here hers herself him himself his how however i if in into is it its itself just may
me might more most must my myself no nor not now of off on once only or other our ours ourselves out over
own same shall she should so some such than that the their theirs them themselves then there these they
this those through thus to too under until up upon us use used uses using very via was we were what when
where which while who whom why will with within without would yet you your yours yourself yourselves
""".split())


def words(text: str) -> list[str]:
    """The words of `text` as TextRank compares them (module doc)."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return _WORD.findall(text.lower())


def pagerank(
    n: int,
    src: np.ndarray,
    dst: np.ndarray,
    weight: np.ndarray,
    damping: float = DAMPING,
    tol: float = 1e-8,
    max_iter: int = 1000,
) -> np.ndarray:
    """Weighted PageRank scores (n,) of a graph given as directed edges src -> dst.

    An undirected graph passes each edge in both directions. Scores follow
    the paper's un-normalised form: a vertex without in-edges scores 1 - d.
    """
    src, dst = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
    weight = np.asarray(weight, dtype=np.float64)
    out = np.bincount(src, weights=weight, minlength=n)  # (n,) total out-weight per vertex
    share = weight / out[src] if len(src) else weight  # (E,) w_ji / sum_k w_jk
    scores = np.ones(n)
    for _ in range(max_iter):
        new = (1.0 - damping) + damping * np.bincount(dst, weights=share * scores[src], minlength=n)
        if n == 0 or np.abs(new - scores).max() <= tol:
            return new
        scores = new
    return scores


def similarity(a: set, len_a: int, b: set, len_b: int) -> float:
    """The paper's sentence similarity; `a`, `b` word sets, `len_*` word counts."""
    shared = len(a & b)
    if not shared:
        return 0.0
    norm = math.log(len_a) + math.log(len_b)
    return shared / norm if norm > 0 else float(shared)


# Sentences of one document that enter its graph: the first MAX_SENTENCES.
# The graph has up to n^2 / 2 edges; 1,000 sentences (a long news article
# has 40) bound it to 0.5M edges, about 30 MB, whatever the input's size.
MAX_SENTENCES = 1000


def _sentence_edges(sentences: list[str], offset: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The undirected sentence graph of one document (both directions): src, dst, weight.

    The shared-word counts come from a sparse product A A^T of the binary
    sentence x word matrix, so only pairs that share a word are ever
    touched (the loop over all pairs held 22 GB for a 1 MB document)."""
    from scipy import sparse

    tokens = [words(s) for s in sentences]
    vocab: dict[str, int] = {}
    rows, cols = [], []
    for i, t in enumerate(tokens):
        for w in set(t):
            rows.append(i)
            cols.append(vocab.setdefault(w, len(vocab)))
    n = len(sentences)
    if not rows:
        return (np.zeros(0, np.int64),) * 2 + (np.zeros(0),)
    a = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, len(vocab)))
    shared = sparse.triu(a @ a.T, k=1).tocoo()  # (n, n) upper triangle: |S_i & S_j| for i < j
    i, j, count = shared.row.astype(np.int64), shared.col.astype(np.int64), shared.data.astype(np.float64)
    keep = count > 0
    i, j, count = i[keep], j[keep], count[keep]
    logs = np.log(np.maximum(np.array([len(t) for t in tokens], dtype=np.float64), 1.0))  # log 1 = 0
    norm = logs[i] + logs[j]
    w = np.where(norm > 0, count / np.where(norm > 0, norm, 1.0), count)
    return np.concatenate([i, j]) + offset, np.concatenate([j, i]) + offset, np.concatenate([w, w])


def rank_sentences(documents: Sequence[str], damping: float = DAMPING, tol: float = 1e-8) -> list[tuple[list[str], np.ndarray]]:
    """(sentences, scores) of every document, ranked together in one PageRank run.

    A document's sentences past MAX_SENTENCES are not ranked (they score 0)."""
    split = [split_sentences(d) for d in documents]
    parts = []
    offsets = [0]
    for sentences in split:
        parts.append(_sentence_edges(sentences[:MAX_SENTENCES], offsets[-1]))
        offsets.append(offsets[-1] + len(sentences))
    src, dst, weight = (np.concatenate([p[k] for p in parts]) if parts else np.zeros(0) for k in range(3))
    scores = pagerank(offsets[-1], src, dst, weight, damping, tol)
    for sentences, a in zip(split, offsets):
        scores[a + MAX_SENTENCES : a + len(sentences)] = 0.0  # beyond the cap: never chosen over a ranked one
    return [(s, scores[a:b]) for s, a, b in zip(split, offsets, offsets[1:])]


def _cut(sentence: str, k: int) -> tuple[str, int]:
    """`sentence` cut to its first `k` budget words, and how many words it keeps."""
    spans = list(_BUDGET_WORD.finditer(sentence))
    if len(spans) <= k:
        return sentence, len(spans)
    return sentence[: spans[k - 1].end()], k


def select(sentences: list[str], scores: np.ndarray, count: int | None = 1, words: int | None = None) -> str:
    """The summary: top-`count` sentences (within `words`) joined in document order."""
    if count is not None and count < 1:
        raise ValueError("count must be >= 1 or None")
    if words is not None and words < 1:
        raise ValueError("words must be >= 1 or None")
    # Rounded so that scores equal up to the solver's tolerance tie, and ties go to the earlier sentence.
    order = sorted(range(len(sentences)), key=lambda i: (-round(float(scores[i]), 6), i))
    if count is not None:
        order = order[:count]
    chosen: dict[int, str] = {}
    left = words
    for i in order:
        if left is None:
            chosen[i] = sentences[i]
            continue
        text, used = _cut(sentences[i], left)
        if used == 0:
            continue
        chosen[i] = text
        left -= used
        if text != sentences[i] or left == 0:
            break
    out = ""
    for i in sorted(chosen):
        joiner = "" if not out or _CJK_END.search(out) else " "
        out += joiner + chosen[i]
    return out


def textrank_many(documents: Sequence[str], sentences: int | None = 1, words: int | None = None, damping: float = DAMPING) -> list[str]:
    """TextRank summaries of many documents (one PageRank run for all of them)."""
    return [select(s, scores, sentences, words) for s, scores in rank_sentences(documents, damping)]


def textrank(document: str, sentences: int | None = 1, words: int | None = None, damping: float = DAMPING) -> str:
    """The TextRank summary of one document: its top `sentences` within `words` words."""
    return textrank_many([document], sentences, words, damping)[0]


def _candidate(word: str) -> bool:
    return len(word) > 1 and word.isalpha() and word not in STOP_WORDS


def keywords(text: str, window: int = 2, top: int | None = None, damping: float = DAMPING) -> list[tuple[str, float]]:
    """Keyword TextRank: (keyphrase, score) pairs, best first (module doc)."""
    if window < 2:
        raise ValueError("window must be >= 2")
    tokens = words(text)
    candidates = [w for w in tokens if _candidate(w)]
    vocab = {w: i for i, w in enumerate(dict.fromkeys(candidates))}
    edges = set()
    ids = [vocab[w] for w in candidates]
    for k, a in enumerate(ids):
        for b in ids[k + 1 : k + window]:  # co-occurrence within `window` candidates
            if a != b:
                edges.update(((a, b), (b, a)))
    src, dst = (np.array(x, dtype=np.int64) for x in zip(*edges)) if edges else (np.zeros(0, np.int64),) * 2
    scores = pagerank(len(vocab), src, dst, np.ones(len(src)), damping)
    keep = top if top is not None else max(1, len(vocab) // 3)
    best = sorted(vocab, key=lambda w: (-scores[vocab[w]], vocab[w]))[:keep]
    chosen = set(best)
    phrases: dict[str, float] = {}
    run: list[str] = []
    for w in tokens + [""]:  # collapse runs of adjacent keywords into keyphrases
        if w in chosen:
            run.append(w)
            continue
        if run:
            phrase = " ".join(run)
            phrases[phrase] = max(phrases.get(phrase, 0.0), max(float(scores[vocab[x]]) for x in run))
            run = []
    return sorted(phrases.items(), key=lambda kv: -kv[1])
