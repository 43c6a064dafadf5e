"""Every kind of bad request gets one JSON error with the right 4xx, and the server keeps serving."""

import socket

import httpx
import numpy as np
import pytest

from .test_api import png_bytes

GOOD = {"documents": ["A small library for reading configuration files."]}


def still_serving(server) -> None:
    reply = httpx.post(server.url + "/v1/summarize", json=GOOD, timeout=30)
    assert reply.status_code == 200 and len(reply.json()["summaries"]) == 1


def error(reply, status: int, *words: str) -> str:
    assert reply.status_code == status, (reply.status_code, reply.text)
    assert reply.headers["content-type"].startswith("application/json")
    message = reply.json()["error"]
    for w in words:
        assert w in message, message
    return message


def post(server, path, **kw):
    return httpx.post(server.url + path, timeout=60, **kw)


@pytest.mark.parametrize("body, status, words", [
    (b'{"documents": ["x"', 400, ["malformed JSON"]),
    (b"\xff\xfe not even text", 400, ["malformed JSON"]),
    (b"", 422, ["body is empty"]),
    (b"{}", 422, ["documents", "required"]),
    (b'["a list"]', 422, ["valid dictionary"]),
    (b'{"documents": []}', 422, ["at least one document"]),
    (b'{"documents": ["fine", "   "]}', 422, ["documents[1]: empty document"]),
    (b'{"documents": [42]}', 422, ["documents.0", "valid string"]),
    (b'{"documents": ["x"], "beam": 0}', 422, ["beam"]),
    (b'{"documents": ["x"], "beam": 9}', 422, ["limit of 8", "--max-beam"]),
    (b'{"documents": ["x"], "max_len": 1000}', 422, ["max_len", "--max-summary-len"]),
    (b'{"documents": ["x"], "min_len": 9, "max_len": 4}', 422, ["min_len"]),
    (b'{"documents": ["x"], "length_penalty": NaN}', 422, ["length_penalty"]),
    (b'{"documents": ["x"], "wings": 2}', 422, ["wings", "not permitted"]),
    (b'{"documents": ["x"], "checkpoint": "/tmp/other"}', 422, ["checkpoint", "not permitted"]),  # no model path from a request
])
def test_bad_summarize_bodies(server, body, status, words):
    error(post(server, "/v1/summarize", content=body, headers={"content-type": "application/json"}), status, *words)
    still_serving(server)


def test_document_and_request_size_limits(server):
    error(post(server, "/v1/summarize", json={"documents": ["x" * 20_001]}), 422, "20,001 characters", "--max-document-chars")
    error(post(server, "/v1/summarize", json={"documents": ["x"] * 33}), 422, "33 documents", "--max-documents")
    still_serving(server)


@pytest.mark.parametrize("path", ["/v1/summarize", "/v1/classify/image", "/v1/classify/video"])
def test_wrong_content_type_is_415(server, path):
    error(post(server, path, content=b"hello", headers={"content-type": "text/plain"}), 415, "Content-Type", "text/plain")
    still_serving(server)


def test_image_upload_sent_as_json_is_415(server):
    error(post(server, "/v1/classify/image", json={"file": "x.png"}), 415, "multipart/form-data")
    error(post(server, "/v1/summarize", data={"documents": "x"}), 415, "application/json")  # a form, not JSON


