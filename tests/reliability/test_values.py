"""Every config and command-line value is checked when read, one line naming it (issue 18)."""

import time

import pytest

from tests.conftest import ROOT, write_jsonl

RECIPE = ROOT / "configs/text/transformer-debian.yaml"

BAD_SETTINGS = [
    ("model.heads=0", "model.heads"),
    ("model.heads=3", "model.d_model (256) must be a multiple of model.heads"),
    ("model.d_model=banana", "model.d_model: expected an integer"),
    ("model.d_model=-8", "model.d_model: -8 is not allowed"),
    ("model.dropout=1", "model.dropout: 1.0 is not allowed"),
    ("train.lr=.inf", "train.lr: expected a finite number"),
    ("train.lr=.nan", "train.lr: expected a finite number"),
    ("train.lr=-0.1", "train.lr: -0.1 is not allowed"),
    ("train.betas=[0.9, 1.5]", "train.betas: 1.5 is not allowed"),
    ("train.clip_norm=-1", "train.clip_norm: -1.0 is not allowed"),
    ("label_smoothing=1", "label_smoothing: 1.0 is not allowed"),
    ("data.batch_tokens=10", "data.batch_tokens: 10 cannot hold one sequence"),
    ("decode.min_len=50", "decode.min_len 50: is more than decode.max_len 40"),
    ("decode.length_penalty=.nan", "decode.length_penalty: expected a finite number"),
    ("decode.beam=0", "decode.beam: 0 is not allowed"),
    ("decode.beam=100000", "decode.beam: 100000 is not allowed"),
    ("tokenizer.vocab_size=4294967296", "tokenizer.vocab_size: 4294967296 is not allowed"),
    ("tokenizer.min_frequency=-1", "tokenizer.min_frequency: -1 is not allowed"),
    ("train.metric=bleu", "train.metric: 'bleu' is not a validation metric"),
    ("train.schedule=sideways", "train.schedule: 'sideways' is not allowed"),
]


@pytest.mark.parametrize("setting,message", BAD_SETTINGS, ids=[s for s, _ in BAD_SETTINGS])
def test_bad_config_values_are_one_line_before_anything_is_written(run_cli, tmp_path, setting, message):
    out = tmp_path / "run"
    status, stdout, err = run_cli("text", "train", RECIPE, "--out", out, "--set", setting)
    assert status == 2 and stdout == "", err
    assert message in err and err.count("\n") == 1, err
    assert not out.exists()


BAD_OPTIONS = [
    (["text", "eval", "--checkpoint", "c", "--data", "{data}", "--limit", "0"], "--limit 0: not allowed"),
    (["text", "eval", "--checkpoint", "c", "--data", "{data}", "--limit", "-3"], "--limit -3: not allowed"),
    (["text", "summarize", "--checkpoint", "c", "--text", "x", "--beam", "0"], "--beam 0: not allowed"),
    (["text", "summarize", "--checkpoint", "c", "--text", "x", "--length-penalty", "nan"], "--length-penalty: expected a finite"),
    (["text", "summarize", "--checkpoint", "c", "--text", "x", "--device", "banana"], "--device banana: not a device name"),
    (["text", "summarize", "--checkpoint", "c", "--text", "x", "--device", "cuda:99"], "--device cuda:99"),
    (["text", "summarize", "--checkpoint", "c", "--text", "x", "--device", "meta"], "--device meta"),
    (["text", "baseline", "lead", "--data", "{data}", "--words", "0"], "--words: 0: must be at least 1"),
    (["text", "tokenizer", "train", "--data", "{data}", "--out", "{tmp}/t.json", "--vocab-size", "4294967296"], "too large"),
    (["text", "tokenizer", "train", "--data", "{data}", "--out", "{tmp}/t.json", "--min-frequency", "-1"], "--min-frequency -1"),
    (["vision", "train", str(ROOT / "configs/vision/lenet5-digits.yaml"), "--out", "{tmp}/r", "--seed", "-1"], "--seed -1"),
]


