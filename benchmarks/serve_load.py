"""Load on `triptych serve`: 32 concurrent clients on loopback against /v1/summarize, batching on vs off.

The server is the real command (`triptych serve --text CHECKPOINT`) in a
child process; the clients are coroutines of this process, each sending one
real document (the Debian descriptions' test split, in turn) and waiting for
its answer before sending the next — a closed loop, the way `wrk` or `hey`
load a server. The same clients, documents and seconds run against the
server twice: with dynamic batching (the default flags) and with
`--no-batching` (one request a model call). Every answer is counted by
status; the server's own /v1/models reports how many model calls it made.

Usage: python benchmarks/serve_load.py [--checkpoint runs/demo/text/best] [--clients 32] [--seconds 60]
(`triptych demo --only text` makes the default checkpoint.) Prints a human
line per mode on stderr and one JSON line last on stdout, with "ratio" =
requests/s with batching over requests/s without.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

from triptych.hardware import describe

ROOT = Path(__file__).resolve().parents[1]


def documents(n: int = 2000) -> list[str]:
    out = []
    with gzip.open(ROOT / "data/debian-descriptions/test.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            out.append(json.loads(line)["document"])
            if len(out) == n:
                break
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(checkpoint: str, port: int, extra: list[str]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "triptych.cli", "serve", "--text", checkpoint, "--port", str(port), *extra]
    threads = os.environ.get("TRIPTYCH_THREADS") or os.environ.get("OMP_NUM_THREADS")
    if threads:
        cmd += ["--threads", threads]
    proc = subprocess.Popen(cmd, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"serve_load: the server exited with status {proc.returncode}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("serve_load: the server did not start within 120 s")


async def load(url: str, docs: list[str], clients: int, seconds: float) -> dict:
    """`clients` closed-loop clients for `seconds`: latencies of the answers and counts by status."""
    latencies, statuses = [], {}
    next_doc = 0
    stop_at = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def one_client():
            nonlocal next_doc
            while time.perf_counter() < stop_at:
                doc = docs[next_doc % len(docs)]
                next_doc += 1
                start = time.perf_counter()
                try:
                    r = await client.post("/v1/summarize", json={"documents": [doc]})
                    code = r.status_code
                except httpx.HTTPError as e:
                    code = type(e).__name__
                statuses[code] = statuses.get(code, 0) + 1
                if code == 200:
                    latencies.append(time.perf_counter() - start)

        before = (await client.get("/v1/models")).json()["batching"]
        began = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        elapsed = time.perf_counter() - began
        after = (await client.get("/v1/models")).json()["batching"]
    calls, docs_run = after["model_calls"] - before["model_calls"], after["documents"] - before["documents"]
    lat = np.array(latencies) * 1000
    ok = statuses.get(200, 0)
    return {
        "requests": sum(statuses.values()), "ok": ok, "seconds": round(elapsed, 2),
        "requests_per_s": round(ok / elapsed, 2),
        "p50_ms": round(float(np.percentile(lat, 50)), 1) if ok else None,
        "p99_ms": round(float(np.percentile(lat, 99)), 1) if ok else None,
        "5xx": sum(n for c, n in statuses.items() if isinstance(c, int) and c >= 500),
        "statuses": {str(c): n for c, n in sorted(statuses.items(), key=str)},
        "model_calls": calls, "mean_batch": round(docs_run / max(1, calls), 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default="runs/demo/text/best")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds of load before each measured run")
    args = ap.parse_args()
    if not (ROOT / args.checkpoint / "meta.json").is_file() and not (Path(args.checkpoint) / "meta.json").is_file():
        raise SystemExit(f"serve_load: {args.checkpoint}: no text checkpoint (run `triptych demo --only text` or give --checkpoint)")
    docs = documents()
    results = {}
    for mode, extra in (("batching", []), ("no_batching", ["--no-batching"])):
        port = free_port()
        server = start_server(args.checkpoint, port, extra)
        try:
            url = f"http://127.0.0.1:{port}"
            asyncio.run(load(url, docs, args.clients, args.warmup))
            r = asyncio.run(load(url, docs, args.clients, args.seconds))
        finally:
            server.terminate()
            server.wait(30)
        results[mode] = r
        print(f"{mode:12s} {r['requests_per_s']:8.2f} req/s  p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms  "
              f"5xx {r['5xx']}  statuses {r['statuses']}  mean batch {r['mean_batch']}", file=sys.stderr)
    ratio = results["batching"]["requests_per_s"] / max(1e-9, results["no_batching"]["requests_per_s"])
    print(json.dumps({"machine": describe(), "benchmark": "serve_load", "clients": args.clients, "seconds": args.seconds,
                      "checkpoint": args.checkpoint, "threads": os.environ.get("TRIPTYCH_THREADS") or os.environ.get("OMP_NUM_THREADS"),
                      **results, "ratio": round(ratio, 2)}))


if __name__ == "__main__":
    main()
