"""`triptych caption ...`: argument parsing and output only; the work is in the library.

Nothing heavy is imported at module level so `triptych --help` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path

from triptych.console import add_train_arguments, emit_json, report_training
from triptych.errors import UserError


def register(sub) -> None:
    caption = sub.add_parser("caption", help="image captioning with visual attention (Show, Attend and Tell)")
    verbs = caption.add_subparsers(dest="verb", metavar="VERB", parser_class=type(caption))
    verbs.required = True

    p = verbs.add_parser("train", help="train a captioner from a YAML recipe")
    p.add_argument("config", help="recipe, e.g. configs/caption/digit-scenes.yaml")
    add_train_arguments(p, "caption", "model.backbone_checkpoint=runs/vision/x/best")
    p.set_defaults(func=cmd_train)

    p = verbs.add_parser("eval", help="BLEU-4 and ROUGE-L of a checkpoint's captions (all references)")
    p.add_argument("--checkpoint", required=True, help="a checkpoint directory, e.g. runs/caption/x/best")
    p.add_argument("--data", help="a captions file (default: the recipe's data.test)")
    p.add_argument("--boxes", help="digit scenes' boxes.json: also measure whether the attention lands on the named digit "
                                   "(default: boxes.json beside --data when it exists)")
    p.add_argument("--beam", type=int, help="beam size (default: the recipe's decode.beam; 1 = greedy)")
    p.add_argument("--limit", type=int, help="only the first N images")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_eval)

    p = verbs.add_parser("predict", help="caption image files")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="PNG or JPEG files")
    p.add_argument("--beam", type=int, help="beam size (default: the recipe's decode.beam; 1 = greedy)")
    p.add_argument("--attention-map", metavar="FILE.png", help="draw each word's attention over its image, in a grid")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict)



def _check_beam(beam) -> None:
    if beam is not None and beam < 1:
        raise UserError(f"--beam: must be at least 1, got {beam}")


def cmd_train(args) -> int:
    from triptych.caption.train import run_training

    summary = run_training(args.config, args.overrides, out=args.out, resume=args.resume, seed=args.seed,
                           device=args.device)
    return report_training(args, summary)


def cmd_eval(args) -> int:
    from triptych.caption.data import CaptionSet
    from triptych.caption.predictor import Captioner, attention_on_digits, read_boxes
    from triptych.caption.metrics import caption_scores

    _check_beam(args.beam)
    cap = Captioner(args.checkpoint, args.device)
    data_path = args.data or cap.cfg.data.test
    data = CaptionSet(data_path, cap.cfg.data.image_size, cap.cfg.data.channels)
    n = len(data.images) if not args.limit else min(args.limit, len(data.images))
    boxes_path = args.boxes or (str(Path(data_path).parent / "boxes.json") if (Path(data_path).parent / "boxes.json").is_file() else None)
    boxes = read_boxes(boxes_path, data.paths[:n], data.path.parent) if boxes_path else None
    print(f"captioning {n} images of {data_path}", file=sys.stderr)
    hyps = cap.caption(data.images[:n], args.beam)
    result = {"checkpoint": str(args.checkpoint), "data": str(data_path), "images": n,
              "beam": cap.cfg.decode.beam if args.beam is None else args.beam,
              **caption_scores(hyps, data.captions[:n]),
              "rouge_note": "ROUGE-L F1 against the best-matching reference of each image"}
    if boxes is not None:
        from PIL import Image

        canvas = Image.open(data.paths[0]).size[0]
        result["attention"] = attention_on_digits(cap.attention_of(data.images[:n], hyps), boxes, canvas)
    result["examples"] = [{"image": str(p), "caption": h} for p, h in zip(data.paths[:3], hyps[:3])]
    if args.json:
        emit_json(result)
    else:
        print(f"BLEU-4 {result['bleu']:.2f}  ROUGE-L {result['rougeL']:.2f}  ({n} images, beam {result['beam']})")
        if result.get("attention", {}).get("digit_words"):
            a = result["attention"]
            print(f"attention peak inside the named digit: {100 * a['peak_in_box']:.1f}% of {a['digit_words']} digit words "
                  f"(chance {100 * a['chance']:.1f}%)")
    return 0


def cmd_predict(args) -> int:
    from triptych.caption.predictor import Captioner

    _check_beam(args.beam)
    if args.attention_map:
        from triptych.plots import _check_path

        _check_path(args.attention_map)  # a bad file name fails before any work
    cap = Captioner(args.checkpoint, args.device)
    images = cap.load_images(args.images)
    hyps = cap.caption(images, args.beam)
    result = {"captions": [{"image": p, "caption": h} for p, h in zip(args.images, hyps)]}
    if args.attention_map:
        from triptych.plots import image_attention_grid

        attn = cap.attention_of(images, hyps)
        pictures = [img.permute(1, 2, 0).squeeze(-1).numpy() for img in images]
        image_attention_grid(pictures, [w for w, _ in attn], [m.numpy() for _, m in attn], args.attention_map)
        result["attention_map"] = args.attention_map
    if args.json:
        emit_json(result)
    else:
        for item in result["captions"]:
            print(f"{item['image']}\t{item['caption']}")
        if args.attention_map:
            print(f"attention map: {args.attention_map}", file=sys.stderr)
    return 0
