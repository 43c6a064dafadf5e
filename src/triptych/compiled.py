"""numba's `njit` as the project uses it, for the few loops that numpy
cannot do in one pass (video top-k, dequantisation, dropout masks, the
decoding step's attention).

Compiled on first call for the argument types and the CPU at hand, and
cached on disk (next to the source, or in the user's cache directory);
where no cache directory can be written (a read-only install and home),
compiled once per process instead. Bounds are not checked: the callers
validate shapes before they call. `compiled(parallel=True, fastmath=...)`
passes those options on (a `prange` loop, reassociated sums); a parallel
kernel is launched inside `parallel_launch()`.
"""

from __future__ import annotations

import contextlib
import threading

import numba
from numba import njit

_launch = threading.Lock()


@contextlib.contextmanager
def parallel_launch():
    """One parallel kernel launch at a time, on as many threads as torch uses.

    The lock: numba's fallback thread pool (where neither OpenMP nor TBB is
    found) aborts the process on concurrent launches. The threads: torch's
    count, which the user set (`train.threads`), not numba's default of
    every core."""
    import torch

    with _launch:
        threads = numba.get_num_threads()
        numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))
        try:
            yield
        finally:
            numba.set_num_threads(threads)


def compiled(fn=None, **options):
    if fn is None:
        return lambda f: compiled(f, **options)
    try:
        return njit(cache=True, boundscheck=False, **options)(fn)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return njit(boundscheck=False, **options)(fn)
