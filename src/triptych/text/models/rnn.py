"""The RNN encoder-decoder with attention (Sutskever 2014, Bahdanau 2014, Luong 2015).

Read top to bottom: config, then the model, which implements the `Seq2Seq`
contract of `triptych.text.models` (teacher-forced `forward`, a fast `loss`,
`encode`/`init_state`/`step` for incremental decoding, grouped beam steps).

- Encoder: a bidirectional LSTM or GRU (pads never enter the recurrence:
  see `encode`), output (B,S,K) with K = 2 * encoder_hidden. Its
  final forward and backward states, through a tanh "bridge", start the
  decoder (one state per decoder layer).
- Decoder: a stack of LSTM/GRU cells, written out here so the input
  projection of the target embeddings runs once for all T positions and a
  step only multiplies the small recurrent inputs. The scoring functions
  live in `triptych.text.models.attention`, shared; the decoder wires them the way
  their papers do:
  * ``bahdanau``: the attention is queried with the PREVIOUS state s_{t-1}
    and its context c_t enters the RNN beside the embedding (Bahdanau et al.
    2014, eq. 4-6): s_t = RNN([y_{t-1}; c_t], s_{t-1}).
  * ``luong-*``: the attention is queried with the CURRENT state s_t, and
    the attentional vector h~_t = tanh(W_c [c_t; s_t]) is fed to the next
    step's input ("input feeding", Luong et al. 2015, sec. 3.3):
    s_t = RNN([y_{t-1}; h~_{t-1}], s_{t-1}).
  Both predict from tanh(W_c [c_t; s_t]) through the (tied) embedding matrix.
- Copy attention (See et al. 2017): with `copy=True` the attention weights
  over the source are also the copy distribution, mixed in by the shared
  `mix_copy` with a gate read from [h~_t, c_t, y_{t-1}].

Shapes: B rows, S source and T target positions, E = embed_dim, H = hidden
(the decoder's size), K = 2 * encoder_hidden, V vocabulary entries.
Sequences are RIGHT-padded with `pad_id`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from triptych.errors import UserError
from triptych.schema import bounded
from triptych.text.models.attention import build_attention, check_attention_type
from triptych.text.models import Seq2Seq, register_model, sequence_loss
from triptych.text.models.copy import output_log_probs
from triptych.text.models.dropout import dropout
from triptych.nn.prepacked import Linear, linear

CELLS = ("lstm", "gru")


@dataclass
class RNNConfig:
    """The YAML `model:` section of an RNN recipe maps onto these fields."""

    cell: str = "lstm"  # lstm | gru, for the encoder and the decoder
    attention: str = "luong-general"  # bahdanau | luong-dot | luong-general | luong-concat
    embed_dim: int = bounded(256, ge=1, le=65536)
    hidden: int = bounded(256, ge=1, le=65536)  # decoder state size (and of the attentional vector)
    encoder_hidden: int = bounded(128, ge=1, le=65536)  # per direction: the encoder's outputs have 2 x this
    encoder_layers: int = bounded(1, ge=1, le=1000)
    decoder_layers: int = bounded(1, ge=1, le=1000)
    attention_size: int | None = bounded(None, ge=1, le=65536)  # inner size of the additive scores; default: hidden
    dropout: float = bounded(0.2, ge=0, lt=1)  # embeddings, between layers, the attentional vector
    copy: bool = False  # pointer-generator copy attention
    tie_embeddings: bool = True  # output projection = the (shared source/target) embedding

    def __post_init__(self):
        if self.cell not in CELLS:
            raise UserError(f"model.cell: {self.cell!r} is not allowed; allowed: {', '.join(CELLS)}")
        check_attention_type(self.attention)
        for name in ("embed_dim", "hidden", "encoder_hidden", "encoder_layers", "decoder_layers"):
            if getattr(self, name) < 1:
                raise UserError(f"model.{name}: must be at least 1, got {getattr(self, name)}")


@register_model("rnn", RNNConfig)
class RNNSeq2Seq(Seq2Seq):
    """Bidirectional RNN encoder, attentive RNN decoder; returns log-probabilities."""

    grouped_steps = True  # step() takes G rows per encoder row: see Seq2Seq

    def __init__(self, cfg: RNNConfig, vocab_size: int, pad_id: int, source_vocab_size: int | None = None):
        super().__init__()
        self.cfg, self.vocab_size, self.pad_id = cfg, vocab_size, pad_id
        E, H, K, L = cfg.embed_dim, cfg.hidden, 2 * cfg.encoder_hidden, cfg.decoder_layers
        self.lstm, self.bahdanau = cfg.cell == "lstm", cfg.attention == "bahdanau"
        gates = (4 if self.lstm else 3) * H
        self.attn = build_attention(cfg.attention, H, K, cfg.attention_size,
                                    query_option="model.hidden", key_option="2 x model.encoder_hidden")
        self.embed = nn.Embedding(vocab_size, E, padding_idx=pad_id)  # source, target (and output if tied)
        # Separate vocabularies (tokenizer.shared: false): the source reads a table of its own.
        self.src_embed = None if source_vocab_size is None else nn.Embedding(source_vocab_size, E, padding_idx=pad_id)
        self.scale = math.sqrt(E)  # embeddings ~ N(0, 1/E) suit the tied output; the RNNs get them at unit scale
        rnn = nn.LSTM if self.lstm else nn.GRU
        # One forward and one backward RNN a layer (see `encode`); layer l > 0 reads both of layer l - 1.
        sizes = [E] + [K] * (cfg.encoder_layers - 1)
        self.enc_fwd = nn.ModuleList(rnn(n, cfg.encoder_hidden, batch_first=True) for n in sizes)
        self.enc_bwd = nn.ModuleList(rnn(n, cfg.encoder_hidden, batch_first=True) for n in sizes)
        self.bridge_h = Linear(K, L * H)  # final encoder states -> initial decoder states
        self.bridge_c = Linear(K, L * H) if self.lstm else None
        # Decoder layer 0 reads [y_{t-1}; feed], feed = c_t (Bahdanau) or h~_{t-1} (Luong).
        self.in_embed = Linear(E, gates)  # run once for all T positions
        self.in_feed = Linear(K if self.bahdanau else H, gates, bias=False)
        self.in_upper = nn.ModuleList(Linear(H, gates) for _ in range(L - 1))  # layers 1.. read the layer below
        self.recurrent = nn.ModuleList(Linear(H, gates, bias=not self.lstm) for _ in range(L))  # GRU: b_hn
        self.combine = Linear(K + H, H, bias=False)  # h~ = tanh(W_c [c; s])
        self.to_embed = Linear(H, E, bias=False) if cfg.tie_embeddings and E != H else None
        self.output = None if cfg.tie_embeddings else Linear(H, vocab_size, bias=False)
        if cfg.copy:
            self.gate = Linear(H + K + E, 1)  # [h~, context, input embedding] -> logit of g
        self._init_weights()

    def _init_weights(self):
        for table in (self.embed, self.src_embed):
            if table is not None:
                nn.init.normal_(table.weight, 0.0, self.cfg.embed_dim**-0.5)
        with torch.no_grad():
            self.embed.weight[self.pad_id].zero_()
            if self.src_embed is not None:
                self.src_embed.weight[self.pad_id].zero_()
            if self.lstm:  # forget gates start open (Jozefowicz et al. 2015)
                H = self.cfg.hidden
                for lin in [self.in_embed, *self.in_upper]:
                    lin.bias[H : 2 * H].fill_(1.0)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # ---------------------------------------------------------------- encoder

    def _embed(self, ids, table=None):  # (B, T) -> (B, T, E); table: the source's, if it has one
        return dropout((self.embed if table is None else table)(ids) * self.scale, self.cfg.dropout, self.training)

    def encode(self, src):
        """src (B,S) -> dict of batch-first tensors that decoding reuses.

        The bidirectional encoder runs on the padded batch without packing:
        CPU's packed-sequence backward re-zeroes the whole gradient at every
        time step (twice the time of the whole encoder here). Pads are at the
        right, so the forward RNN reads every real token before any pad; the
        backward RNN reads each row reversed within its length (pads still
        last), so neither direction's real outputs ever see a pad, and a
        padded row computes exactly what it computes alone.
        """
        B, S = src.shape
        pad = src == self.pad_id  # (B, S)
        pad[:, 0] &= ~pad.all(1)  # an all-pad row reads its first slot, not nothing (NaN)
        lengths = (~pad).sum(1)  # (B,)
        pos = torch.arange(S, device=src.device)
        # rev[b, t] = lengths[b] - 1 - t on real positions, t on pads: its own inverse.
        rev = torch.where(pos < lengths[:, None], lengths[:, None] - 1 - pos, pos)  # (B, S)
        x = self._embed(src, self.src_embed)  # (B, S, E)
        for layer, (fwd, bwd) in enumerate(zip(self.enc_fwd, self.enc_bwd)):
            if layer > 0:
                x = dropout(x, self.cfg.dropout, self.training)
            flip = lambda y: y.gather(1, rev[:, :, None].expand_as(y))  # noqa: E731
            x = torch.cat([fwd(x)[0], flip(bwd(flip(x))[0])], 2)  # (B, S, K)
        # The forward RNN's last real output, and the backward one's (at position 0).
        last = torch.cat([x[torch.arange(B, device=src.device), lengths - 1, : x.size(2) // 2], x[:, 0, x.size(2) // 2 :]], 1)
        if pad.any():
            memory = x.masked_fill(pad[:, :, None], 0.0)  # (B, S, K), zeros at pads
        else:
            memory, pad = x, None  # nothing to mask: the scores skip the masked_fill
        return {"memory": memory, "keys": self.attn.keys(memory), "pad": pad, "src": src, "last": last}

    # ---------------------------------------------------------------- decoder

    def init_state(self, enc):
        """Initial decoder state: h (and c) per layer from the encoder's last states."""
        B, L, H = enc["last"].size(0), self.cfg.decoder_layers, self.cfg.hidden
        state = {"h": tuple(torch.tanh(self.bridge_h(enc["last"])).view(B, L, H).unbind(1))}
        if self.lstm:
            state["c"] = tuple(self.bridge_c(enc["last"]).view(B, L, H).unbind(1))
        if not self.bahdanau:
            state["feed"] = enc["last"].new_zeros(B, H)  # h~_0 = 0
        return state

    def _cell(self, gx, h, c, layer):
        """One LSTM/GRU cell: gx (N, gates) the input's projection -> new (h, c)."""
        H = self.cfg.hidden
        # The cell's arithmetic stays float32 under bf16 autocast (only the
        # matmuls run in bf16), so the memory c does not round at every step.
        gx, gh = gx.float(), self.recurrent[layer](h).float()  # (N, gates)
        if self.lstm:  # gates laid out as i, f, o, g
            gates = gx + gh
            i, f, o = gates[:, : 3 * H].sigmoid().chunk(3, 1)
            c = f * c + i * gates[:, 3 * H :].tanh()
            return o * c.tanh(), c
        r, z = (gx[:, : 2 * H] + gh[:, : 2 * H]).sigmoid().chunk(2, 1)
        n = torch.tanh(gx[:, 2 * H :] + r * gh[:, 2 * H :])
        return n + z * (h - n), None

    def _attend(self, s, enc, group):
        """Query (N,H) -> context (N,K), weights (N,S); N = group * encoder rows."""
        q = s.view(s.size(0) // group, group, -1)  # (B, G, H): a row's G hypotheses share its keys
        ctx, w = self.attn(q, enc["keys"], enc["memory"], enc["pad"])
        return ctx.reshape(s.size(0), -1), w.reshape(s.size(0), -1)

    def _decode(self, tgt, enc, state, group=1):
        """tgt (N,T) -> attentional vectors (N,T,H), contexts (N,T,K), weights
        (N,T,S), input embeddings (N,T,E) and the state after the last step."""
        p = self.cfg.dropout
        emb = self._embed(tgt)  # (N, T, E)
        xe = self.in_embed(emb)  # (N, T, gates): the embeddings' share of layer 0, for all steps at once
        hs, cs = list(state["h"]), list(state.get("c", [None] * len(state["h"])))
        feed = state.get("feed")
        outs, ctxs, ws = [], [], []
        for t in range(tgt.size(1)):
            if self.bahdanau:  # attend with s_{t-1}, feed c_t into the RNN
                ctx, w = self._attend(hs[-1], enc, group)
                feed = ctx
            gx = xe[:, t] + self.in_feed(feed)
            for layer in range(len(hs)):
                if layer > 0:
                    gx = self.in_upper[layer - 1](dropout(hs[layer - 1], p, self.training))
                hs[layer], cs[layer] = self._cell(gx, hs[layer], cs[layer], layer)
            if not self.bahdanau:  # attend with s_t
                ctx, w = self._attend(hs[-1], enc, group)
            out = dropout(torch.tanh(self.combine(torch.cat([ctx, hs[-1]], 1))), p, self.training)  # (N, H)
            if not self.bahdanau:
                feed = out  # input feeding
            outs.append(out)
            ctxs.append(ctx)
            ws.append(w)
        new = {"h": tuple(hs)}
        if self.lstm:
            new["c"] = tuple(cs)
        if not self.bahdanau:
            new["feed"] = feed
        return torch.stack(outs, 1), torch.stack(ctxs, 1), torch.stack(ws, 1), emb, new

    def _log_probs(self, out, ctx, w, emb, src_ids, keep=None):
        """Attentional vectors (N,T,H) -> log-probabilities (N,T,V), or (M,V) for
        the M positions where `keep` (N,T) is True (training skips pads).
        `src_ids` (N,S) are only read by copy attention."""
        copy = None
        if self.cfg.copy:
            g = self.gate(torch.cat([out, ctx, emb], -1))  # (N, T, 1)
            copy = (w, g, src_ids[:, None, :].expand(-1, out.size(1), -1))  # source ids (N, T, S)
        return output_log_probs(out, self._logits, keep, copy)

    def _logits(self, out):
        h = out if self.to_embed is None else self.to_embed(out)
        return linear(h, self.embed.weight) if self.output is None else self.output(h)


    def forward(self, src, tgt_in, return_attention: bool = False):
        """src (B,S), tgt_in (B,T) -> log_probs (B,T,V) [, {"cross": [(B,1,T,S)], "copy": (B,T,S)}]."""
        enc = self.encode(src)
        out, ctx, w, emb, _ = self._decode(tgt_in, enc, self.init_state(enc))
        log_p = self._log_probs(out, ctx, w, emb, src)
        if not return_attention:
            return log_p
        attn = {"cross": [w[:, None]]}  # one layer, one head: the Transformer's layout
        if self.cfg.copy:
            attn["copy"] = w
        return log_p, attn

    def loss(self, src, tgt_in, tgt_out, label_smoothing: float = 0.0):
        """Summed label-smoothed NLL; the vocabulary projection only runs on real target positions."""
        enc = self.encode(src)
        out, ctx, w, emb, _ = self._decode(tgt_in, enc, self.init_state(enc))
        keep = tgt_out != self.pad_id  # (B, T)
        if not self.cfg.copy:  # the plain projection: loss and gradient in one chunked pass
            h = out[keep] if self.to_embed is None else self.to_embed(out[keep])  # (M, E or H)
            return self.projected_loss(h, tgt_out[keep], label_smoothing)
        log_p = self._log_probs(out, ctx, w, emb, src, keep)  # (M, V)
        return sequence_loss(log_p, tgt_out[keep], self.pad_id, label_smoothing)

    # ------------------------------------------------------- incremental decoding

    def step(self, tokens, enc, state):
        """tokens (N,) -> log_probs (N,V) of the next token, and the new state.

        N may be G times the encoder's rows (beam search's G hypotheses of a
        sentence share one copy of its encoding and attention keys)."""
        group = tokens.size(0) // enc["src"].size(0)
        out, ctx, w, emb, state = self._decode(tokens[:, None], enc, state, group)
        src_ids = enc["src"].repeat_interleave(group, 0) if group > 1 else enc["src"]
        return self._log_probs(out, ctx, w, emb, src_ids)[:, 0], state
