"""numba's `njit` as the project uses it, for the few loops that numpy
cannot do in one pass (video top-k, dequantisation, dropout masks, the
decoding step's attention).

Compiled on first call for the argument types and the CPU at hand, and
cached on disk (next to the source, or in the user's cache directory);
where no cache directory can be written (a read-only install and home),
compiled once per process instead. Bounds are not checked: the callers
validate shapes before they call. `compiled(parallel=True, fastmath=...)`
passes those options on (a `prange` loop, reassociated sums).
"""

from __future__ import annotations

from numba import njit


def compiled(fn=None, **options):
    if fn is None:
        return lambda f: compiled(f, **options)
    try:
        return njit(cache=True, boundscheck=False, **options)(fn)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return njit(boundscheck=False, **options)(fn)