@pytest.mark.parametrize("args,message", BAD_OPTIONS, ids=[" ".join(a[:2]) + " " + m for a, m in BAD_OPTIONS])
def test_bad_command_line_values_are_one_line(run_cli, tmp_path, args, message):
    data = write_jsonl(tmp_path / "d.jsonl", [{"document": "a b. c d.", "summary": "a"}] * 3)
    status, _, err = run_cli(*[a.format(data=data, tmp=tmp_path) for a in args])
    assert status == 2 and message in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.jsonl"]


def test_billion_laughs_is_refused_quickly(run_cli, tmp_path):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join(f"*{prev}" for _ in range(9)) + "]")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("task: text\n" + "\n".join(lines) + "\nlabel_smoothing: *i\n")
    start = time.monotonic()
    status, _, err = run_cli("text", "train", bomb, "--out", tmp_path / "run")
    assert status == 2 and "YAML aliases expand to more than" in err and err.count("\n") == 1
    assert time.monotonic() - start < 5
    status, _, err = run_cli("text", "train", RECIPE, "--out", tmp_path / "run", "--set",
                             "label_smoothing=[&a [1,1,1,1,1,1,1,1,1,1], " + ", ".join(["*a"] * 10) + "]")
    assert status == 2 and err.count("\n") == 1


def test_a_leftover_tokenizer_of_another_config_is_not_reused(tmp_path, capsys):
    from triptych import config as configs
    from triptych.text.config import TextConfig
    from triptych.text.data import Pair
    from triptych.text.task import build_tokenizers

    pairs = [Pair(f"document number {i} about packages and tools", f"summary {i}") for i in range(40)]
    run = tmp_path / "run"
    run.mkdir()
    small = configs.load(TextConfig, None, ["tokenizer.kind=word", "tokenizer.vocab_size=10", "tokenizer.min_frequency=1"])
    assert build_tokenizers(small, run, pairs)[0].vocab_size == 10
    big = configs.load(TextConfig, None, ["tokenizer.kind=word", "tokenizer.vocab_size=30", "tokenizer.min_frequency=1"])
    assert build_tokenizers(big, run, pairs)[0].vocab_size == 30
    assert "left by a run of another config" in capsys.readouterr().err
    assert build_tokenizers(big, run, pairs)[0].vocab_size == 30  # the same config: reused, and said so
    assert "reusing the tokenizer" in capsys.readouterr().err


def test_invalid_unicode_is_one_line(run_cli, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"document": "a\\ud800b. more words", "summary": "x"}\n')
    for args in (["text", "baseline", "lead", "--data", bad], ["text", "baseline", "textrank", "--data", bad],
                 ["text", "tokenizer", "train", "--data", bad, "--out", tmp_path / "t.json", "--vocab-size", "300"]):
        status, _, err = run_cli(*args)
        assert status == 2 and "bad.jsonl:1: field 'document': invalid Unicode" in err and err.count("\n") == 1, err
    # bytes that are not UTF-8 in an argument arrive as surrogates (Python's surrogateescape)
    status, _, err = run_cli("text", "summarize", "--checkpoint", tmp_path, "--text", b"a\xffb".decode("utf-8", "surrogateescape"))
    assert status == 2 and "--text: invalid Unicode" in err


def test_the_tokenizer_names_invalid_text_instead_of_a_type_error():
    from triptych.errors import UserError
    from triptych.text.tokenizer import train_tokenizer

    tok = train_tokenizer(["hello world"] * 5, kind="word", vocab_size=8, min_frequency=1)
    with pytest.raises(UserError, match="text 1: invalid Unicode"):
        tok.encode_batch(["fine", "a\ud800"])


@pytest.mark.parametrize("out", ["/proc/triptych-test/run", "{file}/run", "{file}"])
def test_unwritable_run_directories_are_one_line(run_cli, tmp_path, out):
    f = tmp_path / "file.txt"
    f.write_text("keep\n")
    status, _, err = run_cli("text", "train", RECIPE, "--out", out.format(file=f), "--set", "data.limit_train=5")
    assert status == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert f.read_text() == "keep\n"
