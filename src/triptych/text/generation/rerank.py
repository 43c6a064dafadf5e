"""Reranking the beam's n-best list with other models (the talk's second trick).

Beam search ranks candidates by one number, the summarizer's length-
normalised log-probability. The candidates it leaves behind are often
better by ROUGE; a reranker rescores each document's n-best list with a few
cheap features and picks the highest weighted sum:

- ``beam_score``: the GNMT length-normalised log-probability (the beam's own key);
- ``length``: tokens of the candidate;
- ``lm``: log-probability per token under an interpolated Kneser-Ney n-gram
  LM of the training summaries (`ngram_lm.py`) — fluency as summaries go;
- ``coverage``: the share of the source's distinct words the candidate uses;
- ``support``: the share of the candidate's words found in the source (a
  guard against invented words);
- ``mbr``: minimum Bayes risk (Kumar & Byrne 2004) — the candidate's expected
  ROUGE-L against the *other* candidates, weighted by their posterior
  (softmax of the sequence log-probabilities over the n-best list): a
  consensus candidate shares most with what the model also considered likely.

Words are ROUGE's tokens (stemmed; characters for Chinese). Features are
standardised (mean/std over the fitting candidates) and weighted linearly.

Fitting (`fit_weights`): coordinate ascent on the mean ROUGE-L F1 of the
chosen candidates (Metzler & Croft 2007): start from the beam's own choice
(weight 1 on ``beam_score``, 0 elsewhere), then, feature by feature, try
every weight on a grid and keep the best, until a round changes nothing.
ROUGE-L of the top choice is piecewise constant in the weights, so
gradients do not help; the start point makes the fitted objective never
worse than plain beam on the fitting set, and six weights on thousands of
documents leave little room to overfit. The weights, the standardisation
and the LM are stored beside the checkpoint (`rerank.json`,
`summary-lm.json.gz`) by `triptych text rerank fit`, and applied by
`--rerank` in `text eval` and `text summarize` (their work: `text/workflows/nbest.py`).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from triptych.errors import UserError
from triptych.files import atomic_write_text
from triptych.text.baselines.ngram_lm import KneserNeyLM

FEATURES = ("beam_score", "length", "lm", "coverage", "support", "mbr")
WEIGHTS_FILE = "rerank.json"
LM_FILE = "summary-lm.json.gz"
FORMAT = "triptych-reranker"
GRID = np.round(np.arange(-3.0, 3.0001, 0.1), 2)  # weights tried for each standardised feature


@dataclass
class Candidate:
    """One entry of an n-best list, decoded."""

    tokens: list[int]
    text: str
    score: float  # GNMT length-normalised log-probability (the beam's key)
    logprob: float  # summed log-probability of the sequence


def candidates_from(hypotheses, tokenizer) -> list[Candidate]:
    """Decode one document's hypotheses; drop placeholders that never scored
    (a beam with nothing finished) unless nothing else is left."""
    kept = [h for h in hypotheses if math.isfinite(h.score)] or list(hypotheses[:1])
    texts = tokenizer.decode_batch([list(h.tokens) for h in kept])
    return [Candidate(list(h.tokens), t, float(h.score) if math.isfinite(h.score) else -1e4,
                      float(h.logprob) if math.isfinite(h.logprob) else -1e4) for h, t in zip(kept, texts)]


def mbr_scores(texts: Sequence[str], logprobs: Sequence[float], scorer) -> list[float]:
    """Expected ROUGE-L F1 of each candidate against the others, weighted by
    their posterior p_j = softmax(logprobs)_j renormalised over j != i.
    `scorer`: a `RougeScorer` with rougeL. One candidate alone scores 0."""
    k = len(texts)
    if k < 2:
        return [0.0] * k
    lp = np.asarray(logprobs, dtype=np.float64)
    post = np.exp(lp - lp.max())
    post /= post.sum()
    sim = np.eye(k)
    for i in range(k):
        for j in range(i + 1, k):  # ROUGE-L F1 is symmetric
            sim[i, j] = sim[j, i] = scorer.score(texts[i], texts[j])["rougeL"].fmeasure
    out = []
    for i in range(k):
        w = post.copy()
        w[i] = 0.0
        out.append(float(w @ sim[i] / w.sum()) if w.sum() > 0 else 0.0)
    return out


class FeatureExtractor:
    """The feature matrix (K, len(FEATURES)) of one document's candidates."""

    def __init__(self, lm: KneserNeyLM, *, stem: bool = True, cjk: bool = False):
        from triptych.text.metrics.rouge import RougeScorer

        self.lm = lm
        self.scorer = RougeScorer(("rougeL",), stem=stem, cjk=cjk)

    def __call__(self, source: str, cands: list[Candidate]) -> np.ndarray:
        src = set(self.scorer.tokenize(source))
        mbr = mbr_scores([c.text for c in cands], [c.logprob for c in cands], self.scorer)
        rows = []
        for c, m in zip(cands, mbr):
            words = self.scorer.tokenize(c.text)
            support = sum(w in src for w in words) / len(words) if words else 0.0
            coverage = len(src.intersection(words)) / len(src) if src else 0.0
            lm = self.lm.logprob(c.tokens) / (len(c.tokens) + 1)
            rows.append((c.score, len(c.tokens), max(lm, -100.0), coverage, support, m))
        return np.asarray(rows, dtype=np.float64)


