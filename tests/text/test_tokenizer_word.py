"""The word vocabulary beside BPE: same interface, top-N words, visible <unk>s, unk statistics."""

import json

import pytest

from tests.conftest import debian_pairs, write_jsonl
from triptych.errors import UserError
from triptych.text.tokenizer import Tokenizer, train_bpe, train_tokenizer, train_word, unk_stats

CORPUS = ["the cat sat on the mat .", "the dog sat on a log", "the cat ate", "a zebra"]


def test_word_vocabulary_keeps_the_most_frequent_words():
    tok = train_word(CORPUS, vocab_size=4 + 4)  # 4 specials + 4 words
    vocab = set(tok.hf.get_vocab())
    # counts: the 4, sat 2, on 2, cat 2, a 2, the rest 1: "the" must be in, singletons out
    assert "the" in vocab and not {"mat", "dog", "log", "ate", "zebra"} & vocab
    assert len(vocab - {"<pad>", "<unk>", "<s>", "</s>"}) == 4
    assert tok.kind == "word" and tok.vocab_size == 8


def test_word_round_trip_and_unk_are_visible(tmp_path):
    tok = train_word(CORPUS, vocab_size=100)
    assert tok.decode(tok.encode("the cat sat on the mat .")) == "the cat sat on the mat ."
    ids = tok.encode("the unicorn sat")
    assert ids.count(tok.unk_id) == 1
    assert tok.decode(ids) == "the <unk> sat"
    # pad, bos and eos are never text
    assert tok.decode([tok.bos_id, *ids, tok.eos_id, tok.pad_id]) == "the <unk> sat"
    assert tok.decode_batch([ids, tok.encode("a cat")]) == ["the <unk> sat", "a cat"]
    tok.save(tmp_path)
    again = Tokenizer.load(tmp_path / "tokenizer.json")
    assert again.kind == "word" and again.encode("the unicorn sat") == ids
    assert again.fingerprint() == tok.fingerprint()
    assert (again.pad_id, again.unk_id, again.bos_id, again.eos_id) == (0, 1, 2, 3)


def test_bpe_and_word_share_the_interface_and_differ_in_fingerprint():
    texts = [p["document"] for p in debian_pairs("train", 200)]
    bpe, word = train_bpe(texts, vocab_size=400), train_word(texts, vocab_size=400)
    assert bpe.kind == "bpe" and word.kind == "word"
    assert bpe.fingerprint() != word.fingerprint()
    doc = "A zyxwvut library for parsing JSON."
    assert bpe.decode(bpe.encode(doc)) == doc  # byte-level BPE loses nothing
    assert bpe.unk_id not in bpe.encode(doc)
    assert word.unk_id in word.encode(doc)
    for tok in (bpe, word):
        assert tok.encode_batch([doc, "JSON"]) == [tok.encode(doc), tok.encode("JSON")]


def test_unk_stats_counts_by_hand():
    tok = train_word(CORPUS, vocab_size=100)
    stats = unk_stats(tok, ["the unicorn sat", "the cat", "x y"])
    assert stats["tokens"] == 3 + 2 + 2 and stats["unk_tokens"] == 1 + 0 + 2
    assert stats["unk_rate"] == pytest.approx(3 / 7)
    assert stats["texts_with_unk"] == pytest.approx(2 / 3)


def test_unknown_kind_and_tiny_vocabulary_are_user_errors():
    with pytest.raises(UserError, match="kind 'char'"):
        train_tokenizer(CORPUS, kind="char")
    with pytest.raises(UserError, match="too small"):
        train_word(CORPUS, vocab_size=4)


def test_tokenizer_train_and_stats_cli(tmp_path, run_cli):
    data = write_jsonl(tmp_path / "train.jsonl", debian_pairs("train", 300))
    test = write_jsonl(tmp_path / "test.jsonl", debian_pairs("test", 50))
    for kind in ("bpe", "word"):
        status, out, err = run_cli("text", "tokenizer", "train", "--kind", kind, "--data", data, "--out", tmp_path / f"{kind}.json", "--vocab-size", 500, "--json")
        assert status == 0, err
        assert json.loads(out)["kind"] == kind
    status, out, err = run_cli("text", "tokenizer", "stats", "--tokenizer", tmp_path / "bpe.json", tmp_path / "word.json", "--data", test, "--json")
    assert status == 0, err
    bpe, word = json.loads(out)["tokenizers"]
    assert bpe["kind"] == "bpe" and bpe["summaries"]["unk_rate"] == 0.0
    assert word["kind"] == "word" and word["summaries"]["unk_rate"] > 0.05
    status, out, err = run_cli("text", "tokenizer", "stats", "--tokenizer", tmp_path / "missing.json", "--data", test)
    assert status == 2 and out == "" and "missing.json" in err


def test_training_with_a_word_vocabulary_config(tmp_path, run_cli):
    """The recipe trains and summarizes with `tokenizer.kind=word` (every model sees only ids)."""
    from tests.text.test_pipeline import TINY

    train = write_jsonl(tmp_path / "train.jsonl", debian_pairs("train", 120))
    valid = write_jsonl(tmp_path / "valid.jsonl", debian_pairs("valid", 10))
    run = tmp_path / "run"
    tiny = [x.replace("train.max_steps=12", "train.max_steps=4") for x in TINY]
    status, _, err = run_cli("text", "train", "configs/text/demo.yaml", "--out", run, *tiny, "--set", "tokenizer.kind=word",
                             "--set", f"data.train={train}", "--set", f"data.valid={valid}")
    assert status == 0, err
    assert Tokenizer.load(run / "best" / "tokenizer.json").kind == "word"
    status, out, err = run_cli("text", "summarize", "--checkpoint", run / "best", "--text", "A library to parse JSON files.", "--json")
    assert status == 0 and len(json.loads(out)["summaries"]) == 1
    status, out, err = run_cli("text", "train", "configs/text/demo.yaml", "--out", tmp_path / "bad", *tiny, "--set", "tokenizer.kind=char",
                               "--set", f"data.train={train}", "--set", f"data.valid={valid}")
    assert status == 2 and "tokenizer.kind" in err and not (tmp_path / "bad" / "best").exists()
