"""Frame pooling: a video's frame features [B, T, D] -> one vector [B, out_dim].

Every module takes `x` float [B, T, D] and `mask` float [B, T] (1 for real
frames, 0 for padding) and honours the mask exactly: padding never changes
the output, so a batch padded to its longest video gives the numbers the
official 300-frame padding would. Frame-wise layers (the cluster
assignments and their batch norm) run on the real frames only.

The learnable poolings follow Miech, Laptev and Sivic, "Learnable pooling
with Context Gating for video classification" (2017), the YouTube-8M
winner: NetVLAD, NetRVLAD (no centres), NetFV (first and second order),
Soft-DBoF; DBoF and the recurrent models follow google/youtube-8m's
frame_level_models.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from triptych.registry import Registry

# The L2 normalisations divide by max(||v||, 1e-6): the reference's
# tf.nn.l2_normalize(epsilon=1e-12) divides by sqrt(max(||v||^2, 1e-12)), the
# same number. torch's default (1e-12 on the norm) turns a residual of exactly
# zero (a centre on the frames, as k-means puts one on silent audio) into
# gradients of ~1e12 whose norm overflows, and every update is skipped.
L2_EPS = 1e-6


def masked_frames(fn, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Apply `fn` [M, D] -> [M, E] to the real frames only; zeros elsewhere.

    Batch norm inside `fn` thus sees statistics of real frames only.
    """
    keep = mask > 0
    out = fn(x[keep])  # [M, E]
    full = out.new_zeros(*x.shape[:2], out.shape[-1])
    full[keep] = out
    return full


class ContextGating(nn.Module):
    """y = x * sigmoid(BN(W x)): re-weights features by their context.

    Miech et al. 2017, eq. (1); batch norm instead of a bias, as there.
    """

    def __init__(self, dim: int, batch_norm: bool = True):
        super().__init__()
        self.fc = nn.Linear(dim, dim, bias=not batch_norm)
        self.bn = nn.BatchNorm1d(dim) if batch_norm else nn.Identity()

    def forward(self, x):  # (B, dim) -> (B, dim)
        return x * torch.sigmoid(self.bn(self.fc(x)))


class MeanPool(nn.Module):
    """Average of the real frames: [B, T, D] -> [B, D]."""

    def __init__(self, dim: int):
        super().__init__()
        self.out_dim = dim

    def forward(self, x, mask):
        return (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)


class MaxPool(nn.Module):
    """Per-dimension maximum over the real frames (0 for an empty video)."""

    def __init__(self, dim: int):
        super().__init__()
        self.out_dim = dim

    def forward(self, x, mask):
        return masked_max(x, mask)


def masked_max(x, mask):
    """[B, T, D] -> [B, D], the maximum over real frames (0 for none)."""
    filled = x.masked_fill(mask[..., None] == 0, float("-inf")).amax(1)
    return torch.where(torch.isfinite(filled), filled, torch.zeros_like(filled))


class DBoF(nn.Module):
    """Deep Bag of Frames (youtube-8m DbofModel): project every (sampled)
    frame to K "clusters", BN, ReLU6, then max-pool: [B, T, D] -> [B, K].
    The frame sampling (random frames with replacement) is the data's job."""

    def __init__(self, dim: int, clusters: int):
        super().__init__()
        self.proj = nn.Sequential(nn.Linear(dim, clusters, bias=False), nn.BatchNorm1d(clusters), nn.ReLU6())
        self.out_dim = clusters

    def forward(self, x, mask):
        return masked_max(masked_frames(self.proj, x, mask), mask)


class SoftDBoF(nn.Module):
    """Soft assignments to K clusters, max-pooled over frames: [B, T, D] -> [B, K]
    (Miech et al.'s Soft-DBoF); `gated` adds Context Gating on the result."""

    def __init__(self, dim: int, clusters: int, gated: bool = False):
        super().__init__()
        self.assign = nn.Sequential(nn.Linear(dim, clusters, bias=False), nn.BatchNorm1d(clusters), nn.Softmax(-1))
        self.gate = ContextGating(clusters) if gated else nn.Identity()
        self.out_dim = clusters

    def forward(self, x, mask):
        return self.gate(masked_max(masked_frames(self.assign, x, mask), mask))


class _Clusters(nn.Module):
    """Shared by the VLAD family: soft assignment a [B, T, K] of frames to K
    clusters, softmax(BN(x W)), zero on padding."""

    def __init__(self, dim: int, clusters: int):
        super().__init__()
        self.dim, self.clusters = dim, clusters
        self.assign = nn.Sequential(nn.Linear(dim, clusters, bias=False), nn.BatchNorm1d(clusters), nn.Softmax(-1))

    def assignments(self, x, mask):
        return masked_frames(self.assign, x, mask)  # (B, T, K)


class NetVLAD(_Clusters):
    """Sum of residuals to learned centres, weighted by soft assignment:
    V[d, k] = sum_t a_tk (x_td - c_dk); intra-normalised over d, flattened,
    L2-normalised. [B, T, D] -> [B, K*D]. `centres=False` is NetRVLAD."""

    def __init__(self, dim: int, clusters: int, centres: bool = True):
        super().__init__(dim, clusters)
        self.centres = nn.Parameter(torch.randn(dim, clusters) / dim**0.5) if centres else None
        self.out_dim = dim * clusters

    def forward(self, x, mask):
        a = self.assignments(x, mask)  # (B, T, K)
        vlad = torch.einsum("btk,btd->bdk", a, x)  # (B, D, K)
        if self.centres is not None:
            vlad = vlad - a.sum(1, keepdim=True) * self.centres  # (B, 1, K) * (D, K)
        vlad = F.normalize(vlad, dim=1, eps=L2_EPS)  # intra-normalisation
        return F.normalize(vlad.flatten(1), dim=1, eps=L2_EPS)


