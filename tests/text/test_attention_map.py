"""`triptych text attention` on a tiny trained run of every registered model family."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import yaml

from tests.conftest import debian_pairs, write_jsonl
from triptych.text.models import list_models

# A tiny `model:` section per family (copy on, so the copy panel is drawn too);
# a family missing here trains with its defaults, slower but still covered.
TINY_MODELS = {
    "transformer": {"d_model": 32, "ffn": 64, "heads": 2, "encoder_layers": 1, "decoder_layers": 2, "copy": True},
    "rnn": {"embed_dim": 32, "hidden": 32, "encoder_hidden": 16, "attention": "bahdanau", "copy": True},
    "conv": {"embed_dim": 32, "encoder_layers": 2, "encoder_channels": 32, "decoder_layers": 2,
             "decoder_channels": 32, "out_dim": 32, "copy": True},
}

DOC = "This package provides a library to parse JSON files. The library parses JSON files quickly."


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    write_jsonl(root / "train.jsonl", debian_pairs("train", 120))
    write_jsonl(root / "valid.jsonl", debian_pairs("valid", 8))
    return root


@pytest.fixture(scope="module", params=list_models())
def run(request, corpus, tmp_path_factory):
    from triptych.cli import main

    family = request.param
    root = tmp_path_factory.mktemp(f"run-{family}")
    recipe = {
        "data": {"train": str(corpus / "train.jsonl"), "valid": str(corpus / "valid.jsonl"), "batch_tokens": 1500,
                 "max_source_len": 64, "max_target_len": 16},
        "tokenizer": {"vocab_size": 400},
        "model": {"name": family, **TINY_MODELS.get(family, {})},
        "train": {"max_steps": 4, "eval_every": 4, "save_every": 4, "warmup_steps": 1, "max_minutes": None,
                  "precision": "fp32", "threads": 1},
        "eval": {"valid_rouge_samples": 2},
        "decode": {"beam": 2, "max_len": 8},
    }
    (root / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["text", "train", str(root / "recipe.yaml"), "--out", str(root / "run")]) == 0
    return family, root / "run" / "best"


def test_maps_are_attention_distributions_over_the_source(run):
    from triptych.text.workflows.attention_map import attention_maps
    from triptych.text.predictor import Summarizer

    family, checkpoint = run
    summarizer = Summarizer(checkpoint)
    maps = attention_maps(summarizer, DOC, summarizer.cfg.decode)
    T, S = len(maps["target_tokens"]), len(maps["source_tokens"])
    assert S == len(summarizer.encode_documents([DOC])[0])
    assert len(maps["panels"]) == maps["layers"] + 1 and maps["titles"][-1] == "copy attention"
    for w in maps["panels"]:
        assert w.shape == (T, S)
        np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-4)  # each generated token: a distribution
    # The map is drawn for the summary the model really writes.
    assert maps["summary"] == summarizer.summarize([DOC])[0]
    pieces = maps["target_tokens"][:-1] if maps["target_tokens"][-1:] == ["</s>"] else maps["target_tokens"]
    if not any("/" in p for p in pieces):  # rows are the summary's tokens, in order
        assert "".join(pieces).strip() == maps["summary"]


def test_attention_command_writes_a_png(run, run_cli, tmp_path):
    import matplotlib.image as mpimg

    family, checkpoint = run
    out = tmp_path / "map.png"
    status, stdout, err = run_cli("text", "attention", "--checkpoint", checkpoint, "--text", DOC, "-o", out, "--json")
    assert status == 0, err
    result = json.loads(stdout)
    assert result["output"] == str(out) and mpimg.imread(out).ndim == 3
    assert len(result["panels"]) == result["layers"] + 1
    assert "".join(result["source_tokens"]).strip() == DOC and result["target_tokens"]
    status, stdout, _ = run_cli("text", "attention", "--checkpoint", checkpoint, "--text", DOC, "-o", tmp_path / "one.svg",
                                "--layer", result["layers"], "--json")
    assert status == 0 and json.loads(stdout)["panels"][0].startswith(f"layer {result['layers']} of")


def test_one_head_or_their_mean(run):
    from triptych.text.workflows.attention_map import attention_maps
    from triptych.text.predictor import Summarizer

    family, checkpoint = run
    summarizer = Summarizer(checkpoint)
    mean = attention_maps(summarizer, DOC, summarizer.cfg.decode, layer="1")
    heads = [attention_maps(summarizer, DOC, summarizer.cfg.decode, layer="1", head=str(h + 1))["panels"][0]
             for h in range(mean["heads"])]
    np.testing.assert_allclose(np.mean(heads, 0), mean["panels"][0], atol=1e-6)
    assert len(mean["panels"]) == 2  # layer 1 and copy


def test_pieces_show_whole_characters(run):
    from triptych.text.workflows.attention_map import readable_pieces
    from triptych.text.tokenizer import Tokenizer

    tok = Tokenizer.load(run[1])
    text = "The parser reads 这个 naïve JSON"
    ids = tok.encode(text)
    labels = readable_pieces(tok, ids + [tok.eos_id])
    assert len(labels) == len(ids) + 1 and labels[-1] == "</s>" and "\ufffd" not in "".join(labels)
    zhe = [x.strip() for x in labels if "这" in x]  # 3 UTF-8 bytes: a 400-entry BPE splits it
    assert len(zhe) > 1 and zhe == [f"这 ({k}/{len(zhe)})" for k in range(1, len(zhe) + 1)]
    rebuilt = ""
    for x in labels[:-1]:
        m = re.fullmatch(r"(.*) \((\d)/(\d)\)", x, flags=re.S)
        rebuilt += x if m is None else (m.group(1) if m.group(2) == "1" else "")
    assert rebuilt == " " + text  # the labels lose nothing (byte-level BPE adds a leading space)
    # Bytes that never make a character (an untrained model's output) are shown as bytes.
    e8, a = tok.hf.token_to_id("è"), tok.hf.token_to_id("A")  # byte-level BPE's symbols for 0xE8 and "A"
    assert readable_pieces(tok, [e8] * 5 + [a, e8, tok.eos_id]) == ["\\xe8"] * 5 + ["A", "\\xe8", "</s>"]


def test_bad_input(run, run_cli, tmp_path):
    family, checkpoint = run
    out = tmp_path / "map.png"
    cases = [
        (["--checkpoint", tmp_path / "missing", "--text", DOC], "missing"),
        (["--checkpoint", checkpoint, "--text", "  "], "--text: the document is empty"),
        (["--checkpoint", checkpoint, "--text", DOC, "--layer", "9"], "--layer 9"),
        (["--checkpoint", checkpoint, "--text", DOC, "--layer", "first"], "--layer first"),
        (["--checkpoint", checkpoint, "--text", DOC, "--head", "99"], "--head 99"),
        (["--checkpoint", checkpoint, "--text", DOC, "--head", "all"], "--head all: allowed: mean or 1.."),
    ]
    for args, message in cases:
        status, stdout, err = run_cli("text", "attention", *args, "-o", out)
        assert status == 2 and stdout == "" and message in err and err.count("\n") == 1, (args, err)
    status, _, err = run_cli("text", "attention", "--checkpoint", checkpoint, "--text", DOC, "-o", tmp_path / "map.txt")
    assert status == 2 and "unsupported picture format" in err
    assert not out.exists() and list(tmp_path.iterdir()) == []
