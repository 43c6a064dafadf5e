"""TextRank against its definition: dense linear solves of the PageRank equations on tiny graphs."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from tests.conftest import write_jsonl
from triptych.text.baselines.extractive import split_sentences
from triptych.text.baselines.textrank import keywords, pagerank, rank_sentences, select, textrank, textrank_many, words

D = 0.85


def dense_pagerank(W: np.ndarray, d: float = D) -> np.ndarray:
    """Solve WS = (1 - d) + d * P^T WS exactly, P the row-normalised W (zero rows stay zero)."""
    out = W.sum(1, keepdims=True)
    P = np.divide(W, out, out=np.zeros_like(W), where=out > 0)
    return np.linalg.solve(np.eye(len(W)) - d * P.T, np.full(len(W), 1 - d))


def edges_of(W: np.ndarray):
    src, dst = np.nonzero(W)
    return src, dst, W[src, dst]


def test_pagerank_equals_the_linear_solve_on_a_directed_weighted_graph():
    rng = np.random.default_rng(0)
    W = rng.random((6, 6)) * (rng.random((6, 6)) < 0.5)
    np.fill_diagonal(W, 0)
    W[4] = 0  # a dangling vertex: no out-edges
    W[:, 5] = 0
    W[5] = 0  # an isolated vertex scores 1 - d
    scores = pagerank(6, *edges_of(W), tol=1e-12)
    np.testing.assert_allclose(scores, dense_pagerank(W), rtol=0, atol=1e-9)
    assert scores[5] == pytest.approx(1 - D)
    assert pagerank(0, [], [], []).shape == (0,)


def test_sentence_scores_follow_the_papers_similarity():
    doc = ("The cat sat on the mat. A dog sat on the cat. Birds fly.\n"
           "The mat was red and the dog was brown. Fly!")
    sentences = split_sentences(doc)
    assert sentences == ["The cat sat on the mat.", "A dog sat on the cat.", "Birds fly.",
                         "The mat was red and the dog was brown.", "Fly!"]
    # Words written out by hand, independently of the tokenizer.
    toks = [["the", "cat", "sat", "on", "the", "mat"], ["a", "dog", "sat", "on", "the", "cat"], ["birds", "fly"],
            ["the", "mat", "was", "red", "and", "the", "dog", "was", "brown"], ["fly"]]
    assert [words(s) for s in sentences] == toks
    n = len(toks)
    W = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i != j:
                shared = len(set(toks[i]) & set(toks[j]))
                W[i, j] = shared / (math.log(len(toks[i])) + math.log(len(toks[j]))) if shared else 0.0
    assert W[2, 4] == pytest.approx(1 / math.log(2))  # "fly": log 2 + log 1
    [(got_sentences, scores)] = rank_sentences([doc])
    assert got_sentences == sentences
    np.testing.assert_allclose(scores, dense_pagerank(W), atol=1e-7)
    best = int(np.argmax(dense_pagerank(W)))
    assert textrank(doc) == sentences[best]


def test_one_word_sentences_and_empty_documents():
    # Both sentences one word long: log 1 + log 1 = 0, the weight is the overlap (1).
    [(_, scores)] = rank_sentences(["Go. Go."])
    np.testing.assert_allclose(scores, [1.0, 1.0])
    assert textrank("Go. Go.") == "Go."  # a tie goes to the earlier sentence
    assert textrank("") == "" and textrank(" \n ") == ""
    assert textrank("No stop at all") == "No stop at all"


def test_batch_equals_one_at_a_time():
    docs = ["A b c. B c d. C d e. X y.", "", "Alpha beta. Beta gamma. Gamma alpha beta.", "One. Two three. Three one."]
    assert textrank_many(docs, 2) == [textrank(d, 2) for d in docs]
    for (s1, sc1), d in zip(rank_sentences(docs), docs):
        [(s2, sc2)] = rank_sentences([d])
        assert s1 == s2
        np.testing.assert_allclose(sc1, sc2, atol=1e-7)


def test_selection_in_document_order_and_the_word_budget():
    sentences = ["one two three four.", "five six.", "seven eight nine."]
    scores = np.array([0.5, 2.0, 1.0])
    assert select(sentences, scores, 2) == "five six. seven eight nine."  # top 2, document order
    assert select(sentences, scores, None) == " ".join(sentences)
    assert select(sentences, scores, None, words=5) == "five six. seven eight nine."
    assert select(sentences, scores, None, words=4) == "five six. seven eight"  # the next one is cut
    assert select(sentences, scores, 1, words=1) == "five"
    for budget in range(1, 12):
        assert len(select(sentences, scores, None, words=budget).split()) == min(budget, 9)
    with pytest.raises(ValueError):
        select(sentences, scores, 0)
    with pytest.raises(ValueError):
        select(sentences, scores, 1, words=0)


ZH = ("这个软件包提供了一个命令行工具，用来把动画 PNG 图片转换为动画 GIF 格式。"
      "它允许动画 PNG 文件按动画 GIF 文件相似的方式工作！你知道吗？\n"
      "动画可移植网络图片文件格式是对可移植网络图片规范的一个扩展。")


def test_cjk_sentences_words_and_budget():
    sentences = split_sentences(ZH + "「好的。」再见")
    assert sentences == ["这个软件包提供了一个命令行工具，用来把动画 PNG 图片转换为动画 GIF 格式。",
                         "它允许动画 PNG 文件按动画 GIF 文件相似的方式工作！", "你知道吗？",
                         "动画可移植网络图片文件格式是对可移植网络图片规范的一个扩展。", "「好的。」", "再见"]
    assert words("动画 PNG，ＧＩＦ图") == ["动", "画", "png", "gif", "图"]  # characters; NFKC folds full-width
    [(_, scores)] = rank_sentences([ZH])
    assert scores[2] == pytest.approx(1 - D)  # "你知道吗" shares no character with the rest
    summary = textrank(ZH, sentences=2)
    chosen = [x for x in split_sentences(ZH) if x in summary]
    assert len(chosen) == 2 and summary == "".join(chosen)  # CJK sentences join without a space
    cut = textrank(ZH, sentences=1, words=12)
    han, latin = re.findall("[\u4e00-\u9fff]", cut), re.findall("[A-Za-z]+", cut)
    assert len(han) + len(latin) == 12  # a character or a Latin word counts one, punctuation none


def test_keywords_rank_the_cooccurrence_graph():
    text = "Linear constraints over natural numbers. Linear systems of linear constraints. Natural numbers."
    # Candidates in order (stop words "over", "of" dropped): window 2 joins neighbours.
    seq = ["linear", "constraints", "natural", "numbers", "linear", "systems", "linear", "constraints", "natural", "numbers"]
    vocab = list(dict.fromkeys(seq))
    W = np.zeros((len(vocab), len(vocab)))
    for a, b in zip(seq, seq[1:]):
        if a != b:
            W[vocab.index(a), vocab.index(b)] = W[vocab.index(b), vocab.index(a)] = 1
    want = dense_pagerank(W)
    got = dict(keywords(text, top=len(vocab)))
    assert got["linear constraints natural numbers"] == pytest.approx(want.max(), abs=1e-7)
    top1 = keywords(text, top=1)
    assert top1 == [("linear", pytest.approx(want[vocab.index("linear")], abs=1e-7))]
    assert keywords("") == [] and keywords("the of and") == []
    with pytest.raises(ValueError):
        keywords(text, window=1)


def test_baseline_textrank_command(run_cli, tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", [
        {"document": "Tools for PNG files. It converts PNG files to GIF files. GIF files are small.", "summary": "convert PNG files to GIF"},
        {"document": "Library code. The library parses JSON files. JSON files are common.", "summary": "JSON parsing library"},
    ])
    out = tmp_path / "out.txt"
    status, stdout, _ = run_cli("text", "baseline", "textrank", "--data", data, "--sentences", 1, "--json", "--output", out)
    assert status == 0
    result = json.loads(stdout)
    assert result["pairs"] == 2 and {"rouge1", "rouge2", "rougeL", "rougeLsum"} <= set(result)
    assert out.read_text().splitlines() == ["It converts PNG files to GIF files.", "The library parses JSON files."]
    status, stdout, _ = run_cli("text", "baseline", "textrank", "--data", data, "--words", 3, "--json")
    assert status == 0 and json.loads(stdout)["words"] == 3
    for bad in (["--words", "0"], ["--sentences", "0"]):
        status, stdout, err = run_cli("text", "baseline", "textrank", "--data", data, *bad)
        assert status == 2 and stdout == "" and bad[0] in err
    status, stdout, err = run_cli("text", "baseline", "textrank", "--data", tmp_path / "missing.jsonl", "--output", out)
    assert status == 2 and "missing.jsonl" in err
