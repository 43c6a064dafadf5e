"""The Transformer encoder-decoder (Vaswani et al. 2017), with optional copy attention.

Read top to bottom: config, sinusoidal positions, the two attention modules,
the feed-forward block, encoder and decoder layers, then the model, which
implements the `Seq2Seq` contract of `triptych.text.models` (teacher-forced
`forward`, `encode`/`init_state`/`step` for incremental decoding with a
key/value cache, `reorder` for beam search).

Shapes: B batch rows, S source and T target positions, C = d_model,
H heads of size D = C / H, V vocabulary entries. Sequences are RIGHT-padded
with `pad_id` (positions count from 0 at the first token).

Copy attention (See et al. 2017, "Get To The Point"): with `copy=True` the
output distribution is  p = g * softmax(logits) + (1 - g) * copy, where
`copy` scatters a single-head attention over the source positions onto the
source token ids and the generation probability g = sigmoid(w . [decoder
output, attention context, decoder input]). That attention is either one of
the model's own (`copy_attention: own`: a query and a key projection of its
own over the encoder output) or the first head of the last decoder layer's
cross-attention (`copy_attention: cross`, as fairseq's pointer-generator
does), so that the head that copies also reads the context: the Debian
recipe's choice, +0.8 R-L on test (docs/results.md). The vocabulary is BPE
with byte fallback, so every source token has an id: copying lands in the
fixed vocabulary (no extended OOV vocabulary is needed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from triptych.errors import UserError
from triptych.schema import bounded
from triptych.text.models import Seq2Seq, register_model, sequence_loss
from triptych.text.models.copy import output_log_probs
from triptych.text.models.dropout import add_dropout, dropout, relu_dropout
from triptych.nn.attention import attend, attend_rows
from triptych.nn.packing import Packing
from triptych.nn.prepacked import Linear, linear, linear_kept, relu_mlp


@dataclass
class TransformerConfig:
    """The YAML `model:` section of a Transformer recipe maps onto these fields."""

    d_model: int = bounded(256, ge=1, le=65536)
    heads: int = bounded(4, ge=1)
    encoder_layers: int = bounded(3, ge=1, le=1000)
    decoder_layers: int = bounded(3, ge=1, le=1000)
    ffn: int = bounded(1024, ge=1, le=1 << 20)  # inner size of the position-wise feed-forward block
    dropout: float = bounded(0.1, ge=0, lt=1)  # on embeddings, sub-layer outputs and the FFN's hidden layer
    attention_dropout: float = bounded(0.0, ge=0, lt=1)  # on attention weights
    norm: str = "pre"  # "pre": LN before each sub-layer (stable, no warm-up needed); "post": the 2017 paper
    copy: bool = False  # pointer-generator copy attention
    copy_attention: str = "own"  # "own": a single head of its own; "cross": the last layer's first cross-attention head
    max_positions: int = bounded(1024, ge=1, le=1 << 20)  # longest source or target the position table covers
    tie_embeddings: bool = True  # output projection = the (shared source/target) embedding

    def __post_init__(self):
        if self.norm not in ("pre", "post"):
            raise UserError(f"model.norm: {self.norm!r} is not allowed; allowed: pre, post")
        if self.copy_attention not in ("own", "cross"):
            raise UserError(f"model.copy_attention: {self.copy_attention!r} is not allowed; allowed: own, cross")
        if self.d_model % self.heads:
            raise UserError(f"model.d_model ({self.d_model}) must be a multiple of model.heads ({self.heads})")


def sinusoids(n: int, dim: int) -> torch.Tensor:
    """(n, dim) table: sin on even channels, cos on odd, wavelengths 2pi..10000*2pi."""
    pos = torch.arange(n, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(n, dim)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return table


class SelfAttention(nn.Module):
    """Multi-head self-attention with one fused QKV projection (one matmul, not three)."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.heads, self.dropout = cfg.heads, cfg.attention_dropout
        self.qkv = Linear(cfg.d_model, 3 * cfg.d_model)
        self.out = Linear(cfg.d_model, cfg.d_model)

    def forward(self, x, bias=None, causal=False, cache=None, need_weights=False, packing=None):
        """x (B,T,C), or (N,C) packed real tokens with their `packing`. With
        `cache` = (k, v) of the earlier steps (or () at step 0), this step's
        keys/values are appended and returned for the next step."""
        qkv = self.qkv(x)  # (B, T, 3C)
        if packing is not None and not torch.is_grad_enabled() and not need_weights:
            return self.out(self._attend_rows(qkv, packing, causal)), None, None
        if packing is not None:
            qkv = packing.unpack(qkv)  # (N, 3C) -> (B, T, 3C)
        B, T, C = qkv.shape[0], qkv.shape[1], qkv.shape[2] // 3
        q, k, v = qkv.view(B, T, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)  # 3 x (B,H,T,D)
        if cache is not None:
            if cache:
                k, v = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)  # (B, H, t+T, D)
            cache = (k, v)
        y, w = attend(q, k, v, bias, self.dropout if self.training else 0.0, causal, need_weights)
        y = y.transpose(1, 2).reshape(B, T, C)
        if packing is not None:
            y = packing.pack(y)
        return self.out(y), cache, w

    def _attend_rows(self, qkv, packing, causal):
        """Packed (N, 3C) -> (N, C), each row over its own tokens (`triptych.nn.attention.attend_rows`)."""
        return attend_rows(qkv, packing, self.heads, causal, self.dropout if self.training else 0.0)


