"""Greedy and beam search: cache equivalence, constraints, scores, exactness."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from tests.text.conftest import copy_keys
from triptych.text.generation.search import Hypothesis, beam_search, greedy
from triptych.text.models import Seq2Seq, build_model

PAD, BOS, EOS = 0, 1, 2
V = 40


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/text/conftest.py


def tiny(copy=False, norm="pre"):
    """copy: False, True or "cross" (`copy_keys`)."""
    torch.manual_seed(0)
    cfg = dict(d_model=32, heads=4, encoder_layers=2, decoder_layers=2, ffn=64, norm=norm, **copy_keys(copy))
    return build_model("transformer", cfg, V, PAD)


def sources(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(3, V, (n, 9), generator=g)
    for i in range(n):
        src[i, 4 + i % 5 :] = PAD
    return src


class Markov(Seq2Seq):
    """A stub whose next-token distribution depends only on the last token.

    It implements nothing but the `Seq2Seq` contract, so it checks that
    decoding needs no more, and its tiny search space can be enumerated.
    """

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.pad_id = PAD
        logits = logits.clone()
        logits[:, [PAD, BOS]] = float("-inf")  # never generated
        self.table = logits.log_softmax(-1)  # (V, V): row = previous token

    def forward(self, src, tgt_in, return_attention=False):
        return self.table[tgt_in] + 0 * src[:, :1, None]  # (B, T, V)

    def encode(self, src):
        return {"src": src}

    def init_state(self, enc):
        return {"steps": torch.zeros(enc["src"].size(0))}

    def step(self, tokens, enc, state):
        return self.table[tokens], {"steps": state["steps"] + 1}


def markov(seed=0, size=6, eos_bias=0.0, favourite=None):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(size, size, generator=g)
    logits[:, EOS] += eos_bias
    if favourite is not None:
        logits[:, favourite] += 5.0
    return Markov(logits)


def lp_norm(n, alpha=0.6):
    return ((5 + n) / 6) ** alpha


def sequence_logprob(model, src_row, tokens, max_len):
    """Sum of log-probs of tokens (+ eos when the hypothesis ended early), by forward()."""
    ended = len(tokens) < max_len
    tgt = torch.tensor([[BOS] + tokens + ([EOS] if ended else [])])
    with torch.no_grad():
        lp = model.eval()(src_row[None], tgt[:, :-1])[0]
    return lp.gather(1, tgt[0, 1:, None]).sum().item()


# ------------------------------------------------------------------ cache == recomputation


@pytest.mark.parametrize("copy,norm", [(False, "pre"), (True, "pre"), ("cross", "pre"), (False, "post")])
def test_greedy_with_cache_equals_without(copy, norm):
    m, src = tiny(copy, norm), sources()
    kw = dict(bos=BOS, eos=EOS, max_len=12)
    assert greedy(m, src, **kw) == greedy(m, src, use_cache=False, **kw)


@pytest.mark.parametrize("copy", [False, True, "cross"])
def test_beam_with_cache_equals_without(copy):
    m, src = tiny(copy), sources()
    kw = dict(beam=4, bos=BOS, eos=EOS, max_len=10, nbest=4)
    fast, slow = beam_search(m, src, **kw), beam_search(m, src, use_cache=False, **kw)
    assert [[h.tokens for h in hs] for hs in fast] == [[h.tokens for h in hs] for hs in slow]
    for hf, hs in zip(itertools.chain(*fast), itertools.chain(*slow)):
        assert hf.score == pytest.approx(hs.score, abs=1e-4)


def test_batched_decoding_equals_one_sentence_at_a_time():
    m, src = tiny(copy=True), sources(5)
    kw = dict(bos=BOS, eos=EOS, max_len=10)
    alone = [greedy(m, src[i : i + 1, : int((src[i] != PAD).sum())], **kw)[0] for i in range(5)]
    assert greedy(m, src, **kw) == alone
    beams = beam_search(m, src, beam=3, **kw)
    for i in range(5):
        row = src[i : i + 1, : int((src[i] != PAD).sum())]
        assert beams[i][0].tokens == beam_search(m, row, beam=3, **kw)[0][0].tokens


# ------------------------------------------------------------------ beam search


@pytest.mark.parametrize("kw", [{}, {"no_repeat_ngram": 2}, {"min_len": 4}])
def test_beam_of_one_equals_greedy(kw):
    m, src = tiny(copy=True), sources()
    g = greedy(m, src, bos=BOS, eos=EOS, max_len=12, **kw)
    b = beam_search(m, src, beam=1, bos=BOS, eos=EOS, max_len=12, **kw)
    assert [hs[0].tokens for hs in b] == g


def test_beam_of_one_equals_greedy_when_eos_comes_early():
    m, src = markov(seed=1, eos_bias=1.5), torch.ones(6, 3, dtype=torch.long)
    g = greedy(m, src, bos=BOS, eos=EOS, max_len=8)
    assert [hs[0].tokens for hs in beam_search(m, src, beam=1, bos=BOS, eos=EOS, max_len=8)] == g


@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.0])
def test_hypotheses_are_sorted_and_scores_match_recomputed_log_probs(alpha):
    m, src, max_len = tiny(copy=True), sources(3), 8
    out = beam_search(m, src, beam=4, bos=BOS, eos=EOS, max_len=max_len, nbest=4, length_penalty=alpha)
    for i, hyps in enumerate(out):
        assert len(hyps) == 4
        assert all(isinstance(h, Hypothesis) for h in hyps)
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
        assert len({tuple(h.tokens) for h in hyps}) == 4  # distinct
        for h in hyps:
            assert EOS not in h.tokens and BOS not in h.tokens and len(h.tokens) <= max_len
            assert h.logprob == pytest.approx(sequence_logprob(m, src[i], h.tokens, max_len), abs=1e-4)
            n = len(h.tokens) + (len(h.tokens) < max_len)
            assert h.score == pytest.approx(h.logprob / lp_norm(n, alpha), abs=1e-5)


def test_wide_beam_is_exact_on_an_enumerable_model():
    """With K=16 over 4 tokens (eos + 3) and max_len 3, nothing is pruned:
    the n-best must be the brute-force best sequences by normalised score."""
    m, max_len = markov(seed=2, size=6), 3
    src = torch.ones(1, 2, dtype=torch.long)
    candidates = []
    for n in range(max_len + 1):
        for seq in itertools.product([3, 4, 5], repeat=n):
            full = [BOS, *seq] + ([EOS] if n < max_len else [])
            logprob = sum(m.table[a, b].item() for a, b in zip(full, full[1:]))
            candidates.append((logprob / lp_norm(len(full) - 1), list(seq)))
    candidates.sort(key=lambda c: c[0], reverse=True)
    out = beam_search(m, src, beam=16, bos=BOS, eos=EOS, max_len=max_len, nbest=10)[0]
    assert [h.tokens for h in out] == [c[1] for c in candidates[:10]]
    assert [h.score for h in out] == pytest.approx([c[0] for c in candidates[:10]], abs=1e-5)


def test_beam_stops_early_when_all_sentences_are_done():
    calls = []
    m = markov(seed=0, eos_bias=8.0)  # eos nearly certain at once
    step = m.step
    m.step = lambda *a: calls.append(1) or step(*a)
    out = beam_search(m, torch.ones(3, 2, dtype=torch.long), beam=2, bos=BOS, eos=EOS, max_len=50, nbest=2)
    assert len(calls) < 5 and all(hs[0].tokens == [] for hs in out)


def test_beam_keeps_going_while_an_open_beam_can_still_win():
    """A peaked model over a tiny vocabulary: eos ranks among the top K at
    every early step, so K poor hypotheses ([], [3], [3, 4]) close before the
    sure one, [3, 4, 5], ends. Stopping at the K-th closed hypothesis
    (fairseq's rule) returned a -10 hypothesis; the search must go on while
    an open beam scores better than the worst closed one."""
    logits = torch.full((6, 6), -10.0)
    logits[[BOS, 3, 4], EOS] = 0.0  # eos second best at each step of the sure path
    for prev, nxt in [(BOS, 3), (3, 4), (4, 5), (5, EOS)]:
        logits[prev, nxt] = 10.0
    m, src = Markov(logits), torch.ones(2, 2, dtype=torch.long)
    kw = dict(bos=BOS, eos=EOS, max_len=8)
    assert greedy(m, src, **kw) == [[3, 4, 5]] * 2
    for alpha in (0.0, 0.6):
        out = beam_search(m, src, beam=3, length_penalty=alpha, nbest=3, **kw)
        assert [hs[0].tokens for hs in out] == [[3, 4, 5]] * 2
        assert all(hs[0].logprob > -0.01 for hs in out)


def test_nbest_larger_than_beam_is_refused():
    with pytest.raises(ValueError, match="nbest"):
        beam_search(markov(), torch.ones(1, 2, dtype=torch.long), beam=2, bos=BOS, eos=EOS, max_len=5, nbest=3)


# ------------------------------------------------------------------ constraints


@pytest.mark.parametrize("beam", [0, 1, 3])
def test_min_and_max_len_are_honoured(beam):
    m, src = markov(seed=3, eos_bias=4.0), torch.ones(4, 2, dtype=torch.long)
    decode = (
        (lambda **kw: greedy(m, src, bos=BOS, eos=EOS, **kw))
        if beam == 0
        else (lambda **kw: [hs[0].tokens for hs in beam_search(m, src, beam=beam, bos=BOS, eos=EOS, **kw)])
    )
    assert all(len(t) < 3 for t in decode(max_len=20))  # eos is likely: short outputs
    assert all(len(t) >= 3 for t in decode(max_len=20, min_len=3))
    assert all(len(t) == 2 for t in decode(max_len=2, min_len=5))  # max_len wins
    assert decode(max_len=0) == [[]] * 4


@pytest.mark.parametrize("beam", [0, 1, 4])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_no_repeat_ngram_blocks_repeats(beam, n):
    m, src = markov(seed=4, size=9, favourite=3), torch.ones(3, 2, dtype=torch.long)
    kw = dict(bos=BOS, eos=EOS, max_len=6, min_len=6)  # 6 tokens besides eos: room for n=1
    if beam == 0:
        outs = greedy(m, src, no_repeat_ngram=n, **kw)
        plain = greedy(m, src, **kw)
    else:
        outs = [h.tokens for hs in beam_search(m, src, beam=beam, no_repeat_ngram=n, nbest=beam, **kw) for h in hs]
        plain = [hs[0].tokens for hs in beam_search(m, src, beam=beam, **kw)]
    assert any(len(set(zip(*[t[i:] for i in range(n)]))) < len(t) - n + 1 for t in plain)  # repeats without
    for t in outs:
        grams = list(zip(*[t[i:] for i in range(n)]))
        assert len(grams) == len(set(grams)), t


def test_decoding_restores_training_mode():
    m = tiny()
    m.train()
    greedy(m, sources(2), bos=BOS, eos=EOS, max_len=3)
    beam_search(m, sources(2), beam=2, bos=BOS, eos=EOS, max_len=3)
    assert m.training


def test_scores_are_finite_and_log_probs_negative():
    out = beam_search(tiny(), sources(2), beam=3, bos=BOS, eos=EOS, max_len=6, nbest=3)
    for h in itertools.chain(*out):
        assert math.isfinite(h.score) and h.logprob < 0
