"""The Kneser-Ney summary LM: equal to nltk's KneserNeyInterpolated, normalised, saved safely."""

import gzip
import math
import random

import pytest

from triptych.errors import UserError
from triptych.text.baselines.ngram_lm import KneserNeyLM, ney_discount

BOS, EOS, V = 0, 1, 12
# a small corpus of token ids (2..11), with repeats so that every order has structure
CORPUS = [[2, 3, 4, 5], [2, 3, 6], [7, 3, 4, 8], [2, 9, 4, 5, 10], [11, 3, 4], [2, 3, 4, 5, 6], [9, 4, 10]]


def nltk_model(order: int, discount: float):
    from nltk.lm import KneserNeyInterpolated
    from nltk.util import everygrams

    # nltk looks words up as strings: the same ids, written out
    padded = [[str(w) for w in [BOS] * (order - 1) + s + [EOS]] for s in CORPUS]
    lm = KneserNeyInterpolated(order, discount=discount)
    lm.fit([list(everygrams(p, max_len=order)) for p in padded], vocabulary_text=[w for p in padded for w in p])
    return lm


@pytest.mark.parametrize("order", [2, 3, 4])
@pytest.mark.parametrize("discount", [0.1, 0.75])
def test_equals_nltk_kneser_ney_interpolated(order, discount):
    ours = KneserNeyLM.fit(CORPUS, order=order, vocab_size=V, bos=BOS, eos=EOS, discounts=[0.0] + [discount] * (order - 1))
    ref = nltk_model(order, discount)
    words = list(range(2, V)) + [EOS]
    # Every context seen in the corpus (and some unseen ones), away from the
    # <s> padding: there nltk counts the pad bigram <s> <s> as a follower of <s>.
    contexts = {tuple(s[max(0, i - order + 1) : i]) for s in CORPUS for i in range(1, len(s) + 1)}
    contexts |= {(5, 2), (8, 11, 3), (10,)}
    checked = 0
    for h in contexts:
        h = h[-(order - 1):]
        for w in words:
            expected = ref.score(str(w), [str(x) for x in h])
            assert ours.prob(w, h) == pytest.approx(expected, abs=1e-12), (h, w)
            checked += expected > 0
    assert checked > 50


def test_distributions_sum_to_one_with_the_uniform_floor():
    lm = KneserNeyLM.fit(CORPUS, order=3, vocab_size=V, bos=BOS, eos=EOS)
    assert all(0 < d < 1 for d in lm.discounts)
    for h in [(BOS, BOS), (BOS, 2), (2, 3), (3, 4), (11, 11), (4,), ()]:
        assert sum(lm.prob(w, h) for w in range(V)) == pytest.approx(1.0, abs=1e-12), h
    # a token never seen in any summary still has a (small) probability
    assert 0 < lm.prob(11, (2, 3)) < lm.prob(4, (2, 3))


def test_logprob_is_the_chain_rule_sum():
    lm = KneserNeyLM.fit(CORPUS, order=3, vocab_size=V, bos=BOS, eos=EOS)
    expected = math.log(lm.prob(2, (BOS, BOS))) + math.log(lm.prob(3, (BOS, 2))) + math.log(lm.prob(EOS, (2, 3)))
    assert lm.logprob([2, 3]) == pytest.approx(expected)
    assert lm.logprob([2, 3, 4, 5]) > lm.logprob([5, 4, 3, 2])  # seen order beats reversed


def test_ney_discount():
    assert ney_discount([1, 1, 1, 2, 5]) == pytest.approx(3 / (3 + 2))
    assert ney_discount([7, 9]) == 0.75


def test_save_load_round_trip_and_bad_files(tmp_path):
    lm = KneserNeyLM.fit(CORPUS, order=3, vocab_size=V, bos=BOS, eos=EOS, tokenizer="abc123")
    path = tmp_path / "lm.json.gz"
    lm.save(path)
    again = KneserNeyLM.load(path, tokenizer="abc123")
    rng = random.Random(0)
    for _ in range(50):
        h, w = (rng.randrange(V), rng.randrange(V)), rng.randrange(V)
        assert again.prob(w, h) == lm.prob(w, h)
    with pytest.raises(UserError, match="another tokenizer"):
        KneserNeyLM.load(path, tokenizer="fff000")
    bad = tmp_path / "bad.json.gz"
    bad.write_bytes(path.read_bytes()[:60])
    with pytest.raises(UserError, match="bad.json.gz: corrupt n-gram LM"):
        KneserNeyLM.load(bad)
    with gzip.open(bad, "wt") as fh:
        fh.write('{"format": "something else"}')
    with pytest.raises(UserError, match="corrupt n-gram LM"):
        KneserNeyLM.load(bad)
    (tmp_path / "plain.json.gz").write_text("not gzip")
    with pytest.raises(UserError, match="corrupt n-gram LM"):
        KneserNeyLM.load(tmp_path / "plain.json.gz")
    with pytest.raises(UserError, match="no n-gram LM"):
        KneserNeyLM.load(tmp_path / "missing.json.gz")
