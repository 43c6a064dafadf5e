"""The HTTP API (FastAPI): routes, request/response schemas, error bodies.

    POST /v1/summarize        {"documents": [...], "beam": 4, ...} -> {"summaries": [...]}
    POST /v1/classify/image   multipart `file` (PNG/JPEG)          -> top-k classes
    POST /v1/classify/video   multipart `file` (TFRecord) or JSON features -> top-k labels a video
    GET  /healthz, GET /v1/models, GET /docs (OpenAPI), GET / (the web page)

Every error is `{"error": "..."}`: 400 malformed JSON or multipart, 404
a domain that is not loaded, 408 a body that stalls, 413 a body over the
limit, 415 a wrong Content-Type, 422 a request that parses but breaks a
rule (empty document, beam over the limit, corrupt image, truncated
TFRecord), 503 with Retry-After when the queue is full or the model too
slow. All model work goes through one `Batcher` (one worker thread).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
from pathlib import Path

from fastapi import Depends, FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException

from triptych import __version__
from triptych.errors import SettingError, UserError
from triptych.files import check_unicode
from triptych.serve.batching import Batcher
from triptych.serve.limits import ApiError, BodyLimit, Limits, document_limits
from triptych.serve.models import SummaryOptions, Models
from triptych.text.config import DecodeConfig

STATIC = Path(__file__).parent / "static"
log = logging.getLogger("triptych.serve")


# --- schemas -------------------------------------------------------------------


class SummarizeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    documents: list[str] = Field(description="the texts to summarize", examples=[["A fast JSON parser for C."]])
    beam: int | None = Field(None, ge=1, description="beam size (1 = greedy); default: the checkpoint's")
    max_len: int | None = Field(None, ge=1, description="most tokens in a summary")
    min_len: int | None = Field(None, ge=0, description="fewest tokens before the summary may end")
    length_penalty: float | None = Field(None, ge=0, le=10, allow_inf_nan=False, description="GNMT alpha")
    no_repeat_ngram: int | None = Field(None, ge=0, le=16, description="forbid repeating n-grams of this size (0 = off)")
    attention: bool = Field(False, description="also return each summary's cross-attention over its source")
    nbest: int | None = Field(None, ge=1, description="also return this many beam candidates a document (<= beam)")
    rerank: bool = Field(False, description="choose among the n-best with the checkpoint's fitted reranker")
    top_k: int | None = Field(None, ge=0, description="sample each token from the k likeliest (0 = off)")
    top_p: float | None = Field(None, gt=0, le=1, allow_inf_nan=False, description="sample from the smallest set of this probability (1 = off)")
    seed: int | None = Field(None, description="the draws of sampling (default: unseeded)")


# The request's fields that are `DecodeConfig` fields, mapped onto it by name (rerank is a flag here).
DECODE_FIELDS = tuple(f.name for f in dataclasses.fields(DecodeConfig) if f.name in SummarizeRequest.model_fields and f.name != "rerank")


class Attention(BaseModel):
    source: list[str]
    summary: list[str]
    weights: list[list[float]] = Field(description="(summary tokens, source tokens), rows sum to 1")


class Candidate(BaseModel):
    summary: str
    score: float = Field(description="length-normalised log-probability (the beam's ranking key)")
    logprob: float


class SummarizeResponse(BaseModel):
    summaries: list[str]
    truncated: list[bool] = Field(description="whether each document was cut to the model's source length")
    attention: list[Attention] | None = None
    nbest: list[list[Candidate]] | None = None


class Label(BaseModel):
    label: str
    prob: float
    index: int | None = None


class ImageResponse(BaseModel):
    filename: str
    top: list[Label]


class VideoResult(BaseModel):
    id: str
    top: list[Label]


class VideoResponse(BaseModel):
    videos: list[VideoResult]


class VideoFeatures(BaseModel):
    """One video: frame level `rgb` (frames x 1024) and `audio` (frames x 128)
    as dequantised floats, or video level `mean_rgb` (1024) and `mean_audio` (128)."""

    model_config = ConfigDict(extra="forbid")
    id: str | None = None
    rgb: list[list[float]] | None = None
    audio: list[list[float]] | None = None
    mean_rgb: list[float] | None = None
    mean_audio: list[float] | None = None


class VideoFeaturesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    videos: list[VideoFeatures]


class ErrorBody(BaseModel):
    error: str


ERRORS = {code: {"model": ErrorBody} for code in (400, 404, 408, 413, 415, 422, 503)}


# --- helpers -------------------------------------------------------------------


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def require_json(request: Request) -> None:
    if _media_type(request) != "application/json":
        raise ApiError(415, f"Content-Type must be application/json, got {_media_type(request) or 'none'!r}")


def require_multipart(request: Request) -> None:
    if _media_type(request) != "multipart/form-data":
        raise ApiError(415, f"Content-Type must be multipart/form-data (a file upload), got {_media_type(request) or 'none'!r}")


def _validation_message(errors) -> tuple[int, str]:
    """Pydantic's error list -> (status, one readable line)."""
    for e in errors:
        if e.get("type") == "json_invalid":
            return 400, f"malformed JSON: {e.get('ctx', {}).get('error', e.get('msg'))}"
        if e.get("type") == "missing" and tuple(e.get("loc", ())) == ("body",):
            return 422, "the request body is empty: expected a JSON object"
    parts = []
    for e in errors[:3]:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "body"
        parts.append(f"{loc}: {e.get('msg')}")
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return 422, "; ".join(parts) + more


