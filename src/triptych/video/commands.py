"""`triptych video ...`: synth, digits, extract-features, inspect, metrics (train, eval, predict: run_commands).

Thin argparse wrappers over library functions; nothing heavy is imported
until a verb runs, so `triptych --help` stays fast.
"""

from __future__ import annotations

import sys


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

    from triptych.video import classical_cmd, run_commands

    run_commands.register(verbs)
    classical_cmd.register(verbs)



def _synth(args) -> int:
    from triptych.cli import emit_json
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

    from triptych.cli import emit_json
    from triptych.video.tfrecord import RecordStats
    from triptych.video.yt8m import DEQUANT_LUT, FRAME_FEATURES, VIDEO_FEATURES, read_videos

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
    from triptych.cli import emit_json
    from triptych.video.metrics import evaluate, load_predictions

    predictions, labels = load_predictions(args.predictions)
    m = evaluate(predictions, labels, top_k=args.top_k)
    if args.json:
        emit_json(m)
    else:
        print(f"GAP@{args.top_k} {m['gap']:.4f}  Hit@1 {m['hit_at_one']:.4f}  PERR {m['perr']:.4f}  mAP {m['map']:.4f}")
    return 0


def _digits(args) -> int:
    from triptych.cli import emit_json
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
    from triptych.cli import emit_json
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
