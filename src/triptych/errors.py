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


class SettingError(UserError):
    """A setting out of range, named the way the caller's front end spells it.

    The message names settings by `{name}` placeholders: the library writes
    `SettingError("{beam} 0: out of range")`, a recipe reads `decode.beam 0`,
    the command line `--beam 0` (`naming`), an HTTP request `beam 0`. So the
    library never names a front end's flags.
    """

    def __init__(self, template: str, spell=str):
        self.template = template
        super().__init__(self.naming(spell))

    def naming(self, spell) -> str:
        """The message with each `{name}` written as `spell(name)` (other braces,
        as in a path, are left as they are)."""
        import re

        return re.sub(r"\{([a-z][a-z0-9_]*)\}", lambda m: spell(m.group(1)), self.template)


def require_extra(extra: str, *modules: str) -> None:
    """Fail in one line, naming the pip command, when an optional extra is not installed."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise UserError(f"{', '.join(missing)} not installed: this command needs triptych's [{extra}] extra "
                        f"(pip install 'triptych[{extra}]')")
