"""Resident memory: measured in every training summary, and kept down.

The foundation's recipe has a memory budget (< 3 GB); reporting the peak
with each run makes it a number we see, not one we assume.

Why memory needs keeping down at all: text batches change shape every step
(B, S and T all vary), so glibc's heap fills with freed chunks of the wrong
sizes. Measured on the Debian recipe, 60 steps left 2.8 GB resident of
which `malloc_trim` gave 1.5 GB back: it was free, just never returned.
`HeapTrimmer` returns it whenever resident memory has grown by a margin
above its level one step after the last trim, so the cost (re-faulting
pages) is paid rarely: the baseline includes a step's own working set.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource
import sys
from typing import Callable


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB (Linux and macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def current_rss_mb() -> float | None:
    """Resident memory now, in MiB (Linux); None where /proc is not there.

    Logged with every training window, so a run shows whether memory grows
    with time (fragmentation, a leak) or jumps at one phase (evaluation).
    """
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)


KERNEL_CACHE_ENTRIES = 128


def cap_kernel_cache(entries: int = KERNEL_CACHE_ENTRIES) -> None:
    """Keep oneDNN's cache of compiled CPU kernels to `entries` (unless the
    user set ONEDNN_PRIMITIVE_CACHE_CAPACITY); call before the first matmul.

    Its default, 1,024 kernels, is made for models whose shapes repeat.
    Text batches change shape every step, so each step adds kernels that are
    never used again, and the cache held about 300 MB after 40 steps of the
    Debian recipe (measured: RSS right after malloc_trim 1,126 MB at the
    default, 848 MB at 128, 810 MB at 8; same speed). 128 still holds every
    kernel of a fixed-shape model (a CNN's forward and backward).
    """
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", str(entries))


def _glibc_malloc_trim() -> Callable[[], None] | None:
    """`malloc_trim(0)` of glibc, or None on other C libraries / systems."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # musl, or no libc found
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return lambda: trim(0)


class HeapTrimmer:
    """Give freed heap memory back to the OS once RSS has grown `slack_mb`
    above its baseline. Call `maybe_trim()` once a step.

    The baseline is the RSS measured at the first call after construction or
    after a trim, i.e. after one step has re-grown its working set; measured
    right after a trim instead, every step would cross it and pay for
    re-faulting its pages (25% slower on the Debian recipe).
    """

    def __init__(self, slack_mb: float = 384.0, rss: Callable[[], float | None] | None = None,
                 trim: Callable[[], None] | None = None):
        self.slack_mb, self._rss = slack_mb, rss or (lambda: current_rss_mb())
        self._trim = trim if trim is not None else _glibc_malloc_trim()
        self.trims = 0
        self._baseline: float | None = None

    def trim_now(self) -> None:
        """Trim whatever the growth: before a phase with other batch shapes
        (validation), so its working set starts from the memory in use, not
        on top of the heap training left behind."""
        if self._trim is not None:
            self._trim()
            self.trims += 1
            self._baseline = None

    def maybe_trim(self) -> bool:
        """Trim if memory grew past the slack; True when it did."""
        if self._trim is None:
            return False
        now = self._rss()
        if now is None:
            return False
        if self._baseline is None:
            self._baseline = now
            return False
        if now < self._baseline + self.slack_mb:
            return False
        self.trim_now()
        return True
