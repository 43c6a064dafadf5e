"""`triptych serve`: load the named checkpoints and answer HTTP on host:port.

Every limit of `triptych.serve.limits.Limits` is a flag here. Checkpoints
are loaded before the socket opens, so a wrong directory is one line and
exit status 2, not a server that answers 500 later.
"""

from __future__ import annotations

import sys

from triptych.errors import UserError, require_extra

_MB = 1024 * 1024


def register(sub) -> None:
    p = sub.add_parser("serve", help="HTTP API and web page for text, vision and video checkpoints")
    p.add_argument("--text", metavar="DIR", help="a text checkpoint (e.g. runs/demo/text/best)")
    p.add_argument("--vision", metavar="DIR", help="a vision checkpoint")
    p.add_argument("--video", metavar="DIR", help="a video checkpoint")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, help="torch threads for the model worker (default: torch's)")
    g = p.add_argument_group("limits (each breach is a 4xx JSON error; overload is 503 with Retry-After)")
    g.add_argument("--max-body-mb", type=float, default=8.0, help="largest request body (default 8)")
    g.add_argument("--max-document-chars", type=int, default=20_000)
    g.add_argument("--max-documents", type=int, default=32, help="documents in one summarize request")
    g.add_argument("--max-beam", type=int, default=8)
    g.add_argument("--max-summary-len", type=int, default=128, help="largest max_len a request may ask for, in tokens")
    g.add_argument("--max-top-k", type=int, default=100)
    g.add_argument("--max-videos", type=int, default=64, help="videos in one TFRecord upload or JSON request")
    g.add_argument("--queue-depth", type=int, default=64, help="requests waiting for the model before 503")
    g.add_argument("--timeout", type=float, default=30.0, help="seconds a request may wait for the model (then 503)")
    g.add_argument("--read-timeout", type=float, default=10.0, help="seconds a request body may stall (then 408)")
    b = p.add_argument_group("dynamic batching of summarize requests")
    b.add_argument("--max-batch", type=int, default=32, help="documents decoded in one model call")
    b.add_argument("--batch-wait-ms", type=float, default=5.0, help="how long to wait for more requests to batch")
    b.add_argument("--no-batching", action="store_true", help="one request a model call (the baseline)")
    p.set_defaults(func=cmd_serve)


def limits_from_args(args):
    from triptych.serve.limits import Limits

    checks = {"--max-body-mb": args.max_body_mb, "--max-document-chars": args.max_document_chars,
              "--max-documents": args.max_documents, "--max-beam": args.max_beam,
              "--max-summary-len": args.max_summary_len, "--max-top-k": args.max_top_k,
              "--max-videos": args.max_videos, "--queue-depth": args.queue_depth, "--timeout": args.timeout,
              "--read-timeout": args.read_timeout, "--max-batch": args.max_batch}
    for flag, value in checks.items():
        if not value > 0:
            raise UserError(f"{flag} {value}: must be > 0")
    if args.batch_wait_ms < 0:
        raise UserError(f"--batch-wait-ms {args.batch_wait_ms}: must be >= 0")
    return Limits(
        max_body_bytes=int(args.max_body_mb * _MB), max_document_chars=args.max_document_chars,
        max_documents=args.max_documents, max_beam=args.max_beam, max_summary_len=args.max_summary_len,
        max_top_k=args.max_top_k, max_videos=args.max_videos, queue_depth=args.queue_depth,
        max_batch=1 if args.no_batching else args.max_batch, batch_wait_ms=0.0 if args.no_batching else args.batch_wait_ms,
        timeout_s=args.timeout, read_timeout_s=args.read_timeout,
    )


def cmd_serve(args) -> int:
    if not (args.text or args.vision or args.video):
        raise UserError("serve: give at least one of --text DIR, --vision DIR, --video DIR")
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port {args.port}: not a TCP port")
    limits = limits_from_args(args)
    require_extra("serve", "fastapi", "uvicorn", "multipart")
    import torch
    import uvicorn

    from triptych.serve.app import create_app
    from triptych.serve.models import Models

    if args.threads:
        torch.set_num_threads(args.threads)
    sock = bind(args.host, args.port)  # before loading: a taken port fails fast
    models = Models.load(args.text, args.vision, args.video, device=args.device, max_videos=limits.max_videos)
    app = create_app(models, limits)
    print(f"triptych: serving {', '.join(models.loaded())} on http://{args.host}:{sock.getsockname()[1]}/ "
          f"(API docs at /docs; batching {'off' if limits.max_batch == 1 else f'up to {limits.max_batch}'})",
          file=sys.stderr)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5))
    server.run(sockets=[sock])
    return 0


def bind(host: str, port: int):
    """A listening TCP socket (port 0: any free one); a taken port is a UserError, not a traceback."""
    import socket

    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as e:
        raise UserError(f"cannot listen on {host}:{port} ({e.strerror or e})") from None
    return sock
