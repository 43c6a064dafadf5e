"""Reranking the n-best list: MBR by hand, the fit, n-best order, and the CLI end to end."""

import json
import math

import numpy as np
import pytest
import torch

from tests.conftest import debian_pairs, write_jsonl
from triptych.errors import UserError
from triptych.text.config import DecodeConfig, DecodeError
from triptych.text.generation.rerank import FEATURES, Candidate, fit_weights, mbr_scores, objective
from triptych.text.metrics.rouge import RougeScorer


def test_mbr_by_hand_on_three_candidates():
    scorer = RougeScorer(("rougeL",), stem=False)
    texts = ["alpha beta gamma", "alpha beta delta", "xray yankee zulu"]
    # posterior 0.5 / 0.3 / 0.2; ROUGE-L F1: (1,2) LCS 2 of 3 -> 2/3, every other pair 0
    got = mbr_scores(texts, [math.log(0.5), math.log(0.3), math.log(0.2)], scorer)
    assert got[0] == pytest.approx((0.3 * 2 / 3 + 0.2 * 0) / (0.3 + 0.2))
    assert got[1] == pytest.approx((0.5 * 2 / 3 + 0.2 * 0) / (0.5 + 0.2))
    assert got[2] == 0.0
    # only relative log-probabilities matter; one candidate alone has no risk to weigh
    assert mbr_scores(texts, [math.log(0.5) - 50, math.log(0.3) - 50, math.log(0.2) - 50], scorer) == pytest.approx(got)
    assert mbr_scores(texts[:1], [0.0], scorer) == [0.0]


def toy_set(n_docs=60, k=4, seed=0):
    """Feature 0 (the beam score) prefers candidate 0; the gain is highest
    where feature 2 is highest, and feature 1 is noise."""
    rng = np.random.default_rng(seed)
    feats, gains = [], []
    for _ in range(n_docs):
        f = rng.normal(size=(k, 3))
        f[:, 0] = np.linspace(1.0, 0.0, k)  # the beam's order
        gains.append(0.2 + 0.5 * (f[:, 2] == f[:, 2].max()))
        feats.append(f)
    return feats, gains


def test_fit_improves_the_objective_on_a_toy_set():
    feats, gains = toy_set()
    fit = fit_weights(feats, gains)
    assert fit["before"] == pytest.approx(objective(feats, gains, np.array([1.0, 0, 0])))
    assert fit["after"] > fit["before"] + 0.2
    assert fit["after"] == pytest.approx(objective(feats, gains, fit["weights"]))
    assert fit["weights"][2] > 0 and abs(fit["weights"][2]) > abs(fit["weights"][1])


def test_fit_keeps_the_beam_when_it_is_already_best():
    feats, _ = toy_set(seed=1)
    gains = [np.array([0.9, 0.1, 0.1, 0.1]) for _ in feats]
    fit = fit_weights(feats, gains)
    assert fit["after"] == fit["before"] == pytest.approx(0.9)
    assert list(fit["weights"]) == [1.0, 0.0, 0.0]


def test_nbest_settings_are_checked_once_in_decode_config():
    """DecodeConfig checks the n-best settings wherever it is built; each front
    end names them its own way (`--beam` on the command line)."""
    flag = lambda name: "--" + name.replace("_", "-")  # noqa: E731  (as text/cli.py spells them)
    assert DecodeConfig(beam=4).candidates() == 1 and DecodeConfig(beam=4, rerank=True).candidates() == 4
    assert DecodeConfig(beam=5, nbest=3, rerank=True).candidates() == 3 and DecodeConfig(beam=4, rerank=True).candidates(2) == 2
    for kwargs, line in ((dict(beam=1, rerank=True), "--beam 1 keeps one candidate"),
                         (dict(beam=4, nbest=6), "--nbest 6: must be between 1 and the beam size"),
                         (dict(beam=4, nbest=1, rerank=True), "at least 2 candidates")):
        with pytest.raises(DecodeError) as caught:
            DecodeConfig(**kwargs)
        assert line in caught.value.naming(flag) and isinstance(caught.value, UserError)
        assert "decode." in str(caught.value) and "--" not in str(caught.value)  # a recipe's spelling by default


