"""SIGINT/SIGTERM during training: finish the step, save, stop; a second signal aborts.

A kill in the middle of an optimiser step would lose the step or, worse,
save a half-updated state; so the handler only raises a flag that the loop
reads between steps (and shares with the other ranks, so they all stop at
the same step). The previous handlers are put back when training ends, so a
library caller's own handling is untouched.

A run stopped this way has still finished its checkpoint, but it is not a
finished run: `stopped_by()` tells the CLI which signal stopped it, and the
command exits 128 + that number (143 for SIGTERM, 130 for SIGINT) after
printing its summary, so schedulers and scripts can tell the two apart.
"""

from __future__ import annotations

import signal
import threading

_STOPPED_BY: int | None = None  # the signal that stopped the last run of this process


def stopped_by() -> int | None:
    """The signal number that stopped training in this process, or None."""
    return _STOPPED_BY


def forget() -> None:
    """A new command starts: no signal has stopped it (`cli.main` calls this)."""
    global _STOPPED_BY
    _STOPPED_BY = None


class StopSignal:
    """SIGINT/SIGTERM set a flag the loop checks after each step; a second one aborts."""

    def __init__(self, on_first=None):
        self.requested = False
        self.on_first = on_first
        self.previous: dict[int, object] = {}

    def _handler(self, signum, frame):
        global _STOPPED_BY
        if self.requested:
            self.restore()
            raise KeyboardInterrupt
        self.requested = True
        _STOPPED_BY = int(signum)
        if self.on_first is not None:
            self.on_first(signum)

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signals can only be caught on the main thread; leave them alone
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.previous[sig] = signal.signal(sig, self._handler)

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous = {}
