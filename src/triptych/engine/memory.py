"""Resident memory: measured in every training summary, and kept down.

The foundation's recipe has a memory budget (< 3 GB); reporting the peak
with each run makes it a number we see, not one we assume.

Why memory needs keeping down at all: text batches change shape every step
(B, S and T all vary), so glibc's heap fills with freed chunks of the wrong
sizes. Measured on the Debian recipe, 60 steps left 2.8 GB resident of
which `malloc_trim` gave 1.5 GB back: it was free, just never returned.
`HeapTrimmer` returns it whenever resident memory has grown by a margin
since the last trim, so the cost (re-faulting pages) is paid rarely.
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
    above its level after the previous trim. Call `maybe_trim()` once a step.
    """

    def __init__(self, slack_mb: float = 384.0, rss: Callable[[], float | None] = current_rss_mb,
                 trim: Callable[[], None] | None = None):
        self.slack_mb, self._rss = slack_mb, rss
        self._trim = trim if trim is not None else _glibc_malloc_trim()
        self.trims = 0
        self._floor = self._rss() if self._trim is not None else None

    def maybe_trim(self) -> bool:
        """Trim if memory grew past the slack; True when it did."""
        if self._trim is None or self._floor is None:
            return False
        now = self._rss()
        if now is None or now < self._floor + self.slack_mb:
            return False
        self._trim()
        self.trims += 1
        self._floor = self._rss() or now
        return True
