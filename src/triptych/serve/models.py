"""The three domains' models as the server runs them.

Each wraps the domain's own inference class (`Summarizer`, `Classifier`,
video `VideoPredictor`) loaded once, at start-up, from a directory the
operator named on the command line — never from a path in a request. Their
`run_*` methods take a list of payloads and return one result each: the
shape `Batcher` calls them in, on its single worker thread.

Uploads (an image, a TFRecord) go through the same readers the CLI uses,
by way of a private temporary file, so a corrupt PNG or a truncated record
is caught by exactly the checks `triptych vision predict` and
`triptych video eval` apply; their messages name the upload, not the
temporary file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from triptych.errors import UserError
from triptych.serve.limits import ApiError, Limits, write_upload
from triptych.text.config import DecodeConfig


def _describe(directory: Path, domain: str, cfg) -> dict:
    from triptych.config import to_dict
    from triptych.engine.checkpoint import load_checkpoint_meta

    meta, _ = load_checkpoint_meta(directory, domain)
    return {"checkpoint": str(directory), "step": meta.get("step"), "metrics": meta.get("metrics", {}),
            "config": to_dict(cfg)}


@contextlib.contextmanager
def _upload_file(data: bytes, filename: str, suffix: str, max_expanded: int = Limits.max_expanded_bytes):
    """The uploaded bytes in a private temporary file, gunzipped within `max_expanded`
    bytes (serve/limits.py); its UserErrors name `filename`."""
    fd, tmp = tempfile.mkstemp(prefix="triptych-upload-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            write_upload(data, fh, max_expanded, filename)
        try:
            yield tmp
        except UserError as e:
            raise ApiError(422, str(e).replace(tmp, filename)) from None
    finally:
        os.unlink(tmp)


# --- text ----------------------------------------------------------------------


@dataclass(frozen=True)
class SummaryOptions:
    """What one request wants: how to decode (checked by `DecodeConfig` itself)
    and what to return beside the summaries. Requests with equal options share a model call."""

    decode: DecodeConfig
    attention: bool = False
    show_nbest: bool = False  # return each document's candidates


class TextService:
    def __init__(self, directory: str | Path, device: str = "cpu"):
        from triptych.text.predictor import Summarizer

        self.summarizer = Summarizer(directory, device)
        self.directory = Path(directory)
        self.reranker = None  # fitted by `triptych text rerank fit`, when it was
        if (self.directory / "rerank.json").is_file():
            from triptych.text.generation.rerank import Reranker

            self.reranker = Reranker.load(self.directory, self.summarizer.tokenizer.fingerprint())

    @property
    def defaults(self):
        return self.summarizer.cfg.decode

    def describe(self) -> dict:
        s = self.summarizer
        return {**_describe(self.directory, "text", s.cfg), "model": s.cfg.model.get("name"),
                "max_source_tokens": s.cfg.data.max_source_len, "reranker": self.reranker is not None}

    def run(self, payloads: list[tuple[list[str], SummaryOptions]]) -> list[list[dict]]:
        """[(documents, options)] with one `options` for all -> per payload, one dict a document."""
        options = payloads[0][1]
        documents = [d for docs, _ in payloads for d in docs]
        results = self.summarize(documents, options)
        out, start = [], 0
        for docs, _ in payloads:
            out.append(results[start : start + len(docs)])
            start += len(docs)
        return out

    @torch.inference_mode()
    def summarize(self, documents: list[str], o: SummaryOptions) -> list[dict]:
        """Every document decoded in one batch: [{summary, truncated[, nbest][, attention]}].

        With an n-best list (`nbest`, `rerank`) the summary is the reranker's
        choice among the candidates, or the beam's best."""
        from triptych.text.data import pad
        from triptych.text.generation.generate import generate, generate_nbest
        from triptych.text.generation.rerank import candidates_from

        s, tok, d = self.summarizer, self.summarizer.tokenizer, o.decode
        limit = s.cfg.data.max_source_len
        encoded = s.source_tokenizer.encode_batch(documents)  # the source's vocabulary (the target's unless separate)
        ids = [x[:limit] or [tok.unk_id] for x in encoded]
        src = pad(ids, tok.pad_id).to(s.device)  # (B, S)
        results = []
        if d.rerank or d.nbest is not None:
            fitted = int(self.reranker.meta.get("nbest", d.beam)) if d.rerank else None
            tokens = []
            for doc, e, h in zip(documents, encoded, generate_nbest(s.model, src, d, bos=tok.bos_id, eos=tok.eos_id, nbest=d.candidates(fitted))):
                cands = candidates_from(h, tok)
                pick = self.reranker.choose(doc, cands) if d.rerank else 0
                tokens.append(cands[pick].tokens)
                r = {"summary": cands[pick].text, "truncated": len(e) > limit}
                if o.show_nbest:
                    r["nbest"] = [{"summary": c.text, "score": round(c.score, 6), "logprob": round(c.logprob, 6)} for c in cands]
                results.append(r)
        else:
            tokens = generate(s.model, src, d, bos=tok.bos_id, eos=tok.eos_id)
            texts = tok.decode_batch([list(t) for t in tokens])
            results = [{"summary": text, "truncated": len(e) > limit} for text, e in zip(texts, encoded)]
        if o.attention:
            for r, a in zip(results, self.attention(src, ids, tokens)):
                r["attention"] = a
        return results

    def attention(self, src: torch.Tensor, ids: list[list[int]], tokens: list[list[int]]) -> list[dict]:
        """Cross-attention of the last decoder layer, averaged over heads, for each
        generated token over the source tokens: what the page draws as a heat-map."""
        from triptych.text.data import pad

        tok = self.summarizer.tokenizer
        tgt_in = pad([[tok.bos_id] + list(t) for t in tokens], tok.pad_id).to(src.device)  # (B, T)
        _, attn = self.summarizer.model(src, tgt_in, return_attention=True)
        weights = attn["cross"][-1].float().mean(1).cpu()  # (B, T, S): row t is the step that chose token t
        out = []
        for b, (source, generated) in enumerate(zip(ids, tokens)):
            w = weights[b, : len(generated), : len(source)]
            out.append({"source": self.summarizer.source_tokenizer.pieces(source), "summary": tok.pieces(generated),
                        "weights": [[round(float(v), 4) for v in row] for row in w]})
        return out


