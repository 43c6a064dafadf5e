"""The text Transformer's ONNX graphs and the onnxruntime greedy decoder, on a tiny trained model."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.conftest import debian_pairs, write_jsonl

TINY = [
    "--set", "model.d_model=32", "--set", "model.ffn=64", "--set", "model.heads=2",
    "--set", "model.encoder_layers=1", "--set", "model.decoder_layers=2",
    "--set", "tokenizer.vocab_size=300", "--set", "train.max_steps=30", "--set", "train.eval_every=30",
    "--set", "train.save_every=30", "--set", "train.warmup_steps=2", "--set", "train.max_minutes=null",
    "--set", "train.precision=fp32", "--set", "train.threads=1", "--set", "train.lr=3e-3",
    "--set", "eval.valid_rouge_samples=4", "--set", "data.batch_tokens=1500", "--set", "decode.max_len=10",
    "--set", "data.max_source_len=48",
]


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    from triptych.cli import main

    root = tmp_path_factory.mktemp("text")
    write_jsonl(root / "train.jsonl", debian_pairs("train", 160))
    write_jsonl(root / "valid.jsonl", debian_pairs("valid", 8))
    run = root / "run"
    before = torch.get_num_threads()
    args = ["text", "train", "configs/text/demo.yaml", "--out", str(run), "--set", f"data.train={root / 'train.jsonl'}",
            "--set", f"data.valid={root / 'valid.jsonl'}", *TINY]
    try:
        assert main(args) == 0
    finally:
        torch.set_num_threads(before)
    return run


@pytest.fixture(scope="module")
def exported(text_run):
    from triptych.export.onnx import export_run

    return export_run(text_run, text_run / "onnx")


def test_manifest_and_files(exported, text_run):
    out = text_run / "onnx"
    assert sorted(p.name for p in out.iterdir()) == ["decoder_step.onnx", "encoder.onnx", "export.json", "tokenizer.json"]
    assert exported["copy"] is True and exported["layers"] == 2 and exported["max_abs_diff"] < 1e-4
    assert exported["step_inputs"][:4] == ["tokens", "src", "memory", "copy_k"]


def test_encoder_and_steps_match_pytorch(exported, text_run):
    """Memory at real positions and the log-probabilities of five cached steps, on
    padded and unpadded batches of other shapes than the traced one."""
    from triptych.export.onnx import session
    from triptych.export.seq2seq import step_feeds
    from triptych.text.predictor import Summarizer

    model = Summarizer(text_run / "best").model
    out = text_run / "onnx"
    enc_s, step_s = session(out / "encoder.onnx"), session(out / "decoder_step.onnx")
    g = torch.Generator().manual_seed(5)
    for B, S, pad_from in ((2, 30, 11), (5, 4, None), (1, 1, None)):
        src = torch.randint(4, 300, (B, S), generator=g)
        if pad_from is not None:
            src[0, pad_from:] = model.pad_id
        enc_o = dict(zip(exported["encoder_outputs"], enc_s.run(None, {"src": src.numpy()})))
        enc_o["src"] = src.numpy()
        with torch.no_grad():
            enc = model.encode(src)
            state = model.init_state(enc)
            keep = (src != model.pad_id).numpy()
            np.testing.assert_allclose(enc_o["memory"][keep], enc["memory"].numpy()[keep], atol=1e-4)
            past = [np.zeros((B, 2, 0, 16), np.float32) for _ in range(4)]
            tokens = torch.full((B,), 2)
            for _ in range(5):
                log_p, state = model.step(tokens, enc, state)
                res = step_s.run(None, step_feeds(exported["step_inputs"], tokens.numpy(), enc_o, past))
                np.testing.assert_allclose(res[0], log_p.numpy(), atol=1e-4)
                assert res[1].shape[2] == past[0].shape[2] + 1
                past = res[1:]
                tokens = log_p.argmax(-1)


def test_ort_greedy_reproduces_triptych_greedy(exported, text_run):
    from triptych.export.ort_greedy import OrtSummarizer
    from triptych.text.generation.search import greedy
    from triptych.text.predictor import Summarizer
    from triptych.text.task import pad

    summ = Summarizer(text_run / "best")
    docs = [p["document"] for p in debian_pairs("test", 12)] + ["x", "the the the the the the"]
    ids = summ.encode_documents(docs)
    ort = OrtSummarizer(text_run / "onnx")
    assert ort.encode_documents(docs) == ids
    tok = summ.tokenizer
    for opts in ({}, {"no_repeat_ngram": 1, "min_len": 3}, {"no_repeat_ngram": 0, "max_len": 6}):
        d = {**exported["decode"], **opts}
        ours = ort.greedy_ids(ids, **opts)
        want = [greedy(summ.model, pad([x], tok.pad_id), bos=tok.bos_id, eos=tok.eos_id, max_len=d["max_len"],
                       min_len=d["min_len"], no_repeat_ngram=d["no_repeat_ngram"])[0] for x in ids]
        assert ours == want, opts
        assert sum(map(len, ours)) >= 3 * len(ids), opts  # the tiny model says something: the check has teeth
    assert ort.summarize(docs) == summ.summarize(docs, beam=1)  # batched, length-sorted, texts


def test_ort_greedy_command_runs_without_torch_and_agrees_with_summarize(exported, text_run, tmp_path, run_cli):
    code = ("import sys; from triptych.export.ort_greedy import main; rc = main(sys.argv[1:]); "
            "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(rc)")
    docs = write_jsonl(tmp_path / "docs.jsonl", [{"document": p["document"]} for p in debian_pairs("test", 6)])
    res = subprocess.run([sys.executable, "-c", code, str(text_run / "onnx"), "--input", str(docs)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    status, out, err = run_cli("text", "summarize", "--checkpoint", text_run / "best", "--input", docs, "--beam", 1)
    assert status == 0, err
    assert res.stdout.splitlines() == out.splitlines() and len(out.splitlines()) == 6
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path), "some text"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "no export.json" in res.stderr and res.stdout == ""


def _random_checkpoint(text_run, tmp_path, model_section: dict):
    """A text checkpoint of the tiny run's tokenizer with another model section, random weights."""
    import shutil

    import yaml

    from triptych import config as configs
    from triptych.engine.checkpoint import save_checkpoint
    from triptych.text.config import TextConfig
    from triptych.text.task import build_seq2seq
    from triptych.text.tokenizer import Tokenizer

    raw = yaml.safe_load((text_run / "best" / "config.yaml").read_text())
    raw["model"] = model_section
    cfg = configs.from_dict(TextConfig, raw, "test")
    tokenizer = Tokenizer.load(text_run / "best" / "tokenizer.json")
    torch.manual_seed(3)
    ckpt = tmp_path / "ckpt"
    save_checkpoint(ckpt, build_seq2seq(cfg, tokenizer), domain="text", config=raw,
                    save_artifacts=lambda d: shutil.copyfile(text_run / "best" / "tokenizer.json", d / "tokenizer.json"))
    return ckpt