def decode_options(req: SummarizeRequest, defaults: DecodeConfig, limits: Limits, reranker=None) -> SummaryOptions:
    """The request as a `DecodeConfig` over the checkpoint's, checked against the limits, and what to return."""
    if not req.documents:
        raise ApiError(422, "documents: give at least one document")
    if len(req.documents) > limits.max_documents:
        raise ApiError(422, f"documents: {len(req.documents)} documents, more than the limit of "
                            f"{limits.max_documents} a request (serve --max-documents)")
    for i, doc in enumerate(req.documents):
        if not doc.strip():
            raise ApiError(422, f"documents[{i}]: empty document")
        try:
            check_unicode(doc, f"documents[{i}]")
        except UserError as e:
            raise ApiError(422, str(e)) from None
        if len(doc) > limits.max_document_chars:
            raise ApiError(422, f"documents[{i}]: {len(doc):,} characters, more than the limit of "
                                f"{limits.max_document_chars:,} (serve --max-document-chars)")
    # The request's decoding fields over the checkpoint's; DecodeConfig checks them (the one place).
    changes = {name: getattr(req, name) for name in DECODE_FIELDS}
    if req.max_len is None:
        changes["max_len"] = min(defaults.max_len, limits.max_summary_len)
    try:
        decode = defaults.replace(**changes, rerank=req.rerank or None)
    except SettingError as e:
        raise ApiError(422, e.naming(str)) from None
    if decode.beam > limits.max_beam:
        raise ApiError(422, f"beam: {decode.beam} is more than the limit of {limits.max_beam} (serve --max-beam)")
    if decode.max_len > limits.max_summary_len:
        raise ApiError(422, f"max_len: {decode.max_len} is more than the limit of {limits.max_summary_len} (serve --max-summary-len)")
    if decode.rerank and reranker is None:
        raise ApiError(422, "rerank: this checkpoint has no fitted reranker (`triptych text rerank fit`)")
    return SummaryOptions(decode, attention=req.attention, show_nbest=req.nbest is not None)


def _check_top_k(top_k: int, limits: Limits) -> int:
    if top_k > limits.max_top_k:
        raise ApiError(422, f"top_k: {top_k} is more than the limit of {limits.max_top_k}")
    return top_k


async def _upload_bytes(file: UploadFile, what: str) -> tuple[bytes, str]:
    data = await file.read()
    name = Path(file.filename or "upload").name or "upload"
    if not data:
        raise ApiError(422, f"{name}: empty {what} upload")
    return data, name


# --- the app -------------------------------------------------------------------


