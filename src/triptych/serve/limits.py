"""The server's limits, its error type, and the body-size guard.

Every limit is a field of `Limits` and a `triptych serve` flag. A request
that breaks one gets a 4xx (or, for overload, 503 with Retry-After) and
the JSON body `{"error": "<what was wrong>"}` — never a traceback, never a
half-read request left to poison the connection.

The body guard is plain ASGI middleware rather than a FastAPI dependency
because it must act before anything reads the body: a 50 MB upload is
refused from its Content-Length, or, when the client streams without one,
as soon as the running count passes the limit. The rest of an oversized
body is read and thrown away (bounded), so the client, which is still
writing, sees the 413 instead of a reset connection.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass

MB = 1024 * 1024
DRAIN_LIMIT = 256 * MB  # the most of an oversized body we read (and discard) before closing


@dataclass
class Limits:
    max_body_bytes: int = 8 * MB  # a whole request, JSON or upload
    max_document_chars: int = 20_000  # one document to summarize
    max_documents: int = 32  # documents in one /v1/summarize request
    max_beam: int = 8
    max_summary_len: int = 128  # tokens a summary may be asked to reach (max_len)
    max_top_k: int = 100
    max_videos: int = 64  # records in one uploaded TFRecord / JSON request
    queue_depth: int = 64  # requests waiting for the model before new ones get 503
    max_batch: int = 32  # documents decoded in one model call
    batch_wait_ms: float = 5.0  # how long the batcher waits for company after the first request
    timeout_s: float = 30.0  # waiting for the model (503 when passed)
    read_timeout_s: float = 10.0  # receiving the body (408 when passed)
    max_expanded_bytes: int = 128 * MB  # a gzip upload, decompressed (a 1 MB bomb expands to 1 GiB)

    def to_dict(self) -> dict:
        return asdict(self)


class ApiError(Exception):
    """An error answered as `{"error": message}` with `status` (and headers)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def error_body(message: str) -> bytes:
    return json.dumps({"error": message}, ensure_ascii=False).encode("utf-8")


async def _send_error(send, status: int, message: str, headers: dict[str, str] | None = None) -> None:
    body = error_body(message)
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """ASGI middleware: refuse bodies above `limits.max_body_bytes` (413) and
    bodies that arrive slower than `limits.read_timeout_s` a chunk (408).

    The body is read here in full (it is small: the limit bounds it) and
    replayed to the app, so every route sees a body already checked.
    """

    def __init__(self, app, limits: Limits):
        self.app, self.limits = app, limits

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.limits.max_body_bytes
        too_big = f"request body is larger than the server's limit of {limit:,} bytes (serve --max-body-mb)"
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                declared_n = int(declared)
            except ValueError:
                return await _send_error(send, 400, f"malformed Content-Length header {declared!r}")
            if declared_n > limit:
                # A client that asked `Expect: 100-continue` has not sent the body and never will.
                if headers.get(b"expect", b"").lower() != b"100-continue":
                    await self._drain(receive, 0)
                return await _send_error(send, 413, too_big)
        chunks, size = [], 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), self.limits.read_timeout_s)
            except asyncio.TimeoutError:
                return await _send_error(send, 408, f"request body not received within {self.limits.read_timeout_s:g} s "
                                                    "(serve --read-timeout)")
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                if message.get("more_body", False):
                    await self._drain(receive, size)
                return await _send_error(send, 413, too_big)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as the server would

        return await self.app(scope, replay, send)

    async def _drain(self, receive, seen: int) -> None:
        """Read and discard the rest of a refused body (up to DRAIN_LIMIT)."""
        while seen < DRAIN_LIMIT:
            try:
                message = await asyncio.wait_for(receive(), self.limits.read_timeout_s)
            except asyncio.TimeoutError:
                return
            if message["type"] != "http.request":
                return
            seen += len(message.get("body", b""))
            if not message.get("more_body", False):
                return


GZIP_MAGIC = b"\x1f\x8b"
INFLATE_STEP = 1 * MB  # the most one decompression step may produce


def write_upload(data: bytes, fh, limit: int, name: str) -> int:
    """Write an upload to `fh`, gunzipped when it is gzip, never expanding past `limit` bytes.

    Decompresses in steps of at most INFLATE_STEP output bytes, straight to
    the file, so memory holds one step whatever the archive claims; an upload
    that expands beyond `limit` is a 413 the moment it passes it (a 1 MB gzip
    that expands to 1 GiB grew the server by 1 GB before). Concatenated gzip
    members (what `cat a.gz b.gz` makes) are all read. Returns bytes written.
    """
    import zlib

    if data[:2] != GZIP_MAGIC:
        fh.write(data)
        return len(data)
    written, rest = 0, data
    while rest[:2] == GZIP_MAGIC:
        inflater = zlib.decompressobj(wbits=31)  # 31: a gzip header and trailer
        pending = rest
        try:
            while pending and not inflater.eof:
                chunk = inflater.decompress(pending, INFLATE_STEP)
                pending = inflater.unconsumed_tail
                written += len(chunk)
                if written > limit:
                    raise ApiError(413, f"{name}: expands to more than {limit:,} bytes when decompressed "
                                        "(the server's limit for gzip uploads)")
                fh.write(chunk)
        except zlib.error as e:
            raise ApiError(422, f"{name}: corrupt gzip data ({e})") from None
        if not inflater.eof:
            raise ApiError(422, f"{name}: truncated gzip data")
        rest = inflater.unused_data
    if rest.strip(b"\0"):  # trailing zeros are padding some tools add; anything else is damage
        raise ApiError(422, f"{name}: unexpected bytes after the gzip data")
    return written


def document_limits(schema: dict, limits: Limits) -> dict:
    """Write this server's limits into its OpenAPI schema (in place), so that
    clients and fuzzers see the same bounds the routes enforce."""
    comps = schema.get("components", {}).get("schemas", {})

    def bound(prop: dict, **kw) -> None:
        for option in prop.get("anyOf", [prop]):  # Optional fields are anyOf [{type}, {null}]
            if option.get("type") in ("integer", "array", "string"):
                option.update(kw)

    text = comps.get("SummarizeRequest", {}).get("properties", {})
    if text:
        bound(text["documents"], minItems=1, maxItems=limits.max_documents)
        bound(text["documents"]["items"], minLength=1, maxLength=limits.max_document_chars, pattern=r"\S")
        bound(text["beam"], maximum=limits.max_beam)
        bound(text["nbest"], maximum=limits.max_beam)
        bound(text["max_len"], maximum=limits.max_summary_len)
        bound(text["min_len"], maximum=limits.max_summary_len)
    videos = comps.get("VideoFeaturesRequest", {}).get("properties", {})
    if videos:
        bound(videos["videos"], minItems=1, maxItems=limits.max_videos)
    for path in schema.get("paths", {}).values():
        for op in path.values():
            for p in op.get("parameters", []):
                if p.get("name") == "top_k":
                    bound(p["schema"], maximum=limits.max_top_k)
    return schema
