"""`triptych vision ...`: argument parsing and output only; the work is in the library.

    triptych vision import --from torchvision resnet50.pth --model resnet50 --out ckpt/resnet50
    triptych vision export --to torchvision runs/vision/x/best --out resnet18.safetensors

Nothing heavy is imported at module level so `triptych --help` stays fast.
"""

from __future__ import annotations

import sys

from triptych.console import add_train_arguments, emit_json, report_training
from triptych.errors import UserError


def register(sub) -> None:
    vision = sub.add_parser("vision", help="image classification with the ImageNet CNNs (LeNet to ResNet)")
    verbs = vision.add_subparsers(dest="verb", metavar="VERB", parser_class=type(vision))
    verbs.required = True

    p = verbs.add_parser("train", help="train a classifier from a YAML recipe")
    p.add_argument("config", help="recipe, e.g. configs/vision/lenet5-digits.yaml")
    add_train_arguments(p, "vision", "train.lr=3e-4 or model.small_input=true")
    p.set_defaults(func=cmd_train)

    p = verbs.add_parser("eval", help="accuracy and confusion matrix of a checkpoint (or an ensemble of several)")
    p.add_argument("--checkpoint", required=True, action="append",
                   help="a checkpoint directory, e.g. runs/vision/x/best; given more than once, the ensemble "
                        "of them: the mean of their probability distributions (one class list)")
    p.add_argument("--data", help="digits:test or fashion:test (the default for those runs), digits:valid, fashion:valid, or an ImageFolder directory")
    p.add_argument("--plot", metavar="FILE.png", help="draw the confusion matrix to this picture")
    p.add_argument("--convert", action="store_true", help="convert grey images to RGB (or RGB to grey) for the model")
    p.add_argument("--tta", choices=["none", "flip"], default="none",
                   help="test-time augmentation: flip also shows each image mirrored and averages the two "
                        "probability distributions (for models trained with flips)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_eval)

    p = verbs.add_parser("predict", help="top-5 classes of image files")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="PNG or JPEG files")
    p.add_argument("--top", type=int, default=5, help="how many classes to show (default 5)")
    p.add_argument("--convert", action="store_true", help="convert grey images to RGB (or RGB to grey) for the model")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict)

    p = verbs.add_parser("models", help="every model with its parameter count at its reference size")
    p.add_argument("pattern", nargs="?", help="a glob over names, e.g. 'resnet*'")
    p.add_argument("--json", action="store_true", help="print a JSON list of {name, params, ...}")
    p.set_defaults(func=cmd_models)

    p = verbs.add_parser("params", help="fully-connected vs locally-connected vs convolutional parameter counts")
    p.add_argument("--size", type=int, default=1000, help="input side in pixels (default 1000)")
    p.add_argument("--channels", type=int, default=1, help="input channels (default 1)")
    p.add_argument("--filter", type=int, default=10, help="filter side k for a k x k window (default 10)")
    p.add_argument("--maps", type=int, default=1, help="hidden units per position of the FC/LC layers (default 1)")
    p.add_argument("--filters", type=int, default=100, help="filters of the convolution (default 100)")
    p.add_argument("--stride", type=int, default=1)
    p.add_argument("--bias", action="store_true", help="count biases too (the talk counts weights)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_params)

    # import / export of torchvision-format weights (the work: triptych.vision.torchvision_weights)
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

    # Captioning's embedded data; the code lives in triptych.caption.scenes.
    p = verbs.add_parser("digit-scenes", help="write the digit-scenes captioning data (real digits, synthetic layout)")
    p.add_argument("--out", required=True, help="a new folder for images/, train|valid|test.jsonl and boxes.json")
    p.add_argument("--scenes", type=int, default=2000, help="scenes in all, split 80/10/10 (default 2000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_digit_scenes)


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def cmd_digit_scenes(args) -> int:
    from triptych.caption.scenes import write_digit_scenes

    summary = write_digit_scenes(args.out, args.scenes, args.seed)
    if args.json:
        emit_json(summary)
    else:
        print(f"wrote {sum(summary['scenes'].values())} scenes ({summary['scenes']}) to {summary['out']}")
    return 0


def cmd_train(args) -> int:
    from triptych.vision.train import run_training

    summary = run_training(args.config, args.overrides, out=args.out, resume=args.resume, seed=args.seed,
                           device=args.device)
    extra = [f"test accuracy of best/: {_pct(summary['test_accuracy'])} on {summary['test_images']} images"] if "test_accuracy" in summary else []
    return report_training(args, summary, *extra)


def cmd_eval(args) -> int:
    from triptych.vision.predictor import Classifier

    members = [Classifier(c, device=args.device, convert=args.convert or None) for c in args.checkpoint]
    clf = members[0]
    if len(members) == 1:
        images = clf.dataset(args.data)
        name, result = clf.name, clf.evaluate(images, flip=args.tta == "flip")
        result = {"checkpoint": str(args.checkpoint[0]), "model": name, "data": images.name, "tta": args.tta, **result}
    else:
        from triptych.vision.ensemble import evaluate_ensemble

        data, result = evaluate_ensemble(members, args.data, flip=args.tta == "flip")
        name = f"ensemble of {len(members)} ({', '.join(m.name for m in members)})"
        result = {"checkpoints": [str(c) for c in args.checkpoint], "model": name, "data": data, "tta": args.tta, **result}
    result["classes"] = clf.classes
    if args.plot:
        from triptych.plots import confusion_matrix

        confusion_matrix(result["confusion"], clf.classes, args.plot, title=f"{name} on {result['data']}")
        result["plot"] = str(args.plot)
    if args.json:
        emit_json(result)
        return 0
    for m in result.get("members", []):
        print(f"  {m['model']} ({m['checkpoint']}): accuracy {_pct(m['accuracy'])}")
    print(f"{name} on {result['data']}: accuracy {_pct(result['accuracy'])}, top-5 {_pct(result['top5'])}, "
          f"loss {result['loss']:.4f} ({result['images']} images)")
    if len(clf.classes) <= 20:
        print("per class: " + ", ".join(f"{c} {_pct(a)}" for c, a in zip(clf.classes, result["per_class_accuracy"])))
    if args.plot:
        print(f"confusion matrix: {args.plot}", file=sys.stderr)
    return 0


def cmd_predict(args) -> int:
    from triptych.vision.predictor import Classifier

    if args.top < 1:
        raise UserError(f"--top {args.top}: must be >= 1")
    clf = Classifier(args.checkpoint, device=args.device, convert=args.convert or None)
    predictions = clf.predict_files(args.images, k=args.top)
    if args.json:
        emit_json({"checkpoint": str(args.checkpoint), "model": clf.name, "predictions": predictions})
        return 0
    for pred in predictions:
        shown = "  ".join(f"{t['label']} {100 * t['prob']:.1f}%" for t in pred["top"])
        print(f"{pred['image']}: {shown}")
    return 0


def _classes(path: str | None) -> list[str] | None:
    if not path:
        return None
    from triptych.files import read_lines

    names = [line.strip() for _, line in read_lines(path) if line.strip()]
    if not names:
        raise UserError(f"{path}: no class names (one a line)")
    return names


def cmd_import(args) -> int:
    from triptych.vision.torchvision_weights import import_torchvision

    summary = import_torchvision(args.file, args.model, args.out, classes=_classes(args.classes))
    if args.json:
        emit_json(summary)
    else:
        print(f"{args.file} -> {summary['checkpoint']}: {summary['model']}, {summary['tensors']} tensors, "
              f"{summary['params']:,} parameters, {summary['num_classes']} classes")
    return 0


def cmd_export(args) -> int:
    from triptych.vision.torchvision_weights import export_torchvision

    summary = export_torchvision(args.checkpoint, args.out)
    if args.json:
        emit_json(summary)
    else:
        print(f"{args.checkpoint} -> {summary['file']}: torchvision {summary['model']}, {summary['tensors']} tensors")
    return 0


def cmd_models(args) -> int:
    from triptych.vision.models import list_models, model_spec

    rows = []
    for name in list_models(args.pattern):
        s = model_spec(name)
        rows.append({"name": name, "params": s.params, "family": s.family, "num_classes": s.num_classes,
                     "input": [s.in_channels, s.image_size, s.image_size], "summary": s.summary})
    if args.pattern and not rows:
        raise UserError(f"no vision model matches '{args.pattern}'")
    if args.json:
        emit_json(rows)  # the contract: a JSON list of {"name", "params", ...}
        return 0
    width = max(len(r["name"]) for r in rows)
    print(f"{'model'.ljust(width)}  {'params':>12}  input        description")
    for r in rows:
        shape = "x".join(map(str, r["input"]))
        print(f"{r['name'].ljust(width)}  {r['params']:>12,}  {shape:<11}  {r['summary']}")
    return 0


def cmd_params(args) -> int:
    from triptych.vision.layers import param_counts

    for flag in ("size", "channels", "filter", "maps", "filters", "stride"):
        if getattr(args, flag) < 1:
            raise UserError(f"--{flag} {getattr(args, flag)}: must be >= 1")
    if args.filter > args.size:
        raise UserError(f"--filter {args.filter}: larger than the {args.size}x{args.size} input")
    c = param_counts(args.size, args.channels, args.filter, hidden_maps=args.maps, filters=args.filters,
                     stride=args.stride, bias=args.bias)
    if args.json:
        emit_json(c)
        return 0
    what = "weights and biases" if args.bias else "weights"
    print(f"input {args.size}x{args.size}x{args.channels}, {args.filter}x{args.filter} filters, stride {args.stride}; "
          f"{c['hidden_units']:,} hidden units ({c['output'][1]}x{c['output'][2]}x{args.maps})")
    rows = [
        ("fully connected", c["fully_connected"], "every unit sees every pixel"),
        ("locally connected", c["locally_connected"], f"each unit sees a {args.filter}x{args.filter} window, own weights"),
        ("convolutional", c["convolutional"], f"{args.filters} filters shared by every position"),
    ]
    for name, n, why in rows:
        print(f"{name:<18} {n:>20,} {what}  ({_sci(n)})  {why}")
    return 0


def _sci(n: int) -> str:
    if n <= 0:
        return "0"
    exp = len(str(n)) - 1
    mant = n / 10 ** exp
    return f"10^{exp}" if mant == 1 else f"{mant:.2g}x10^{exp}"
