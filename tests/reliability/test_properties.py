"""Property tests over the command line and the config (issue 18): any value
either works or is exit status 2 with one line; never a traceback, never a
changed input file. The counts of what was tried are printed (run with -s)
and recorded in docs/history/2026-12-03-reliability.md."""

import hashlib
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT, write_jsonl
from triptych import config as configs
from triptych.errors import UserError

PAIRS = [{"document": f"The {w} package reads files. It writes them too.", "summary": f"{w} reader"}
         for w in ("alpha", "beta", "gamma", "delta", "epsilon")]

# Raw text after `--set key=`: numbers of every kind, YAML that parses to lists,
# maps, aliases and nulls, and text with lone surrogates.
RAW = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from([".nan", ".inf", "-.inf", "null", "true", "[]", "{}", "[1, 2]", "{a: 1}", "&a [1, *a]",
                     "0", "-1", "1e308", "banana", "", "[0.9, .nan]", "2**31", "0x10"]),
    st.text(max_size=12),
)

CONFIGS = {
    "text": ("triptych.text.config", "TextConfig", ROOT / "configs/text/transformer-debian.yaml"),
    "vision": ("triptych.vision.config", "VisionConfig", ROOT / "configs/vision/lenet5-digits.yaml"),
    "caption": ("triptych.caption.config", "CaptionConfig", ROOT / "configs/caption/digit-scenes.yaml"),
}
COUNTS: dict[str, int] = {}


def _keys(domain: str) -> list[str]:
    import importlib

    module, cls, recipe = CONFIGS[domain]
    cfg = configs.load(getattr(importlib.import_module(module), cls), recipe)
    out = []

    def walk(d, prefix):
        for k, v in d.items():
            if isinstance(v, dict) and v:
                walk(v, f"{prefix}{k}.")
            else:
                out.append(f"{prefix}{k}")

    walk(configs.to_dict(cfg), "")
    return out


def _count(key: str) -> None:
    COUNTS[key] = COUNTS.get(key, 0) + 1


@pytest.mark.parametrize("domain", sorted(CONFIGS))
def test_any_config_value_loads_or_is_one_line_naming_its_key(domain):
    import importlib

    module, cls, recipe = CONFIGS[domain]
    cls = getattr(importlib.import_module(module), cls)
    keys = _keys(domain)

    @given(key=st.sampled_from(keys), raw=RAW)
    @settings(max_examples=300, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    def check(key, raw):
        _count(f"config {domain} tried")
        try:
            cfg = configs.load(cls, recipe, [f"{key}={raw}"])
            if domain == "text":
                from triptych.text.task import check_model

                check_model(cfg)
            configs.save(cfg, os.devnull + "-not-written") if False else None
            _count(f"config {domain} accepted")
        except UserError as e:
            message = str(e)
            assert "\n" not in message and len(message) < 600, message
            assert key.split(".")[-1] in message or key.split(".")[0] in message, (key, raw, message)
            _count(f"config {domain} refused in one line")

    check()


def _digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("prop")
    data = write_jsonl(d / "data.jsonl", PAIRS)
    pred = d / "pred.txt"
    pred.write_text("alpha reader\nbeta\ngamma tool\ndelta reader\nepsilon\n")
    ref = d / "ref.txt"
    ref.write_text("alpha reader\nbeta reader\ngamma reader\ndelta reader\nepsilon reader\n")
    (d / "folder").mkdir()
    return {"data": data, "pred": pred, "ref": ref, "folder": d / "folder", "dir": d}


NUMBER = st.one_of(st.integers(min_value=1, max_value=400).map(str), st.integers(min_value=-(2**40), max_value=2**40).map(str),
                   st.sampled_from(["0", "-1", "1", "3", "nan", "inf", "-inf", "1e9", "2.5", "x", ""]))
TEXT = st.one_of(st.text(max_size=10), st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
                                               min_size=1, max_size=3))


@st.composite
def command_lines(draw, files):
    paths = {"data": str(files["data"]), "pred": str(files["pred"]), "ref": str(files["ref"]),
             "folder": str(files["folder"]), "missing": str(files["dir"] / "missing.jsonl"), "null": os.devnull,
             "new": str(files["dir"] / "out" / "new.txt"), "proc": "/proc/triptych/x"}
    # mostly the real inputs, so that most command lines get past their paths to their numbers
    path = st.sampled_from(["data"] * 6 + ["pred", "ref"] * 2 + sorted(paths)).map(paths.get)
    verb = draw(st.sampled_from(["lead", "textrank", "copy", "rouge", "tokenizer", "summarize"]))
    if verb == "lead":
        args = ["text", "baseline", "lead", "--data", draw(path), "--words", draw(NUMBER)]
    elif verb == "textrank":
        args = ["text", "baseline", "textrank", "--data", draw(path), "--sentences", draw(NUMBER)]
        if draw(st.booleans()):
            args += ["--words", draw(NUMBER)]
    elif verb == "copy":
        args = ["text", "baseline", "copy", "--data", draw(path), "--metric", draw(st.sampled_from(["rouge", "bleu", "x", ""]))]
    elif verb == "rouge":
        args = ["text", "rouge", "--pred", draw(st.sampled_from([paths["pred"]] * 3 + [paths["ref"], paths["data"], paths["null"]])),
                "--ref", draw(st.sampled_from([paths["ref"]] * 3 + [paths["missing"], paths["folder"]]))]
    elif verb == "tokenizer":
        args = ["text", "tokenizer", "train", "--data", draw(path), "--vocab-size", draw(NUMBER),
                "--min-frequency", draw(NUMBER), "--kind", draw(st.sampled_from(["bpe", "word", "bpe-char"]))]
    else:
        args = ["text", "summarize", "--checkpoint", draw(path), "--text", draw(TEXT), "--beam", draw(NUMBER),
                "--device", draw(st.sampled_from(["cpu", "cuda", "cuda:7", "banana", "meta", ""]))]
    # an output is one of this command's own inputs (must be refused) or a place that is no one's input
    output = st.sampled_from([args[args.index("--data") + 1] if "--data" in args else paths["new"]] * 2
                             + [paths[k] for k in ("new", "null", "folder", "proc", "missing")])
    if verb in ("lead", "textrank") and draw(st.booleans()):
        args += ["--output", draw(output)]
    elif verb == "tokenizer":
        args += ["--out", draw(output)]
    return args


def test_any_command_line_works_or_is_one_line(run_cli, files):
    inputs = {k: _digest(files[k]) for k in ("data", "pred", "ref")}

    @given(args=command_lines(files))
    @settings(max_examples=150, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    def check(args):
        status, _, err = run_cli(*args)
        _count(f"cli tried")
        assert status in (0, 2), (args, status, err[-2000:])
        if status == 2:
            assert err.count("\n") == 1 and "error:" in err and "Traceback" not in err, (args, err)
        _count(f"cli exit {status}")
        assert {k: _digest(files[k]) for k in inputs} == inputs, args

    check()


def teardown_module():
    print("\nproperty counts:", dict(sorted(COUNTS.items())))
