"""Copy attention's output layer against the pointer-generator's definition."""

import torch

from triptych.text.models.copy import first_occurrences, mix_copy


def dense_reference(log_p_vocab, attn, gate_logit, src_ids):
    """p = g p_vocab + (1 - g) sum over the positions holding each token, over the whole vocabulary."""
    g = torch.sigmoid(gate_logit)
    copy = torch.zeros_like(log_p_vocab).scatter_add(-1, src_ids, attn)
    return (g * log_p_vocab.exp() + (1 - g) * copy).log()


def inputs(seed, shape=(3, 5), V=40, S=12, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    log_p = torch.randn(*shape, V, generator=gen, dtype=dtype).mul(3).log_softmax(-1).requires_grad_()
    scores = torch.randn(*shape, S, generator=gen, dtype=dtype)
    scores[..., -2:] = float("-inf")  # two pads, masked out of the attention
    attn = scores.softmax(-1).detach().requires_grad_()
    gate = torch.randn(*shape, 1, generator=gen, dtype=dtype).requires_grad_()
    ids = torch.randint(0, 8, (*shape, S), generator=gen)  # 8 ids over 12 positions: repeats
    ids[..., -2:] = 0  # the pad id, also a repeat
    return log_p, attn, gate, ids


def test_first_occurrences_marks_one_position_per_distinct_id():
    ids = torch.cat([torch.tensor([[5, 3, 5, 5, 0, 3] * 20, list(range(120))]), torch.randint(0, 9, (30, 120))])
    marks = first_occurrences(ids)
    for row, mark in zip(ids.tolist(), marks.tolist()):
        kept = [i for i, m in zip(row, mark) if m == 1.0]
        assert sorted(kept) == sorted(set(row)) and set(mark) <= {0.0, 1.0}


def test_mix_equals_the_definition_and_so_do_its_gradients():
    for seed in range(5):
        log_p, attn, gate, ids = inputs(seed)
        ours = mix_copy(log_p, attn, gate, ids)
        ref = dense_reference(log_p, attn, gate, ids)
        assert torch.allclose(ours, ref, atol=1e-9)
        assert torch.allclose(ours.exp().sum(-1), torch.ones(3, 5, dtype=torch.float64))
        weights = torch.randn_like(ref)  # any downstream loss
        got = torch.autograd.grad((ours * weights).sum(), (log_p, attn, gate))
        want = torch.autograd.grad((ref * weights).sum(), (log_p, attn, gate))
        real = attn > 0  # a pad's attention is 0, and so is its gradient upstream (softmax): the
        # definition differentiates log(0 + ...) there, the clamp stops it
        for name, a, b in zip("log_p attn gate".split(), got, want):
            if name == "attn":
                a, b = a[real], b[real]
            assert torch.allclose(a, b, rtol=1e-9, atol=1e-9), name


def test_float32_mix_stays_close_to_the_definition():
    log_p, attn, gate, ids = inputs(7, dtype=torch.float32)
    ref = dense_reference(*(t.double() if t.is_floating_point() else t for t in (log_p, attn, gate, ids)))
    assert torch.allclose(mix_copy(log_p, attn, gate, ids).double(), ref, atol=1e-5)
