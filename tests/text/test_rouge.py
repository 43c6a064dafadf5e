"""triptych's ROUGE against rouge-score 0.1.2 (the reference), plus CJK and bootstrap.

Equality is checked on real pairs of the Debian descriptions test split and
on perturbed copies that hit the tokenizer's and ROUGE-Lsum's corner cases.
"""

from __future__ import annotations

import gzip
import json
import random
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from triptych.text.metrics import rouge
from triptych.text.baselines.extractive import lead
from triptych.text.metrics.corpus import bootstrap_intervals, mean_scores, rouge_f1_x100
from triptych.text.metrics.rouge import RougeScorer, Score, score_pairs

rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")
rs_tokenize = pytest.importorskip("rouge_score.tokenize")

DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture(autouse=True, params=["python", "native"])
def engine(request, monkeypatch):
    """Every check runs on both engines: ours, and rouge-score-rs (which batches use when installed)."""
    if request.param == "native":
        pytest.importorskip("rouge_score_rs")
    monkeypatch.setenv("TRIPTYCH_ROUGE_ENGINE", request.param)
    assert rouge.rouge_engine() == request.param
    return request.param
TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")


def _rows(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def english():
    return _rows(DATA / "debian-descriptions/test.jsonl.gz")


@pytest.fixture(scope="module")
def chinese():
    return _rows(DATA / "debian-descriptions-zh/test.jsonl.gz")


def _perturb(text: str, rng: random.Random) -> str:
    words = text.split()
    kind = rng.randrange(10)
    if kind == 0:
        rng.shuffle(words)
    elif kind == 1:
        words = [w for w in words if rng.random() > 0.3]
    elif kind == 2:
        words = [x for w in words for x in ([w, w] if rng.random() < 0.3 else [w])]
    elif kind == 3:
        words = [w + rng.choice([".", ",", "!", "'s", "-", "/x", ")"]) for w in words]
    elif kind == 4:
        words = [w.upper() if rng.random() < 0.5 else w.title() for w in words]
    elif kind == 5:
        words = words + [str(rng.randrange(10_000)), "1.2.3", "v2", "3rd"]
    elif kind == 6:
        words = words + rng.sample(["café", "naïve", "İstanbul", "\u212a", "北京", "über", "ß", "Ωmega", "ﬁle"], 3)
    elif kind == 7:  # multi-line: ROUGE-Lsum's sentences
        cut = [rng.choice([" ", " ", "\n", "\n\n", " .\n", "\r\n", "\n--\n"]) for _ in words]
        return "".join(w + c for w, c in zip(words, cut))
    elif kind == 8:
        return rng.choice(["", " ", "\n", "...", "\n\n", "a", "the the the", "!!! ???"])
    else:
        words = words[: rng.randrange(1, 4)] * rng.randrange(1, 4)
    return " ".join(words)


def _pairs(rows, rng):
    summaries = [r["summary"] for r in rows]
    docs = [r["document"] for r in rows]
    pairs = [(lead(d), s) for d, s in zip(docs, summaries)]  # 1,735 real pairs
    pairs += [(summaries[i], summaries[i + 1]) for i in range(0, 600)]  # each other
    pairs += [(docs[i], summaries[i]) for i in range(0, 1735, 9)]  # multi-line documents
    pairs += [(summaries[i], docs[i]) for i in range(3, 1735, 17)]
    pairs += [(_perturb(s, rng), s) for s in summaries[:500]]
    pairs += [(s, _perturb(d.split("\n")[0], rng)) for s, d in zip(summaries[500:700], docs[500:700])]
    pairs += [(_perturb(d, rng), _perturb(d, rng)) for d in docs[700:800]]
    return pairs


def _assert_equal_to_peer(pairs, stem):
    ours = score_pairs([p for p, _ in pairs], [r for _, r in pairs], stem=stem)
    peer = rouge_scorer.RougeScorer(list(TYPES), use_stemmer=stem)
    for (pred, ref), mine in zip(pairs, ours):
        theirs = peer.score(ref, pred)  # rouge-score takes (target, prediction)
        for t in TYPES:
            assert np.allclose(mine[t], theirs[t], rtol=0, atol=1e-6), (t, pred, ref, mine[t], theirs[t])


def test_equal_to_rouge_score_stemmed(english):
    pairs = _pairs(english, random.Random(0))
    assert len(pairs) >= 3000
    _assert_equal_to_peer(pairs, stem=True)


def test_equal_to_rouge_score_unstemmed(english):
    _assert_equal_to_peer(_pairs(english, random.Random(1))[::2], stem=False)


def test_lcs_helpers_match_a_plain_table():
    lcs_ind = rouge_scorer.lcs_ind  # rouge-score's own table + backtrack
    rng = random.Random(2)
    for _ in range(400):
        a = [rng.choice("abcd") for _ in range(rng.randrange(0, 14))]
        b = [rng.choice("abcd") for _ in range(rng.randrange(0, 14))]
        table = rouge_scorer._lcs_table(a, b)
        assert rouge.lcs_length(a, b) == table[-1][-1]
        assert sorted(rouge._lcs_indices(a, b)) == lcs_ind(a, b)  # same tie-breaking


def test_documented_behaviour():
    s = score_pairs(["the cat sat"], ["The cat sat."])[0]
    assert all(s[t] == Score(1.0, 1.0, 1.0) for t in TYPES)
    assert score_pairs([""], ["anything"])[0]["rouge1"] == Score(0.0, 0.0, 0.0)
    assert score_pairs(["北京"], ["北京"])[0]["rouge1"].fmeasure == 0.0  # non-ASCII is deleted
    # Stemming only touches tokens longer than 3 characters.
    assert score_pairs(["running dogs"], ["run dog"], stem=True)[0]["rouge1"].fmeasure == 1.0
    assert score_pairs(["running dogs"], ["run dog"], stem=False)[0]["rouge1"].fmeasure == 0.0
    with pytest.raises(ValueError):
        RougeScorer(["rougeX"])
    with pytest.raises(ValueError):
        score_pairs(["a"], ["a", "b"])


def test_rouge_n_beyond_two_and_subsets(english):
    preds = [lead(r["document"], words=20) for r in english[:200]]
    refs = [r["summary"] for r in english[:200]]
    types = ["rouge3", "rougeL", "rouge4"]
    ours = score_pairs(preds, refs, types=types)
    peer = rouge_scorer.RougeScorer(types, use_stemmer=True)
    for p, r, mine in zip(preds, refs, ours):
        assert list(mine) == types
        theirs = peer.score(r, p)
        for t in types:
            assert np.allclose(mine[t], theirs[t], atol=1e-6)


def test_cached_scorer_gives_the_same(english):
    preds = [lead(r["document"]) for r in english[:300]] * 2
    refs = [r["summary"] for r in english[:300]] * 2
    cached = RougeScorer(cache_references=True, cache_size=100)
    assert cached.score_many(preds, refs) == score_pairs(preds, refs)


# --- CJK mode --------------------------------------------------------------

def test_cjk_hand_computed():
    s = score_pairs(["我爱北京"], ["我爱上海"], cjk=True)[0]
    assert s["rouge1"] == Score(0.5, 0.5, 0.5)
    assert np.allclose(s["rouge2"], (1 / 3, 1 / 3, 1 / 3))
    assert s["rougeL"] == Score(0.5, 0.5, 0.5)
    sc = RougeScorer(cjk=True, stem=False)
    assert sc.tokenize("你好，世界。") == ["你", "好", "世", "界"]  # punctuation is no token
    assert sc.tokenize("使用 Python3 编程") == ["使", "用", "python3", "编", "程"]
    assert sc.tokenize("ＡＢＣ１２３「テスト」・한국어") == ["abc123", "テ", "ス", "ト", "한", "국", "어"]
    assert RougeScorer(cjk=True, stem=True).tokenize("运行 Running") == ["运", "行", "run"]
    # Precision 3/3, recall 3/5: "转换为图像" vs "转换图".
    s = score_pairs(["转换图"], ["转换为图像"], cjk=True)[0]
    assert np.allclose(s["rouge1"], (1.0, 0.6, 0.75))
    assert np.allclose(s["rougeL"], (1.0, 0.6, 0.75))


class _CharTokenizer:
    """Independent CJK tokenizer for rouge-score: by Unicode character names."""

    def __init__(self, stem):
        from nltk.stem import porter

        self.stemmer = porter.PorterStemmer() if stem else None

    def tokenize(self, text):
        text = unicodedata.normalize("NFKC", text)
        out, word = [], ""
        for ch in text + " ":
            if ch.isascii() and ch.isalnum():
                word += ch
                continue
            if word:
                out += rs_tokenize.tokenize(word, self.stemmer)
                word = ""
            if unicodedata.name(ch, "").startswith(("CJK UNIFIED IDEOGRAPH", "HIRAGANA LETTER", "KATAKANA LETTER")):
                out.append(ch)
        return out


@pytest.mark.parametrize("stem", [True, False])
def test_cjk_matches_rouge_score_with_a_character_tokenizer(chinese, stem):
    docs = [r["document"] for r in chinese]
    sums = [r["summary"] for r in chinese]
    preds = [d.split("\n")[0][:40] for d in docs] + sums + docs
    refs = sums + sums[1:] + sums[:1] + sums
    ours = score_pairs(preds, refs, cjk=True, stem=stem)
    peer = rouge_scorer.RougeScorer(list(TYPES), tokenizer=_CharTokenizer(stem))
    assert any(s["rouge1"].fmeasure > 0.2 for s in ours)
    for p, r, mine in zip(preds, refs, ours):
        theirs = peer.score(r, p)
        for t in TYPES:
            assert np.allclose(mine[t], theirs[t], atol=1e-6), (t, p, r)


# --- aggregation -----------------------------------------------------------

def test_mean_and_x100(english):
    preds = [lead(r["document"]) for r in english[:100]]
    refs = [r["summary"] for r in english[:100]]
    per_pair = score_pairs(preds, refs)
    means = mean_scores(per_pair)
    assert np.isclose(means["rouge2"].recall, np.mean([s["rouge2"].recall for s in per_pair]))
    x100 = rouge_f1_x100(preds, refs)
    assert list(x100) == list(TYPES)
    assert all(np.isclose(x100[t], 100 * means[t].fmeasure) for t in TYPES)
    with pytest.raises(ValueError):
        mean_scores([])


def test_bootstrap_contains_the_mean_and_shrinks(english):
    preds = [lead(r["document"]) for r in english]
    refs = [r["summary"] for r in english]
    per_pair = score_pairs(preds, refs)
    small = bootstrap_intervals(per_pair[:100], samples=500, seed=1)
    large = bootstrap_intervals(per_pair, samples=500, seed=1)
    for t in TYPES:
        for ci in (small[t], large[t]):
            assert ci["low"] <= ci["mean"] <= ci["high"]
        assert large[t]["high"] - large[t]["low"] < small[t]["high"] - small[t]["low"]
        assert np.isclose(large[t]["mean"], mean_scores(per_pair)[t].fmeasure)
    assert bootstrap_intervals(per_pair, samples=200, seed=3) == bootstrap_intervals(per_pair, samples=200, seed=3)
    with pytest.raises(ValueError):
        bootstrap_intervals([])
