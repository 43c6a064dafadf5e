"""The text Transformer as two ONNX graphs: the encoder, and one decoder step with its cache.

    encoder.onnx       src (B, S) int64 -> memory (B, S, C), src_bias (B, 1, 1, S),
                       cross_k_i, cross_v_i (B, H, S, D) for each decoder layer i,
                       [copy_k (B, S, C) with copy attention]
    decoder_step.onnx  tokens (B,) int64, [src (B, S), memory, copy_k with copy attention],
                       src_bias, cross_k_i, cross_v_i, past_k_i, past_v_i (B, H, t, D)
                       -> log_probs (B, V), present_k_i, present_v_i (B, H, t+1, D)

The decoder's self-attention cache is explicit: step 0 takes past tensors of
length 0, and each step's presents are the next step's pasts. The position
of the new token is the past's length, so no step counter is passed. These
are exactly `Transformer.encode` and `Transformer.step` (the step graph
calls `step` itself); the encoder graph differs in one way that a tracer
needs: it always builds the additive padding mask, where `encode` skips it
for unpadded batches and packs the real tokens of padded ones (a
data-dependent branch the tracer would freeze). Masked or not, the numbers
at real positions are the same (tested).

Copy attention mixes its two distributions with `torch.logaddexp`, which
the TorchScript exporter has no translation for; `graph.register_symbolics`
gives it one: max(a, b) + log(1 + exp(-|a - b|)).
"""

from __future__ import annotations

from pathlib import Path

import torch

from triptych.errors import UserError



def _cross_names(prefix: str, layers: int) -> list[str]:
    return [f"{prefix}_{kv}_{i}" for i in range(layers) for kv in "kv"]


class EncoderGraph(torch.nn.Module):
    """src (B, S) -> the tensors every decoding step reads (see the module docstring)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, src):
        m = self.model
        keep = src != m.pad_id  # (B, S)
        first = torch.zeros_like(keep)
        first[:, 0] = True
        keep = keep | (first & ~keep.any(1, keepdim=True))  # an all-pad row attends to its first slot
        bias = torch.zeros(keep.shape, dtype=m.positions.dtype).masked_fill(~keep, float("-inf"))[:, None, None, :]
        x = m._embed(src)  # (B, S, C)
        for layer in m.encoder:
            x = layer(x, bias)
        memory = m.enc_norm(x)
        out = [memory, bias]
        for layer in m.decoder:
            out.extend(layer.cross.keys_values(memory))  # (B, H, S, D) each
        if m.cfg.copy:
            out.append(m.copy_k(memory))
        return tuple(out)


class StepGraph(torch.nn.Module):
    """One decoding step through `Transformer.step`, its inputs and cache as flat tensors."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.layers = len(model.decoder)

    def forward(self, tokens, *flat):
        m, L = self.model, self.layers
        flat = list(flat)
        src = memory = copy_k = None
        if m.cfg.copy:
            src, memory, copy_k = flat.pop(0), flat.pop(0), flat.pop(0)
        bias = flat.pop(0)
        cross = [(flat[2 * i], flat[2 * i + 1]) for i in range(L)]
        past = [(flat[2 * L + 2 * i], flat[2 * L + 2 * i + 1]) for i in range(L)]
        if src is None:  # `step` reads the batch size off the source ids only
            src = tokens[:, None]
        enc = {"memory": memory, "bias": bias, "src": src, "cross": cross, "copy_k": copy_k}
        log_p, state = m.step(tokens, enc, {"pos": past[0][0].size(2), "self": past})
        out = [log_p]
        for k, v in state["self"]:
            out += [k, v]
        return tuple(out)


def graph_names(model) -> dict[str, list[str]]:
    L = len(model.decoder)
    copy = ["copy_k"] if model.cfg.copy else []
    return {
        "encoder_inputs": ["src"],
        "encoder_outputs": ["memory", "src_bias", *_cross_names("cross", L), *copy],
        "step_inputs": ["tokens", *(["src", "memory", "copy_k"] if copy else []), "src_bias",
                        *_cross_names("cross", L), *_cross_names("past", L)],
        "step_outputs": ["log_probs", *_cross_names("present", L)],
    }


def _axes(name: str) -> dict[int, str]:
    if name in ("src", "memory", "copy_k"):
        return {0: "batch", 1: "src_len"}
    if name == "src_bias":
        return {0: "batch", 3: "src_len"}
    if name.startswith("cross_"):
        return {0: "batch", 2: "src_len"}
    if name.startswith("past_"):
        return {0: "batch", 2: "past_len"}
    if name.startswith("present_"):
        return {0: "batch", 2: "past_len_plus_1"}
    return {0: "batch"}  # tokens, log_probs


