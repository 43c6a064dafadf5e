"""Top-k / top-p sampling: the truncation, its DecodeConfig checks, and the
dispatcher's use of it (seeded draws reproduce; top-k 1 is greedy)."""

import math

import pytest
import torch

from triptych.text.config import DecodeConfig, DecodeError
from triptych.text.generation.search import NEG_INF, truncate


def _kept(log_p: torch.Tensor) -> list[list[int]]:
    return [row.nonzero().squeeze(1).tolist() for row in (log_p > NEG_INF)]


def test_top_k_keeps_the_k_likeliest():
    log_p = torch.tensor([[0.1, 0.4, 0.2, 0.3], [0.7, 0.1, 0.1, 0.1]]).log()
    assert _kept(truncate(log_p, top_k=2)) == [[1, 3], [0, 1, 2, 3]]  # ties at the k-th are kept
    assert _kept(truncate(log_p, top_k=1)) == [[1], [0]]
    assert torch.equal(truncate(log_p), log_p) and torch.equal(truncate(log_p, top_k=9), log_p)


def test_top_p_keeps_the_smallest_set_reaching_p():
    log_p = torch.tensor([[0.15, 0.5, 0.05, 0.3]]).log()
    assert _kept(truncate(log_p, top_p=0.5)) == [[1]]  # 0.5 alone reaches 0.5
    assert _kept(truncate(log_p, top_p=0.79)) == [[1, 3]]
    assert _kept(truncate(log_p, top_p=0.81)) == [[0, 1, 3]]
    assert _kept(truncate(log_p, top_p=1e-6)) == [[1]]  # the likeliest always stays
    assert _kept(truncate(log_p, top_p=1e-300)) == [[1]]  # even where p rounds to 0 in float32 (the fuzzer found it)
    kept = truncate(log_p, top_p=0.81)
    assert kept[0, 1].item() == pytest.approx(math.log(0.5))  # kept entries unchanged (the draw renormalises)


def test_sampling_settings_are_checked_in_decode_config():
    assert DecodeConfig(top_k=5).sampling and DecodeConfig(top_p=0.9, seed=3).sampling and not DecodeConfig().sampling
    for kwargs, words in ((dict(top_p=0.0), "decode.top_p 0.0"), (dict(top_k=-1), "decode.top_k -1"),
                          (dict(top_k=5, nbest=2), "sampling draws one candidate"), (dict(seed=1), "decode.seed")):
        with pytest.raises(DecodeError, match=words):
            DecodeConfig(**kwargs)
    assert DecodeConfig(top_k=5, seed=1).greedy() == DecodeConfig(beam=1)


def _tiny():
    from triptych.text.models import build_model

    torch.manual_seed(0)
    model = build_model("transformer", dict(d_model=32, heads=4, encoder_layers=1, decoder_layers=1, ffn=64), 50, 0).eval()
    src = torch.randint(4, 50, (6, 9))
    return model, src


def test_the_dispatcher_samples_reproducibly_and_top_k_1_is_greedy():
    from triptych.text.generation.generate import generate

    model, src = _tiny()
    common = dict(bos=1, eos=2)
    base = DecodeConfig(beam=1, max_len=12, no_repeat_ngram=0)
    greedy = generate(model, src, base, **common)
    assert generate(model, src, base.replace(top_k=1, seed=0), **common) == greedy
    drawn = generate(model, src, base.replace(top_k=40, seed=7), **common)
    assert generate(model, src, base.replace(top_k=40, seed=7), **common) == drawn  # same seed, same draws
    others = [generate(model, src, base.replace(top_p=0.99, seed=s), **common) for s in range(1, 4)]
    assert any(o != drawn for o in others)  # an untrained model's distribution is flat: draws differ
    assert all(len(t) <= 12 for o in others for t in o)
