"""The text pipeline end to end through the CLI, on a tiny corpus and model."""

import json

import pytest

from tests.conftest import debian_pairs, write_jsonl

TINY = [
    "--set", "model.d_model=32", "--set", "model.ffn=64", "--set", "model.heads=2",
    "--set", "model.encoder_layers=1", "--set", "model.decoder_layers=1",
    "--set", "tokenizer.vocab_size=400", "--set", "train.max_steps=12", "--set", "train.eval_every=6",
    "--set", "train.save_every=6", "--set", "train.warmup_steps=2", "--set", "train.max_minutes=null",
    "--set", "train.precision=fp32", "--set", "train.threads=1",
    "--set", "eval.valid_rouge_samples=10", "--set", "data.batch_tokens=1500", "--set", "decode.max_len=12",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    write_jsonl(root / "train.jsonl", debian_pairs("train", 240))
    write_jsonl(root / "valid.jsonl", debian_pairs("valid", 20))
    write_jsonl(root / "test.jsonl", debian_pairs("test", 8))
    return root


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    from triptych.cli import main

    run = tmp_path_factory.mktemp("runs") / "tiny"
    args = ["text", "train", "configs/text/demo.yaml", "--out", str(run), "--json",
            "--set", f"data.train={corpus / 'train.jsonl'}", "--set", f"data.valid={corpus / 'valid.jsonl'}", *TINY]
    assert main(args) == 0
    return run


def test_training_writes_a_complete_run_directory(trained):
    for name in ("config.yaml", "metrics.jsonl", "tokenizer.json", "best/model.safetensors", "best/tokenizer.json", "best/config.yaml", "best/meta.json"):
        assert (trained / name).is_file(), name
    records = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    valid = [r for r in records if r.get("kind") == "valid"]
    assert valid and all("rougeL" in r for r in valid)
    assert json.loads((trained / "best" / "meta.json").read_text())["domain"] == "text"


def test_eval_and_summarize_json(trained, corpus, run_cli, tmp_path):
    out = tmp_path / "preds.txt"
    status, stdout, _ = run_cli("text", "eval", "--checkpoint", trained / "best", "--data", corpus / "test.jsonl", "--beam", 2, "--json", "--output", out)
    assert status == 0
    result = json.loads(stdout)
    assert {"rouge1", "rouge2", "rougeL", "rougeLsum"} <= set(result) and result["pairs"] == 8
    assert len(out.read_text().splitlines()) == 8
    status, stdout, _ = run_cli("text", "summarize", "--checkpoint", trained / "best", "--text", "A library to parse JSON files quickly.", "--json")
    assert status == 0 and len(json.loads(stdout)["summaries"]) == 1
    docs = tmp_path / "docs.txt"
    docs.write_text("first document here\n\nsecond document\n")
    status, stdout, err = run_cli("text", "summarize", "--checkpoint", trained / "best", "--input", docs)
    assert status == 0 and len(stdout.splitlines()) == 2 and "skipped 1 empty" in err


def test_long_documents_are_truncated_with_a_count(trained, run_cli):
    status, _, err = run_cli("text", "summarize", "--checkpoint", trained / "best", "--text", "word " * 5000)
    assert status == 0 and "truncated 1 document" in err


def test_a_second_run_into_the_same_directory_needs_resume(trained, corpus, run_cli):
    status, out, err = run_cli("text", "train", "configs/text/demo.yaml", "--out", trained, *TINY)
    assert status == 2 and out == "" and "already holds a run" in err


def test_resume_continues_to_a_larger_budget(trained, run_cli, tmp_path):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(trained, run)
    status, out, err = run_cli("text", "train", "configs/text/demo.yaml", "--out", run, "--resume", "--set", "train.max_steps=14", "--json")
    assert status == 0, err
    assert json.loads(out)["steps"] == 14


def test_fine_tuning_keeps_the_checkpoints_tokenizer(trained, corpus, run_cli, tmp_path):
    """init_from: the new run reuses the ids the weights were trained on, even
    when its tokenizer settings (here a smaller vocabulary) would train another."""
    run = tmp_path / "tuned"
    status, _, err = run_cli(
        "text", "train", "configs/text/demo.yaml", "--out", run, "--set", f"init_from={trained / 'best'}",
        "--set", f"data.train={corpus / 'train.jsonl'}", "--set", f"data.valid={corpus / 'valid.jsonl'}",
        *TINY, "--set", "tokenizer.vocab_size=300", "--set", "train.max_steps=2", "--set", "train.eval_every=2",
    )
    assert status == 0, err
    assert (run / "tokenizer.json").read_text() == (trained / "best" / "tokenizer.json").read_text()


def test_bad_test_file_leaves_no_output(trained, run_cli, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"document": "d", "summary": "s"}\n{"document": "d"\n')
    out = tmp_path / "preds.txt"
    status, stdout, err = run_cli("text", "eval", "--checkpoint", trained / "best", "--data", bad, "--output", out)
    assert status == 2 and stdout == "" and "bad.jsonl:2: not valid JSON" in err
    assert not out.exists()


def test_corrupt_and_foreign_checkpoints(trained, run_cli, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(trained / "best", broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    status, out, err = run_cli("text", "summarize", "--checkpoint", broken, "--text", "hello there")
    assert status == 2 and out == "" and "broken" in err and err.count("\n") == 1
    foreign = tmp_path / "foreign"
    shutil.copytree(trained / "best", foreign)
    meta = json.loads((foreign / "meta.json").read_text())
    (foreign / "meta.json").write_text(json.dumps({**meta, "domain": "vision"}))
    status, out, err = run_cli("text", "eval", "--checkpoint", foreign, "--data", "data/debian-descriptions/test.jsonl.gz")
    assert status == 2 and "vision" in err


def test_tokenizer_train_command(corpus, run_cli, tmp_path):
    out = tmp_path / "tok.json"
    status, stdout, _ = run_cli("text", "tokenizer", "train", "--data", corpus / "train.jsonl", "--vocab-size", 500, "--lowercase", "--out", out, "--json")
    assert status == 0
    info = json.loads(stdout)
    assert info["vocab_size"] <= 500 and info["lowercase"] is True and out.is_file()
    from triptych.text.tokenizer import Tokenizer

    tok = Tokenizer.load(out)
    text = "Zürich 東京 and GNOME"
    assert tok.decode(tok.encode(text)) == text.lower()


def test_validation_batches_keep_the_training_token_budget(trained, corpus):
    """Validation used to take 128 documents at a time, whatever their
    length (1.35 GB at once on the Debian recipe); it now batches by
    `data.batch_tokens`, and the loss does not depend on how it is batched."""
    from triptych.text.data import read_pairs
    from triptych.text.predictor import Summarizer
    from triptych.text.task import EncodedPairs, TextTask

    s = Summarizer(trained / "best")
    task = TextTask.__new__(TextTask)  # the task's evaluation alone, without training a tokenizer again
    task.cfg, task.tokenizer, task.source_tokenizer = s.cfg, s.tokenizer, s.source_tokenizer
    task.cfg.eval.valid_rouge_samples = 0
    task.valid = EncodedPairs(read_pairs(corpus / "valid.jsonl"), s.tokenizer, 64, 24, "valid", s.source_tokenizer)
    sizes, collate = [], task.collate

    def recording(indices, device, data=None):
        batch = collate(indices, device, data)
        sizes.append((len(indices), batch["src"].numel() + batch["tgt_in"].numel()))
        return batch

    task.collate = recording
    losses = {}
    for budget in (300, 100_000):
        task.cfg.data.batch_tokens, sizes[:] = budget, []
        losses[budget] = task.evaluate(s.model)["valid_loss"]
        assert (len(sizes) > 1) == (budget == 300)
        assert all(size <= budget or n == 1 for n, size in sizes)
    assert losses[300] == pytest.approx(losses[100_000], rel=1e-5)


def test_summarize_and_eval_sample_with_a_seed(trained, corpus, run_cli):
    """--top-k / --top-p / --seed reach `text summarize` and `text eval`; a seed makes the draws repeat."""
    text = ("summarize", "--checkpoint", trained / "best", "--text", "A library to parse JSON files quickly.", "--json")
    runs = [run_cli("text", *text, "--top-k", 20, "--seed", 5) for _ in range(2)]
    assert runs[0][0] == 0 and runs[0][1] == runs[1][1]
    status, stdout, _ = run_cli("text", "eval", "--checkpoint", trained / "best", "--data", corpus / "test.jsonl", "--top-p", 0.9, "--seed", 1, "--json")
    assert status == 0 and json.loads(stdout)["decode"]["top_p"] == 0.9
    status, stdout, err = run_cli("text", *text, "--top-p", 0)
    assert status == 2 and stdout == "" and "--top-p 0" in err
    status, stdout, err = run_cli("text", *text, "--seed", 3)
    assert status == 2 and "--seed: only sampling draws" in err