FAMILIES = {
    "transformer": dict(d_model=32, heads=4, encoder_layers=1, decoder_layers=1, ffn=64, copy=True),
    "rnn": dict(embed_dim=32, hidden=32, encoder_hidden=16, copy=True),
    "conv": dict(embed_dim=32, out_dim=32, encoder_layers=2, decoder_layers=2, encoder_channels=32, decoder_channels=32, copy=True),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_nbest_lists_are_the_beam_in_its_order(family):
    """decode_documents with nbest: each list is beam_search's, best score first, its head the
    plain beam output, and documents come back in the input order."""
    from triptych.text.generation.generate import decode_documents
    from triptych.text.generation.search import beam_search
    from triptych.text.models import build_model
    from triptych.text.tokenizer import train_bpe

    texts = [p["document"] for p in debian_pairs("train", 60)]
    tok = train_bpe(texts, vocab_size=300)
    torch.manual_seed(0)
    model = build_model(family, dict(FAMILIES[family]), tok.vocab_size, tok.pad_id).eval()
    sources = [tok.encode(t)[:20] for t in texts[:5]]
    decode = DecodeConfig(beam=4, max_len=8, batch_size=2, no_repeat_ngram=0)
    lists = decode_documents(model, tok, sources, decode, nbest=4, device="cpu")
    plain = decode_documents(model, tok, sources, decode, device="cpu")
    for src, hyps, text in zip(sources, lists, plain):
        assert 1 <= len(hyps) <= 4
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
        alone = beam_search(model, torch.tensor([src]), beam=4, nbest=4, bos=tok.bos_id, eos=tok.eos_id, max_len=8,
                            length_penalty=decode.length_penalty)[0]
        assert [h.tokens for h in hyps] == [h.tokens for h in alone]
        assert [h.score for h in hyps] == pytest.approx([h.score for h in alone], abs=1e-4)
        assert tok.decode(hyps[0].tokens) == text


# --- the CLI end to end ---------------------------------------------------------

@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from tests.text.test_pipeline import TINY
    from triptych.cli import main

    root = tmp_path_factory.mktemp("rerank")
    train = write_jsonl(root / "train.jsonl", debian_pairs("train", 200))
    valid = write_jsonl(root / "valid.jsonl", debian_pairs("valid", 24))
    args = ["text", "train", "configs/text/demo.yaml", "--out", str(root / "run"), "--set", f"data.train={train}", "--set", f"data.valid={valid}", *TINY]
    assert main(args) == 0
    return root / "run" / "best", valid


def test_rerank_fit_then_eval_and_summarize(checkpoint, run_cli):
    ck, valid = checkpoint
    status, out, err = run_cli("text", "eval", "--checkpoint", ck, "--data", valid, "--rerank", "--beam", 3)
    assert status == 2 and out == "" and "no fitted reranker" in err and str(ck) in err
    status, out, err = run_cli("text", "rerank", "fit", "--checkpoint", ck, "--data", valid, "--beam", 3, "--json")
    assert status == 0, err
    fit = json.loads(out)
    assert fit["rougeL_reranked"] >= fit["rougeL_beam"] and fit["rougeL_oracle"] >= fit["rougeL_reranked"]
    assert set(fit["weights"]) == set(FEATURES) and fit["nbest"] == 3 and fit["documents"] == 24
    assert (ck / "rerank.json").is_file() and (ck / "summary-lm.json.gz").is_file()
    status, out, err = run_cli("text", "eval", "--checkpoint", ck, "--data", valid, "--beam", 3, "--rerank", "--json")
    assert status == 0, err
    result = json.loads(out)
    assert result["rerank"] and result["nbest"] == 3 and result["pairs"] == 24
    assert result["rougeL"] == pytest.approx(fit["rougeL_reranked"], abs=1e-6)  # same lists, same choice
    assert result["beam_top"]["rougeL"] == pytest.approx(fit["rougeL_beam"], abs=1e-6)
    status, out, err = run_cli("text", "eval", "--checkpoint", ck, "--data", valid, "--beam", 3, "--nbest", 3, "--json")
    assert status == 0 and json.loads(out)["rougeL"] == pytest.approx(fit["rougeL_beam"], abs=1e-6)
    status, out, err = run_cli("text", "summarize", "--checkpoint", ck, "--text", "A library to parse JSON files quickly.", "--beam", 3, "--rerank", "--json")
    assert status == 0, err
    got = json.loads(out)
    assert len(got["summaries"]) == 1 and got["summaries"][0] in [c["summary"] for c in got["nbest"][0]]


def test_bad_reranker_input_is_one_line(checkpoint, run_cli, tmp_path):
    import shutil

    from triptych.text.baselines.ngram_lm import KneserNeyLM

    src, valid = checkpoint
    ck = tmp_path / "ck"
    shutil.copytree(src, ck)
    if not (ck / "rerank.json").is_file():
        assert run_cli("text", "rerank", "fit", "--checkpoint", ck, "--data", valid, "--beam", 3)[0] == 0
    base = ("text", "eval", "--checkpoint", ck, "--data", valid)
    status, out, err = run_cli(*base, "--rerank", "--beam", 1)
    assert status == 2 and out == "" and "--beam 1 keeps one candidate" in err
    status, out, err = run_cli(*base, "--beam", 2, "--nbest", 3)
    assert status == 2 and "--nbest 3" in err
    lm_path = ck / "summary-lm.json.gz"
    good = lm_path.read_bytes()
    lm_path.write_bytes(good[: len(good) // 2])
    status, out, err = run_cli(*base, "--rerank", "--beam", 3)
    assert status == 2 and out == "" and "summary-lm.json.gz: corrupt n-gram LM" in err and len(err.strip().splitlines()) == 1
    lm = KneserNeyLM.fit([[4, 5, 6]], order=2, vocab_size=10, bos=2, eos=3, tokenizer="0123456789abcdef")
    lm.save(lm_path)
    status, out, err = run_cli(*base, "--rerank", "--beam", 3)
    assert status == 2 and "built for another tokenizer" in err
    lm_path.write_bytes(good)
    (ck / "rerank.json").write_text("{not json")
    status, out, err = run_cli("text", "summarize", "--checkpoint", ck, "--text", "some document", "--rerank", "--beam", 3)
    assert status == 2 and out == "" and "rerank.json: corrupt reranker file" in err


def test_candidates_drop_unscored_placeholders():
    from triptych.text.generation.search import Hypothesis
    from triptych.text.generation.rerank import candidates_from
    from triptych.text.tokenizer import train_word

    tok = train_word(["a b c"], vocab_size=20)
    hyps = [Hypothesis(tok.encode("a b"), -1.0, -2.0), Hypothesis([], float("-inf"), float("-inf"))]
    assert [c.text for c in candidates_from(hyps, tok)] == ["a b"]
    only = candidates_from(hyps[1:], tok)
    assert len(only) == 1 and isinstance(only[0], Candidate) and math.isfinite(only[0].score)
