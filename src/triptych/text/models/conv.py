"""Convolutional sequence to sequence learning, ConvS2S (Gehring et al. 2017).

Read top to bottom: config, the weight-normalised layers with the paper's
initialisation, the encoder, the multi-step attention, the decoder layer,
then the model, which implements the `Seq2Seq` contract of
`triptych.text.models` (teacher-forced `forward`, `encode`/`init_state`/
`step` for incremental decoding, `reorder` for beam search).

Shapes: B batch rows, S source and T target positions, E = embed_dim,
C a layer's channels, K a kernel width, V vocabulary entries. Sequences are
RIGHT-padded with `pad_id`; positions count from 0 at the first token.

What the paper prescribes and where it is here:
- token + learned position embeddings (`ConvS2S._embed`), one token table
  for source, target and (tied) output, as the Transformer family does: the
  vocabulary is shared, and copying likes the two sides in one space
  (separate vocabularies, `source_vocab_size`, give the source its own);
- blocks of conv -> GLU with residuals scaled by sqrt(0.5) so the variance
  stays put through the stack (`Encoder`, `DecoderLayer`);
- causal decoder convolutions: K-1 zeros on the left, so position t sees
  inputs t-K+1..t only;
- multi-step attention in every decoder layer (`Attention`): query = the
  layer's state + the target embedding, keys = encoder output z, values =
  z + source embedding e, the context scaled by m*sqrt(1/m) (m = real source
  tokens) to undo the variance lost by averaging;
- the encoder output's gradient scaled by 1/(2 x attention layers), since
  every decoder layer's attention sends a gradient into it (`_GradScale`);
- weight normalisation on every linear and convolution, initialised as the
  paper does so activations keep their variance under dropout p:
  N(0, sqrt((1-p)/n_in)) for linears, N(0, sqrt(4(1-p)/(K n_in))) before a
  GLU (which halves the output), N(0, 0.1) for embeddings.

Incremental decoding keeps, for every decoder layer, its last K-1 inputs (a
rolling buffer; zeros at the start, exactly the causal padding): a step
convolves only the newest position, so each step costs the same however
long the summary already is.

Copy attention (`copy: true`, See et al. 2017) reuses the LAST decoder
layer's attention as the copy distribution, as See et al. use one attention
for both context and copying: it is a single-head distribution over the
source already computed at every step, its alignment is the most refined
one of the stack, and it costs no parameters beyond the gate
g = sigmoid(w . [decoder output, that attention's context, target
embedding]). `triptych.text.models.copy.mix_copy` mixes the distributions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Union

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from triptych.errors import UserError
from triptych.schema import bounded
from triptych.text.models import Seq2Seq, register_model, sequence_loss
from triptych.text.models.copy import output_log_probs
from triptych.text.models.dropout import dropout
from triptych.nn.prepacked import linear as prepacked_linear

IntOrList = Union[int, list]


@dataclass
class ConvS2SConfig:
    """The YAML `model:` section of a ConvS2S recipe.

    `*_channels` and `*_kernel` are one int for every layer, or a list of one
    int per layer (fairseq's layer specs such as [(512, 3)] * 9 + ...).
    """

    embed_dim: int = bounded(256, ge=1, le=65536)
    encoder_layers: int = 6
    encoder_channels: IntOrList = 256
    encoder_kernel: IntOrList = 3  # odd: the encoder's convolution is centred
    decoder_layers: int = 4
    decoder_channels: IntOrList = 256
    decoder_kernel: IntOrList = 3  # any width >= 1: the decoder's is causal
    out_dim: int = bounded(256, ge=1, le=65536)  # the decoder output's size before the vocabulary projection
    dropout: float = 0.1
    copy: bool = False
    max_positions: int = bounded(1024, ge=1, le=1 << 20)
    tie_embeddings: bool = True  # output projection = the token embedding (needs out_dim == embed_dim)

    def __post_init__(self):
        for side in ("encoder", "decoder"):
            layers = getattr(self, f"{side}_layers")
            if not isinstance(layers, int) or layers < 1:
                raise UserError(f"model.{side}_layers: must be a positive integer, got {layers!r}")
            for what in ("channels", "kernel"):
                name = f"model.{side}_{what}"
                value = getattr(self, f"{side}_{what}")
                values = value if isinstance(value, list) else [value] * layers
                if len(values) != layers:
                    raise UserError(f"{name}: lists {len(values)} values but model.{side}_layers is {layers}")
                if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
                    raise UserError(f"{name}: must be positive integers, got {value!r}")
                setattr(self, f"{side}_{what}", values)
        if any(k % 2 == 0 for k in self.encoder_kernel):
            raise UserError(f"model.encoder_kernel: widths must be odd (a centred window), got {self.encoder_kernel}")
        if not 0.0 <= self.dropout < 1.0:
            raise UserError(f"model.dropout: must be in [0, 1), got {self.dropout}")
        if self.tie_embeddings and self.out_dim != self.embed_dim:
            raise UserError(
                f"model.tie_embeddings: needs model.out_dim ({self.out_dim}) == model.embed_dim ({self.embed_dim}); "
                "set tie_embeddings: false or make them equal"
            )


# ---------------------------------------------------------------- layers


def linear(n_in: int, n_out: int, p: float = 0.0) -> nn.Module:
    """Weight-normalised linear with the paper's init N(0, sqrt((1-p)/n_in))."""
    m = nn.Linear(n_in, n_out)
    nn.init.normal_(m.weight, 0.0, math.sqrt((1.0 - p) / n_in))
    nn.init.zeros_(m.bias)
    return weight_norm(m)


def glu_conv(n_in: int, n_out: int, kernel: int, p: float) -> nn.Module:
    """Weight-normalised Conv1d producing 2*n_out channels for a GLU, init
    N(0, sqrt(4(1-p)/(K n_in))): the GLU halves the variance, hence the 4."""
    m = nn.Conv1d(n_in, 2 * n_out, kernel)
    nn.init.normal_(m.weight, 0.0, math.sqrt(4.0 * (1.0 - p) / (kernel * n_in)))
    nn.init.zeros_(m.bias)
    return weight_norm(m)


class _GradScale(torch.autograd.Function):
    """Identity forward; the gradient multiplied by `scale` on the way back."""

    @staticmethod
    def forward(ctx, x, scale: float):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.scale, None


SQRT_HALF = math.sqrt(0.5)


class Encoder(nn.Module):
    """Embedded source (B,S,E) -> keys z (B,S,E) and values z + e (B,S,E)."""

    def __init__(self, cfg: ConvS2SConfig):
        super().__init__()
        p, channels, kernels = cfg.dropout, cfg.encoder_channels, cfg.encoder_kernel
        self.p = p
        self.fc_in = linear(cfg.embed_dim, channels[0], p)
        ins = [channels[0]] + channels[:-1]
        # A residual whose width changes goes through a projection (fairseq does the same).
        self.proj = nn.ModuleList(nn.Identity() if a == b else linear(a, b) for a, b in zip(ins, channels))
        self.convs = nn.ModuleList(glu_conv(a, b, k, p) for a, b, k in zip(ins, channels, kernels))
        self.fc_out = linear(channels[-1], cfg.embed_dim)

    def forward(self, e, pad, grad_scale: float):
        """e (B,S,E) embedded source, pad (B,S) True at padding."""
        x = self.fc_in(e)  # (B, S, C)
        for proj, conv in zip(self.proj, self.convs):
            residual = proj(x)
            # Pads are zeroed before every convolution, so a real token near
            # the end sees zeros there, exactly the sentence's own zero padding.
            x = dropout(x.masked_fill(pad[..., None], 0.0), self.p, self.training)
            k = conv.kernel_size[0]
            x = conv(F.pad(x.transpose(1, 2), ((k - 1) // 2, k // 2)))  # (B, 2C, S)
            x = (F.glu(x, dim=1).transpose(1, 2) + residual) * SQRT_HALF  # (B, S, C)
        z = self.fc_out(x).masked_fill(pad[..., None], 0.0)  # (B, S, E)
        if self.training and grad_scale != 1.0:
            z = _GradScale.apply(z, grad_scale)
        return z, (z + e) * SQRT_HALF


class Attention(nn.Module):
    """One decoder layer's attention over the encoder output (single head)."""

    def __init__(self, channels: int, embed_dim: int):
        super().__init__()
        self.q = linear(channels, embed_dim)
        self.out = linear(embed_dim, channels)

    def forward(self, h, g, enc):
        """h (B,T,C) the layer's GLU output, g (B,T,E) target embeddings ->
        (B,T,C) output, (B,T,S) weights, (B,T,E) unscaled context."""
        d = (self.q(h) + g) * SQRT_HALF  # (B, T, E): "decoder state summary" of the paper
        scores = d @ enc["keys_t"]  # (B, T, S)
        scores = scores.masked_fill(enc["pad"][:, None, :], float("-inf"))
        w = scores.float().softmax(-1).to(h.dtype)  # (B, T, S)
        context = w @ enc["values"]  # (B, T, E)
        # m * sqrt(1/m) = sqrt(m): a mean of m values has 1/m of their variance.
        out = self.out(context * enc["sqrt_m"]) + h
        return out * SQRT_HALF, w, context


class DecoderLayer(nn.Module):
    """Causal conv -> GLU -> attention, with a sqrt(0.5)-scaled residual."""

    def __init__(self, n_in: int, n_out: int, kernel: int, cfg: ConvS2SConfig):
        super().__init__()
        self.p, self.kernel = cfg.dropout, kernel
        self.proj = nn.Identity() if n_in == n_out else linear(n_in, n_out)
        self.conv = glu_conv(n_in, n_out, kernel, cfg.dropout)
        self.attention = Attention(n_out, cfg.embed_dim)

    def forward(self, x, g, enc, buffer=None, group=1):
        """x (B,T,Cin), g (B,T,E). Training: all T positions at once, K-1
        zeros on the left. Decoding: T=1 and `buffer` (B,K-1,Cin) holds the
        layer's K-1 previous inputs; returns the next buffer. With `group` G
        > 1, x holds G consecutive rows per encoder row (beam hypotheses)."""
        residual = self.proj(x)
        x = dropout(x, self.p, self.training)
        if buffer is None:
            y = self.conv(F.pad(x.transpose(1, 2), (self.kernel - 1, 0)))  # (B, 2C, T)
            y = F.glu(y, dim=1).transpose(1, 2)  # (B, T, C)
        else:
            window = torch.cat([buffer, x], 1)  # (N, K, Cin): this position's receptive field
            buffer = window[:, 1:]
            weight = self.conv.weight  # (2C, Cin, K), weight norm applied once per step
            # (N, Cin*K) in the weight's [c, k] order: one matmul is the convolution at the new position.
            y = F.glu(F.linear(window.transpose(1, 2).flatten(1), weight.flatten(1), self.conv.bias), dim=-1)[:, None]
        if group > 1:  # (G*B, T, .) -> (B, G*T, .): G queries against one encoder row
            N, T = y.shape[:2]
            a, w, ctx = self.attention(y.reshape(N // group, group * T, -1), g.reshape(N // group, group * T, -1), enc)
            a, ctx = a.reshape(N, T, -1), ctx.reshape(N, T, -1)
        else:
            a, w, ctx = self.attention(y, g, enc)
        return (a + residual) * SQRT_HALF, w, ctx, buffer


# ---------------------------------------------------------------- the model


@register_model("conv", ConvS2SConfig)
class ConvS2S(Seq2Seq):
    """Convolutional encoder-decoder over one shared vocabulary (or a source one
    beside the target's, `source_vocab_size`); returns log-probabilities."""

    grouped_steps = True  # step() takes G rows per encoder row: see Seq2Seq

    def __init__(self, cfg: ConvS2SConfig, vocab_size: int, pad_id: int, source_vocab_size: int | None = None):
        super().__init__()
        self.cfg, self.vocab_size, self.pad_id = cfg, vocab_size, pad_id
        E, p = cfg.embed_dim, cfg.dropout
        self.embed = nn.Embedding(vocab_size, E, padding_idx=pad_id)
        # Separate vocabularies (tokenizer.shared: false): the source reads a table of its own.
        self.src_embed = None if source_vocab_size is None else nn.Embedding(source_vocab_size, E, padding_idx=pad_id)
        self.src_pos = nn.Embedding(cfg.max_positions, E)
        self.tgt_pos = nn.Embedding(cfg.max_positions, E)
        tokens = [t for t in (self.embed, self.src_embed) if t is not None]
        for emb in (*tokens, self.src_pos, self.tgt_pos):
            nn.init.normal_(emb.weight, 0.0, 0.1)
        with torch.no_grad():
            for emb in tokens:
                emb.weight[pad_id].zero_()
        self.encoder = Encoder(cfg)
        channels, kernels = cfg.decoder_channels, cfg.decoder_kernel
        self.dec_in = linear(E, channels[0], p)
        ins = [channels[0]] + channels[:-1]
        self.decoder = nn.ModuleList(DecoderLayer(a, b, k, cfg) for a, b, k in zip(ins, channels, kernels))
        self.dec_out = linear(channels[-1], cfg.out_dim)
        # Every decoder layer's attention sends a gradient into the encoder output.
        self.encoder_grad_scale = 1.0 / (2 * len(self.decoder))
        self.output = None if cfg.tie_embeddings else linear(cfg.out_dim, vocab_size, p)
        if cfg.copy:
            self.gate = linear(cfg.out_dim + 2 * E, 1)  # [decoder output, last attention's context, target embedding]

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _embed(self, ids, table, start: int = 0, tokens=None):  # (B, T) -> (B, T, E); tokens: the source's table, if it has one
        T = ids.size(1)
        if start + T > self.cfg.max_positions:
            raise ValueError(f"sequence of {start + T} tokens exceeds model.max_positions={self.cfg.max_positions}")
        x = (self.embed if tokens is None else tokens)(ids) + table.weight[start : start + T]
        return dropout(x, self.cfg.dropout, self.training)

    # ---------------------------------------------------------------- encoder

    def encode(self, src):
        """src (B,S) -> dict of batch-first tensors that decoding reuses."""
        pad = src == self.pad_id  # (B, S)
        pad[:, 0] &= ~pad.all(1)  # an all-pad row attends to its first slot, not to nothing (NaN)
        keys, values = self.encoder(self._embed(src, self.src_pos, tokens=self.src_embed), pad, self.encoder_grad_scale)
        m = (~pad).sum(1).to(values.dtype)  # (B,) real source tokens
        return {
            "keys_t": keys.transpose(1, 2).contiguous(),  # (B, E, S): one layout for every step's matmul
            "values": values,  # (B, S, E)
            "pad": pad,
            "sqrt_m": m.sqrt()[:, None, None],  # (B, 1, 1)
            "src": src,
        }

    # ---------------------------------------------------------------- decoder

    def _decode(self, tgt, enc, buffers=None, start=0, group=1):
        """tgt (B,T) -> decoder output (B,T,D), target embedding g (B,T,E),
        per-layer attention weights, last context, new buffers."""
        g = self._embed(tgt, self.tgt_pos, start)  # (B, T, E)
        x = self.dec_in(g)  # (B, T, C)
        weights, new_buffers, ctx = [], [], None
        for i, layer in enumerate(self.decoder):
            x, w, ctx, buf = layer(x, g, enc, None if buffers is None else buffers[i], group)
            weights.append(w)
            new_buffers.append(buf)
        h = dropout(self.dec_out(x), self.cfg.dropout, self.training)  # (B, T, D)
        return h, g, weights, ctx, new_buffers

    def _log_probs(self, h, g, w, ctx, enc, keep=None):
        """Decoder output (B,T,D) -> log-probabilities (B,T,V), or (N,V) for the
        N positions where `keep` (B,T) is True (training skips pad positions)."""
        copy = None
        if self.cfg.copy:
            gate = self.gate(torch.cat([h, ctx, g], -1)).float()  # (B, T, 1)
            attn = w.float()  # (B, T, S): the last layer's attention
            copy = (attn, gate, enc["src"][:, None, :].expand(attn.shape))  # source ids (B, T, S)
        return output_log_probs(h, self._logits, keep, copy)

    def _logits(self, h):
        return prepacked_linear(h, self.embed.weight) if self.output is None else self.output(h)

    def forward(self, src, tgt_in, return_attention: bool = False):
        """src (B,S), tgt_in (B,T) -> log_probs (B,T,V) [, {"cross": [L x (B,1,T,S)], "copy": (B,T,S)}]."""
        enc = self.encode(src)
        h, g, weights, ctx, _ = self._decode(tgt_in, enc)
        log_p = self._log_probs(h, g, weights[-1], ctx, enc)
        if not return_attention:
            return log_p
        attn = {"cross": [w.float()[:, None] for w in weights]}
        if self.cfg.copy:
            attn["copy"] = weights[-1].float()
        return log_p, attn

    def loss(self, src, tgt_in, tgt_out, label_smoothing: float = 0.0):
        """Summed label-smoothed NLL; the vocabulary projection (the biggest
        matmul) only runs on real target positions, not on padding."""
        enc = self.encode(src)
        h, g, weights, ctx, _ = self._decode(tgt_in, enc)
        keep = tgt_out != self.pad_id  # (B, T)
        if not self.cfg.copy:  # the plain projection: loss and gradient in one chunked pass
            return self.projected_loss(h[keep], tgt_out[keep], label_smoothing)
        log_p = self._log_probs(h, g, weights[-1], ctx, enc, keep)  # (N, V)
        return sequence_loss(log_p, tgt_out[keep], self.pad_id, label_smoothing)

    # ------------------------------------------------------- incremental decoding

    def init_state(self, enc):
        """Zero buffers: the causal left padding of the full computation."""
        B, dtype, device = enc["src"].size(0), enc["values"].dtype, enc["values"].device
        ins = [self.cfg.decoder_channels[0]] + self.cfg.decoder_channels[:-1]
        return {
            "pos": 0,
            "buffers": [torch.zeros(B, layer.kernel - 1, c, dtype=dtype, device=device) for layer, c in zip(self.decoder, ins)],
        }

    def step(self, tokens, enc, state):
        """tokens (N,) -> log_probs (N,V) of the next token, and the rolled buffers.

        N may be G times the encoder's rows (beam search's G hypotheses of a
        sentence share one copy of its encoding): the attention then reads
        each encoder row once for G queries, not G copies (the buffers, state,
        hold N rows: beam search widens them with reorder_state)."""
        N, B = tokens.size(0), enc["src"].size(0)
        group = N // B
        h, g, weights, ctx, buffers = self._decode(tokens[:, None], enc, state["buffers"], state["pos"], group)
        if group > 1:  # (N, 1, .) -> (B, G, .) to line up with the (B, G, S) attention
            h, g, ctx = (t.reshape(B, group, -1) for t in (h, g, ctx))
        log_p = self._log_probs(h, g, weights[-1], ctx, enc).reshape(N, -1)  # (N, V)
        return log_p, {"pos": state["pos"] + 1, "buffers": buffers}