def read_http_reply(sock) -> str:
    """Headers and the whole body: the server may write them in separate
    packets, so one recv() can return the headers alone."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            return data.decode()
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            break
        body += chunk
    return (head + b"\r\n\r\n" + body).decode()


def test_fifty_megabyte_body_is_413_with_and_without_content_length(server):
    big = b"x" * (50 * 1024 * 1024)
    error(post(server, "/v1/summarize", content=big, headers={"content-type": "application/json"}), 413, "8,388,608 bytes")

    def stream():  # chunked transfer encoding: no Content-Length to refuse up front
        for i in range(0, len(big), 1 << 20):
            yield big[i : i + (1 << 20)]

    error(post(server, "/v1/classify/image", content=stream(), headers={"content-type": "multipart/form-data; boundary=b"}),
          413, "--max-body-mb")
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:  # as curl sends a large upload
        s.sendall(b"POST /v1/summarize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 52428800\r\nExpect: 100-continue\r\n\r\n")
        reply = read_http_reply(s)
    assert reply.startswith("HTTP/1.1 413") and "8,388,608 bytes" in reply  # refused before any byte of the body
    still_serving(server)


def test_corrupt_images(server):
    good = png_bytes(np.random.default_rng(1).integers(0, 255, (32, 32)))  # noise: a PNG of many bytes
    error(post(server, "/v1/classify/image", files={"file": ("half.png", good[: len(good) // 2])}), 422, "half.png", "truncated")
    error(post(server, "/v1/classify/image", files={"file": ("notes.txt", b"not an image at all")}), 422, "notes.txt", "not an image")
    error(post(server, "/v1/classify/image", files={"file": ("empty.png", b"")}), 422, "empty image upload")
    error(post(server, "/v1/classify/image", files={"other": ("a.png", good)}), 422, "file", "required")
    error(post(server, "/v1/classify/image?top_k=0", files={"file": ("a.png", good)}), 422, "top_k")
    error(post(server, "/v1/classify/image?top_k=1000", files={"file": ("a.png", good)}), 422, "top_k", "limit")
    error(post(server, "/v1/classify/image", content=b"--b\r\nbroken", headers={"content-type": "multipart/form-data; boundary=b"}),
          422, "file")  # python-multipart reads what it can: no file part
    error(post(server, "/v1/classify/image", content=b"--b\r\n", headers={"content-type": "multipart/form-data"}), 400, "boundary")
    still_serving(server)


def test_bad_tfrecords(server, checkpoints):
    data = (checkpoints["synth"] / "validate0000.tfrecord").read_bytes()
    error(post(server, "/v1/classify/video", files={"file": ("cut.tfrecord", data[:3000])}), 422, "cut.tfrecord", "truncated")
    flipped = bytearray(data)
    flipped[200] ^= 0xFF
    error(post(server, "/v1/classify/video", files={"file": ("flip.tfrecord", bytes(flipped))}), 422, "flip.tfrecord", "record 0")
    error(post(server, "/v1/classify/video", files={"file": ("e.tfrecord", b"")}), 422, "empty TFRecord upload")
    error(post(server, "/v1/classify/video", files={"file": ("j.tfrecord", b"{json}")}), 422, "j.tfrecord")
    still_serving(server)


@pytest.mark.parametrize("videos, words", [
    ([], ["at least one video"]),
    ([{"rgb": [[0.0] * 1024]}], ["videos[0]", "'audio'"]),
    ([{"rgb": [[0.0] * 1000], "audio": [[0.0] * 128]}], ["videos[0].rgb", "(1, 1000)"]),
    ([{"rgb": [[0.0] * 1024, [0.0] * 3], "audio": [[0.0] * 128] * 2}], ["videos[0].rgb"]),
    ([{"rgb": [[0.0] * 1024], "audio": [[0.0] * 128] * 2}], ["1 frames", "2"]),
    ([{"mean_rgb": [0.0] * 1024, "mean_audio": [0.0] * 128}], ["frame-level"]),
    ([{"rgb": [[1e400] * 1024], "audio": [[0.0] * 128]}], ["finite"]),
])
def test_bad_video_features(server, videos, words):
    body = ('{"videos": %s}' % __import__("json").dumps(videos)).replace("Infinity", "1e400").encode()
    error(post(server, "/v1/classify/video", content=body, headers={"content-type": "application/json"}), 422, *words)
    still_serving(server)


def test_unknown_path_and_method_are_json(server):
    error(httpx.get(server.url + "/v1/nothing"), 404, "Not Found")
    error(httpx.get(server.url + "/v1/summarize"), 405, "Method Not Allowed")


def test_a_stalled_body_is_408(start_server):
    slow = start_server(read_timeout_s=0.5)
    host, port = slow.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"POST /v1/summarize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100\r\n\r\n{\"documents\"")
        reply = read_http_reply(s)
    assert reply.startswith("HTTP/1.1 408") and "--read-timeout" in reply
    still_serving(slow)
