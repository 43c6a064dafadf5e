"""Separate source and target vocabularies (`tokenizer.shared: false`), issue 8.

A tiny English->French run on real Debian translations goes through the CLI
(train, eval with BLEU/chrF/ROUGE, summarize, tokenizer stats, resume,
fine-tuning); the two vocabularies must really be two (French words in the
target's only, English ones in the source's only); a checkpoint written
before the option existed must load as it did; copy attention is refused;
and every family memorises a few pairs through its own source embedding.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import write_jsonl

SAMPLE = Path(__file__).parent / "data" / "en-fr-sample.jsonl"
SOURCE_VOCAB, TARGET_VOCAB = 350, 400  # unequal, so a model reading the wrong table fails loudly

TINY = [
    "--set", "model.copy=false", "--set", "tokenizer.shared=false",
    "--set", f"tokenizer.vocab_size={TARGET_VOCAB}", "--set", f"tokenizer.source_vocab_size={SOURCE_VOCAB}",
    "--set", "model.d_model=32", "--set", "model.ffn=64", "--set", "model.heads=2",
    "--set", "model.encoder_layers=1", "--set", "model.decoder_layers=1",
    "--set", "train.max_steps=6", "--set", "train.eval_every=3", "--set", "train.save_every=3",
    "--set", "train.warmup_steps=2", "--set", "train.max_minutes=null", "--set", "train.precision=fp32",
    "--set", "train.threads=1", "--set", "eval.valid_rouge_samples=4", "--set", "decode.max_len=10",
    "--set", "decode.beam=2", "--set", "data.batch_tokens=1500", "--set", "data.max_source_len=48",
    "--set", "data.max_target_len=48",
]
RECIPE = "configs/text/transformer-en-fr.yaml"


def _pairs() -> list[dict]:
    return [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("en-fr")
    pairs = _pairs()
    write_jsonl(root / "train.jsonl", pairs[:64])
    write_jsonl(root / "valid.jsonl", pairs[64:72])
    write_jsonl(root / "test.jsonl", pairs[72:])
    return root


def _data(corpus) -> list[str]:
    return ["--set", f"data.train={corpus / 'train.jsonl'}", "--set", f"data.valid={corpus / 'valid.jsonl'}"]


@pytest.fixture(scope="module")
def run(corpus, tmp_path_factory):
    from triptych.cli import main

    out = tmp_path_factory.mktemp("runs") / "separate"
    assert main(["text", "train", RECIPE, "--out", str(out), "--json", *_data(corpus), *TINY]) == 0
    return out


def test_the_run_and_its_checkpoints_hold_two_different_vocabularies(run):
    from safetensors import safe_open

    from triptych.text.tokenizer import load_tokenizers

    for where in (run, run / "best"):
        assert (where / "tokenizer.json").is_file() and (where / "source-tokenizer.json").is_file(), where
    target, source = load_tokenizers(run / "best", shared=False)
    assert (target.vocab_size, source.vocab_size) == (TARGET_VOCAB, SOURCE_VOCAB)
    tv, sv = target.hf.get_vocab(), source.hf.get_vocab()
    for french in ("Ġpour", "Ġles"):  # byte-level BPE marks a leading space with Ġ
        assert french in tv and french not in sv, french
    for english in ("Ġthe", "Ġand"):
        assert english in sv and english not in tv, english
    with safe_open(str(run / "best" / "model.safetensors"), "pt") as f:
        assert tuple(f.get_slice("src_embed.weight").get_shape()) == (SOURCE_VOCAB, 32)
        assert tuple(f.get_slice("embed.weight").get_shape()) == (TARGET_VOCAB, 32)


def test_documents_are_encoded_with_the_source_vocabulary(run):
    from triptych.text.predictor import Summarizer

    s = Summarizer(run / "best")
    text = "A battery monitor plugin for the panel"
    assert s.source_tokenizer is not s.tokenizer
    assert s.encode_documents([text])[0] == s.source_tokenizer.encode(text)
    assert s.encode_documents([text])[0] != s.tokenizer.encode(text)


def test_eval_and_summarize_through_the_cli(run, corpus, run_cli):
    status, stdout, err = run_cli("text", "eval", "--checkpoint", run / "best", "--data", corpus / "test.jsonl",
                                  "--metric", "bleu,chrf,rouge", "--json")
    assert status == 0, err
    result = json.loads(stdout)
    assert {"bleu", "chrf", "rougeL"} <= set(result) and result["pairs"] == 8
    status, stdout, err = run_cli("text", "summarize", "--checkpoint", run / "best", "--text", "battery monitor plugin", "--json")
    assert status == 0, err
    assert len(json.loads(stdout)["summaries"]) == 1


def test_tokenizer_stats_reports_both_sides(run, corpus, run_cli):
    status, stdout, err = run_cli("text", "tokenizer", "stats", "--tokenizer", run, "--data", corpus / "test.jsonl", "--json")
    assert status == 0, err
    row = json.loads(stdout)["tokenizers"][0]
    assert row["vocab_size"] == TARGET_VOCAB and row["source"]["vocab_size"] == SOURCE_VOCAB
    assert row["documents"]["tokens"] > 0 and row["summaries"]["tokens"] > 0


def test_resume_and_fine_tuning_load_both_vocabularies(run, corpus, run_cli, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    status, out, err = run_cli("text", "train", RECIPE, "--out", copy, "--resume", "--set", "train.max_steps=7", "--json")
    assert status == 0, err
    assert json.loads(out)["steps"] == 7
    assert (copy / "best" / "source-tokenizer.json").read_text() == (run / "source-tokenizer.json").read_text()

    tuned = tmp_path / "tuned"
    status, _, err = run_cli("text", "train", RECIPE, "--out", tuned, "--set", f"init_from={run / 'best'}", *_data(corpus),
                             *TINY, "--set", "tokenizer.source_vocab_size=300", "--set", "train.max_steps=1", "--set", "train.eval_every=1")
    assert status == 0, err
    for name in ("tokenizer.json", "source-tokenizer.json"):
        assert (tuned / name).read_text() == (run / "best" / name).read_text(), name

    status, out, err = run_cli("text", "train", RECIPE, "--out", tmp_path / "mismatch", "--set", f"init_from={run / 'best'}",
                               *_data(corpus), "--set", "model.copy=false")
    assert status == 2 and out == "" and "tokenizer.shared" in err and err.count("\n") == 1


def test_copy_attention_with_separate_vocabularies_is_refused(corpus, run_cli, tmp_path):
    out = tmp_path / "copy"
    status, stdout, err = run_cli("text", "train", RECIPE, "--out", out, *_data(corpus), "--set", "tokenizer.shared=false")
    assert status == 2 and stdout == "" and err.count("\n") == 1
    assert "model.copy" in err and "tokenizer.shared" in err
    assert not out.exists()


def test_options_for_separate_vocabularies_are_checked(run_cli, tmp_path):
    status, _, err = run_cli("text", "train", RECIPE, "--out", tmp_path / "x", "--set", "tokenizer.source_vocab_size=500")
    assert status == 2 and "tokenizer.source_vocab_size" in err and "shared" in err
    status, _, err = run_cli("text", "train", RECIPE, "--out", tmp_path / "y", "--set", "model.copy=false",
                             "--set", "tokenizer.shared=false", "--set", "tokenizer.path=some/tokenizer.json")
    assert status == 2 and "tokenizer.source_path" in err


def test_a_checkpoint_missing_its_source_tokenizer_is_one_clear_line(run, run_cli, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(run / "best", broken)
    (broken / "source-tokenizer.json").unlink()
    status, out, err = run_cli("text", "summarize", "--checkpoint", broken, "--text", "hello")
    assert status == 2 and out == "" and "source-tokenizer.json" in err and err.count("\n") == 1


def test_attention_map_and_serving_show_source_pieces(run, run_cli, tmp_path):
    from triptych.serve.models import SummaryOptions, TextService
    from triptych.text.config import DecodeConfig

    text = "battery monitor plugin"
    served = TextService(run / "best")
    source = served.summarizer.source_tokenizer
    pieces = source.pieces(source.encode(text))
    options = SummaryOptions(DecodeConfig(beam=1, max_len=5, min_len=1, length_penalty=1.0, no_repeat_ngram=0), attention=True)
    [result] = served.summarize([text], options)
    assert result["attention"]["source"] == pieces and len(result["attention"]["weights"][0]) == len(pieces)
    status, stdout, err = run_cli("text", "attention", "--checkpoint", run / "best", "--text", text, "-o", tmp_path / "map.png", "--json")
    assert status == 0, err
    assert "".join(json.loads(stdout)["source_tokens"]).replace(" ", "") == text.replace(" ", "")


def test_onnx_export_refuses_separate_vocabularies(run, run_cli, tmp_path):
    pytest.importorskip("onnx")
    from triptych.errors import UserError
    from triptych.export.seq2seq import export_text

    with pytest.raises(UserError, match="separate source/target vocabularies"):
        export_text(run / "best", tmp_path)


@pytest.fixture(scope="module")
def shared_run(corpus, tmp_path_factory):
    """A shared-vocabulary checkpoint in the format written before the option
    existed: its config.yaml has none of the new tokenizer keys."""
    import yaml

    from triptych.cli import main

    out = tmp_path_factory.mktemp("runs") / "shared"
    args = ["text", "train", RECIPE, "--out", str(out), *_data(corpus), *TINY,
            "--set", "tokenizer.shared=true", "--set", "tokenizer.source_vocab_size=null", "--set", "train.max_steps=2"]
    assert main(args) == 0
    path = out / "best" / "config.yaml"
    cfg = yaml.safe_load(path.read_text())
    for key in ("shared", "source_vocab_size", "source_path"):
        cfg["tokenizer"].pop(key)
    path.write_text(yaml.safe_dump(cfg))
    return out / "best"


def test_a_shared_vocabulary_checkpoint_from_before_still_loads(shared_run, corpus, run_cli):
    from safetensors import safe_open

    from triptych.text.predictor import Summarizer

    assert not (shared_run / "source-tokenizer.json").exists()
    with safe_open(str(shared_run / "model.safetensors"), "pt") as f:
        assert "src_embed.weight" not in f.keys()  # the shared layout's weight names are unchanged
    s = Summarizer(shared_run)
    assert s.cfg.tokenizer.shared and s.source_tokenizer is s.tokenizer and s.model.src_embed is None
    status, stdout, err = run_cli("text", "eval", "--checkpoint", shared_run, "--data", corpus / "test.jsonl", "--metric", "bleu,chrf", "--json")
    assert status == 0, err
    assert {"bleu", "chrf"} <= set(json.loads(stdout))


# --- every family learns through its own source embedding -----------------------------

FAMILIES = {  # tiny `model:` sections, one line a family
    "transformer": dict(d_model=48, heads=4, encoder_layers=1, decoder_layers=1, ffn=96, dropout=0.0),
    "rnn": dict(attention="bahdanau", embed_dim=48, hidden=48, encoder_hidden=24, dropout=0.0),
    "conv": dict(embed_dim=48, encoder_layers=2, encoder_channels=48, decoder_layers=2, decoder_channels=48, out_dim=48, dropout=0.0),
}
PAIRS, MAX_SOURCE, MAX_TARGET, BUDGET_S = 16, 24, 12, 30.0


@pytest.fixture(scope="module")
def tiny_translation():
    """16 real en-fr pairs, a source and a target BPE trained on their own
    sides, and their ids (cut short: memorising is the point, not length)."""
    from triptych.text.tokenizer import train_bpe

    pairs = _pairs()[:PAIRS]
    source = train_bpe((p["source"] for p in pairs), vocab_size=420, min_frequency=1)
    target = train_bpe((p["target"] for p in pairs), vocab_size=320, min_frequency=1)
    src = [ids[:MAX_SOURCE] for ids in source.encode_batch([p["source"] for p in pairs])]
    tgt = [ids[:MAX_TARGET] for ids in target.encode_batch([p["target"] for p in pairs])]
    assert max(max(s) for s in src) >= target.vocab_size  # source ids the target's table does not even have
    return source, target, src, tgt


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_family_memorises_pairs_with_separate_vocabularies(family, tiny_translation):
    from triptych.text.generation.search import greedy
    from triptych.text.models import build_model
    from triptych.text.task import pad

    source, target, sources, targets = tiny_translation
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        model = build_model(family, FAMILIES[family], target.vocab_size, target.pad_id, source_vocab_size=source.vocab_size)
        assert model.src_embed.num_embeddings == source.vocab_size and model.embed.num_embeddings == target.vocab_size
        src = pad(sources, target.pad_id)
        tgt_in = pad([[target.bos_id] + t for t in targets], target.pad_id)
        tgt_out = pad([t + [target.eos_id] for t in targets], target.pad_id)
        opt = torch.optim.Adam(model.parameters(), 3e-3)
        start, exact, step = time.process_time(), 0.0, 0
        while time.process_time() - start < BUDGET_S and exact < 1.0:
            model.train()
            for _ in range(20):
                loss, n = model.loss(src, tgt_in, tgt_out)
                opt.zero_grad()
                (loss / n).backward()
                opt.step()
            step += 20
            model.eval()
            with torch.no_grad():
                hyps = greedy(model, src, bos=target.bos_id, eos=target.eos_id, max_len=MAX_TARGET + 2)
            exact = sum(list(h) == t for h, t in zip(hyps, targets)) / PAIRS
        print(f"{family}: {exact:.0%} of pairs exact after {step} steps, {time.process_time() - start:.1f} s")
        assert exact >= 0.9, f"{family}: {exact:.0%} of the pairs decoded exactly after {step} steps"
        assert model.src_embed.weight.grad is not None and model.src_embed.weight.grad.abs().sum() > 0
    finally:
        torch.set_num_threads(threads)
