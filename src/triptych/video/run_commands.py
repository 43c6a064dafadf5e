"""`triptych video train|eval|predict|models`: the verbs that need torch and a model.

Split from commands.py (data and metrics verbs) to keep each file short.
"""

from __future__ import annotations

import sys

from triptych.cli import add_train_arguments
from triptych.errors import UserError


def register(verbs) -> None:
    p = verbs.add_parser("train", help="train a video classifier from a YAML recipe")
    p.add_argument("config", help="recipe, e.g. configs/video/gated-netvlad-synth.yaml")
    add_train_arguments(p, "video", "train.lr=1e-3 or model.clusters=32")
    p.set_defaults(func=cmd_train)

    for verb, helptext in (("eval", "GAP@20, Hit@1, PERR, mAP of checkpoints on labelled TFRecords"),
                           ("predict", "Kaggle submission (VideoId,LabelConfidencePairs) from checkpoints")):
        p = verbs.add_parser(verb, help=helptext)
        p.add_argument("--checkpoint", action="append", required=True, metavar="DIR",
                       help="a checkpoint directory; give several to average an ensemble")
        p.add_argument("--data", nargs="+", required=True, metavar="FILE", help="TFRecord files, directories or globs")
        p.add_argument("--top-k", type=int, default=20)
        p.add_argument("--no-verify", action="store_true", help="skip the CRC checks of the TFRecord framing")
        p.add_argument("--skip-bad-records", action="store_true", help="skip damaged records and report how many")
        p.add_argument("--device", default="cpu")
        p.add_argument("--json", action="store_true")
        p.add_argument("--stream", choices=["auto", "on", "off"], default="auto",
                       help="read the data as a stream, O(videos x top-k) memory (auto: by size, as training)")
        p.add_argument("--segment-k", type=int, default=100_000, metavar="K",
                       help="2019 segments: the first K segments a class ranks (default 100000, the challenge's)")
        if verb == "eval":
            p.add_argument("--save-predictions", metavar="FILE.npz", help="keep what was scored")
            p.set_defaults(func=cmd_eval)
        else:
            p.add_argument("--out", required=True, metavar="FILE.csv", help="the submission file to write")
            p.add_argument("--submission", choices=["auto", "videos", "segments"], default="auto",
                           help="videos: VideoId,LabelConfidencePairs (2017/2018); segments: Class,Segments "
                                "(2019); auto: segments for 2019 segment-rated files")
            p.add_argument("--segment-classes", metavar="FILE",
                           help="2019: only these classes (one id a line, e.g. the challenge's segment_label_ids.csv)")
            p.set_defaults(func=cmd_predict)

    p = verbs.add_parser("models", help="every registered video model with its parameter count")
    p.add_argument("pattern", nargs="?", default="*", help="a glob over names, e.g. 'gated-*'")
    p.add_argument("--classes", type=int, default=3862)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)


def _emit(obj) -> None:
    from triptych.cli import emit_json

    emit_json(obj)


def cmd_train(args) -> int:
    from triptych.video.train import run_training

    s = run_training(args.config, args.overrides, out=args.out, resume=args.resume, seed=args.seed, device=args.device)
    if args.json:
        _emit(s)
        return 0
    print(f"run: {s['run_dir']}  steps: {s.get('steps')}  stopped: {s.get('stopped_because')}")
    if s.get("best_metric") is not None:
        print(f"best {s.get('metric')}: {s['best_metric']:.4f} at step {s.get('best_step')}")
    return 0


def _scored(args):
    from triptych.video.inference import ensemble_predict, load_ensemble, read_set

    if args.top_k < 1:
        raise UserError(f"--top-k {args.top_k}: must be >= 1")
    if args.segment_k < 1:
        raise UserError(f"--segment-k {args.segment_k}: must be >= 1")
    members = load_ensemble(args.checkpoint, args.device)
    from triptych.video import stream_commands

    if stream_commands.wanted(args, members):
        return members, None, None, None, None
    videos, stats = read_set(members, args.data, verify=not args.no_verify, skip_bad=args.skip_bad_records)
    if getattr(args, "submission", None) == "segments" or (
            getattr(args, "submission", None) == "auto" and videos.generation == "2019-segments"):
        return members, videos, stats, None, None  # segments are scored by the writer
    probs, loss = ensemble_predict(members, videos)
    if args.skip_bad_records:
        print(f"skipped {len(stats.skipped)} bad records", file=sys.stderr)
    return members, videos, stats, probs, loss


