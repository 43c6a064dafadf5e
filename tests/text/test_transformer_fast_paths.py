"""The Transformer's speed paths give the same numbers as the plain ones.

The packed encoder runs self-attention row by row over each row's real
tokens and projects the cross-attention keys/values (and copy keys) from the
real tokens alone; greedy decoding drops rows from the batch as they
finish. Each is checked
here against the path it replaces, on batches whose lengths differ widely
(where the padding, and so the saving, is largest).
"""

from __future__ import annotations

import pytest
import torch

from triptych.text.decoding import greedy
from triptych.text.models import build_model
from triptych.text.models import transformer as tf

PAD, BOS, EOS = 0, 1, 2
V = 40


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny(copy=False, norm="pre"):
    torch.manual_seed(0)
    cfg = dict(d_model=32, heads=4, encoder_layers=2, decoder_layers=2, ffn=64, copy=copy, norm=norm)
    return build_model("transformer", cfg, V, PAD).eval()


def ragged(lengths=(2, 23, 5, 1, 14, 30), seed=0):
    """A right-padded batch whose rows differ widely in length (mostly padding)."""
    g = torch.Generator().manual_seed(seed)
    src = torch.full((len(lengths), max(lengths)), PAD)
    for i, n in enumerate(lengths):
        src[i, :n] = torch.randint(3, V, (n,), generator=g)
    return src


def grid_packing(monkeypatch):
    """Make every Packing forget its row lengths: attention then takes the
    (B,S) grid path with an additive pad mask, the reference here."""
    init = tf.Packing.__init__

    def without_lengths(self, keep):
        init(self, keep)
        self.lengths = None

    monkeypatch.setattr(tf.Packing, "__init__", without_lengths)


def test_packing_knows_row_lengths_only_for_right_padding():
    keep = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]], dtype=torch.bool)
    assert tf.Packing(keep).lengths == [2, 4, 1]
    holes = torch.tensor([[1, 0, 1, 0], [1, 1, 1, 1]], dtype=torch.bool)
    assert tf.Packing(holes).lengths is None


@pytest.mark.parametrize("copy,norm", [(False, "pre"), (True, "pre"), (True, "post")])
def test_row_by_row_encoder_equals_the_masked_grid(copy, norm, monkeypatch):
    m, src = tiny(copy, norm), ragged()
    with torch.no_grad():
        fast = m.encode(src)
        grid_packing(monkeypatch)
        ref = m.encode(src)
    keep = src != PAD
    torch.testing.assert_close(fast["memory"][keep], ref["memory"][keep], atol=1e-5, rtol=1e-5)
    for (k, v), (k_ref, v_ref) in zip(fast["cross"], ref["cross"]):  # (B, H, S, D): real positions must agree
        torch.testing.assert_close(k.transpose(1, 2)[keep], k_ref.transpose(1, 2)[keep], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(v.transpose(1, 2)[keep], v_ref.transpose(1, 2)[keep], atol=1e-5, rtol=1e-5)
    if copy:
        torch.testing.assert_close(fast["copy_k"][keep], ref["copy_k"][keep], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("copy", [False, True])
def test_ragged_batch_log_probs_equal_each_row_alone(copy):
    """Forward on the ragged batch = forward on each row without any padding."""
    m, src = tiny(copy), ragged()
    g = torch.Generator().manual_seed(1)
    tin = torch.cat([torch.full((src.size(0), 1), BOS), torch.randint(3, V, (src.size(0), 5), generator=g)], 1)
    with torch.no_grad():
        together = m(src, tin)
        for i, n in enumerate((src != PAD).sum(1).tolist()):
            torch.testing.assert_close(together[i], m(src[i : i + 1, :n], tin[i : i + 1])[0], atol=1e-5, rtol=1e-5)


def test_row_by_row_training_gradients_equal_the_masked_grid(monkeypatch):
    m, src = tiny(copy=True), ragged()
    tin = torch.cat([torch.full((src.size(0), 1), BOS), src[:, :4].clamp_min(3)], 1)
    tout = torch.cat([src[:, :4].clamp_min(3), torch.full((src.size(0), 1), EOS)], 1)

    def grads():
        m.zero_grad()
        loss, _ = m.loss(src, tin, tout, label_smoothing=0.1)
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}

    loss, g = grads()
    grid_packing(monkeypatch)
    loss_ref, g_ref = grads()
    torch.testing.assert_close(loss, loss_ref, atol=1e-5, rtol=1e-5)
    assert g.keys() == g_ref.keys()
    for name in g:
        torch.testing.assert_close(g[name], g_ref[name], atol=1e-5, rtol=1e-5, msg=name)


class EosAt(torch.nn.Module):
    """Wraps a model so that sentence i emits eos at step `ends[i]`: rows then
    finish at very different steps and greedy drops them from the batch."""

    def __init__(self, model, ends):
        super().__init__()
        self.model, self.ends, self.pad_id, self.grouped_steps = model, ends, model.pad_id, True

    def encode(self, src):
        enc = self.model.encode(src)
        enc["end"] = torch.tensor([self.ends[int(r)] for r in src[:, 0]])  # the first token names the sentence
        return enc

    def init_state(self, enc):
        return self.model.init_state(enc)

    def step(self, tokens, enc, state):
        log_p, new = self.model.step(tokens, enc, state)
        log_p = log_p.clone()
        log_p[enc["end"] == state["pos"], EOS] = 0.0  # the largest a log-probability can be
        return log_p, new

    def reorder_encoder(self, enc, index):
        return self.model.reorder_encoder(enc, index)

    def reorder_state(self, state, index):
        return self.model.reorder_state(state, index)


@pytest.mark.parametrize("copy", [False, True])
def test_greedy_dropping_finished_rows_equals_each_sentence_alone(copy):
    """Rows that end at steps 1..12 leave the batch one by one; every other
    row's tokens stay what it gets decoded alone (no padding, no dropping)."""
    base, src = tiny(copy), ragged()
    src = torch.cat([torch.arange(src.size(0))[:, None] + 3, src], 1)  # a sentence id as the first token
    ends = {3 + i: e for i, e in enumerate((1, 12, 4, 7, 2, 30))}
    m = EosAt(base, ends)
    batch = greedy(m, src, bos=BOS, eos=EOS, max_len=15)
    for i, row in enumerate(src):
        alone = greedy(m, row[row != PAD][None], bos=BOS, eos=EOS, max_len=15)[0]
        assert batch[i] == alone
        assert len(batch[i]) == min(ends[3 + i], 15)

