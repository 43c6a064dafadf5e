"""Lead baselines: the sentence rule, and the corpus README's reference numbers."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from triptych.text.baselines.extractive import lead, lead_words, split_sentences
from triptych.text.metrics.corpus import rouge_f1_x100

DATA = Path(__file__).resolve().parents[2] / "data/debian-descriptions/test.jsonl.gz"


def test_sentence_rule():
    text = ("Written by Donald E. Knuth, e.g. TeX. Version 1.2.3 reads foo.conf! Really?\" "
            "Yes etc. and more etc. Next\n\nSecond (paragraph).  Third i.e. last")
    assert split_sentences(text) == [
        "Written by Donald E. Knuth, e.g. TeX.",
        "Version 1.2.3 reads foo.conf!",
        "Really?\"",
        "Yes etc. and more etc.",
        "Next",
        "Second (paragraph).",
        "Third i.e. last",
    ]
    assert split_sentences("") == [] and split_sentences(" \n \n") == []
    assert split_sentences("See http://example.org/a.b for more. Done") == ["See http://example.org/a.b for more.", "Done"]


def test_lead_cuts_the_first_sentence():
    doc = "A tool to convert  files. It is fast and it is small.\nSecond paragraph here."
    assert lead(doc) == "A tool to convert files."
    assert lead(doc, words=3) == "A tool to"
    assert lead(doc, words=None) == "A tool to convert files."
    assert lead(doc, words=8, first_sentence=False) == "A tool to convert files. It is fast"
    assert lead_words(doc, 12) == "A tool to convert files. It is fast and it is small."
    assert lead_words(doc, 13) == "A tool to convert files. It is fast and it is small. Second"
    assert lead("") == "" and lead("\n\n") == ""
    assert lead("one line without a stop") == "one line without a stop"
    with pytest.raises(ValueError):
        lead(doc, words=-1)


@pytest.fixture(scope="module")
def test_split():
    with gzip.open(DATA, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    return [r["document"] for r in rows], [r["summary"] for r in rows]


def test_lead_reproduces_the_readme(test_split):
    docs, refs = test_split
    assert len(docs) == 1735
    first_sentence = rouge_f1_x100([lead(d) for d in docs], refs)  # README: 32.2 / 14.7 / 28.5
    for key, want in (("rouge1", 32.2), ("rouge2", 14.7), ("rougeL", 28.5)):
        assert abs(first_sentence[key] - want) <= 0.1, (key, first_sentence[key])
    lead10 = rouge_f1_x100([lead_words(d, 10) for d in docs], refs)  # README: 31.5 / 14.2 / 28.0
    for key, want in (("rouge1", 31.5), ("rouge2", 14.2), ("rougeL", 28.0)):
        assert abs(lead10[key] - want) <= 0.1, (key, lead10[key])


def test_cjk_sentences_end_at_full_width_stops():
    text = "这是第一句。这是第二句！真的吗？」然后\n第二段。Version 1.2 stays。"
    assert split_sentences(text) == ["这是第一句。", "这是第二句！", "真的吗？」", "然后", "第二段。", "Version 1.2 stays。"]
    assert lead("这个软件包提供了一个工具。它很快。") == "这个软件包提供了一个工具。"
    # English rules are unchanged next to CJK text: "e.g." still does not end a sentence.
    assert split_sentences("Tools, e.g. 工具。Done") == ["Tools, e.g. 工具。", "Done"]
