"""`triptych vision import|export`: torchvision-format weights in and out (argument parsing only).

    triptych vision import --from torchvision resnet50.pth --model resnet50 --out ckpt/resnet50
    triptych vision export --to torchvision runs/vision/x/best --out resnet18.safetensors

The work is in `triptych.vision.torchvision_weights`.
"""

from __future__ import annotations

from triptych.errors import UserError


def register(verbs) -> None:
    p = verbs.add_parser("import", help="torchvision-format weights (.pth or .safetensors) -> a triptych checkpoint")
    p.add_argument("--from", dest="source", required=True, choices=["torchvision"], help="the weights' naming")
    p.add_argument("file", help="a state dict: .pth/.pt (read with weights_only=True) or .safetensors")
    p.add_argument("--model", required=True, help="alexnet, vgg11..vgg19(_bn), googlenet, resnet18..resnet152")
    p.add_argument("--out", required=True, help="a new checkpoint directory")
    p.add_argument("--classes", help="a text file with one class name a line (default: 0..N-1)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_import)

    p = verbs.add_parser("export", help="a vision checkpoint -> torchvision-format weights")
    p.add_argument("--to", dest="target", required=True, choices=["torchvision"], help="the weights' naming")
    p.add_argument("checkpoint", help="a checkpoint directory, e.g. runs/vision/x/best")
    p.add_argument("--out", required=True, help="FILE.safetensors, or FILE.pth (a torch.save'd state dict)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_export)


def _classes(path: str | None) -> list[str] | None:
    if not path:
        return None
    from triptych.files import read_lines

    names = [line.strip() for _, line in read_lines(path) if line.strip()]
    if not names:
        raise UserError(f"{path}: no class names (one a line)")
    return names


def cmd_import(args) -> int:
    from triptych.console import emit_json
    from triptych.vision.torchvision_weights import import_torchvision

    summary = import_torchvision(args.file, args.model, args.out, classes=_classes(args.classes))
    if args.json:
        emit_json(summary)
    else:
        print(f"{args.file} -> {summary['checkpoint']}: {summary['model']}, {summary['tensors']} tensors, "
              f"{summary['params']:,} parameters, {summary['num_classes']} classes")
    return 0


def cmd_export(args) -> int:
    from triptych.console import emit_json
    from triptych.vision.torchvision_weights import export_torchvision

    summary = export_torchvision(args.checkpoint, args.out)
    if args.json:
        emit_json(summary)
    else:
        print(f"{args.checkpoint} -> {summary['file']}: torchvision {summary['model']}, {summary['tensors']} tensors")
    return 0