def step_feeds(names: list[str], tokens, enc_out: dict, past: list) -> dict:
    """The step graph's inputs by name, from the encoder's outputs (by name) and the cache."""
    feeds = {"tokens": tokens}
    for n in names[1:]:
        if not n.startswith("past_"):
            feeds[n] = enc_out[n]
    feeds.update(zip([n for n in names if n.startswith("past_")], past))
    return feeds


def export_text(ckpt: Path, out: Path) -> dict:
    """encoder.onnx, decoder_step.onnx and tokenizer.json of a text checkpoint."""
    import shutil

    from triptych.export.graph import session, trace
    from triptych.text.predictor import Summarizer

    summ = Summarizer(ckpt)
    model, tok, cfg = summ.model, summ.tokenizer, summ.cfg
    family = cfg.model.get("name")
    if not cfg.tokenizer.shared:  # the export and its greedy decoder carry one tokenizer.json
        raise UserError(f"{ckpt}: a model with separate source/target vocabularies (tokenizer.shared: false) cannot be exported to ONNX yet")
    if family != "transformer":
        raise UserError(f"{ckpt}: text model {family!r} cannot be exported to ONNX yet (only the Transformer has "
                        "encoder and decoder-step graphs)")
    names = graph_names(model)
    H = model.cfg.heads
    D = model.cfg.d_model // H
    L = len(model.decoder)
    g = torch.Generator().manual_seed(0)
    src = torch.randint(4, tok.vocab_size, (3, 9), generator=g)
    src[0, 4:] = tok.pad_id  # padded rows in the example: the mask path is what gets traced
    trace(EncoderGraph(model), (src,), out / "encoder.onnx", names["encoder_inputs"], names["encoder_outputs"],
          {n: _axes(n) for n in names["encoder_inputs"] + names["encoder_outputs"]})
    with torch.no_grad():
        enc_t = dict(zip(names["encoder_outputs"], EncoderGraph(model).eval()(src)))
        enc_t["src"] = src
        tokens = torch.full((3,), tok.bos_id)
        past = [torch.zeros(3, H, 1, D) for _ in range(2 * L)]  # a non-empty cache, so concatenation is traced
        args = tuple(step_feeds(names["step_inputs"], tokens, enc_t, past).values())
    trace(StepGraph(model), args, out / "decoder_step.onnx", names["step_inputs"], names["step_outputs"],
          {n: _axes(n) for n in names["step_inputs"] + names["step_outputs"]})
    diff = _check(model, tok, names, out, session)
    shutil.copyfile(ckpt / "tokenizer.json", out / "tokenizer.json")
    d = cfg.decode
    return {"family": family, "files": ["encoder.onnx", "decoder_step.onnx", "tokenizer.json"],
            "max_abs_diff": diff, **names, "layers": L, "heads": H, "head_dim": D, "copy": bool(model.cfg.copy),
            "max_positions": model.cfg.max_positions, "max_source_len": cfg.data.max_source_len,
            "special": {"pad": tok.pad_id, "unk": tok.unk_id, "bos": tok.bos_id, "eos": tok.eos_id},
            "decode": {"max_len": d.max_len, "min_len": d.min_len, "no_repeat_ngram": d.no_repeat_ngram,
                       "batch_size": d.batch_size}}


def _check(model, tok, names, out: Path, session) -> float:
    """Largest |onnxruntime - PyTorch| over the encoder memory and three decoding steps, on
    another batch and source length than the traced ones."""
    import numpy as np

    from triptych.export.graph import max_abs_diff

    g = torch.Generator().manual_seed(1)
    src = torch.randint(4, tok.vocab_size, (4, 13), generator=g)
    src[1, 6:] = tok.pad_id
    enc_s, step_s = session(out / "encoder.onnx"), session(out / "decoder_step.onnx")
    enc_o = dict(zip(names["encoder_outputs"], enc_s.run(None, {"src": src.numpy()})))
    enc_o["src"] = src.numpy()
    keep = (src != tok.pad_id).numpy()
    with torch.no_grad():
        enc = model.encode(src)
        state = model.init_state(enc)
        diffs = [float(np.abs(enc_o["memory"][keep] - enc["memory"].numpy()[keep]).max())]
        tokens = torch.full((4,), tok.bos_id)
        H, D = model.cfg.heads, model.cfg.d_model // model.cfg.heads
        past = [np.zeros((4, H, 0, D), np.float32) for _ in range(2 * len(model.decoder))]
        for _ in range(3):
            log_p, state = model.step(tokens, enc, state)
            res = step_s.run(None, step_feeds(names["step_inputs"], tokens.numpy(), enc_o, past))
            diffs.append(max_abs_diff([res[0]], [log_p]))
            past = res[1:]
            tokens = log_p.argmax(-1)
    return max(diffs)
