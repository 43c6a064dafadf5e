"""Scoring checkpoints on streamed shards: `video eval` and `video predict` on
sets too big to hold. Metrics and the 2017/2018 submission keep O(videos x k),
the 2019 segment submission O(classes x K) (segment_ranking.py).

Chosen by `--stream` (on/off) or, by default, by the data's size against
the first checkpoint's data.stream_above_mb, as training chooses. These
functions take the verbs' parsed options (cli.py builds the parsers).
"""

from __future__ import annotations

import sys

from triptych.errors import UserError


def wanted(args, members) -> bool:
    from triptych.video.streaming import size_of

    if args.stream != "auto":
        return args.stream == "on"
    return size_of(args.data) > members[0].cfg.data.stream_above_mb * (1 << 20)


def _setup(args, members):
    """(config with the command's options, shards, their counts, generation, stats)."""
    import copy

    from triptych.video.streaming import scan
    from triptych.video.io.tfrecord import RecordStats

    cfg = copy.deepcopy(members[0].cfg)
    cfg.top_k, cfg.data.verify, cfg.data.skip_bad_records = args.top_k, not args.no_verify, args.skip_bad_records
    files, counts, generation = scan(args.data, cfg.data.verify)
    return cfg, files, counts, generation, RecordStats()


def _skipped(args, stats, result: dict) -> None:
    if args.skip_bad_records:
        result["skipped"] = len(stats.skipped)
        print(f"skipped {len(stats.skipped)} bad records", file=sys.stderr)


def _run(args, members, each=None) -> dict:
    from triptych.hardware import inference_autocast
    from triptych.video.stream_eval import evaluate_stream

    cfg, files, counts, generation, stats = _setup(args, members)
    with inference_autocast(args.device):  # as VideoPredictor.predict: bf16 products where the CPU has native bf16
        result = evaluate_stream([m.model for m in members], files, counts, cfg, args.device, stats,
                                 segment_k=args.segment_k, each=each)
    result["generation"] = generation
    _skipped(args, stats, result)
    return result


def stream_eval(args, members) -> dict:
    if args.save_predictions:
        raise UserError("--save-predictions keeps every video's scores for every class: "
                        "not with a streamed evaluation (--stream off holds the set in memory)")
    result = _run(args, members)
    result["loss"] = result.pop("valid_loss")
    result["checkpoints"] = [str(m.directory) for m in members]
    return result


def stream_predict(args, members) -> dict:
    """The 2017/2018 submission, written a batch at a time (2019 segment-rated data: the segment one)."""
    from triptych.files import atomic_path
    from triptych.video.metrics import topk_classes

    from triptych.video.streaming import scan

    generation = scan(args.data, not args.no_verify)[2]
    if args.submission == "segments" or (args.submission == "auto" and generation == "2019-segments"):
        return stream_segment_submission(args, members)
    with atomic_path(args.out) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            fh.write("VideoId,LabelConfidencePairs\n")

            def each(ids, probs):
                idx, vals = topk_classes(probs, args.top_k)
                for vid, cls, conf in zip(ids, idx, vals):
                    fh.write(vid + "," + " ".join("%i %g" % (c, v) for c, v in zip(cls, conf)) + "\n")

            result = _run(args, members, each)
    return {"out": str(args.out), "submission": "videos", "videos": result["videos"],
            "checkpoints": [str(m.directory) for m in members]}


def stream_segment_submission(args, members) -> dict:
    """The 2019 submission, streamed: per class only its --segment-k best
    segments are ever held (segment_ranking.py), O(classes x K) memory."""
    from triptych.hardware import inference_autocast
    from triptych.video.segment_ranking import ClassTopSegments, write_ranking
    from triptych.video.segments import read_class_list
    from triptych.video.stream_eval import rank_stream_segments

    classes = read_class_list(args.segment_classes) if args.segment_classes else None
    cfg, files, counts, _, stats = _setup(args, members)
    if cfg.data.level != "frame":
        raise UserError(f"{members[0].directory}: a {cfg.data.level}-level model cannot score 5-frame segments "
                        "(the 2019 submission needs a frame-level one)")
    ranking = ClassTopSegments(cfg.data.num_classes, args.segment_k, args.top_k, classes)
    with inference_autocast(args.device):
        videos = rank_stream_segments([m.model for m in members], files, counts, cfg, args.device, stats, ranking)
    if not ranking.segments:
        raise UserError("no frames to score: every video is empty")
    result = {"out": str(args.out), "submission": "segments", "videos": videos,
              "classes": write_ranking(args.out, ranking), "segments": ranking.segments,
              "checkpoints": [str(m.directory) for m in members]}
    _skipped(args, stats, result)
    return result