def cmd_eval(args) -> int:
    from triptych.video.inference import save_predictions
    from triptych.video.metrics import evaluate

    members, videos, stats, probs, loss = _scored(args)
    if videos is None:  # streamed
        from triptych.video.stream_commands import stream_eval

        result = stream_eval(args, members)
        _emit(result) if args.json else print(" ".join(f"{k} {v:.4f}" for k, v in result.items()
                                                       if isinstance(v, float)))
        return 0
    labels = videos.multi_hot(range(len(videos)))
    result = {**evaluate(probs, labels, top_k=args.top_k), "loss": loss, "videos": len(videos),
              "checkpoints": [str(m.directory) for m in members]}
    if videos.generation == "2019-segments":
        from triptych.video.segments import evaluate_segments

        result.update(evaluate_segments([m.model for m in members], videos, args.segment_k,
                                        members[0].cfg.data.eval_batch_size, args.device))
    if args.skip_bad_records:
        result["skipped"] = len(stats.skipped)
    if args.save_predictions:
        save_predictions(args.save_predictions, videos.ids, probs, labels)
        result["predictions_file"] = str(args.save_predictions)
    if args.json:
        _emit(result)
    else:
        print(f"GAP@{args.top_k} {result['gap']:.4f}  Hit@1 {result['hit_at_one']:.4f}  PERR {result['perr']:.4f}  "
              f"mAP {result['map']:.4f}  loss {loss:.4f}  ({len(videos)} videos, {len(members)} checkpoint(s))")
        if "segment_map" in result:
            print(f"2019 segments: mAP@{args.segment_k} {result['segment_map']:.4f}  "
                  f"({result['rated_segments']} rated segments)")
    return 0


def cmd_predict(args) -> int:
    from triptych.video.inference import write_submission

    members, videos, stats, probs, _ = _scored(args)
    if videos is None:  # streamed
        from triptych.video.stream_commands import stream_predict

        result = stream_predict(args, members)
        _emit(result) if args.json else print(f"wrote {result['videos']} predictions to {args.out}")
        return 0
    if probs is None:
        from triptych.video.segments import read_class_list, write_segment_submission

        classes = read_class_list(args.segment_classes) if args.segment_classes else None
        s = write_segment_submission(args.out, [m.model for m in members], videos, k=args.segment_k,
                                     top_k=args.top_k, classes=classes,
                                     batch_size=members[0].cfg.data.eval_batch_size, device=args.device)
        result = {"out": str(args.out), "submission": "segments", "videos": len(videos), **s,
                  "checkpoints": [str(m.directory) for m in members]}
    else:
        rows = write_submission(args.out, videos.ids, probs, args.top_k)
        result = {"out": str(args.out), "submission": "videos", "videos": rows,
                  "checkpoints": [str(m.directory) for m in members]}
    if args.json:
        _emit(result)
    else:
        print(f"wrote {result['submission']} predictions of {result['videos']} videos to {args.out}")
    return 0


def cmd_models(args) -> int:
    from triptych.video.models import get_model, list_models, model_config, parameter_count

    rows = []
    for name in list_models(args.pattern):
        cfg = model_config(name, num_classes=args.classes)
        rows.append({"name": name, "level": cfg.level, "pooling": cfg.pooling, "head": cfg.head,
                     "params": parameter_count(get_model(name, num_classes=args.classes))})
    if not rows:
        raise UserError(f"no video model matches '{args.pattern}'")
    if args.json:
        _emit(rows)
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        print(f"{r['name'].ljust(width)}  {r['level']:<5}  {r['pooling']:<16}  {r['head']:<8}  {r['params']:>13,}")
    return 0
