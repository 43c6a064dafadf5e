"""numba's `njit` as the project uses it, for the few loops that numpy
cannot do in one pass (video top-k, dequantisation, dropout masks).

Compiled on first call for the argument types and the CPU at hand, and
cached on disk (next to the source, or in the user's cache directory);
where no cache directory can be written (a read-only install and home),
compiled once per process instead. Bounds are not checked: the callers
validate shapes before they call.
"""

from __future__ import annotations

from numba import njit


def compiled(fn):
    try:
        return njit(cache=True, boundscheck=False)(fn)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return njit(boundscheck=False)(fn)
