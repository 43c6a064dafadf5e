"""`triptych <domain> <verb>`: a thin argparse front over library functions.

Each domain declares its verbs in `triptych/<domain>/commands.py`
(`register(subparsers)`), which imports nothing heavy at module level, so
`triptych --help` answers without importing torch. A verb's handler gets
the parsed arguments and returns an exit status; bad input raises
`UserError`, which becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

from triptych import __version__
from triptych.errors import EXIT_USER_ERROR, UserError

# A domain lands by adding its `commands.py` and a line here.
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


def emit_json(obj) -> None:
    """The single JSON object a `--json` command prints on stdout."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def add_train_arguments(p, domain: str, override_example: str) -> None:
    """The options every `<domain> train CONFIG` verb takes, so the domains read alike."""
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help=f"override a config key, e.g. {override_example}")
    p.add_argument("--out", help=f"run directory (default runs/{domain}/<recipe name>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    p.add_argument("--seed", type=int, help="overrides the recipe's seed")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--json", action="store_true", help="print the run summary as one JSON object")


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
        sys.stdout.flush()
        print(f"triptych: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("triptych: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
