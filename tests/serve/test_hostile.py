"""Hostile requests (issue 18): text that is not valid Unicode and compression
bombs get a 4xx, never a 5xx, and a refused bomb does not leave the server bigger."""

import gzip
import json
import zlib

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from triptych.engine.memory import current_rss_mb

# Text with lone surrogates mixed in: what JSON's "\ud800" escapes decode to.
SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
TEXTS = st.lists(st.one_of(st.text(min_size=1, max_size=20), SURROGATES), min_size=1, max_size=6).map("".join)


def test_invalid_unicode_is_a_422_never_a_500(start_server):
    server = start_server(max_summary_len=6, max_beam=2, batch_wait_ms=0)
    seen = []

    @given(docs=st.lists(TEXTS, min_size=1, max_size=3))
    @settings(max_examples=40, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    def call(docs):
        body = json.dumps({"documents": docs, "max_len": 4, "beam": 1}, ensure_ascii=True).encode()  # \udXXX escapes
        reply = httpx.post(server.url + "/v1/summarize", content=body, headers={"content-type": "application/json"},
                           timeout=60)
        seen.append(reply.status_code)
        assert reply.status_code < 500, reply.text
        received = json.loads(body)["documents"]  # an escaped high + low pair is one valid character again
        if any(0xD800 <= ord(c) <= 0xDFFF for d in received for c in d) and all(d.strip() for d in received):
            assert reply.status_code == 422 and "invalid Unicode" in reply.json()["error"], reply.text

    call()
    assert len(seen) == 40 and 422 in seen


def _bomb(expanded: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
    zeros = bytes(1 << 20)
    return b"".join([*(packer.compress(zeros) for _ in range(expanded >> 20)), packer.flush()])


def test_a_gzip_bomb_upload_is_413_and_does_not_grow_the_server(start_server):
    server = start_server(max_expanded_bytes=16 << 20)
    bomb = _bomb(256 << 20)  # 256 MiB of zeros in about 250 KB
    assert len(bomb) < 1 << 20
    before = current_rss_mb()
    for _ in range(3):
        reply = httpx.post(server.url + "/v1/classify/video", files={"file": ("bomb.tfrecord.gz", bomb)}, timeout=60)
        assert reply.status_code == 413 and "expands to more than" in reply.json()["error"], reply.text
    grown = current_rss_mb() - before
    assert grown < 64, grown  # was +1 GB for a 1 GiB bomb
    garbage = gzip.compress(b"not a tfrecord at all")[:-6]  # cut: a truncated gzip
    reply = httpx.post(server.url + "/v1/classify/video", files={"file": ("cut.gz", garbage)}, timeout=60)
    assert reply.status_code == 422 and "gzip" in reply.json()["error"]


def test_a_compressed_json_body_is_a_4xx(server):
    body = gzip.compress(json.dumps({"documents": ["A small tool."]}).encode())
    reply = httpx.post(server.url + "/v1/summarize", content=body,
                       headers={"content-type": "application/json", "content-encoding": "gzip"}, timeout=60)
    assert 400 <= reply.status_code < 500