def create_app(models: Models, limits: Limits | None = None) -> FastAPI:
    limits = limits or Limits()
    from triptych.hardware import default_inference_dtype
    from triptych.nn.prepacked import hold_packed_weights  # the served weights never change

    # Resolved here, once: a dtype this CPU cannot run is refused now, not in the model thread's first request.
    dtype = default_inference_dtype()
    batcher = Batcher(limits.max_batch, limits.batch_wait_ms / 1000.0, limits.queue_depth, limits.timeout_s,
                      worker_init=functools.partial(hold_packed_weights, dtype))
    described = models.describe()
    if getattr(models, "video", None) is not None:
        models.video.max_expanded_bytes = limits.max_expanded_bytes

    @contextlib.asynccontextmanager
    async def lifespan(app):
        batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="triptych", version=__version__, lifespan=lifespan,
                  description="Summaries, image classes and video labels from triptych checkpoints.")
    app.state.batcher, app.state.models, app.state.limits = batcher, models, limits

    def need(domain: str):
        model = getattr(models, domain)
        if model is None:
            raise ApiError(404, f"no {domain} model is loaded on this server (start it with `triptych serve --{domain} DIR`)")
        return model

    @app.exception_handler(ApiError)
    async def _api_error(request, e: ApiError):
        return JSONResponse({"error": e.message}, e.status, headers=e.headers)

    @app.exception_handler(UserError)
    async def _user_error(request, e: UserError):
        return JSONResponse({"error": str(e)}, 422)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, e: RequestValidationError):
        status, message = _validation_message(e.errors())
        return JSONResponse({"error": message}, status)

    @app.exception_handler(HTTPException)
    async def _http_error(request, e: HTTPException):
        return JSONResponse({"error": str(e.detail)}, e.status_code, headers=getattr(e, "headers", None))

    @app.exception_handler(Exception)
    async def _internal(request, e: Exception):
        log.exception("internal error on %s %s", request.method, request.url.path)
        return JSONResponse({"error": f"internal error ({type(e).__name__})"}, 500)

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok", "domains": models.loaded(), "queue": len(batcher.queue)}

    @app.get("/v1/models")
    async def list_models() -> dict:
        """What is loaded (checkpoint, config, metrics a domain; null when not loaded), the limits, and batching counts."""
        return {**described, "limits": limits.to_dict(), "batching": dict(batcher.stats)}

    @app.post("/v1/summarize", response_model=SummarizeResponse, response_model_exclude_none=True,
              responses=ERRORS, dependencies=[Depends(require_json)])
    async def summarize(req: SummarizeRequest):
        """Summarize documents; concurrent requests with the same options share one model call."""
        text = need("text")
        options = decode_options(req, text.defaults, limits, text.reranker)
        results = await batcher.submit(text.run, (req.documents, options), key=("summarize", options), size=len(req.documents))
        out = {"summaries": [r["summary"] for r in results], "truncated": [r["truncated"] for r in results]}
        for extra in ("attention", "nbest"):
            if extra in results[0]:
                out[extra] = [r[extra] for r in results]
        return out

    @app.post("/v1/classify/image", response_model=ImageResponse, response_model_exclude_none=True, responses=ERRORS,
              dependencies=[Depends(require_multipart)])
    async def classify_image(file: UploadFile = File(description="a PNG or JPEG image"),
                             top_k: int = Query(5, ge=1, description="how many classes")):
        """The image's top-k classes with their probabilities."""
        vision = need("vision")
        _check_top_k(top_k, limits)
        data, name = await _upload_bytes(file, "image")
        top = await batcher.submit(vision.run, (data, name, top_k))
        return {"filename": name, "top": top}

    video_body = {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
            "file": {"type": "string", "format": "binary", "description": "a YouTube-8M TFRecord (frame or video level, gzip or not)"}}}},
        "application/json": {"schema": {"$ref": "#/components/schemas/VideoFeaturesRequest"}},
    }}

    @app.post("/v1/classify/video", response_model=VideoResponse, responses=ERRORS,
              openapi_extra={"requestBody": video_body})
    async def classify_video(request: Request, top_k: int = Query(5, ge=1, description="how many labels a video")):
        """Each video's top-k labels: from an uploaded TFRecord, or from features sent as JSON."""
        video = need("video")
        _check_top_k(top_k, limits)
        kind = _media_type(request)
        if kind == "application/json":
            try:
                req = VideoFeaturesRequest.model_validate_json(await request.body())
            except ValidationError as e:
                status, message = _validation_message(e.errors())
                raise ApiError(status, message) from None
            if not req.videos:
                raise ApiError(422, "videos: give at least one video")
            if len(req.videos) > limits.max_videos:
                raise ApiError(422, f"videos: {len(req.videos)} videos, more than the limit of {limits.max_videos} (serve --max-videos)")
            payload = [v.model_dump() for v in req.videos]
            return {"videos": await batcher.submit(video.run_features, (payload, top_k))}
        if kind != "multipart/form-data":
            raise ApiError(415, f"Content-Type must be multipart/form-data (a TFRecord upload) or application/json "
                                f"(features), got {kind or 'none'!r}")
        form = await request.form()
        file = form.get("file")
        if file is None or isinstance(file, str):
            raise ApiError(422, "file: a TFRecord file upload is required")
        data, name = await _upload_bytes(file, "TFRecord")
        return {"videos": await batcher.submit(video.run_records, (data, name, top_k))}

    def openapi():
        """FastAPI's schema, plus the JSON body of /v1/classify/video (which no
        parameter declares) and this server's limits as schema bounds."""
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            defs = VideoFeaturesRequest.model_json_schema(ref_template="#/components/schemas/{model}")
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(defs.pop("$defs", {}))
            components["VideoFeaturesRequest"] = defs
            app.openapi_schema = document_limits(schema, limits)
        return app.openapi_schema

    app.openapi = openapi
    app.add_middleware(BodyLimit, limits=limits)
    return app
