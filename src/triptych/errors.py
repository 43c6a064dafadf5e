"""The one exception that reaches the user as a single line and exit status 2.

Anything the user can get wrong (a path, a record, a config key, a
checkpoint) is reported by raising `UserError` with a message that names the
file and, where there is one, the line or record. `triptych.cli.main` turns
it into `triptych: error: <message>` on stderr and exit status 2; nothing
else ever prints a traceback for bad input.
"""

from __future__ import annotations

EXIT_USER_ERROR = 2


class UserError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


def where(path, line: int | None = None, record: int | None = None) -> str:
    """`path`, `path:LINE` or `path: record N` — the prefix every message uses."""
    if line is not None:
        return f"{path}:{line}"
    if record is not None:
        return f"{path}: record {record}"
    return str(path)
