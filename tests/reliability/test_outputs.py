"""No output may destroy an input (issue 18): every writing command, with its
output set to each of its inputs, exits 2 with one line and leaves the input
byte for byte as it was; nothing that is not a regular file is replaced."""

import argparse
import hashlib
import os

import pytest

from tests.conftest import write_jsonl
from triptych.files import OUTPUT_OPTIONS

PAIRS = [{"document": f"The {w} package does things. It has many features.", "summary": f"{w} tool"}
         for w in ("alpha", "beta", "gamma", "delta", "epsilon", "zeta")]

# command -> (its arguments with {NAME} placeholders for inputs, the output option, the inputs it may be set to)
WRITERS = {
    "text train": (["text", "train", "{config}"], "--out", ["config"]),
    "text eval": (["text", "eval", "--checkpoint", "{ckpt}", "--data", "{data}"], "--output", ["ckpt", "data"]),
    "text baseline lead": (["text", "baseline", "lead", "--data", "{data}"], "--output", ["data"]),
    "text baseline textrank": (["text", "baseline", "textrank", "--data", "{data}"], "--output", ["data"]),
    "text attention": (["text", "attention", "--checkpoint", "{ckpt}", "--text", "a b c"], "--output", ["ckpt"]),
    "text tokenizer train": (["text", "tokenizer", "train", "--data", "{data}", "{data2}", "--vocab-size", "300"], "--out", ["data", "data2"]),
    "vision train": (["vision", "train", "{config}"], "--out", ["config"]),
    "vision eval": (["vision", "eval", "--checkpoint", "{ckpt}", "--data", "{folder}"], "--plot", ["ckpt", "folder"]),
    "vision digit-scenes": None,  # reads nothing the user names
    "vision import": (["vision", "import", "--from", "torchvision", "{data}", "--model", "resnet18"], "--out", ["data"]),
    "vision export": (["vision", "export", "--to", "torchvision", "{ckpt}"], "--out", ["ckpt"]),
    "video synth": None,
    "video digits": None,
    "video extract-features": (["video", "extract-features", "--checkpoint", "{ckpt}", "--frames", "{data}"], "--out", ["ckpt", "data"]),
    "video train": (["video", "train", "{config}"], "--out", ["config"]),
    "video eval": (["video", "eval", "--checkpoint", "{ckpt}", "--data", "{data}"], "--save-predictions", ["ckpt", "data", "glob"]),
    "video predict": (["video", "predict", "--checkpoint", "{ckpt}", "--data", "{data}"], "--out", ["ckpt", "data", "glob"]),
    "caption train": (["caption", "train", "{config}"], "--out", ["config"]),
    "demo": None,
    "export": (["export", "{ckpt}"], "--out", ["ckpt"]),
    "report": (["report", "{ckpt}"], "--output", ["ckpt"]),
}


def _leaves(parser, path=()):
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield " ".join(path), parser
    for a in subs:
        for name, sub in a.choices.items():
            yield from _leaves(sub, (*path, name))


def test_every_writing_command_is_in_the_table():
    """A new command with an output option must be added to WRITERS (and so tested)."""
    from triptych.cli import build_parser

    writing = {name for name, p in _leaves(build_parser()) if any(a.dest in OUTPUT_OPTIONS for a in p._actions)}
    assert writing == set(WRITERS)


def _digest(path):
    if os.path.isdir(path):
        return sorted((p, _digest(os.path.join(path, p))) for p in os.listdir(path))
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture
def inputs(tmp_path):
    data = write_jsonl(tmp_path / "data.jsonl", PAIRS)
    data2 = write_jsonl(tmp_path / "more.jsonl", PAIRS[:3])
    config = tmp_path / "recipe.yaml"
    config.write_text("task: text\n", encoding="utf-8")
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "meta.json").write_text("{}\n", encoding="utf-8")
    folder = tmp_path / "images"
    folder.mkdir()
    return {"data": data, "data2": data2, "config": config, "ckpt": ckpt, "folder": folder,
            "glob": str(tmp_path / "data.json*")}


CASES = [(name, target) for name, spec in WRITERS.items() if spec for target in spec[2]]


