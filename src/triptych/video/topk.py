"""Each row's k best scores and their columns, in one compiled pass.

Why compiled: GAP over 100,000 videos x 3,862 classes is one read of 3.1 GB
and a few thousand tiny decisions per row. Done as numpy calls on chunks,
the calls' own work on small candidate arrays took two thirds of the time
and ran at half speed on the Intel Xeon (issue 19); here the whole
decision is made per row while the row is in cache (numba through
`triptych.compiled`: once per float width, cached on disk).

Per row: the maxima of groups of 32 columns (eight independent running
maxima a group, so the reads overlap; numba keeps them scalar); tau, the
k-th largest of those maxima, bounds the top k from below (k elements, one
a group, are >= tau); only groups whose maximum reaches tau are read again
(about k of them), and each value >= tau is inserted into a sorted list of
k. Values come in column order and a value only passes an equal one when
it is larger, so the order is (value descending, column ascending), ties
included, exactly as a stable sort would give.

NaN never wins a place: the running maxima skip it (`v > m` is false) and
so does the cut at tau; a row with fewer than k non-NaN values, and rows
narrower than k groups, go through a stable sort instead (NaN last).
"""

from __future__ import annotations

import numpy as np

from triptych.compiled import compiled

_GROUP = 32


@compiled
def _insert(vals, cols, n, k, v, c):
    """Put (v, c) in the sorted list of n (< k, or == k and v beats the last)."""
    p = n if n < k else k - 1
    while p > 0 and vals[p - 1] < v:
        vals[p] = vals[p - 1]
        cols[p] = cols[p - 1]
        p -= 1
    vals[p] = v
    cols[p] = c
    return min(n + 1, k)


@compiled
def _group_max(row, c):
    """Max of row[c:c+32] ignoring NaN (-inf when all are NaN). Eight running
    maxima, read at constant offsets of a slice: a variable index makes numba
    check it for negative values on every read (1.6 against 1.2 us a row)."""
    r = row[c : c + _GROUP]
    m0 = m1 = m2 = m3 = m4 = m5 = m6 = m7 = -np.inf
    for base in (0, 8, 16, 24):
        v = r[base]
        m0 = v if v > m0 else m0
        v = r[base + 1]
        m1 = v if v > m1 else m1
        v = r[base + 2]
        m2 = v if v > m2 else m2
        v = r[base + 3]
        m3 = v if v > m3 else m3
        v = r[base + 4]
        m4 = v if v > m4 else m4
        v = r[base + 5]
        m5 = v if v > m5 else m5
        v = r[base + 6]
        m6 = v if v > m6 else m6
        v = r[base + 7]
        m7 = v if v > m7 else m7
    return max(max(max(m0, m1), max(m2, m3)), max(max(m4, m5), max(m6, m7)))


@compiled
def _row_by_groups(row, k, maxima, best, unused, cand_vals, cand_cols, vals, cols):
    """The row's top k into vals/cols through the group maxima and tau (the
    module docstring); returns how many places numbers filled, fewer than k
    only where NaN left too few."""
    W = row.shape[0]
    G = W // _GROUP
    groups = maxima.shape[0]
    for g in range(G):
        maxima[g] = _group_max(row, g * _GROUP)
    if groups > G:
        m = -np.inf
        for c in range(G * _GROUP, W):
            v = row[c]
            m = v if v > m else m
        maxima[G] = m
    nb = 0
    for g in range(groups):
        if nb < k or maxima[g] > best[k - 1]:
            nb = _insert(best, unused, nb, k, maxima[g], g)
    tau = best[k - 1]
    m = 0  # the candidates >= tau, in column order (written always, kept when they pass)
    for g in range(groups):
        if maxima[g] >= tau:
            start = g * _GROUP
            r = row[start : min(W, start + _GROUP)]
            for j in range(r.shape[0]):
                v = r[j]
                cand_vals[m] = v
                cand_cols[m] = start + j
                m += v >= tau
    n = 0
    for i in range(m):
        v = cand_vals[i]
        if n < k or v > vals[k - 1]:
            n = _insert(vals, cols, n, k, v, cand_cols[i])
    return n


@compiled
def _rows_top_k(x, k, out_vals, out_cols):
    B, W = x.shape
    G = W // _GROUP
    groups = G + (1 if W > G * _GROUP else 0)
    maxima = np.empty(groups, x.dtype)
    best = np.empty(k, x.dtype)  # the k largest maxima, descending
    unused = np.empty(k, np.int64)
    cand_vals = np.empty(W, x.dtype)
    cand_cols = np.empty(W, np.int64)
    vals = np.empty(k, x.dtype)
    cols = np.empty(k, np.int64)
    for b in range(B):
        row = x[b]
        n = 0
        if G > 0 and groups >= k:
            n = _row_by_groups(row, k, maxima, best, unused, cand_vals, cand_cols, vals, cols)
        if n < k:  # narrow rows, or NaN took places: a stable sort, NaN last
            order = np.argsort(-row, kind="mergesort")
            for j in range(k):
                vals[j] = row[order[j]]
                cols[j] = order[j]
        for j in range(k):
            out_vals[b, j] = vals[j]
            out_cols[b, j] = cols[j]


def rows_top_k(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(values [B, k], columns [B, k]) of a C-contiguous float32/float64 [B, W], 1 <= k <= W."""
    vals = np.empty((x.shape[0], k), x.dtype)
    cols = np.empty((x.shape[0], k), np.int64)
    if k > 0 and x.shape[0] > 0:
        _rows_top_k(x, k, vals, cols)
    return vals, cols

