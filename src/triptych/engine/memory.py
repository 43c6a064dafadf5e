"""Peak resident memory, reported in every training summary.

The foundation's recipe has a memory budget (< 3 GB); reporting the peak
with each run makes it a number we see, not one we assume.
"""

from __future__ import annotations

import resource
import sys


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB (Linux and macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