@pytest.mark.parametrize("name,target", CASES, ids=[f"{n}->{t}" for n, t in CASES])
def test_output_set_to_an_input_is_refused(run_cli, inputs, tmp_path, name, target):
    template, option, _ = WRITERS[name]
    args = [a.format(**{k: str(v) for k, v in inputs.items()}) for a in template]
    # the same file spelled another way: through '..', so only the inode can tell
    spelled = inputs[target] if target == "glob" else inputs[target]
    out = str(spelled) if target == "glob" else os.path.join(str(tmp_path), "..", tmp_path.name, os.path.basename(str(spelled)))
    if target == "glob":
        out = str(inputs["data"])
    before = {k: _digest(v) for k, v in inputs.items() if k != "glob"}
    status, stdout, err = run_cli(*args, option, out)
    assert status == 2, err
    assert err.strip().count("\n") == 0 and "is also an input" in err, err
    assert {k: _digest(v) for k, v in inputs.items() if k != "glob"} == before


def test_a_symlink_to_an_input_is_the_input(run_cli, inputs, tmp_path):
    link = tmp_path / "link.json"
    link.symlink_to(inputs["data"])
    before = _digest(inputs["data"])
    status, _, err = run_cli("text", "tokenizer", "train", "--data", inputs["data"], "--vocab-size", "300", "--out", link)
    assert status == 2 and "is also an input" in err
    assert _digest(inputs["data"]) == before and link.is_symlink()


def test_outputs_that_are_not_regular_files_are_never_replaced(run_cli, inputs, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for args in (["text", "baseline", "lead", "--data", inputs["data"], "--output", fifo],
                 ["text", "tokenizer", "train", "--data", inputs["data"], "--vocab-size", "300", "--out", fifo]):
        status, _, err = run_cli(*args)
        assert status == 2 and "not a regular file" in err and err.count("\n") == 1
        assert not fifo.is_file() and fifo.exists()
    status, _, err = run_cli("text", "baseline", "lead", "--data", inputs["data"], "--output", tmp_path)
    assert status == 2 and "is a directory" in err


@pytest.mark.parametrize("where", ["/proc/triptych-test/x.txt", "{file}/x.txt"])
def test_unwritable_output_is_one_line(run_cli, inputs, where):
    status, _, err = run_cli("text", "baseline", "lead", "--data", inputs["data"],
                             "--output", where.format(file=inputs["data"]))
    assert status == 2 and err.count("\n") == 1 and "Traceback" not in err


def test_write_time_guard_protects_files_read_inside_the_library(tmp_path):
    """The same guard at the moment of writing: a file read through read_lines is an input."""
    from triptych import files
    from triptych.errors import UserError

    files.forget_inputs()
    data = write_jsonl(tmp_path / "d.jsonl", PAIRS)
    list(files.read_lines(data))
    with pytest.raises(UserError, match="is also an input"):
        files.atomic_write_text(tmp_path / "." / "d.jsonl", "gone\n")
    assert "alpha" in data.read_text()
    files.forget_inputs()


def test_an_input_that_is_gone_no_longer_guards_its_inode(tmp_path):
    """A resumed training run prunes the checkpoint it resumed from; the file
    system may give that inode number to a new file, here the run's own
    `checkpoints/latest`, which must stay writable (a 3-hour run stopped on
    it). The reuse itself cannot be forced, so the noted input is made to
    look like it: same identity, a path that no longer leads to it."""
    from triptych import files
    from triptych.errors import UserError

    files.forget_inputs()
    latest = tmp_path / "latest"
    latest.write_text("step-0000001\n")
    st = os.stat(latest)
    files._INPUTS[st.st_dev, st.st_ino] = ("step-0000001/model.safetensors", str(tmp_path / "pruned"))
    files.atomic_write_text(latest, "step-0000002\n")
    assert latest.read_text() == "step-0000002\n"
    # an input still where it was keeps its guard
    data = write_jsonl(tmp_path / "d.jsonl", PAIRS)
    files.note_input(data)
    with pytest.raises(UserError, match="is also an input"):
        files.atomic_write_text(data, "gone\n")
    files.forget_inputs()


def test_the_guard_still_lets_commands_write(run_cli, inputs, tmp_path):
    out = tmp_path / "lead.txt"
    status, _, err = run_cli("text", "baseline", "lead", "--data", inputs["data"], "--output", out)
    assert status == 0, err
    assert out.read_text().count("\n") == len(PAIRS)
    status, _, err = run_cli("text", "baseline", "lead", "--data", inputs["data"], "--output", out)  # replacing an old output is fine
    assert status == 0, err


def test_the_demo_never_replaces_a_folder_it_did_not_make(run_cli, tmp_path):
    mine = tmp_path / "project" / "text"
    mine.mkdir(parents=True)
    (mine / "code.py").write_text("print('mine')\n")
    status, _, err = run_cli("demo", "--out", tmp_path / "project", "--only", "text")
    assert status == 2 and "not an earlier demo's" in err and err.count("\n") == 1
    assert (mine / "code.py").read_text() == "print('mine')\n"
