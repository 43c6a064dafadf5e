"""Self-critical RL: sampling, the policy gradient, and fine-tuning through the CLI."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest
import torch

from tests.conftest import write_jsonl
from triptych.text.generation.search import greedy, sample
from triptych.text.models import build_model, list_models
from triptych.text.rl import policy_loss, sequence_log_probs

PAD, BOS, EOS = 0, 1, 2
V = 40
WORDS = "apt kernel gnome python perl ruby java rust vim emacs tex zsh".split()
RL = ["--set", "rl.enabled=true", "--set", "rl.gamma=1.0", "--set", "train.lr=0.001", "--set", "train.warmup_steps=0",
      "--set", "train.schedule=constant", "--set", "train.max_minutes=null", "--set", "train.precision=fp32",
      "--set", "train.threads=1", "--set", "train.log_every=1", "--set", "train.save_every=1000",
      "--set", "train.eval_every=1000", "--set", "eval.valid_rouge_samples=40", "--set", "decode.max_len=8"]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/text/conftest.py


# Small settings for any family: only the keys a family's config has are used.
SMALL = dict(d_model=32, ffn=64, heads=2, encoder_layers=1, decoder_layers=1, hidden=32, encoder_hidden=16,
             embed_dim=32, out_dim=32, encoder_channels=32, decoder_channels=32)


def small_spec(name: str) -> dict:
    from triptych.text.models import MODELS

    fields = {f.name for f in dataclasses.fields(MODELS.get(name)[0])}
    return {"name": name, **{k: v for k, v in SMALL.items() if k in fields}}


def tiny(name="transformer", seed=0):
    torch.manual_seed(seed)
    spec = small_spec(name)
    spec.pop("name")
    return build_model(name, spec, V, PAD)


def sources(n=6):
    g = torch.Generator().manual_seed(0)
    src = torch.randint(3, V, (n, 7), generator=g)
    src[0, 4:] = PAD
    return src


# --- sampling ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", list_models())
def test_sampling_shapes_and_determinism_under_a_seed(name):
    model, src = tiny(name), sources()
    opts = dict(bos=BOS, eos=EOS, max_len=9)
    torch.manual_seed(3)
    a, closed_a = sample(model, src, **opts)
    torch.manual_seed(3)
    b, closed_b = sample(model, src, **opts)
    assert (a, closed_a) == (b, closed_b)
    assert len(a) == len(closed_a) == src.size(0)
    for tokens, closed in zip(a, closed_a):
        assert len(tokens) <= 9 and (closed or len(tokens) == 9)
        assert not {BOS, PAD, EOS} & set(tokens)
    g = torch.Generator().manual_seed(3)
    c, _ = sample(model, src, generator=g, **opts)
    draws = [sample(model, src, **opts)[0] for _ in range(3)]
    assert any(d != c for d in draws)  # it is random: other draws differ
    # A near-zero temperature samples the argmax: greedy decoding.
    assert sample(model, src, temperature=1e-8, **opts)[0] == greedy(model, src, **opts)


def test_samples_follow_the_model_distribution():
    model, src = tiny(), sources(1)
    model.eval()  # sampling runs without dropout
    with torch.no_grad():
        first = model(src, torch.tensor([[BOS]]))[0, 0].exp()  # p(first token)
    first[[BOS, PAD]] = 0
    first /= first.sum()
    torch.manual_seed(0)
    counts = torch.zeros(V)
    for tokens, closed in zip(*sample(model, src.repeat(4000, 1), bos=BOS, eos=EOS, max_len=1)):
        counts[tokens[0] if tokens else EOS] += 1
    assert (counts / 4000 - first).abs().max() < 0.03


# --- the policy gradient -----------------------------------------------------------------

@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_policy_gradient_moves_a_sample_with_its_advantage(sign):
    model, src = tiny(), sources(2)
    torch.manual_seed(1)
    drawn, closed = sample(model, src, bos=BOS, eos=EOS, max_len=6)
    from triptych.text.task import pad

    tgt_in = pad([[BOS] + s for s in drawn], PAD)
    tgt_out = pad([s + [EOS] * c for s, c in zip(drawn, closed)], PAD)
    tgt_out = torch.nn.functional.pad(tgt_out, (0, tgt_in.size(1) - tgt_out.size(1)), value=PAD)
    model.eval()  # no dropout: the before/after log-likelihoods compare the same function
    before = sequence_log_probs(model, src, tgt_in, tgt_out, PAD)
    reward = torch.tensor([0.5 + sign * 0.3, 0.5])  # row 0 beats the baseline (sign +) or loses to it
    loss = policy_loss(before, reward, torch.tensor([0.5, 0.5]))
    loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p -= 0.01 * p.grad
    after = sequence_log_probs(model, src, tgt_in, tgt_out, PAD).detach()
    assert sign * (after[0] - before[0].detach()) > 1e-3
    # row 1 has zero advantage: it gets no gradient of its own
    expected = -(sign * 0.3) * before[0].detach()
    assert torch.isclose(loss.detach(), expected, rtol=1e-5)


def test_temperature_log_probs_are_the_softened_distribution():
    model, src = tiny(), sources(2)
    model.eval()
    tgt_in = torch.tensor([[BOS, 5, 6], [BOS, 7, 8]])
    tgt_out = torch.tensor([[5, 6, EOS], [7, 8, PAD]])
    with torch.no_grad():
        log_p = model(src, tgt_in)
        soft = (log_p / 0.5).log_softmax(-1)
        want = soft.gather(-1, tgt_out.clamp(min=0)[..., None])[..., 0]
        want = (want * (tgt_out != PAD)).sum(1)
        got = sequence_log_probs(model, src, tgt_in, tgt_out, PAD, temperature=0.5)
    assert torch.allclose(got, want, atol=1e-5)


# --- through the CLI ---------------------------------------------------------------------

def copy_pairs(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = rng.sample(WORDS, rng.randint(3, 5))
        out.append({"document": " ".join(words), "summary": " ".join(words[:3])})
    return out


@pytest.fixture(scope="module")
def copy_task(tmp_path_factory):
    """A toy task (summary = the first three words), and a model pre-trained on it briefly."""
    from triptych.cli import main

    root = tmp_path_factory.mktemp("copy")
    write_jsonl(root / "train.jsonl", copy_pairs(400, 0))
    write_jsonl(root / "valid.jsonl", copy_pairs(40, 1))
    data = ["--set", f"data.train={root / 'train.jsonl'}", "--set", f"data.valid={root / 'valid.jsonl'}",
            "--set", "data.batch_tokens=600", "--set", "tokenizer.vocab_size=300", "--set", "tokenizer.min_frequency=1"]
    run = root / "pretrained"
    args = ["text", "train", "configs/text/demo.yaml", "--out", str(run), *data, *RL[2:],
            "--set", "train.max_steps=25", "--set", "train.lr=0.003", "--set", "model.d_model=32", "--set", "model.ffn=64",
            "--set", "model.heads=2", "--set", "model.encoder_layers=1", "--set", "model.decoder_layers=1"]
    assert main(args) == 0
    return root, data, run


def test_rl_fine_tune_raises_the_reward_on_a_copy_task(copy_task, run_cli):
    root, data, pretrained = copy_task
    start = json.loads((pretrained / "best" / "meta.json").read_text())["metrics"]["rougeL"]
    status, out, err = run_cli("text", "train", "configs/text/transformer-debian-rl.yaml", "--out", root / "rl",
                               "--set", f"init_from={pretrained / 'best'}", *data, *RL, "--set", "train.max_steps=40",
                               "--json")
    assert status == 0, err
    summary = json.loads(out)
    logs = [json.loads(line) for line in (root / "rl" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in logs if r["kind"] == "train"]
    assert {"reward", "baseline_reward", "reward_share", "sample_len"} <= set(train[0])
    assert all(0.0 <= r["reward_share"] <= 1.0 for r in train)
    early = sum(r["reward"] for r in train[:10]) / 10  # the sampled summaries' mean reward
    late = sum(r["reward"] for r in train[-10:]) / 10
    assert late > early + 0.03, (early, late)
    assert summary["final_metrics"]["rougeL"] > start + 3.0, (start, summary["final_metrics"])  # greedy, valid
    saved = (root / "rl" / "config.yaml").read_text()
    assert "enabled: true" in saved and "d_model: 32" in saved  # the checkpoint's model, not the recipe's


@pytest.mark.parametrize("name", list_models())
def test_rl_runs_and_resumes_for_every_family(name, copy_task, run_cli, tmp_path):
    from triptych.engine.checkpoint import save_checkpoint
    from triptych.text.tokenizer import Tokenizer

    root, data, pretrained = copy_task
    tokenizer = Tokenizer.load(pretrained / "best" / "tokenizer.json")
    torch.manual_seed(0)
    spec = small_spec(name)
    model = build_model(name, {k: v for k, v in spec.items() if k != "name"}, tokenizer.vocab_size, tokenizer.pad_id)
    start = tmp_path / "start"
    config = json.loads(json.dumps({"task": "text", "model": spec}))
    save_checkpoint(start, model, domain="text", config=config, trainer_state=None,
                    save_artifacts=tokenizer.save, metrics={}, step=0)
    common = ["configs/text/transformer-debian-rl.yaml", "--out", tmp_path / "rl", *data, *RL,
              "--set", "train.save_every=2", "--json"]
    status, out, err = run_cli("text", "train", *common, "--set", f"init_from={start}", "--set", "train.max_steps=2")
    assert status == 0, err
    status, out, err = run_cli("text", "train", "--resume", *common, "--set", "train.max_steps=3")
    assert status == 0, err
    assert json.loads(out)["steps"] == 3
    status, out, err = run_cli("text", "eval", "--checkpoint", tmp_path / "rl" / "best", "--data", root / "valid.jsonl",
                               "--beam", 2, "--json")
    assert status == 0, err


# --- bad input ---------------------------------------------------------------------------

@pytest.mark.parametrize("options, message", [
    ([], "init_from: RL fine-tuning starts from a trained checkpoint"),
    (["--set", "init_from={best}", "--set", "rl.reward=bleu"], "rl.reward: unknown reward type 'bleu'"),
    (["--set", "init_from={best}", "--set", "rl.gamma=1.5"], "rl.gamma: 1.5 is not allowed"),
    (["--set", "init_from={root}/nowhere"], "no such checkpoint directory"),
])
def test_bad_rl_options_are_one_line_and_write_nothing(options, message, copy_task, run_cli, tmp_path):
    root, data, pretrained = copy_task
    options = [o.format(best=pretrained / "best", root=root) for o in options]
    out_dir = tmp_path / "rl"
    status, out, err = run_cli("text", "train", "configs/text/transformer-debian-rl.yaml", "--out", out_dir, *data,
                               *options)
    assert status == 2 and out == ""
    assert message in err and err.count("\n") == 1, err
    assert not out_dir.exists()
