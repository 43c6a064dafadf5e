"""`Packing`: the Transformer's token-wise layers skip a padded batch's pads."""

from __future__ import annotations

import torch


class Packing:
    """Where the real tokens of a right-padded (B,S) batch sit.

    Projections, feed-forward blocks and layer norms are most of a stack's
    work and look at one token at a time, so they run on the N real tokens
    alone, packed as (N,C); only attention needs the (B,S) grid, and gets it
    back for its own step (one call over the grid: one call a row was tried
    and lost, since with two threads every small call pays a thread hand-off).
    With real documents batched as they come (a third real tokens) this is
    most of the encoder's cost saved; length-bucketed sources are not packed,
    but their summaries, which differ far more in length, are (`loss`).
    """

    def __init__(self, keep: torch.Tensor):  # (B, S) bool
        self.B, self.S = keep.shape
        # Both forms of the same positions, each for the op it makes fastest:
        # `index_select` packs, a boolean-mask write unpacks.
        self.keep = keep
        self.index = keep.flatten().nonzero().squeeze(1)  # (N,) flat positions of the real tokens

    def pack(self, x):  # (B, S, *) -> (N, *)
        return x.flatten(0, 1).index_select(0, self.index)

    def unpack(self, x):  # (N, *) -> (B, S, *), zeros at the pads
        grid = x.new_zeros(self.B, self.S, *x.shape[1:])
        grid[self.keep] = x  # 2.5x faster than index_copy on CPU (4,154 real of 32 x 256, C 768: 1.4 vs 3.4 ms)
        return grid