class CrossAttention(nn.Module):
    """Multi-head attention from the decoder to the encoder output ("memory").

    The memory's keys/values are computed once per source (`keys_values`) and
    reused at every decoding step.
    """

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.heads, self.dropout = cfg.heads, cfg.attention_dropout
        self.q = Linear(cfg.d_model, cfg.d_model)
        self.kv = Linear(cfg.d_model, 2 * cfg.d_model)
        self.out = Linear(cfg.d_model, cfg.d_model)

    def keys_values(self, memory, packing=None, kept=True):
        """memory (B,S,C), or (N,C) packed real tokens with their `packing`
        (the projection then skips the pads; their keys/values are zeros,
        masked out by the bias) -> keys, values (B,H,S,D). `kept`: in the
        products' dtype (`prepacked.linear_kept`: bf16 under bf16 copies, the
        same values in half the bytes that every step reads); False where the
        attention weights are wanted at every step (copy attention), which
        the float32 matmuls compute."""
        kv = (linear_kept if kept else linear)(memory, self.kv.weight, self.kv.bias)  # (B, S, 2C) or (N, 2C)
        H, D = self.heads, kv.size(-1) // (2 * self.heads)
        if packing is not None:  # written once, straight into the layout the steps read
            grid = kv.new_zeros(2, packing.B, H, packing.S, D)
            grid.permute(1, 3, 0, 2, 4)[packing.keep] = kv.view(-1, 2, H, D)  # (B, S, 2, H, D) view
            return grid[0], grid[1]  # (B, H, S, D) each, contiguous
        B, S = kv.shape[:2]
        k, v = kv.view(B, S, 2, H, D).permute(2, 0, 3, 1, 4)  # 2 x (B,H,S,D)
        # Contiguous once here, or every decoding step's matmul would copy them.
        return k.contiguous(), v.contiguous()

    def forward(self, x, kv, bias, need_weights=False, packing=None):
        """x (B,T,C), or (N,C) packed real tokens with their `packing`."""
        q = self.q(x)  # (B, T, C)
        if packing is not None:
            q = packing.unpack(q)  # (N, C) -> (B, T, C)
        B, T, C = q.shape
        q = q.view(B, T, self.heads, C // self.heads).transpose(1, 2)  # (B, H, T, D)
        y, w = attend(q, kv[0], kv[1], bias, self.dropout if self.training else 0.0, False, need_weights)
        y = y.transpose(1, 2).reshape(B, T, C)
        if packing is not None:
            y = packing.pack(y)
        return self.out(y), w


class FeedForward(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.fc1 = Linear(cfg.d_model, cfg.ffn)
        self.fc2 = Linear(cfg.ffn, cfg.d_model)
        self.dropout = cfg.dropout

    def forward(self, x):
        if not self.training:  # no dropout between: the packed products can fuse the ReLU (`relu_mlp`)
            return relu_mlp(x, self.fc1, self.fc2)
        return self.fc2(relu_dropout(self.fc1(x), self.dropout, self.training))


class EncoderLayer(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.pre, self.dropout = cfg.norm == "pre", cfg.dropout
        self.attn, self.ffn = SelfAttention(cfg), FeedForward(cfg)
        self.ln1, self.ln2 = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)

    def forward(self, x, bias, packing=None):  # (B, S, C) -> (B, S, C), or (N, C) -> (N, C) packed
        res = lambda x, y: add_dropout(x, y, self.dropout, self.training)  # x + dropout(y)  # noqa: E731
        if self.pre:  # x + f(LN(x)): the residual stream stays un-normalised
            x = res(x, self.attn(self.ln1(x), bias, packing=packing)[0])
            return res(x, self.ffn(self.ln2(x)))
        x = self.ln1(res(x, self.attn(x, bias, packing=packing)[0]))  # LN(x + f(x)): the 2017 paper
        return self.ln2(res(x, self.ffn(x)))


class DecoderLayer(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.pre, self.dropout = cfg.norm == "pre", cfg.dropout
        self.self_attn, self.cross, self.ffn = SelfAttention(cfg), CrossAttention(cfg), FeedForward(cfg)
        self.ln1, self.ln2, self.ln3 = (nn.LayerNorm(cfg.d_model) for _ in range(3))

    def _cross(self, x, kv, bias, need_weights, group, packing=None):
        """Cross-attention; with `group` G > 1, x holds G consecutive rows per
        memory row (beam hypotheses of one sentence), attended as G queries."""
        if group == 1:
            return self.cross(x, kv, bias, need_weights, packing)
        N, T, C = x.shape
        y, w = self.cross(x.reshape(N // group, group * T, C), kv, bias, need_weights)
        return y.reshape(N, T, C), w

    def forward(self, x, kv, bias, cache=None, need_weights=False, group=1, packing=None):
        """x (B,T,C), or (N,C) packed with its `packing`. Training: causal
        self-attention over all T at once (right padding means no real position
        ever sees a pad, so no padding mask). Decoding: T=1 and `cache` holds
        the earlier positions."""
        res = lambda x, y: add_dropout(x, y, self.dropout, self.training)  # x + dropout(y)  # noqa: E731
        causal = cache is None and (packing is not None or x.size(1) > 1)
        if self.pre:
            y, cache, _ = self.self_attn(self.ln1(x), causal=causal, cache=cache, packing=packing)
            x = res(x, y)
            y, w = self._cross(self.ln2(x), kv, bias, need_weights, group, packing)
            x = res(x, y)
            return res(x, self.ffn(self.ln3(x))), cache, w
        y, cache, _ = self.self_attn(x, causal=causal, cache=cache, packing=packing)
        x = self.ln1(res(x, y))
        y, w = self._cross(x, kv, bias, need_weights, group, packing)
        x = self.ln2(res(x, y))
        return self.ln3(res(x, self.ffn(x))), cache, w


@register_model("transformer", TransformerConfig)
class Transformer(Seq2Seq):
    """Encoder-decoder over one shared vocabulary (or a source one beside the
    target's, `source_vocab_size`); returns log-probabilities."""

    def __init__(self, cfg: TransformerConfig, vocab_size: int, pad_id: int, source_vocab_size: int | None = None):
        super().__init__()
        self.cfg, self.vocab_size, self.pad_id = cfg, vocab_size, pad_id
        C = cfg.d_model
        self.embed = nn.Embedding(vocab_size, C, padding_idx=pad_id)  # source, target (and output if tied)
        # Separate vocabularies (tokenizer.shared: false): the source reads a table of its own.
        self.src_embed = None if source_vocab_size is None else nn.Embedding(source_vocab_size, C, padding_idx=pad_id)
        self.scale = math.sqrt(C)  # embeddings ~ N(0, 1/C), scaled up to match the positions' magnitude
        self.register_buffer("positions", sinusoids(cfg.max_positions, C), persistent=False)
        self.encoder = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.encoder_layers))
        self.decoder = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.decoder_layers))
        # Pre-LN leaves the residual stream un-normalised: one final LN per stack.
        self.enc_norm = nn.LayerNorm(C) if cfg.norm == "pre" else nn.Identity()
        self.dec_norm = nn.LayerNorm(C) if cfg.norm == "pre" else nn.Identity()
        self.output = None if cfg.tie_embeddings else Linear(C, vocab_size, bias=False)
        self.copy_from_cross = cfg.copy and cfg.copy_attention == "cross"
        if cfg.copy and not self.copy_from_cross:
            self.copy_q = Linear(C, C, bias=False)
            self.copy_k = Linear(C, C, bias=False)
        if cfg.copy:
            self.gate = Linear(3 * C, 1)  # [decoder output, copy context, decoder input] -> logit of g
        self._init_weights()

    def _init_weights(self):
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        for table in (self.embed, self.src_embed):
            if table is not None:
                nn.init.normal_(table.weight, 0.0, self.cfg.d_model**-0.5)
                with torch.no_grad():
                    table.weight[self.pad_id].zero_()

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # ---------------------------------------------------------------- encoder

    def _embed(self, ids, start: int = 0, table=None):  # (B, T) -> (B, T, C); table: the source's, if it has one
        T = ids.size(1)
        if start + T > self.cfg.max_positions:
            raise ValueError(f"sequence of {start + T} tokens exceeds model.max_positions={self.cfg.max_positions}")
        x = (self.embed if table is None else table)(ids) * self.scale + self.positions[start : start + T]
        return dropout(x, self.cfg.dropout, self.training)

    def encode(self, src):
        """src (B,S) -> dict of batch-first tensors that decoding reuses."""
        keep = src != self.pad_id  # (B, S)
        bias = packing = None  # no padding: the fused kernel runs unmasked
        if not keep.all():
            keep[:, 0] |= ~keep.any(1)  # an all-pad row attends to its first slot, not to nothing (NaN)
            bias = torch.zeros(keep.shape, dtype=self.positions.dtype, device=src.device)
            bias = bias.masked_fill(~keep, float("-inf"))[:, None, None, :]  # (B, 1, 1, S) additive mask
            if keep.sum() < 0.9 * keep.numel():  # enough padding to be worth packing
                packing = Packing(keep)
        x = self._embed(src, table=self.src_embed)  # (B, S, C)
        if packing is not None:
            x = packing.pack(x)  # (N, C)
        for layer in self.encoder:
            x = layer(x, bias, packing)
        memory = self.enc_norm(x)  # (B, S, C) or (N, C)
        # Computed once per source, and on the real tokens alone when packed.
        last = len(self.decoder) - 1
        cross = [layer.cross.keys_values(memory, packing, kept=not (self.copy_from_cross and i == last))
                 for i, layer in enumerate(self.decoder)]  # fmt: skip
        copy_k = self.copy_k(memory) if self.cfg.copy and not self.copy_from_cross else None  # (B, S, C) or (N, C)
        if packing is not None:
            memory = packing.unpack(memory)  # (B, S, C), zeros at the pads
            copy_k = None if copy_k is None else packing.unpack(copy_k)
        enc = {"memory": memory, "bias": bias, "src": src, "cross": cross}
        if copy_k is not None:
            enc["copy_k"] = copy_k  # (B, S, C)
        return enc

    # ---------------------------------------------------------------- decoder

    def _decode(self, tgt, enc, caches=None, start=0, need_weights=False, group=1, packing=None):
        """tgt (B,T) -> decoder output (B,T,C), its input (B,T,C), new caches,
        each layer's cross-attention weights (B,H,T,S) (None unless asked for,
        or the last layer's when it is the copy attention); outputs and inputs
        are (N,C) for the real tokens of `packing`."""
        x0 = self._embed(tgt, start)
        if packing is not None:
            x0 = packing.pack(x0)  # (N, C)
        x, new_caches, cross = x0, [], []
        last = len(self.decoder) - 1
        for i, layer in enumerate(self.decoder):
            cache = None if caches is None else caches[i]
            need = need_weights or (self.copy_from_cross and i == last)
            x, cache, w = layer(x, enc["cross"][i], enc["bias"], cache, need, group, packing)
            new_caches.append(cache)
            cross.append(w)
        return self.dec_norm(x), x0, new_caches, cross

    def _copy_attention(self, h, enc, cross):
        """The copy distribution over the source positions, (B,T,S): the first
        head of the last layer's cross-attention (`cross`, from `_decode`), or
        a single head of the model's own from the decoder output."""
        if self.copy_from_cross:
            return cross[-1][:, 0].float()
        scores = self.copy_q(h) @ enc["copy_k"].transpose(1, 2) / self.scale  # (B, T, S)
        if enc["bias"] is not None:
            scores = scores + enc["bias"][:, 0]  # (B, 1, S) broadcast over T
        return scores.float().softmax(-1)

    def _log_probs(self, h, x0, enc, cross, keep=None):
        """Decoder output (B,T,C) -> log-probabilities (B,T,V), or (N,V) for the
        N positions where `keep` (B,T) is True (training skips pad positions)."""
        copy = None
        if self.cfg.copy:
            attn = self._copy_attention(h, enc, cross)  # (B, T, S)
            context = attn.to(h.dtype) @ enc["memory"]  # (B, T, C)
            g = self.gate(torch.cat([h, context, x0], -1)).float()  # (B, T, 1)
            copy = (attn, g, enc["src"][:, None, :].expand_as(attn))  # source ids (B, T, S)
        return output_log_probs(h, self._logits, keep, copy)

    def _logits(self, h):
        return linear(h, self.embed.weight) if self.output is None else self.output(h)


    def forward(self, src, tgt_in, return_attention: bool = False):
        """src (B,S), tgt_in (B,T) -> log_probs (B,T,V) [, {"cross": [L x (B,H,T,S)], "copy": (B,T,S)}]."""
        enc = self.encode(src)
        h, x0, _, cross = self._decode(tgt_in, enc, need_weights=return_attention)
        log_p = self._log_probs(h, x0, enc, cross)
        if not return_attention:
            return log_p
        attn = {"cross": cross}
        if self.cfg.copy:
            attn["copy"] = self._copy_attention(h, enc, cross)
        return log_p, attn

    def loss(self, src, tgt_in, tgt_out, label_smoothing: float = 0.0):
        """Summed label-smoothed NLL; the vocabulary projection (the biggest
        matmul) only runs on real target positions, not on padding, and so
        does the decoder when the targets are padded enough (summaries of
        one batch differ in length far more than its bucketed sources)."""
        enc = self.encode(src)
        real = keep = tgt_out != self.pad_id  # (B, T): the real target positions (tgt_in's, shifted by one)
        packing = None
        if real.sum() < 0.9 * real.numel() and torch.equal(real, tgt_in != self.pad_id):
            packing = Packing(real)
        h, x0, _, cross = self._decode(tgt_in, enc, packing=packing)  # (B, T, C), or (N, C) packed
        if packing is not None and not self.cfg.copy:
            keep = None  # h already holds the real positions, in keep's order
        elif packing is not None:  # copy attention reads the (B,T) grid
            h, x0 = packing.unpack(h), packing.unpack(x0)
        if not self.cfg.copy:  # the plain projection: loss and gradient in one chunked pass
            h = h if keep is None else h[keep]  # (N, C)
            return self.projected_loss(h, tgt_out[real], label_smoothing)
        log_p = self._log_probs(h, x0, enc, cross, keep)  # (N, V)
        return sequence_loss(log_p, tgt_out[real], self.pad_id, label_smoothing)

    # ------------------------------------------------------- incremental decoding

    def init_state(self, enc):
        return {"pos": 0, "self": [() for _ in self.decoder]}

    grouped_steps = True  # step() takes G rows per encoder row: see Seq2Seq

    def step(self, tokens, enc, state):
        """tokens (N,) -> log_probs (N,V) of the next token, and the grown cache.

        N may be G times the encoder's rows (beam search's G hypotheses of a
        sentence share one copy of its encoding): the cross and copy
        attentions then read each memory once for G queries, not G copies."""
        N, group = tokens.size(0), tokens.size(0) // enc["src"].size(0)
        h, x0, caches, cross = self._decode(tokens[:, None], enc, state["self"], state["pos"], group=group)
        if group > 1:  # the cross-attention weights are already (B, H, G, S)
            h, x0 = h.view(N // group, group, -1), x0.view(N // group, group, -1)  # (B, G, C)
        log_p = self._log_probs(h, x0, enc, cross).view(N, -1)  # (N, V)
        return log_p, {"pos": state["pos"] + 1, "self": caches}

    def step_scores(self, tokens, enc, state):
        """`step` for greedy decoding: without copy attention, the logits
        themselves, in the products' dtype (`linear_kept`): their order is
        the log-probabilities', and neither the normalisation nor the cast
        of the (N, V) scores to float32 is paid (greedy 1.01x faster at either dtype)."""
        if self.cfg.copy or tokens.size(0) != enc["src"].size(0):  # (or grouped rows: step's own path)
            return self.step(tokens, enc, state)
        h, _, caches, _ = self._decode(tokens[:, None], enc, state["self"], state["pos"])
        weight, bias = (self.embed.weight, None) if self.output is None else (self.output.weight, self.output.bias)
        return linear_kept(h[:, 0], weight, bias), {"pos": state["pos"] + 1, "self": caches}