# --- vision --------------------------------------------------------------------


class VisionService:
    def __init__(self, directory: str | Path, device: str = "cpu"):
        from triptych.vision.predictor import Classifier

        # convert=True: a server takes the colour or grey image it is given.
        self.classifier = Classifier(directory, device, convert=True)
        self.directory = Path(directory)

    def describe(self) -> dict:
        c = self.classifier
        return {**_describe(self.directory, "vision", c.cfg), "model": c.name, "classes": c.classes}

    def run(self, payloads: list[tuple[bytes, str, int]]) -> list[list[dict]]:
        """[(image bytes, filename, k)] -> per image its top-k [{label, prob}]."""
        out = []
        for data, filename, k in payloads:
            with _upload_file(data, filename, Path(filename).suffix[:16]) as path:
                x = self.classifier.load_files([path])  # (1, C, S, S)
            probs = self.classifier.probabilities(x)[0]
            top = probs.topk(min(k, probs.numel()))
            out.append([{"label": self.classifier.classes[int(i)], "prob": round(float(v), 6)}
                        for v, i in zip(top.values, top.indices)])
        return out


# --- video ---------------------------------------------------------------------


class VideoService:
    def __init__(self, directory: str | Path, device: str = "cpu", max_videos: int = 64):
        from triptych.video.predictor import VideoPredictor

        self.checkpoint = VideoPredictor(directory, device)
        self.directory = Path(directory)
        self.max_videos = max_videos
        self.max_expanded_bytes = Limits.max_expanded_bytes  # create_app sets the server's own

    @property
    def data(self):
        return self.checkpoint.cfg.data

    def describe(self) -> dict:
        return {**_describe(self.directory, "video", self.checkpoint.cfg), "model": self.checkpoint.model_cfg.name,
                "level": self.data.level, "num_classes": self.data.num_classes}

    def run_records(self, payloads: list[tuple[bytes, str, int]]) -> list[list[dict]]:
        """[(TFRecord bytes, filename, k)] -> per upload, [{id, top}] a video."""
        from triptych.video.io.yt8m import read_videos

        out = []
        for data, filename, k in payloads:
            with _upload_file(data, filename, ".tfrecord", self.max_expanded_bytes) as path:
                videos = []
                for v in read_videos([path], num_classes=self.data.num_classes, level=self.data.level,
                                     max_frames=self.data.max_frames):
                    if len(videos) == self.max_videos:
                        raise ApiError(422, f"{filename}: more than {self.max_videos} videos (serve --max-videos)")
                    videos.append(v)
            if not videos:
                raise ApiError(422, f"{filename}: holds no records")
            out.append(self._classify(videos, k))
        return out

    def run_features(self, payloads: list[tuple[list[dict], int]]) -> list[list[dict]]:
        """[(videos as JSON features, k)] -> per request, [{id, top}] a video."""
        return [self._classify([self._from_features(v, i) for i, v in enumerate(videos)], k) for videos, k in payloads]

    def _from_features(self, v: dict, i: int):
        """One JSON video -> a `Video` as the reader would have decoded it.

        Frame-level features arrive as floats and are quantised to the 8 bits
        the official files hold, so the model sees exactly what it trained on.
        """
        from triptych.video.io.yt8m import AUDIO_DIM, RGB_DIM, Video, quantize

        level = self.data.level
        names = ("rgb", "audio") if level == "frame" else ("mean_rgb", "mean_audio")
        arrays = []
        for name, dim in zip(names, (RGB_DIM, AUDIO_DIM)):
            value = v.get(name)
            if value is None:
                raise ApiError(422, f"videos[{i}]: missing '{name}' (the model is {level}-level)")
            try:
                a = np.asarray(value, dtype=np.float64)  # float64 first: 1e300 is a bad value, not an overflow warning
            except ValueError:  # ragged: frames of different lengths
                raise ApiError(422, f"videos[{i}].{name}: frames of different lengths, expected each {dim} values") from None
            want = (a.shape[0] if a.ndim == 2 else -1, dim) if level == "frame" else (dim,)
            if a.shape != want or (level == "frame" and len(a) == 0):
                shape = "(frames, %d)" % dim if level == "frame" else "(%d,)" % dim
                raise ApiError(422, f"videos[{i}].{name}: shape {a.shape}, expected {shape}")
            if not (np.isfinite(a) & (np.abs(a) <= np.finfo(np.float32).max)).all():
                raise ApiError(422, f"videos[{i}].{name}: holds a value that is not a finite float32 number")
            a = a.astype(np.float32)
            arrays.append(quantize(a[: self.data.max_frames]) if level == "frame" else a)
        if level == "frame" and len(arrays[0]) != len(arrays[1]):
            raise ApiError(422, f"videos[{i}]: 'rgb' has {len(arrays[0])} frames but 'audio' has {len(arrays[1])}")
        return Video(str(v.get("id") or f"video{i}"), np.zeros(0, np.int64), arrays[0], arrays[1], level)

    def _classify(self, videos, k: int) -> list[dict]:
        from triptych.video.io.yt8m import VideoSet

        probs, _ = self.checkpoint.predict(VideoSet(videos, self.data.num_classes))  # (N, C)
        k = min(k, probs.shape[1])
        out = []
        for vid, p in zip((v.id for v in videos), probs):
            top = np.argsort(-p, kind="stable")[:k]
            out.append({"id": vid, "top": [{"label": str(int(c)), "index": int(c), "prob": round(float(p[c]), 6)}
                                           for c in top]})
        return out


@dataclass
class Models:
    """What one server holds: any subset of the three domains."""

    text: TextService | None = None
    vision: VisionService | None = None
    video: VideoService | None = None

    @classmethod
    def load(cls, text=None, vision=None, video=None, device: str = "cpu", max_videos: int = 64) -> "Models":
        return cls(TextService(text, device) if text else None, VisionService(vision, device) if vision else None,
                   VideoService(video, device, max_videos) if video else None)

    def loaded(self) -> list[str]:
        return [name for name in ("text", "vision", "video") if getattr(self, name) is not None]

    def describe(self) -> dict:
        return {name: (m.describe() if m is not None else None)
                for name, m in (("text", self.text), ("vision", self.vision), ("video", self.video))}
