"""What the commands print, and the options every `<domain> train` takes.

The domains' `cli.py` modules share these; nothing in the library prints a
table or a JSON result (the library returns dicts; a command shows them).
Imports nothing heavy, so `triptych --help` stays fast.
"""

from __future__ import annotations

import json
import sys


def emit_json(obj) -> None:
    """The single JSON object a `--json` command prints on stdout."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def print_table(rows: list[tuple], header: tuple) -> None:
    """Columns padded to their widest cell, the header first."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    for row in [header, *rows]:
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip())


def add_train_arguments(p, domain: str, override_example: str) -> None:
    """The options every `<domain> train CONFIG` verb takes, so the domains read alike."""
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help=f"override a config key, e.g. {override_example}")
    p.add_argument("--out", help=f"run directory (default runs/{domain}/<recipe name>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    p.add_argument("--seed", type=int, help="overrides the recipe's seed")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--json", action="store_true", help="print the run summary as one JSON object")


def report_training(args, summary: dict, *extra: str) -> int:
    """A `train` verb's result: the summary as JSON (--json), else the run, its
    stop, the best metric and any `extra` lines."""
    if args.json:
        emit_json(summary)
        return 0
    print(f"run: {summary['run_dir']}  steps: {summary.get('steps')}  stopped: {summary.get('stopped_because')}")
    if summary.get("elapsed") is not None and summary.get("cpu_s") is not None:
        print(f"time: {summary['elapsed']:.0f} s wall-clock, {summary['cpu_s']:.0f} s CPU (all sessions of the run)")
    if summary.get("best_metric") is not None:
        print(f"best {summary.get('metric')}: {summary['best_metric']:.4f} at step {summary.get('best_step')}")
    for line in extra:
        print(line)
    return 0


def at_least(low: int):
    """An argparse `type`: an integer no smaller than `low` (else a usage error naming the flag)."""
    import argparse

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value}: must be at least {low}")
        return value

    return parse
