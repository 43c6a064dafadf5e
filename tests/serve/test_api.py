"""Every endpoint, over real sockets, against tiny checkpoints; answers checked against the library."""

import io

import httpx
import numpy as np
import pytest

DOCS = ["A library to parse JSON files quickly and safely, with a streaming API.",
        "Command-line tool that converts images between formats."]


def png_bytes(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_health_models_and_openapi(server, checkpoints):
    health = httpx.get(server.url + "/healthz").json()
    assert health["status"] == "ok" and health["domains"] == ["text", "vision", "video"]
    models = httpx.get(server.url + "/v1/models").json()
    assert models["text"]["checkpoint"] == str(checkpoints["text"]) and models["text"]["model"] == "transformer"
    assert models["text"]["config"]["decode"]["beam"] == 2 and "rougeL" in models["text"]["metrics"]
    assert models["vision"]["classes"] == [str(d) for d in range(10)]
    assert models["video"]["level"] == "frame" and models["video"]["num_classes"] == 12
    assert models["limits"]["max_beam"] == 8 and models["batching"]["model_calls"] >= 0
    schema = httpx.get(server.url + "/openapi.json").json()
    assert {"/v1/summarize", "/v1/classify/image", "/v1/classify/video", "/healthz", "/v1/models"} <= set(schema["paths"])
    video_body = schema["paths"]["/v1/classify/video"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "application/json"} == set(video_body)
    assert "VideoFeatures" in schema["components"]["schemas"]
    request = schema["components"]["schemas"]["SummarizeRequest"]["properties"]  # the server's limits, as bounds
    assert request["documents"]["maxItems"] == 32 and request["documents"]["items"]["maxLength"] == 20_000
    assert request["beam"]["anyOf"][0]["maximum"] == 8
    docs = httpx.get(server.url + "/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_page_and_its_assets_are_served(server):
    page = httpx.get(server.url + "/")
    assert page.status_code == 200 and 'id="summarize"' in page.text
    for asset in ("/", "/static/app.js", "/static/style.css"):
        reply = httpx.get(server.url + asset)
        assert reply.status_code == 200 and "://" not in reply.text  # nothing from a CDN: works offline


def test_summaries_equal_the_library_decoding(server, models):
    from triptych.text.predictor import Summarizer

    reply = httpx.post(server.url + "/v1/summarize", json={"documents": DOCS, "beam": 3})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["truncated"] == [False, False] and "attention" not in body
    expected = Summarizer(models.text.directory).summarize(DOCS, beam=3)
    assert body["summaries"] == expected
    greedy = httpx.post(server.url + "/v1/summarize", json={"documents": DOCS[:1], "beam": 1}).json()
    assert greedy["summaries"] == Summarizer(models.text.directory).summarize(DOCS[:1], beam=1)


def test_summaries_sample_with_top_k_top_p_and_a_seed(server, models):
    """The request's top_k / top_p / seed map onto DecodeConfig like the other fields."""
    from triptych.text.predictor import Summarizer

    one = httpx.post(server.url + "/v1/summarize", json={"documents": DOCS, "top_k": 1, "seed": 0}).json()
    assert one["summaries"] == Summarizer(models.text.directory).summarize(DOCS, beam=1)  # top-1 sampling is greedy
    request = {"documents": DOCS, "top_p": 0.9, "top_k": 30, "seed": 11}
    assert httpx.post(server.url + "/v1/summarize", json=request).json() == httpx.post(server.url + "/v1/summarize", json=request).json()
    for bad, word in (({"top_p": 0}, "top_p"), ({"top_k": 5, "nbest": 2, "beam": 2}, "sampling draws one candidate"), ({"seed": 1}, "seed")):
        reply = httpx.post(server.url + "/v1/summarize", json={"documents": DOCS, **bad})
        assert reply.status_code == 422 and word in reply.json()["error"], reply.text


def test_attention_matrix_has_one_row_per_summary_token(server):
    body = httpx.post(server.url + "/v1/summarize", json={"documents": DOCS, "attention": True}).json()
    for summary, att in zip(body["summaries"], body["attention"]):
        w = np.array(att["weights"])
        assert w.shape == (len(att["summary"]), len(att["source"])) and len(att["summary"]) >= 3  # min_len 3
        np.testing.assert_allclose(w.sum(1), 1.0, atol=2e-3)  # softmax over the source, rounded to 4 places
        assert "".join(att["summary"]).strip() == summary


def test_long_document_is_truncated_and_flagged(server, models):
    limit = models.text.summarizer.cfg.data.max_source_len
    body = httpx.post(server.url + "/v1/summarize", json={"documents": ["word " * (limit + 50), "short"]}).json()
    assert body["truncated"] == [True, False]


def test_classify_image_top5(server, models):
    rng = np.random.default_rng(0)
    digit = rng.integers(0, 255, (8, 8))
    reply = httpx.post(server.url + "/v1/classify/image", files={"file": ("d.png", png_bytes(digit), "image/png")})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    probs = [t["prob"] for t in body["top"]]
    assert body["filename"] == "d.png" and len(body["top"]) == 5 and probs == sorted(probs, reverse=True)
    # the same answer as the library on the same file
    clf = models.vision.classifier
    import tempfile, pathlib

    with tempfile.TemporaryDirectory() as d:
        path = pathlib.Path(d) / "d.png"
        path.write_bytes(png_bytes(digit))
        expected = clf.predict_files([path], k=5)[0]["top"]
    assert [t["label"] for t in body["top"]] == [t["label"] for t in expected]
    assert probs == pytest.approx([t["prob"] for t in expected], abs=1e-6)
    rgb = httpx.post(server.url + "/v1/classify/image?top_k=2",
                     files={"file": ("c.jpg", png_bytes(rng.integers(0, 255, (20, 30, 3))), "image/jpeg")})
    assert rgb.status_code == 200 and len(rgb.json()["top"]) == 2  # colour converted for a grey model


def test_classify_video_tfrecord_and_json(server, checkpoints, models):
    from triptych.video.predictor import read_set
    from triptych.video.io.yt8m import dequantize

    path = checkpoints["synth"] / "validate0000.tfrecord"
    reply = httpx.post(server.url + "/v1/classify/video?top_k=3", files={"file": (path.name, path.read_bytes())})
    assert reply.status_code == 200, reply.text
    videos = reply.json()["videos"]
    member = models.video.checkpoint
    expected_set, _ = read_set([member], [str(path)])
    probs, _ = member.predict(expected_set)
    assert [v["id"] for v in videos] == expected_set.ids
    for v, p in zip(videos, probs):
        assert [t["index"] for t in v["top"]] == list(np.argsort(-p, kind="stable")[:3])
        assert [t["prob"] for t in v["top"]] == pytest.approx(sorted(p, reverse=True)[:3], abs=1e-6)
    # the first video again, as dequantised JSON features: the same labels
    i0 = slice(expected_set.offsets[0], expected_set.offsets[1])
    features = {"id": "again", "rgb": dequantize(expected_set.rgb[i0]).tolist(), "audio": dequantize(expected_set.audio[i0]).tolist()}
    reply = httpx.post(server.url + "/v1/classify/video?top_k=3", json={"videos": [features]})
    assert reply.status_code == 200, reply.text
    again = reply.json()["videos"][0]
    assert again["id"] == "again" and again["top"] == videos[0]["top"]


def test_a_domain_that_is_not_loaded_is_a_404_json_error(start_server, models):
    from triptych.serve.models import Models

    text_only = start_server(Models(text=models.text))
    assert httpx.get(text_only.url + "/healthz").json()["domains"] == ["text"]
    reply = httpx.post(text_only.url + "/v1/classify/image", files={"file": ("a.png", png_bytes(np.zeros((8, 8))))})
    assert reply.status_code == 404 and "no vision model is loaded" in reply.json()["error"]
    reply = httpx.post(text_only.url + "/v1/classify/video", json={"videos": []})
    assert reply.status_code == 404 and "--video DIR" in reply.json()["error"]
    assert httpx.get(text_only.url + "/v1/models").json()["vision"] is None


def test_nbest_lists_and_their_best_is_the_summary(server):
    body = httpx.post(server.url + "/v1/summarize", json={"documents": DOCS, "beam": 2, "nbest": 2}).json()
    plain = httpx.post(server.url + "/v1/summarize", json={"documents": DOCS, "beam": 2}).json()
    assert body["summaries"] == plain["summaries"] and "nbest" not in plain
    for summary, cands in zip(body["summaries"], body["nbest"]):
        scores = [c["score"] for c in cands]
        assert 1 <= len(cands) <= 2 and scores == sorted(scores, reverse=True) and cands[0]["summary"] == summary
    reply = httpx.post(server.url + "/v1/summarize", json={"documents": DOCS, "beam": 2, "rerank": True})
    assert reply.status_code == 422 and "no fitted reranker" in reply.json()["error"]


def test_rerank_uses_the_checkpoints_fitted_reranker(start_server, checkpoints, tmp_path):
    import shutil

    from triptych.serve.models import Models, TextService
    from triptych.text.predictor import Summarizer
    from triptych.text.generation.rerank import FEATURES, Reranker, train_summary_lm

    directory = tmp_path / "text"
    shutil.copytree(checkpoints["text"], directory)
    s = Summarizer(directory)
    weights = [-1.0 if f == "beam_score" else 0.0 for f in FEATURES]  # the beam's worst candidate: never the beam's choice
    lm = train_summary_lm(s.tokenizer, ["a tool for files", "library for parsing"], order=2)
    Reranker(weights, [0.0] * len(FEATURES), [1.0] * len(FEATURES), lm, meta={"nbest": 2}).save(directory)
    server = start_server(Models(text=TextService(directory)))
    assert httpx.get(server.url + "/v1/models").json()["text"]["reranker"] is True
    body = httpx.post(server.url + "/v1/summarize", json={"documents": DOCS, "beam": 2, "rerank": True}).json()
    reranker = Reranker.load(directory, s.tokenizer.fingerprint())
    cands = s.candidates(s.encode_documents(DOCS), s.cfg.decode.replace(beam=2), 2)
    picks = [reranker.choose(d, c) for d, c in zip(DOCS, cands)]
    assert picks == [1, 1]
    assert body["summaries"] == [c[i].text for c, i in zip(cands, picks)]
    assert "nbest" not in body
