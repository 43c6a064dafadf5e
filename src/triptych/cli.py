"""`triptych <domain> <verb>`: a thin argparse front over library functions.

Each domain declares its verbs in `triptych/<domain>/cli.py`
(`register(subparsers)`), which imports nothing heavy at module level, so
`triptych --help` answers without importing torch. A verb's handler gets
the parsed arguments and returns an exit status; bad input raises
`UserError`, which becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from triptych import __version__
from triptych.errors import EXIT_USER_ERROR, SettingError, UserError

# A domain lands by adding its `cli.py` and a line here. Nothing else imports
# these modules (import-linter checks it): they parse arguments and print.
COMMAND_MODULES = [
    "triptych.text.cli",
    "triptych.vision.cli",
    "triptych.video.cli",
    "triptych.caption.cli",
    "triptych.demo",
    "triptych.serve.cli",
    "triptych.export.cli",
    "triptych.report.cli",
]


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (exit status 2)."""

    def error(self, message):  # noqa: D401 - argparse's signature
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see --help)\n")


def flag(name: str) -> str:
    """A setting's command-line spelling: max_len -> --max-len."""
    return "--" + name.replace("_", "-")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="triptych",
        description="Images, video and text: build, train, evaluate and serve the classic deep-learning systems.",
    )
    parser.add_argument("--version", action="version", version=f"triptych {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        # A setting the library named ({beam}) is spelled as this front end's flag (--beam).
        message = e.naming(flag) if isinstance(e, SettingError) else str(e)
        sys.stdout.flush()
        print(f"triptych: error: {message}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("triptych: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
