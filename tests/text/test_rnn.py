"""The RNN family: options, shapes, masks, incremental decoding, beam search, learning."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from triptych.errors import UserError
from triptych.text.models.attention import ATTENTION_TYPES
from triptych.text.generation.search import beam_search, greedy
from triptych.text.models import Seq2Seq, build_model, list_models, sequence_loss
from triptych.text.models.rnn import RNNConfig, RNNSeq2Seq

PAD, BOS, EOS = 0, 1, 2
V = 40
CELLS = ("lstm", "gru")
EVERY = [(kind, cell, copy) for kind in ATTENTION_TYPES for cell in CELLS for copy in (False, True)]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/text/conftest.py


def tiny(attention="luong-general", cell="lstm", copy=False, **kw):
    """Two layers each side, so the stacking and the bridges are exercised too."""
    torch.manual_seed(0)
    cfg = dict(attention=attention, cell=cell, copy=copy, embed_dim=12, hidden=16, encoder_hidden=8,
               encoder_layers=2, decoder_layers=2, attention_size=10)
    cfg.update(kw)
    return build_model("rnn", cfg, V, PAD).eval()


def padded_sources(n=3, width=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(3, V, (n, width), generator=g)
    for i in range(n):
        src[i, 3 + (2 * i) % (width - 2) :] = PAD  # lengths 3, 5, 7, ...
    return src


# ------------------------------------------------------------------ options


def test_registry_and_bad_options():
    assert "rnn" in list_models()
    m = build_model("rnn", {"name": "rnn", "cell": "gru", "attention": "bahdanau"}, 30, PAD)
    assert isinstance(m, RNNSeq2Seq) and isinstance(m, Seq2Seq) and m.cfg.cell == "gru"
    with pytest.raises(UserError, match=r"model\.attention.*'cosine'.*bahdanau, luong-dot, luong-general, luong-concat"):
        build_model("rnn", {"attention": "cosine"}, 30, PAD)
    with pytest.raises(UserError, match=r"model\.cell.*'rnn'.*lstm, gru"):
        build_model("rnn", {"cell": "rnn"}, 30, PAD)
    with pytest.raises(UserError, match=r"model\.encoder_hidden = 512.*model\.hidden = 256"):
        build_model("rnn", {"attention": "luong-dot", "hidden": 256, "encoder_hidden": 256}, 30, PAD)
    with pytest.raises(UserError, match=r"'heads'.*attention_size"):
        build_model("rnn", {"heads": 4}, 30, PAD)
    with pytest.raises(UserError, match=r"model\.hidden"):
        build_model("rnn", {"hidden": 0}, 30, PAD)
    build_model("rnn", {"attention": "luong-dot", "hidden": 256, "encoder_hidden": 128}, 30, PAD)  # 2 x 128 = 256


def test_parameter_count_of_the_recipe_size():
    """LSTM, E = H = 256, encoder 2 x 128, one layer each, vocabulary 8000 (tied), Luong general, copy."""
    m = build_model("rnn", {"attention": "luong-general", "copy": True}, 8000, PAD)
    E, H, He, K, Vv = 256, 256, 128, 256, 8000
    lstm = lambda n, h: 4 * h * (n + h) + 8 * h  # noqa: E731  (nn.LSTM: two bias vectors)
    expected = (
        Vv * E  # embedding, tied with the output
        + 2 * lstm(E, He)  # bidirectional encoder
        + 2 * (K * H + H)  # bridges to h and c
        + (E * 4 * H + 4 * H) + K * 4 * H + H * 4 * H  # decoder cell: embedding, feed (Luong: H = K here), recurrent
        + K * H  # general attention W_a
        + (K + H) * H  # W_c
        + (H + K + E) + 1  # copy gate
    )
    assert m.num_parameters() == expected == 3_559_681
    assert build_model("rnn", {"tie_embeddings": False}, 8000, PAD).num_parameters() == expected - (H + K + E + 1) + H * Vv


# ------------------------------------------------------------------ forward


@pytest.mark.parametrize("attention", ATTENTION_TYPES)
@pytest.mark.parametrize("cell", CELLS)
def test_forward_shapes_and_padding_invariance(attention, cell):
    """Log-probabilities sum to 1; a row padded in a batch equals the row alone."""
    m = tiny(attention, cell, copy=True)
    src = padded_sources()
    tin = torch.randint(3, V, (3, 5))
    lp = m(src, tin)
    assert lp.shape == (3, 5, V)
    torch.testing.assert_close(lp.exp().sum(-1), torch.ones(3, 5))
    for i in range(3):
        n = int((src[i] != PAD).sum())
        torch.testing.assert_close(lp[i], m(src[i : i + 1, :n], tin[i : i + 1])[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("attention", ATTENTION_TYPES)
def test_return_attention_layout_and_zero_weight_on_pads(attention):
    m = tiny(attention, copy=True)
    src, tin = padded_sources(), torch.randint(3, V, (3, 4))
    lp, attn = m(src, tin, return_attention=True)
    torch.testing.assert_close(lp, m(src, tin))
    (w,) = attn["cross"]
    assert w.shape == (3, 1, 4, 8)  # (B, one "head", T, S): the Transformer's layout
    torch.testing.assert_close(w.sum(-1), torch.ones(3, 1, 4))
    assert w[0, ..., 3:].abs().max() == 0 and w[1, ..., 5:].abs().max() == 0
    torch.testing.assert_close(attn["copy"], w[:, 0])


def test_dropout_is_active_in_training_only():
    m = tiny(dropout=0.3)
    src, tin = padded_sources(), torch.randint(3, V, (3, 4))
    torch.testing.assert_close(m(src, tin), m(src, tin))
    m.train()
    assert not torch.allclose(m(src, tin), m(src, tin))


@pytest.mark.parametrize("copy", [False, True])
def test_loss_skips_padding_and_equals_forward_plus_sequence_loss(copy):
    m = tiny("bahdanau", copy=copy)
    src = padded_sources(4)
    tin = torch.randint(3, V, (4, 6))
    tout = torch.randint(3, V, (4, 6))
    tout[1, 3:] = PAD
    loss, n = m.loss(src, tin, tout, 0.1)
    ref, n_ref = sequence_loss(m(src, tin), tout, PAD, 0.1)
    assert n == n_ref == 21
    torch.testing.assert_close(loss, ref)


def test_trains_under_bf16_autocast(bf16_kernels):
    m = tiny("bahdanau", copy=True).train()
    src, tin = padded_sources(), torch.randint(3, V, (3, 5))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, n = m.loss(src, tin, tin, 0.1)
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None)


# ------------------------------------------------------------------ incremental decoding


@pytest.mark.parametrize("attention,cell,copy", EVERY)
def test_step_equals_forward_on_the_prefix(attention, cell, copy):
    m = tiny(attention, cell, copy)
    src, tin = padded_sources(), torch.randint(3, V, (3, 6))
    full = m(src, tin)
    enc = m.encode(src)
    state = m.init_state(enc)
    for t in range(tin.size(1)):
        lp, state = m.step(tin[:, t], enc, state)
        torch.testing.assert_close(lp, full[:, t], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("attention", ["bahdanau", "luong-general"])
def test_grouped_steps_and_reorder_equal_forward_on_the_chosen_rows(attention):
    """G rows a sentence against one encoder row (beam search's layout), then a reorder."""
    m = tiny(attention, copy=True)
    src, tin = padded_sources(), torch.randint(3, V, (6, 5))
    enc = m.encode(src)
    state = m.reorder_state(m.init_state(enc), torch.arange(3).repeat_interleave(2))  # 2 rows a sentence
    rows = torch.arange(3).repeat_interleave(2)
    for t in range(2):
        _, state = m.step(tin[:, t], enc, state)
    index = torch.tensor([1, 1, 2, 3, 5, 4])  # stays within each sentence, as beam search does
    state = m.reorder_state(state, index)
    for t in range(2, 5):
        lp, state = m.step(tin[index, t], enc, state)
    full = m(src[rows[index]], tin[index])  # new row r carries old row index[r]'s whole history
    torch.testing.assert_close(lp, full[:, 4], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("attention,cell", [("bahdanau", "gru"), ("luong-concat", "lstm")])
def test_beam_one_equals_greedy_and_cache_equals_recomputation(attention, cell):
    m = tiny(attention, cell, copy=True)
    src = padded_sources(4)
    common = dict(bos=BOS, eos=EOS, max_len=7)
    g = greedy(m, src, **common)
    assert [h[0].tokens for h in beam_search(m, src, beam=1, **common)] == g
    assert greedy(m, src, use_cache=False, **common) == g
    cached = beam_search(m, src, beam=3, nbest=3, **common)
    plain = beam_search(m, src, beam=3, nbest=3, use_cache=False, **common)
    for a, b in zip(cached, plain):
        assert [h.tokens for h in a] == [h.tokens for h in b]
        for x, y in zip(a, b):
            assert abs(x.score - y.score) < 1e-4


# ------------------------------------------------------------------ learning


def copy_batch(rows):
    n, S = len(rows), max(len(r) for r in rows)
    src, tin, tout = (torch.full((n, w), PAD) for w in (S, S + 1, S + 1))
    for i, r in enumerate(rows):
        src[i, : len(r)] = r
        tin[i, 0], tin[i, 1 : len(r) + 1] = BOS, r
        tout[i, : len(r)], tout[i, len(r)] = r, EOS
    return src, tin, tout


@pytest.mark.parametrize("attention", ["bahdanau", "luong-dot"])
def test_tiny_overfit_on_a_copy_task(attention):
    g = torch.Generator().manual_seed(3)
    rows = [torch.randint(3, V, (int(torch.randint(4, 9, (1,), generator=g)),), generator=g) for _ in range(8)]
    m = tiny(attention, copy=True, dropout=0.0, encoder_layers=1, decoder_layers=1, hidden=32, encoder_hidden=16).train()
    src, tin, tout = copy_batch(rows)
    opt = torch.optim.Adam(m.parameters(), 2e-2)
    target, got = [r.tolist() for r in rows], None
    for step in range(1, 201):  # checked every 25 steps: stops as soon as it has learnt
        m.train()
        loss, n = m.loss(src, tin, tout)
        opt.zero_grad()
        (loss / n).backward()
        opt.step()
        if step % 25 == 0 and (got := greedy(m, src, bos=BOS, eos=EOS, max_len=10)) == target:
            break
    assert got == target


def test_config_fields_are_the_documented_recipe_keys():
    import dataclasses

    assert [f.name for f in dataclasses.fields(RNNConfig)] == [
        "cell", "attention", "embed_dim", "hidden", "encoder_hidden", "encoder_layers", "decoder_layers",
        "attention_size", "dropout", "copy", "tie_embeddings",
    ]  # fmt: skip


# ------------------------------------------------------------------ checkpoints of another architecture


def save_text_checkpoint(directory, model, model_section):
    """A text checkpoint of `model` whose config.yaml says `model_section`."""
    from triptych.engine.checkpoint import save_checkpoint
    from triptych.text.tokenizer import train_bpe

    tok = train_bpe(["a tiny corpus", "for a tiny tokenizer"], vocab_size=300, min_frequency=1)
    save_checkpoint(directory, model, domain="text", config={"model": model_section}, save_artifacts=tok.save)
    return directory


def test_a_transformer_checkpoint_cannot_start_an_rnn_run(tmp_path, run_cli):
    from tests.conftest import debian_pairs, write_jsonl

    ckpt = save_text_checkpoint(tmp_path / "tf", build_model("transformer", {"d_model": 16, "heads": 2}, V, PAD), {"name": "transformer"})
    data = write_jsonl(tmp_path / "train.jsonl", debian_pairs("train", 4))
    status, out, err = run_cli("text", "train", "configs/text/rnn-bahdanau-debian.yaml", "--out", tmp_path / "run",
                               "--set", f"init_from={ckpt}", "--set", f"data.train={data}", "--set", f"data.valid={data}")
    assert status == 2 and out == "" and err.count("\n") == 1
    assert "init_from" in err and "'transformer'" in err and "'rnn'" in err
    assert not any((tmp_path / "run").rglob("*"))  # checked before a tokenizer or config is written


def test_weights_of_another_architecture_than_config_yaml_says(tmp_path, run_cli):
    """An RNN's config.yaml beside a Transformer's weights: one line naming the family, exit 2."""
    ckpt = save_text_checkpoint(tmp_path / "mixed", build_model("transformer", {"d_model": 16, "heads": 2}, V, PAD),
                                {"name": "rnn", "embed_dim": 16, "hidden": 16, "encoder_hidden": 8})
    status, out, err = run_cli("text", "summarize", "--checkpoint", ckpt, "--text", "hello there")
    assert status == 2 and out == "" and err.count("\n") == 1
    assert "do not fit" in err and "'rnn'" in err and "model.name" in err


@pytest.mark.parametrize("attention", ATTENTION_TYPES)
def test_the_recipes_build_and_share_the_transformer_recipes_data_and_decoding(attention):
    import yaml

    from triptych import config as configs
    from triptych.text.config import TextConfig

    path = f"configs/text/rnn-{attention}-debian.yaml"
    cfg = configs.from_dict(TextConfig, yaml.safe_load(open(path)), path)
    ref = configs.from_dict(TextConfig, yaml.safe_load(open("configs/text/transformer-debian.yaml")), "transformer")
    assert cfg.model["attention"] == attention and cfg.train.max_minutes == 60
    # Same files, target cut, batch budget, vocabulary and decoding; where the
    # source is cut is each recipe's own speed choice (the Transformer's 96),
    # and so is the length penalty, tuned on the valid split for each model.
    data, ref_data = (dataclasses.replace(d, max_source_len=0) for d in (cfg.data, ref.data))
    decode, ref_decode = (dataclasses.replace(d, length_penalty=0.0) for d in (cfg.decode, ref.decode))
    assert (data, cfg.tokenizer, decode) == (ref_data, ref.tokenizer, ref_decode)
    spec = dict(cfg.model)
    assert isinstance(build_model(spec.pop("name"), spec, 8000, PAD), RNNSeq2Seq)
