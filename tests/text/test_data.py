"""Corpus reading: formats, field names, and one clear error per kind of bad input."""

import gzip

import pytest

from tests.conftest import debian_pairs, write_jsonl
from triptych.errors import UserError
from triptych.text.data import drop_empty, plan_token_batches, read_pairs


def test_reads_the_embedded_corpus_gzipped():
    pairs = read_pairs("data/debian-descriptions/test.jsonl.gz")
    assert len(pairs) == 1735
    assert pairs[0].target == debian_pairs("test", 1)[0]["summary"]


@pytest.mark.parametrize("fields", [("document", "summary"), ("article", "highlights"), ("text", "summary"), ("source", "target")])
def test_known_field_names_are_recognised(tmp_path, fields):
    path = write_jsonl(tmp_path / "x.jsonl", [{fields[0]: "a long text", fields[1]: "short"}])
    (pair,) = read_pairs(path)
    assert (pair.source, pair.target) == ("a long text", "short")


def test_configured_field_names(tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", [{"body": "doc", "title": "sum"}])
    (pair,) = read_pairs(path, source_field="body", target_field="title")
    assert pair.target == "sum"


def test_parallel_source_target_files(tmp_path):
    (tmp_path / "a.source").write_text("doc one\ndoc two\n")
    (tmp_path / "a.target").write_text("one\ntwo\n")
    pairs = read_pairs(tmp_path / "a.source")
    assert [p.target for p in pairs] == ["one", "two"]
    (tmp_path / "b.source").write_text("doc one\ndoc two\n")
    (tmp_path / "b.target").write_text("one\n")
    with pytest.raises(UserError, match="b.source: 2 lines but .*b.target has 1"):
        read_pairs(tmp_path / "b.source")


def test_gzip_is_recognised_by_content(tmp_path):
    path = tmp_path / "x.jsonl"
    with gzip.open(path, "wt") as fh:
        fh.write('{"document": "d", "summary": "s"}\n')
    assert read_pairs(path)[0].source == "d"


@pytest.mark.parametrize(
    "content, message",
    [
        (b'{"document": "d", "summary": "s"}\nnot json\n', r"x.jsonl:2: not valid JSON"),
        (b'{"document": "d"}\n', r"x.jsonl:1: missing field 'summary'"),
        (b'{"summary": "s"}\n', r"x.jsonl:1: no document field"),
        (b'{"document": "d", "summary": "s"}\n{"document": 3, "summary": "s"}\n', r"x.jsonl:2: field 'document' must be a string"),
        (b'[1, 2]\n', r"x.jsonl:1: expected a JSON object"),
        (b'{"document": "caf\xe9", "summary": "s"}\n', r"x.jsonl:1: invalid UTF-8"),
        (b"", r"x.jsonl: empty file"),
    ],
)
def test_bad_input_names_file_and_line(tmp_path, content, message):
    path = tmp_path / "x.jsonl"
    path.write_bytes(content)
    with pytest.raises(UserError, match=message):
        read_pairs(path)


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="nope.jsonl: no such"):
        read_pairs(tmp_path / "nope.jsonl")


def test_empty_documents_are_skipped_with_a_count(tmp_path, capsys):
    path = write_jsonl(tmp_path / "x.jsonl", [{"document": " ", "summary": "s"}, {"document": "d", "summary": "s"}])
    kept = drop_empty(read_pairs(path), path)
    assert len(kept) == 1
    assert "skipped 1 empty document" in capsys.readouterr().err
    only_empty = write_jsonl(tmp_path / "y.jsonl", [{"document": "\t", "summary": "s"}])
    with pytest.raises(UserError, match="y.jsonl: every document is empty"):
        drop_empty(read_pairs(only_empty), only_empty)


def test_token_batches_respect_the_budget_and_cover_every_example():
    src = [5, 50, 7, 100, 20, 3, 60, 8] * 10
    tgt = [3, 10, 4, 12, 5, 2, 9, 3] * 10
    batches = plan_token_batches(src, tgt, max_tokens=400, seed=1, epoch=0)
    assert sorted(i for b in batches for i in b) == list(range(len(src)))
    for b in batches:
        assert len(b) == 1 or len(b) * (max(src[i] for i in b) + max(tgt[i] for i in b)) <= 400
    assert batches == plan_token_batches(src, tgt, max_tokens=400, seed=1, epoch=0)
    assert batches != plan_token_batches(src, tgt, max_tokens=400, seed=1, epoch=1)