class NetRVLAD(NetVLAD):
    """NetVLAD without centres: the assignment-weighted sum of frames."""

    def __init__(self, dim: int, clusters: int):
        super().__init__(dim, clusters, centres=False)


class NetFV(_Clusters):
    """Fisher-vector-like pooling: first order sum_t a_tk (x_td - c_dk) / s_dk
    and second order sum_t a_tk ((x_td - c_dk)^2 / s_dk^2 - 1), each
    intra-normalised, concatenated, L2-normalised. [B, T, D] -> [B, 2*K*D]."""

    def __init__(self, dim: int, clusters: int):
        super().__init__(dim, clusters)
        self.centres = nn.Parameter(torch.randn(dim, clusters) / dim**0.5)
        self.log_sigma = nn.Parameter(torch.zeros(dim, clusters))
        self.out_dim = 2 * dim * clusters

    def forward(self, x, mask):
        a = self.assignments(x, mask)  # (B, T, K)
        a_sum = a.sum(1, keepdim=True)  # (B, 1, K)
        sigma = self.log_sigma.exp() + 1e-6  # (D, K)
        s1 = torch.einsum("btk,btd->bdk", a, x)  # sum a x
        s2 = torch.einsum("btk,btd->bdk", a, x * x)  # sum a x^2
        c = self.centres
        first = (s1 - a_sum * c) / sigma
        second = (s2 - 2 * c * s1 + a_sum * c * c) / sigma**2 - a_sum
        first, second = F.normalize(first, dim=1, eps=L2_EPS), F.normalize(second, dim=1, eps=L2_EPS)
        return F.normalize(torch.cat([first.flatten(1), second.flatten(1)], 1), dim=1, eps=L2_EPS)


class RNNPool(nn.Module):
    """LSTM or GRU over the real frames; the last layer's final hidden state:
    [B, T, D] -> [B, H] (youtube-8m LstmModel, 2 layers)."""

    def __init__(self, dim: int, hidden: int, layers: int = 2, cell: str = "lstm"):
        super().__init__()
        self.rnn = (nn.LSTM if cell == "lstm" else nn.GRU)(dim, hidden, num_layers=layers, batch_first=True)
        self.out_dim = hidden

    def forward(self, x, mask):
        lengths = mask.sum(1).clamp(min=1).long().cpu()
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        _, state = self.rnn(packed)
        h = state[0] if isinstance(state, tuple) else state  # (layers, B, H)
        return h[-1]


class AttentionPool(nn.Module):
    """Attention over frames: softmax_t(v . tanh(W x_t)) weights, masked:
    [B, T, D] -> [B, D]."""

    def __init__(self, dim: int, attn: int = 128):
        super().__init__()
        self.score = nn.Sequential(nn.Linear(dim, attn), nn.Tanh(), nn.Linear(attn, 1, bias=False))
        self.out_dim = dim

    def forward(self, x, mask):
        s = self.score(x).squeeze(-1).masked_fill(mask == 0, float("-inf"))  # (B, T)
        w = torch.softmax(s, 1).nan_to_num(0.0)  # an empty video: all-zero weights
        return torch.einsum("bt,btd->bd", w, x)


class BiLSTMAttention(nn.Module):
    """Bidirectional LSTM, then attention pooling of its outputs:
    [B, T, D] -> [B, 2H]."""

    def __init__(self, dim: int, hidden: int, layers: int = 1):
        super().__init__()
        self.rnn = nn.LSTM(dim, hidden, num_layers=layers, batch_first=True, bidirectional=True)
        self.attn = AttentionPool(2 * hidden)
        self.out_dim = 2 * hidden

    def forward(self, x, mask):
        lengths = mask.sum(1).clamp(min=1).long().cpu()
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return self.attn(out, mask)


# name -> builder(dim, clusters, hidden, layers); the one list of poolings.
POOLINGS: Registry[Callable[[int, int, int, int], nn.Module]] = Registry("video pooling", key="model.pooling")
POOLINGS.register("mean", lambda dim, clusters, hidden, layers: MeanPool(dim))
POOLINGS.register("max", lambda dim, clusters, hidden, layers: MaxPool(dim))
POOLINGS.register("dbof", lambda dim, clusters, hidden, layers: DBoF(dim, clusters))
POOLINGS.register("soft-dbof", lambda dim, clusters, hidden, layers: SoftDBoF(dim, clusters))
POOLINGS.register("gated-soft-dbof", lambda dim, clusters, hidden, layers: SoftDBoF(dim, clusters, gated=True))
POOLINGS.register("netvlad", lambda dim, clusters, hidden, layers: NetVLAD(dim, clusters))
POOLINGS.register("netrvlad", lambda dim, clusters, hidden, layers: NetRVLAD(dim, clusters))
POOLINGS.register("netfv", lambda dim, clusters, hidden, layers: NetFV(dim, clusters))
POOLINGS.register("lstm", lambda dim, clusters, hidden, layers: RNNPool(dim, hidden, layers, "lstm"))
POOLINGS.register("gru", lambda dim, clusters, hidden, layers: RNNPool(dim, hidden, layers, "gru"))
POOLINGS.register("bilstm-attention", lambda dim, clusters, hidden, layers: BiLSTMAttention(dim, hidden))
POOLINGS.register("attention", lambda dim, clusters, hidden, layers: AttentionPool(dim))


def make_pooling(kind: str, dim: int, clusters: int = 64, hidden: int = 256, layers: int = 2) -> nn.Module:
    """A pooling module by name (one of POOLINGS)."""
    return POOLINGS.get(kind)(dim, clusters, hidden, layers)
