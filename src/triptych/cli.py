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


def _engine(name: str, call: str):
    """Call engine.<name>.<call>() only if a command imported it: the engine
    pulls in torch, which `--help` and the light verbs never load."""
    module = sys.modules.get(f"triptych.engine.{name}")
    return getattr(module, call)() if module is not None else None


def main(argv: list[str] | None = None) -> int:
    from triptych import files, hardware, schema

    hardware.keep_freed_memory()  # large tensors reuse freed pages instead of faulting fresh ones
    parser = build_parser()
    args = parser.parse_args(argv)
    files.forget_inputs()
    _engine("runs", "forget_pending")
    _engine("signals", "forget")
    try:
        schema.check_options(vars(args))  # numbers in bounds, --device real, before any work
        files.check_arguments(vars(args))  # no output may be one of the inputs
        status = int(args.func(args) or 0)
        _engine("runs", "forget_pending")
        stopped = _engine("signals", "stopped_by")  # SIGTERM: the checkpoint is saved, the run not finished
        return 128 + stopped if stopped is not None and status == 0 else status
    except UserError as e:
        _engine("runs", "discard_unfinished")
        # A setting the library named ({beam}) is spelled as this front end's flag (--beam).
        message = e.naming(flag) if isinstance(e, SettingError) else str(e)
        sys.stdout.flush()
        print(f"triptych: error: {message}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        _engine("runs", "discard_unfinished")
        print("triptych: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except OSError as e:
        if e.filename is None:  # not about a path the user gave: a bug, keep its traceback
            _engine("runs", "discard_unfinished")
            raise
        # A path that cannot be made or written (/proc/..., a read-only disk, a full one):
        # the user's to fix, so one line like any UserError.
        _engine("runs", "discard_unfinished")
        sys.stdout.flush()
        print(f"triptych: error: {e.filename}: cannot write or read here ({e.strerror or e})", file=sys.stderr)
        return EXIT_USER_ERROR
    except BaseException:
        _engine("runs", "discard_unfinished")
        raise


if __name__ == "__main__":
    raise SystemExit(main())
