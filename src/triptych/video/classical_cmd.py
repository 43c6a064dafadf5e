"""`triptych video classical`: a classical encoding + head, trained and scored."""

from __future__ import annotations

import time


def register(verbs) -> None:
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
    p.set_defaults(func=cmd_classical)


def cmd_classical(args) -> int:
    from triptych.console import emit_json
    from triptych.errors import UserError
    from triptych.video import classical
    from triptych.video.io.yt8m import VideoSet, read_videos

    if args.epochs < 1 or args.lr <= 0 or args.fit_frames < 2:
        raise UserError("--epochs must be >= 1, --lr > 0, --fit-frames >= 2")
    t0 = time.perf_counter()
    train = VideoSet(read_videos(args.train, num_classes=args.classes), args.classes)
    valid = VideoSet(read_videos(args.valid, num_classes=train.num_classes), train.num_classes)
    books = classical.fit(train, args.encoding, args.clusters, args.fit_frames, args.seed)
    x_tr, x_va = classical.encode(train, books), classical.encode(valid, books)
    t1 = time.perf_counter()
    y_tr, y_va = train.multi_hot(range(len(train))), valid.multi_hot(range(len(valid)))
    scores = classical.train_head(x_tr, y_tr, x_va, y_va, args.head, args.epochs, args.lr, seed=args.seed)
    result = {**scores, "encoding": args.encoding, "clusters": args.clusters, "head": args.head,
              "dims": int(x_tr.shape[1]), "videos": len(train), "encode_seconds": round(t1 - t0, 1),
              "seconds": round(time.perf_counter() - t0, 1)}
    if args.json:
        emit_json(result)
    else:
        print(f"{args.encoding} K={args.clusters} + {args.head}: GAP {scores['gap']:.4f}  mAP {scores['map']:.4f}  "
              f"({result['dims']} dims, {result['seconds']} s)")
    return 0