# --- fitting ----------------------------------------------------------------

def _choose(feats: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """Index of the highest weighted sum in each list (the first on ties: the beam's order)."""
    return np.array([int(np.argmax(f @ weights)) for f in feats])


def objective(feats: list[np.ndarray], gains: list[np.ndarray], weights: np.ndarray) -> float:
    """Mean gain (ROUGE-L F1) of the chosen candidates."""
    picks = _choose(feats, weights)
    return float(np.mean([g[i] for g, i in zip(gains, picks)]))


def fit_weights(feats: list[np.ndarray], gains: list[np.ndarray], *, rounds: int = 6, grid: np.ndarray = GRID) -> dict:
    """Coordinate ascent from the beam's own ranking (see the module docstring).

    feats: per document (K_d, F), already standardised; gains: per document (K_d,).
    Returns the weights and the objective before and after.
    """
    n_feat = feats[0].shape[1]
    # One padded array makes each trial one matrix product.
    K = max(f.shape[0] for f in feats)
    F = np.zeros((len(feats), K, n_feat))
    G = np.zeros((len(feats), K))
    valid = np.zeros((len(feats), K), dtype=bool)
    for d, (f, g) in enumerate(zip(feats, gains)):
        F[d, : len(f)], G[d, : len(g)], valid[d, : len(f)] = f, g, True
    rows = np.arange(len(feats))

    def value(w: np.ndarray) -> float:
        s = np.where(valid, F @ w, -np.inf)
        return float(G[rows, s.argmax(1)].mean())

    weights = np.zeros(n_feat)
    weights[0] = 1.0
    start = best = value(weights)
    for _ in range(rounds):
        improved = False
        for j in range(n_feat):
            for v in grid:
                trial = weights.copy()
                trial[j] = v
                if not trial.any():
                    continue
                got = value(trial)
                if got > best + 1e-12:
                    best, weights, improved = got, trial, True
        if not improved:
            break
    return {"weights": weights, "before": start, "after": best}


# --- the stored reranker ----------------------------------------------------

class Reranker:
    """Fitted weights + standardisation + the summary LM, for one checkpoint."""

    def __init__(self, weights, mean, std, lm: KneserNeyLM, *, stem: bool = True, cjk: bool = False, meta: dict | None = None):
        self.weights, self.mean, self.std = (np.asarray(x, dtype=np.float64) for x in (weights, mean, std))
        self.lm, self.stem, self.cjk, self.meta = lm, stem, cjk, dict(meta or {})
        self.features = FeatureExtractor(lm, stem=stem, cjk=cjk)

    def standardise(self, f: np.ndarray) -> np.ndarray:
        return (f - self.mean) / self.std

    def choose(self, source: str, cands: list[Candidate]) -> int:
        return int(np.argmax(self.standardise(self.features(source, cands)) @ self.weights))

    def save(self, directory: str | os.PathLike) -> None:
        directory = Path(directory)
        self.lm.save(directory / LM_FILE)
        data = {"format": FORMAT, "version": 1, "features": list(FEATURES), "weights": self.weights.tolist(),
                "mean": self.mean.tolist(), "std": self.std.tolist(), "lm": LM_FILE, "stem": self.stem, "cjk": self.cjk, **self.meta}
        atomic_write_text(directory / WEIGHTS_FILE, json.dumps(data, indent=1) + "\n")

    @classmethod
    def load(cls, directory: str | os.PathLike, tokenizer_fingerprint: str) -> "Reranker":
        directory = Path(directory)
        path = directory / WEIGHTS_FILE
        if not path.is_file():
            raise UserError(f"{directory}: no fitted reranker ({WEIGHTS_FILE}); run `triptych text rerank fit --checkpoint {directory} --data VALID` first")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != FORMAT or data.get("features") != list(FEATURES):
                raise ValueError("not a reranker of this version (format or feature list differ)")
            arrays = [np.asarray(data[k], dtype=np.float64) for k in ("weights", "mean", "std")]
            if any(a.shape != (len(FEATURES),) or not np.isfinite(a).all() for a in arrays) or (arrays[2] <= 0).any():
                raise ValueError("weights, mean and std must be finite lists of one number a feature (std > 0)")
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise UserError(f"{path}: corrupt reranker file ({str(e).splitlines()[0][:120]})") from None
        lm = KneserNeyLM.load(directory / str(data.get("lm", LM_FILE)), tokenizer=tokenizer_fingerprint)
        meta = {k: v for k, v in data.items() if k not in ("format", "version", "features", "weights", "mean", "std", "lm", "stem", "cjk")}
        return cls(*arrays, lm, stem=bool(data.get("stem", True)), cjk=bool(data.get("cjk", False)), meta=meta)


def train_summary_lm(tokenizer, summaries: list[str], order: int = 3) -> KneserNeyLM:
    """The Kneser-Ney LM of the training summaries, in the checkpoint's token ids."""
    return KneserNeyLM.fit(tokenizer.encode_batch(summaries), order=order, vocab_size=tokenizer.vocab_size,
                           bos=tokenizer.bos_id, eos=tokenizer.eos_id, tokenizer=tokenizer.fingerprint())


def fit_reranker(candidates: list[list[Candidate]], sources: list[str], references: list[str], lm: KneserNeyLM, *,
                 stem: bool = True, cjk: bool = False, meta: dict | None = None) -> tuple[Reranker, dict]:
    """Features and ROUGE-L gains of every candidate, standardisation, weights."""
    from triptych.text.metrics.rouge import RougeScorer

    extract = FeatureExtractor(lm, stem=stem, cjk=cjk)
    scorer = RougeScorer(("rougeL",), stem=stem, cjk=cjk)
    raw = [extract(s, c) for s, c in zip(sources, candidates)]
    gains = [np.array([scorer.score(c.text, ref)["rougeL"].fmeasure for c in cands]) for cands, ref in zip(candidates, references)]
    stacked = np.concatenate(raw)
    mean, std = stacked.mean(0), stacked.std(0)
    std[std < 1e-9] = 1.0  # a constant feature (e.g. mbr with one candidate) stays 0 after centring
    feats = [(f - mean) / std for f in raw]
    fit = fit_weights(feats, gains)
    oracle = float(np.mean([g.max() for g in gains]))
    report = {"rougeL_beam": 100 * fit["before"], "rougeL_reranked": 100 * fit["after"], "rougeL_oracle": 100 * oracle,
              "weights": dict(zip(FEATURES, fit["weights"].round(3).tolist())), "documents": len(candidates)}
    reranker = Reranker(fit["weights"], mean, std, lm, stem=stem, cjk=cjk, meta={**(meta or {}), "valid": report})
    return reranker, report


def rerank_all(reranker: Reranker, sources: list[str], candidates: list[list[Candidate]]) -> list[str]:
    """The reranker's choice in each n-best list."""
    return [cands[reranker.choose(src, cands)].text for src, cands in zip(sources, candidates)]
