"""`triptych report RUN_DIR [-o report.html] [--json]`: argument parsing and output only."""

from __future__ import annotations

from triptych.console import emit_json


def register(sub) -> None:
    p = sub.add_parser("report", help="learning curves, final metrics and the domain's pictures of a run, as one HTML page")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (config.yaml, metrics.jsonl, best/)")
    p.add_argument("-o", "--output", metavar="FILE.html", help="the page (default RUN_DIR/report.html)")
    p.add_argument("--json", action="store_true", help="print the paths and the metrics as one JSON object")
    p.set_defaults(func=cmd_report)


def cmd_report(args) -> int:
    from triptych.report.build import build_report

    result = build_report(args.run_dir, args.output)
    if args.json:

        emit_json(result)
        return 0
    print(f"report: {result['report']}")
    for name, path in result["pictures"].items():
        print(f"  {name}: {path}")
    valid = result["metrics"].get("valid", {})
    if valid:
        shown = " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in valid.items() if k != "best")
        print(f"last evaluation: {shown}")
    return 0
