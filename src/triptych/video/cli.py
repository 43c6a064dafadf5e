"""`triptych video ...`: synth, digits, extract-features, inspect, metrics, classical, train, eval, predict, models.

Thin argparse wrappers over library functions; nothing heavy is imported
until a verb runs, so `triptych --help` stays fast.
"""

from __future__ import annotations

import sys

from triptych.console import add_train_arguments, emit_json, report_training
from triptych.errors import UserError


def _reading_flags(p) -> None:
    p.add_argument("--classes", type=int, default=None,
                   help="number of classes (default: the files' generation's, 4716 for 2017, 3862 after)")
    p.add_argument("--generation", default="auto", choices=["auto", "2017", "2018", "2019-segments"],
                   help="which official files (default: read off the records)")
    p.add_argument("--no-verify", action="store_true", help="skip the CRC checks of the TFRecord framing")
    p.add_argument("--skip-bad-records", action="store_true", help="skip damaged records and report how many")


def register(subparsers) -> None:
    video = subparsers.add_parser("video", help="YouTube-8M video classification: data, models, GAP")
    verbs = video.add_subparsers(dest="verb", metavar="VERB", parser_class=type(video))
    verbs.required = True

    p = verbs.add_parser("synth", help="write synthetic TFRecords in the official YouTube-8M layout")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--level", choices=["frame", "video"], default="frame")
    p.add_argument("--videos", type=int, default=1000, help="training videos")
    p.add_argument("--valid-videos", type=int, default=None, help="validation videos (default videos/5)")
    p.add_argument("--generation", choices=["2017", "2018", "2019-segments"], default="2018",
                   help="2017: key video_id, 4716 classes; 2018: key id, 3862; 2019-segments: 2018 + rated segments")
    p.add_argument("--classes", type=int, default=None, help="default: the generation's (4716 or 3862)")
    p.add_argument("--min-frames", type=int, default=20)
    p.add_argument("--max-frames", type=int, default=60)
    p.add_argument("--shards", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gzip", action="store_true", help="write GZIP-compressed TFRecords")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_synth)

    p = verbs.add_parser("inspect", help="what TFRecord files hold")
    p.add_argument("files", nargs="+", metavar="FILE", help="files, directories or globs")
    p.add_argument("--limit", type=int, default=None, help="list at most N videos")
    _reading_flags(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_inspect)

    p = verbs.add_parser("metrics", help="GAP@20, Hit@1, PERR, mAP of saved predictions")
    p.add_argument("--predictions", required=True, help=".npz with `predictions` [N, C] and `labels` [N, C]")
    p.add_argument("--top-k", type=int, default=20)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_metrics)

    p = verbs.add_parser("digits", help="write multi-label 'digit videos' made of real handwritten digits")
    p.add_argument("--out", required=True, help="output directory (gets train/, validate/, digits.json)")
    p.add_argument("--videos", type=int, default=2000, help="training videos")
    p.add_argument("--valid-videos", type=int, default=None, help="validation videos (default videos/4)")
    p.add_argument("--min-frames", type=int, default=16)
    p.add_argument("--max-frames", type=int, default=32)
    p.add_argument("--max-digits", type=int, default=3, help="digits a video shows, at most (its labels)")
    p.add_argument("--size", type=int, default=8, help="frame side in pixels")
    p.add_argument("--shift", type=int, default=2, help="largest offset of a moving digit, pixels")
    p.add_argument("--noise", type=float, default=0.05, help="pixel noise (standard deviation, 0-1 scale)")
    p.add_argument("--format", choices=["npy", "png"], default="npy", help="one .npy a video, or a folder of PNGs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_digits)

    p = verbs.add_parser("extract-features", help="CNN features of video frames -> frame-level TFRecords")
    p.add_argument("--checkpoint", required=True, help="a vision checkpoint (or run directory: its best/)")
    p.add_argument("--frames", required=True, help="folder of videos: <id>.npy arrays or <id>/ folders of frames")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--pca", help="apply this saved pca.npz instead of fitting one (e.g. for validation videos)")
    p.add_argument("--dims", type=int, default=None, help="PCA components kept (default min(features, 1024))")
    p.add_argument("--whiten", action="store_true", help="scale every component to unit variance")
    p.add_argument("--pca-frames", type=int, default=10_000, help="frames sampled to fit the PCA")
    p.add_argument("--audio", choices=["zero", "none"], default="zero",
                   help="zero: a silent 128-byte audio list (official layout); none: no audio list")
    p.add_argument("--name", help="file prefix (default: the frames folder's name)")
    p.add_argument("--shards", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--convert", action="store_true", help="convert grey frames to RGB (or RGB to grey) to fit the model")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_extract)

    p = verbs.add_parser("classical", help="bag of words / VLAD / Fisher vectors of frames + a logistic or MoE head")
    p.add_argument("--train", required=True, help="frame-level TFRecords (files, directories, globs)")
    p.add_argument("--valid", required=True)
    p.add_argument("--encoding", choices=["bow", "vlad", "fv"], default="vlad")
    p.add_argument("--clusters", type=int, default=16, help="rgb codebook size (audio gets half)")
    p.add_argument("--head", choices=["logistic", "moe"], default="moe")
    p.add_argument("--classes", type=int, default=None, help="default: the files' generation's")
    p.add_argument("--fit-frames", type=int, default=20_000, help="frames sampled to fit the codebooks")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_classical)

    _register_model_verbs(verbs)


def _classical(args) -> int:
    from triptych.video import classical

    r = classical.run(args.train, args.valid, encoding=args.encoding, clusters=args.clusters, head=args.head,
                      classes=args.classes, fit_frames=args.fit_frames, epochs=args.epochs, lr=args.lr,
                      seed=args.seed)
    emit_json(r) if args.json else print(f"{args.encoding} K={args.clusters} + {args.head}: GAP {r['gap']:.4f}  "
                                         f"mAP {r['map']:.4f}  ({r['dims']} dims, {r['seconds']} s)")
    return 0


def _synth(args) -> int:
    from triptych.video.synth import SynthSpec, synthesize

    spec = SynthSpec(
        videos=args.videos,
        valid_videos=args.valid_videos,
        classes=args.classes,
        level=args.level,
        generation=args.generation,
        min_frames=args.min_frames,
        max_frames=args.max_frames,
        shards=args.shards,
        seed=args.seed,
        compress=args.gzip,
    )
    summary = synthesize(args.out, spec)
    if args.json:
        emit_json(summary)
    else:
        n = sum(len(v) for v in summary["files"].values())
        print(f"wrote {n} files to {args.out} ({spec.videos} train, {summary['spec']['valid_videos']} validate videos)")
    return 0


def _inspect(args) -> int:
    import numpy as np

    from triptych.video.io.tfrecord import RecordStats
    from triptych.video.io.yt8m import DEQUANT_LUT, FRAME_FEATURES, VIDEO_FEATURES, read_videos

    stats = RecordStats()
    videos, level, generation, count = [], None, None, 0
    for v in read_videos(
        args.files,
        num_classes=args.classes,
        verify=not args.no_verify,
        skip_bad=args.skip_bad_records,
        stats=stats,
        generation=args.generation,
    ):
        count += 1
        level, generation = level or v.level, generation or v.generation
        if args.limit is not None and len(videos) >= args.limit:
            continue
        if v.level == "frame":
            rgb = float(DEQUANT_LUT[v.rgb].mean(dtype=np.float64)) if v.frames else 0.0
            audio = float(DEQUANT_LUT[v.audio].mean(dtype=np.float64)) if v.frames else 0.0
        else:
            rgb, audio = float(v.rgb.mean(dtype=np.float64)), float(v.audio.mean(dtype=np.float64))
        videos.append(
            {"id": v.id, "labels": [int(x) for x in v.labels], "frames": v.frames, "rgb_mean": rgb, "audio_mean": audio}
        )
        if v.segments is not None:
            videos[-1]["segments"] = v.segments.as_json()
    features = dict(FRAME_FEATURES if level == "frame" else VIDEO_FEATURES) if level else {}
    out = {"records": count, "generation": generation, "level": level, "features": features, "videos": videos}
    if args.skip_bad_records:
        out["skipped"] = len(stats.skipped)
    if args.json:
        emit_json(out)
    else:
        print(f"{count} records, {generation or 'no'} generation, {level or 'no'}-level, features "
              + ", ".join(f"{k}[{d}]" for k, d in features.items()))
        for v in videos:
            labels = " ".join(map(str, v["labels"]))
            rated = f"  segments {len(v['segments'])}" if "segments" in v else ""
            print(f"  {v['id']:<12} frames {v['frames']:>3}  rgb {v['rgb_mean']:+.4f}  audio {v['audio_mean']:+.4f}  "
                  f"labels {labels}{rated}")
    if args.skip_bad_records:
        for line in stats.skipped:
            print(f"skipped: {line}", file=sys.stderr)
        print(f"skipped {len(stats.skipped)} bad records", file=sys.stderr)
    return 0


def _metrics(args) -> int:
    from triptych.video.metrics import evaluate, load_predictions

    predictions, labels = load_predictions(args.predictions)
    m = evaluate(predictions, labels, top_k=args.top_k)
    if args.json:
        emit_json(m)
    else:
        print(f"GAP@{args.top_k} {m['gap']:.4f}  Hit@1 {m['hit_at_one']:.4f}  PERR {m['perr']:.4f}  mAP {m['map']:.4f}")
    return 0


def _digits(args) -> int:
    from triptych.video.digits import DigitSpec, make_digit_videos

    spec = DigitSpec(videos=args.videos, valid_videos=args.valid_videos, min_frames=args.min_frames,
                     max_frames=args.max_frames, max_digits=args.max_digits, size=args.size, shift=args.shift,
                     noise=args.noise, format=args.format, seed=args.seed)
    summary = make_digit_videos(args.out, spec)
    if args.json:
        emit_json(summary)
    else:
        counts = ", ".join(f"{s['videos']} {name}" for name, s in summary["splits"].items())
        print(f"wrote digit videos to {args.out} ({counts}; {args.format})")
    return 0


def _extract(args) -> int:
    from triptych.video.features import extract_features

    s = extract_features(args.checkpoint, args.frames, args.out, pca=args.pca, dims=args.dims, whiten=args.whiten,
                         pca_frames=args.pca_frames, audio=args.audio, name=args.name, shards=args.shards,
                         batch_size=args.batch_size, seed=args.seed, device=args.device,
                         convert=True if args.convert else None)
    if args.json:
        emit_json(s)
    else:
        print(f"wrote {s['videos']} videos ({s['frames']} frames) to {args.out}: {s['model']} features "
              f"{s['feature_dim']} -> PCA {s['dims']}{' whitened' if s['whiten'] else ''} -> uint8; "
              f"PCA {'saved as' if s['pca_fitted'] else 'from'} {s['pca']}")
    return 0


def _register_model_verbs(verbs) -> None:
    """train, eval, predict, models: the verbs that need torch and a model."""
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



def cmd_train(args) -> int:
    from triptych.video.train import run_training

    s = run_training(args.config, args.overrides, out=args.out, resume=args.resume, seed=args.seed, device=args.device)
    return report_training(args, s)


def _scored(args):
    from triptych.video.predictor import ensemble_predict, load_ensemble, read_set

    if args.top_k < 1:
        raise UserError(f"--top-k {args.top_k}: must be >= 1")
    if args.segment_k < 1:
        raise UserError(f"--segment-k {args.segment_k}: must be >= 1")
    members = load_ensemble(args.checkpoint, args.device)
    from triptych.video import stream_scoring

    if stream_scoring.wanted(args, members):
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
    from triptych.video.predictor import save_predictions
    from triptych.video.metrics import evaluate

    members, videos, stats, probs, loss = _scored(args)
    if videos is None:  # streamed
        from triptych.video.stream_scoring import stream_eval

        result = stream_eval(args, members)
        emit_json(result) if args.json else print(" ".join(f"{k} {v:.4f}" for k, v in result.items()
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
        emit_json(result)
    else:
        print(f"GAP@{args.top_k} {result['gap']:.4f}  Hit@1 {result['hit_at_one']:.4f}  PERR {result['perr']:.4f}  "
              f"mAP {result['map']:.4f}  loss {loss:.4f}  ({len(videos)} videos, {len(members)} checkpoint(s))")
        if "segment_map" in result:
            print(f"2019 segments: mAP@{args.segment_k} {result['segment_map']:.4f}  "
                  f"({result['rated_segments']} rated segments)")
    return 0


def cmd_predict(args) -> int:
    from triptych.video.predictor import write_submission

    members, videos, stats, probs, _ = _scored(args)
    if videos is None:  # streamed
        from triptych.video.stream_scoring import stream_predict

        result = stream_predict(args, members)
        emit_json(result) if args.json else print(f"wrote {result['videos']} predictions to {args.out}")
        return 0
    if probs is None:
        from triptych.video.segment_ranking import write_segment_submission
        from triptych.video.segments import read_class_list

        from triptych.hardware import inference_autocast

        classes = read_class_list(args.segment_classes) if args.segment_classes else None
        with inference_autocast(args.device):  # as the streamed submission and VideoPredictor.predict
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
        emit_json(result)
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
        emit_json(rows)
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        print(f"{r['name'].ljust(width)}  {r['level']:<5}  {r['pooling']:<16}  {r['head']:<8}  {r['params']:>13,}")
    return 0