def test_export_without_copy_attention(text_run, tmp_path):
    """A second Transformer variant (no copy attention, post-LN, untied output)."""
    from triptych.export.onnx import export_run

    section = {"name": "transformer", "d_model": 32, "ffn": 64, "heads": 2, "encoder_layers": 1, "decoder_layers": 2,
               "copy": False, "norm": "post", "tie_embeddings": False}
    manifest = export_run(_random_checkpoint(text_run, tmp_path, section), tmp_path / "onnx")
    assert manifest["copy"] is False and "memory" not in manifest["step_inputs"]
    assert manifest["max_abs_diff"] < 1e-4


def test_other_text_families_are_refused_clearly(text_run, tmp_path, run_cli):
    ckpt = _random_checkpoint(text_run, tmp_path, {"name": "rnn", "embed_dim": 16, "hidden": 16, "encoder_hidden": 8})
    status, out, err = run_cli("export", ckpt, "--out", tmp_path / "onnx")
    assert status == 2 and out == "" and "text model 'rnn' cannot be exported to ONNX" in err
    assert not (tmp_path / "onnx").exists() and [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def test_ort_greedy_refuses_a_non_text_export(tmp_path):
    from triptych.errors import UserError
    from triptych.export.ort_greedy import OrtSummarizer

    with pytest.raises(UserError, match="no export.json"):
        OrtSummarizer(tmp_path)
    (tmp_path / "export.json").write_text(json.dumps({"format": "triptych-onnx", "version": 1, "domain": "vision"}))
    with pytest.raises(UserError, match="a vision export, expected a text one"):
        OrtSummarizer(tmp_path)
