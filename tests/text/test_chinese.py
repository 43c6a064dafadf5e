"""Chinese end to end: BPE on characters, ROUGE by characters, TextRank's splitter, train -> summarize -> rouge."""

import json
from pathlib import Path

import pytest

from tests.conftest import write_jsonl
from triptych.text.tokenizer import Tokenizer, looks_cjk, train_tokenizer

SAMPLE = Path(__file__).parent / "data" / "zh-sample.jsonl"


def pairs() -> list[dict]:
    return [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]


def test_the_sample_is_chinese_without_spaces():
    rows = pairs()
    assert len(rows) == 40 and looks_cjk([r["summary"] for r in rows])
    assert not looks_cjk(["A library to parse JSON", "命令行软件包管理器", "text"])


@pytest.mark.parametrize("kind", ["bpe", "bpe-char"])
def test_bpe_round_trips_chinese_exactly(kind, tmp_path):
    rows = pairs()
    texts = [t for r in rows for t in (r["document"], r["summary"])]
    tok = train_tokenizer(texts, kind=kind, vocab_size=600)
    assert tok.kind == kind
    for t in texts[:20] + ["English 与中文，数字 3.14！"]:
        assert tok.decode(tok.encode(t)) == t
    # a character never seen: byte-level BPE still spells it, BPE on characters shows <unk>
    unseen = "混合"
    assert tok.decode(tok.encode(unseen)) == (unseen if kind == "bpe" else "<unk>合")
    tok.save(tmp_path)
    assert Tokenizer.load(tmp_path / "tokenizer.json").kind == kind


def test_bpe_on_characters_never_splits_a_character():
    texts = [t for r in pairs() for t in (r["document"], r["summary"])]
    char, byte = train_tokenizer(texts, kind="bpe-char", vocab_size=400), train_tokenizer(texts, kind="bpe", vocab_size=400)
    summary = pairs()[0]["summary"]  # 古代战争实时策略游戏
    assert all("\ufffd" not in p for p in char.pieces(char.encode(summary)))
    # a byte-level vocabulary this small leaves some characters as loose bytes
    assert any("\ufffd" in p for t in texts[:10] for p in byte.pieces(byte.encode(t)))


def test_textrank_splits_chinese_sentences():
    from triptych.text.baselines.extractive import split_sentences
    from triptych.text.baselines.textrank import textrank

    doc = "这是第一句。这是第二句！这是第三句吗？最后一句"
    assert split_sentences(doc) == ["这是第一句。", "这是第二句！", "这是第三句吗？", "最后一句"]
    summary = textrank(pairs()[0]["document"], sentences=1)
    assert summary and summary in pairs()[0]["document"] and summary.endswith("。")


def test_rouge_of_chinese_is_by_characters_and_automatic(tmp_path, run_cli):
    pred = tmp_path / "pred.txt"
    ref = tmp_path / "ref.txt"
    pred.write_text("古代战争游戏\n命令行管理器\n", encoding="utf-8")
    ref.write_text("古代战争实时策略游戏\n命令行软件包管理器\n", encoding="utf-8")
    status, out, err = run_cli("text", "rouge", "--pred", pred, "--ref", ref, "--json")
    assert status == 0, err
    got = json.loads(out)
    # pair 1: 6 of 6 predicted characters in a 10-character reference; pair 2: 6 of 6 in 9
    f1 = [2 * 6 / (6 + 10), 2 * 6 / (6 + 9)]
    assert got["rouge1"] == pytest.approx(100 * sum(f1) / 2)


def test_train_summarize_rouge_end_to_end(tmp_path, run_cli):
    """The zh demo recipe, shrunk to seconds, on 40 real pairs: no crash, Chinese out, ROUGE by characters."""
    rows = pairs()
    train = write_jsonl(tmp_path / "train.jsonl", rows[:34])
    valid = write_jsonl(tmp_path / "valid.jsonl", rows[34:])
    run = tmp_path / "run"
    status, out, err = run_cli(
        "text", "train", "configs/text/transformer-zh-demo.yaml", "--out", run, "--json",
        "--set", f"data.train={train}", "--set", f"data.valid={valid}", "--set", "tokenizer.vocab_size=500",
        "--set", "model.d_model=32", "--set", "model.ffn=64", "--set", "model.encoder_layers=1", "--set", "model.decoder_layers=1",
        "--set", "train.max_minutes=null", "--set", "train.max_steps=30", "--set", "train.eval_every=30", "--set", "train.threads=1",
        "--set", "train.warmup_steps=5", "--set", "decode.max_len=12",
    )
    assert status == 0, err
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any(m.get("kind") == "valid" and "rougeL" in m for m in metrics)
    assert Tokenizer.load(run / "best").kind == "bpe-char"
    status, out, err = run_cli("text", "summarize", "--checkpoint", run / "best", "--text", rows[0]["document"], "--json")
    assert status == 0, err
    summary = json.loads(out)["summaries"][0]
    assert "\ufffd" not in summary
    status, out, err = run_cli("text", "eval", "--checkpoint", run / "best", "--data", valid, "--beam", 2, "--json")
    assert status == 0, err
    result = json.loads(out)
    assert result["pairs"] == 6 and 0 <= result["rougeL"] <= 100
    # A model that copies the reference scores 100 by characters (English mode would score 0).
    preds, refs = tmp_path / "p.txt", tmp_path / "r.txt"
    refs.write_text("".join(r["summary"] + "\n" for r in rows[34:]), encoding="utf-8")
    preds.write_text(refs.read_text(encoding="utf-8"), encoding="utf-8")
    status, out, _ = run_cli("text", "rouge", "--pred", preds, "--ref", refs, "--json")
    assert status == 0 and json.loads(out)["rougeL"] == pytest.approx(100.0)
