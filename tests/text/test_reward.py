"""The RL reward equals the evaluation's ROUGE (text/rouge.py) on real pairs, from token ids."""

from __future__ import annotations

import random

import numpy as np
import pytest

from tests.conftest import debian_pairs
from triptych.errors import UserError
from triptych.text.metrics import rouge
from triptych.text.baselines.extractive import lead
from triptych.text.metrics.reward import PieceDecoder, RougeReward, lcs_lengths, parse_reward
from triptych.text.tokenizer import train_tokenizer

TYPES = ("rouge1", "rouge2", "rougeL")


@pytest.fixture(scope="module")
def pairs():
    return debian_pairs("test", 400)


@pytest.fixture(scope="module")
def bpe(pairs):
    texts = [t for p in debian_pairs("train", 600) for t in (p["document"], p["summary"])]
    return train_tokenizer(texts, kind="bpe", vocab_size=600)


def _cases(pairs):
    """(prediction, reference) texts: lead vs summary, shuffled and repeated words,
    summaries of other documents, accents and numbers, empty texts, a long reference."""
    rng = random.Random(0)
    hyps, refs = [], []
    for i, p in enumerate(pairs):
        words = p["summary"].split()
        hyps += [lead(p["document"], 10), " ".join(rng.sample(words, len(words))),
                 " ".join(words + words[:3]), pairs[i - 1]["summary"]]
        refs += [p["summary"]] * 4
    hyps += [p["summary"] for p in pairs[:5]]
    refs += [p["summary"] for p in pairs[:5]]
    hyps += ["", "Zürich café 3.14 GNOME-2 KDE's", "the the the", "library library for"]
    longest = max((p["document"] for p in pairs), key=len)
    refs += [pairs[0]["summary"], "Zurich cafe 3 14 gnome 2 kde s", "the", longest]
    return hyps, refs


def _reference_scores(hyps, refs, stem=True):
    per_pair = rouge.score_pairs(hyps, refs, stem=stem, types=TYPES)
    return {t: np.array([s[t].fmeasure for s in per_pair]) for t in TYPES}


@pytest.mark.parametrize("stem", [True, False])
def test_reward_equals_the_evaluation_path_on_real_pairs(pairs, bpe, stem):
    hyps, refs = _cases(pairs)
    ids = bpe.encode_batch(hyps)
    texts = bpe.decode_batch(ids)  # what evaluation scores: the decoded summaries
    expected = _reference_scores(texts, refs, stem)
    reward = RougeReward(bpe, "rouge1+rouge2+rougeL", stem=stem)
    rows = [reward.reference(i, r) for i, r in enumerate(refs)]
    for start in range(0, len(ids), 64):  # the batch sizes RL uses
        got = reward.scores([reward.words(t) for t in reward.decode(ids[start:start + 64])], rows[start:start + 64])
        for t in TYPES:
            assert np.abs(got[t] - expected[t][start:start + 64]).max() < 1e-6, t
    assert any(len(r) > 64 for r in rows)  # the long-reference fallback was exercised
    assert expected["rougeL"].min() == 0.0 and expected["rougeL"].max() == 1.0  # the whole range is covered


def test_mixed_reward_is_the_weighted_sum(pairs, bpe):
    hyps, refs = _cases(pairs[:50])
    ids = bpe.encode_batch(hyps)
    expected = _reference_scores(bpe.decode_batch(ids), refs)
    reward = RougeReward(bpe, "0.25*rouge2+0.75*rougeL")
    got = reward(ids, [reward.reference(i, r) for i, r in enumerate(refs)])
    assert np.allclose(got, 0.25 * expected["rouge2"] + 0.75 * expected["rougeL"], atol=1e-9)
    one = RougeReward(bpe, "rouge1")
    assert np.allclose(one(ids, [one.words(r) for r in refs]), expected["rouge1"], atol=1e-9)


def test_piece_decoder_equals_the_tokenizer_on_any_ids(bpe):
    rng = random.Random(1)  # random ids split multi-byte characters and include specials
    batch = [[rng.randrange(bpe.vocab_size) for _ in range(rng.randrange(0, 30))] for _ in range(500)]
    assert PieceDecoder.fits(bpe)
    assert PieceDecoder(bpe)(batch) == bpe.decode_batch(batch)


def test_word_vocabulary_uses_its_own_decoder(pairs):
    texts = [t for p in pairs for t in (p["document"], p["summary"])]
    word = train_tokenizer(texts, kind="word", vocab_size=500)
    assert not PieceDecoder.fits(word)
    hyps, refs = _cases(pairs[:40])
    ids = word.encode_batch(hyps)
    expected = _reference_scores(word.decode_batch(ids), refs)
    reward = RougeReward(word, "rougeL")
    got = reward(ids, [reward.reference(i, r) for i, r in enumerate(refs)])
    assert np.abs(got - expected["rougeL"]).max() < 1e-6


def test_vectorised_lcs_equals_the_exact_one():
    rng = np.random.default_rng(0)
    for width in (1, 7, 63, 64):
        hyp = rng.integers(0, 5, (50, 20))
        ref = rng.integers(0, 5, (50, width))
        lengths = rng.integers(0, width + 1, 50)
        hyp_len = rng.integers(0, 21, 50)
        for i in range(50):
            ref[i, lengths[i]:] = -2
            hyp[i, hyp_len[i]:] = -1
        got = lcs_lengths(hyp, ref, lengths)
        want = [rouge.lcs_length(hyp[i, :hyp_len[i]].tolist(), ref[i, :lengths[i]].tolist()) for i in range(50)]
        assert got.tolist() == want


def test_reward_specs():
    assert parse_reward("rougeL") == {"rougeL": 1.0}
    assert parse_reward("0.5*rouge2 + 0.5*rougeL") == {"rouge2": 0.5, "rougeL": 0.5}
    for bad in ("bleu", "rougeLsum", "0.5*rouge3", "0*rougeL", ""):
        with pytest.raises(UserError, match="rl.reward"):
            parse_reward(bad)


def test_repeated_trigram_share():
    from triptych.text.metrics.reward import repeated_ngram_share

    texts = ["a b c a b c", "a b c d", "The cat sat; the CAT sat!", "x y", ""]
    assert repeated_ngram_share(texts) == 2 / 5
    assert repeated_ngram_share(["a b a", "a b c"], n=1) == 0.5 and repeated_ngram_share(["a b a"]) == 0.0
    assert repeated_ngram_share([]) == 0.0
