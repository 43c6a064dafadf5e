"""`triptych export RUN_DIR --format onnx [--out DIR] [--json]`: argument parsing and output only."""

from __future__ import annotations

import sys

from triptych.console import emit_json
from triptych.errors import require_extra


def register(sub) -> None:
    p = sub.add_parser("export", help="export a trained run to ONNX (vision, video; text encoder + decoder step)")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (its best/ is exported) or a checkpoint directory")
    p.add_argument("--format", default="onnx", help="onnx (the only format so far)")
    p.add_argument("--out", help="output directory (default RUN_DIR/onnx)")
    p.add_argument("--json", action="store_true", help="print the export's manifest as one JSON object")
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    require_extra("export", "onnx", "onnxruntime")
    from triptych.export.onnx import export_run

    manifest = export_run(args.run_dir, args.out, args.format)
    if args.json:
        emit_json(manifest)
    else:
        print(f"{manifest['domain']} {manifest['family']} from {manifest['checkpoint']} -> {manifest['out']}")
        for name in manifest["files"]:
            print(f"  {name}")
        print(f"onnxruntime vs PyTorch: max |difference| {manifest['max_abs_diff']:.2g}")
    sys.stdout.flush()
    return 0
