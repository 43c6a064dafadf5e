"""YouTube-8M records: decoding, dequantisation, the in-memory dataset (streams: video/streaming.py).

The official files hold one video a record:

* video level — `tf.train.Example`: `id` (bytes), `labels` (int64 list),
  `mean_rgb` (1024 floats), `mean_audio` (128 floats);
* frame level — `tf.train.SequenceExample`: context `id`, `labels`; feature
  lists `rgb` (one 1024-byte string a frame, one frame a second) and `audio`
  (128 bytes a frame). A record without `audio` (videos without sound, as
  `triptych video extract-features --audio none` writes) reads as silent
  audio: every byte the level nearest 0, so the models take it unchanged.

Frame features are 8-bit quantised; they are dequantised exactly as the
official reader does, in float32: q * (4/255) + (4/512 - 2), i.e. with
max_quantized_value=2, min_quantized_value=-2. The first 300 frames are
kept; shorter videos are zero-padded and come with a mask.

Frames stay uint8 in memory (4x smaller) and are dequantised per batch by a
256-entry lookup table built with those very float32 operations, so every
value is bit-identical to the reference.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np

from triptych.errors import UserError
from triptych.video.io import example as pb
from triptych.video.io.tfrecord import RecordStats, expand_paths, iter_records
from triptych.video import generations as gens

RGB_DIM, AUDIO_DIM, MAX_FRAMES = 1024, 128, 300
FRAME_FEATURES = (("rgb", RGB_DIM), ("audio", AUDIO_DIM))
VIDEO_FEATURES = (("mean_rgb", RGB_DIM), ("mean_audio", AUDIO_DIM))

# q * scale + bias in float32, each operation rounded as TensorFlow does.
DEQUANT_SCALE, DEQUANT_BIAS = np.float32(4.0 / 255.0), np.float32(4.0 / 512.0 - 2.0)
DEQUANT_LUT = np.arange(256, dtype=np.float32) * DEQUANT_SCALE + DEQUANT_BIAS


def dequantize(q: np.ndarray) -> np.ndarray:
    """uint8 -> float32, bit-identical to the official reader's Dequantize."""
    return DEQUANT_LUT[q]


def dequantize_into(q: np.ndarray, out: np.ndarray) -> None:
    """out[...] = dequantize(q), by float32 arithmetic (faster than the table,
    same values): one compiled pass for uint8 frames [T, D] into float32
    (`dequant.py`, 1.9x numpy's two passes on a record's frames), numpy's
    two passes for any other shape or type."""
    if q.shape != out.shape:
        raise ValueError(f"dequantize_into: {q.shape} values into {out.shape}")
    if q.ndim == 2 and q.dtype == np.uint8 and out.dtype == np.float32:
        from triptych.video.io.dequant import dequantize_rows

        dequantize_rows(q, out, DEQUANT_SCALE, DEQUANT_BIAS)
        return
    np.multiply(q, DEQUANT_SCALE, out=out, dtype=np.float32)
    out += DEQUANT_BIAS


def dequantize_tensor(q: np.ndarray):
    """uint8 [..] -> float32 torch tensor, the same values as `dequantize`
    (float32 multiply, then float32 add, each rounded: tested equal to the
    table for all 256 levels) but 3-5x faster than a table lookup."""
    import torch

    q = np.ascontiguousarray(q)
    if q.flags.writeable:
        view = torch.from_numpy(q)
    else:  # a record's bytes, read-only: the view is copied by .to() at once, never written
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "The given NumPy array is not writable", UserWarning)
            view = torch.from_numpy(q)
    return view.to(torch.float32).mul_(4.0 / 255.0).add_(4.0 / 512.0 - 2.0)


def quantize(x: np.ndarray) -> np.ndarray:
    """float -> uint8, the inverse used by the feature extractor (nearest level).

    Within [-2 + 4/512, 2 + 4/512] (levels 0..255) the dequantised value is
    within half a step (2/255) of x; beyond, x is clipped to the end level.
    """
    q = np.round((np.asarray(x, dtype=np.float64) + 2.0 - 4.0 / 512.0) * (255.0 / 4.0))
    return np.clip(q, 0, 255).astype(np.uint8)


# The level nearest 0.0 (dequantises to -2.6e-5): silent audio, padding.
ZERO_LEVEL = int(quantize(np.zeros(1))[0])


@dataclass
class Video:
    """One decoded record. Frame level: rgb/audio uint8 [T, D] with T <= 300
    (the frames kept); video level: float32 [D]."""

    id: str
    labels: np.ndarray  # int64 [L]
    rgb: np.ndarray
    audio: np.ndarray
    level: str  # "frame" | "video"
    generation: str = "2018"  # "2017" | "2018" | "2019-segments" (generations.py)
    segments: gens.Segments | None = None  # the rated segments of a 2019 record

    @property
    def frames(self) -> int:
        return len(self.rgb) if self.level == "frame" else 0


class RecordError(ValueError):
    """A record that frames correctly but is not a valid YouTube-8M video."""


def _bytes_feature(context: dict, name: str) -> bytes:
    kind, values = context.get(name, (None, []))
    if name not in context:
        raise RecordError(f"missing '{name}' feature")
    if kind != "bytes" or len(values) != 1:
        raise RecordError(f"'{name}' must be one bytes value")
    return values[0]


def _labels(context: dict, num_classes: int) -> np.ndarray:
    kind, values = context.get("labels", ("int64", np.zeros(0, np.int64)))
    if kind is None:
        values = np.zeros(0, np.int64)
    elif kind != "int64":
        raise RecordError(f"'labels' must be an int64 list, got a {kind} list")
    bad = values[(values < 0) | (values >= num_classes)]
    if len(bad):
        raise RecordError(f"label {int(bad[0])} outside [0, {num_classes})")
    return values.astype(np.int64)


def decode(payload: bytes, num_classes: int | None, level: str = "auto", max_frames: int = MAX_FRAMES) -> Video:
    """One record's bytes -> Video; RecordError when it is not a valid video.

    `level="auto"` decides by content: a record with feature lists is frame
    level, one without is a video-level Example (an Example's bytes also
    parse as a SequenceExample whose context is the Example's features).
    The generation (2017 `video_id`, 2018 `id`, 2019 segments) is read off
    the context; `num_classes=None` takes the generation's class count.
    """
    try:
        context, lists = pb.parse_sequence_example(payload)
    except pb.ParseError as e:
        raise RecordError(f"not an Example or SequenceExample ({e})") from None
    if level == "auto":
        level = "frame" if lists else "video"
    generation = gens.identify(context, RecordError)
    num_classes = num_classes or gens.GENERATIONS[generation].num_classes
    vid = _bytes_feature(context, gens.GENERATIONS[generation].id_key).decode("utf-8", errors="backslashreplace")
    labels = _labels(context, num_classes)
    if level == "frame":
        feats = []
        for name, dim in FRAME_FEATURES:
            if name == "audio" and name not in lists and len(feats) == 1:
                # No sound track (`extract-features --audio none`): silent audio, the level nearest 0.
                feats.append(np.full((len(feats[0]), dim), ZERO_LEVEL, np.uint8))
                continue
            if name not in lists:
                raise RecordError(f"missing '{name}' feature list")
            try:
                feats.append(lists[name].fixed_bytes(dim))
            except pb.ParseError as e:
                raise RecordError(f"feature list '{name}': {e}") from None
        if len(feats[0]) != len(feats[1]):
            raise RecordError(f"'rgb' has {len(feats[0])} frames but 'audio' has {len(feats[1])}")
        segments, keep = None, max_frames
        if generation == "2019-segments":
            segments = gens.read_segments(context, num_classes, len(feats[0]), RecordError)
            if len(segments):  # a rated segment past max_frames keeps its frames
                keep = max(keep, int(segments.start.max()) + gens.SEGMENT_FRAMES)
        return Video(vid, labels, feats[0][:keep], feats[1][:keep], "frame", generation, segments)
    feats = []
    for name, dim in VIDEO_FEATURES:
        kind, values = context.get(name, (None, None))
        if name not in context:
            raise RecordError(f"missing '{name}' feature")
        if kind != "float" or len(values) != dim:
            got = f"{len(values)} floats" if kind == "float" else f"a {kind} list"
            raise RecordError(f"'{name}' must be {dim} floats, got {got}")
        feats.append(values)
    segments = gens.read_segments(context, num_classes, None, RecordError) if generation == "2019-segments" else None
    return Video(vid, labels, feats[0], feats[1], "video", generation, segments)


def read_videos(
    paths,
    *,
    num_classes: int | None = None,
    level: str = "auto",
    verify: bool = True,
    skip_bad: bool = False,
    stats: RecordStats | None = None,
    max_frames: int = MAX_FRAMES,
    generation: str | gens.GenerationGuard = "auto",
) -> Iterator[Video]:
    """Decoded videos of files/globs, in order. Bad records raise UserError
    ('FILE: record I: why'), or with `skip_bad` are counted in `stats`.
    Every record must be of one generation (`generation` forces which, or
    is a GenerationGuard shared with other readers); `num_classes=None`
    takes the generation's class count."""
    stats = stats if stats is not None else RecordStats()
    guard = generation if isinstance(generation, gens.GenerationGuard) else gens.GenerationGuard(generation)
    forced = None if guard.forced == "auto" else guard.forced
    for path in expand_paths(paths):
        for ri, payload in iter_records(path, verify=verify, skip_bad=skip_bad, stats=stats):
            try:
                video = decode(payload, num_classes or (gens.default_classes(forced) if forced else None), level, max_frames)
            except RecordError as e:
                message = f"{path}: record {ri}: {e}"
                if not skip_bad:
                    raise UserError(message) from None
                stats.records -= 1
                stats.skip(message)
                continue
            guard.check(video.generation, path, ri)
            yield video


def sample_frames(num_frames: int, mode: str, n: int, rng: np.random.Generator | None) -> np.ndarray:
    """Indices of the frames a model sees.

    all     every frame kept (n ignored);
    random  n frames uniformly with replacement, as DBoF and the 2017
            winners trained (floor(num_frames * u), u ~ U[0, 1));
    window  a random contiguous window of n frames (all when shorter).
    With `rng=None` (evaluation) the choice is deterministic: n evenly
    spaced frames for `random`, the centred window for `window`.
    """
    if mode == "all" or num_frames == 0:
        return np.arange(num_frames)
    if mode == "random":
        if rng is None:
            return np.floor((np.arange(n) + 0.5) * num_frames / n).astype(np.int64)
        return np.floor(num_frames * rng.random(n)).astype(np.int64)
    if mode == "window":
        if num_frames <= n:
            return np.arange(num_frames)
        start = (num_frames - n) // 2 if rng is None else int(rng.integers(0, num_frames - n + 1))
        return np.arange(start, start + n)
    raise UserError(f"unknown frame sampling '{mode}' (all, random, window)")


class VideoSet:
    """Videos held in memory, indexable: what `video/task.py` trains on.

    Frame level keeps all frames of all videos in one uint8 array with
    offsets, so 10,000 synthetic videos of 60 frames take 700 MB, not 2.8 GB.
    """

    def __init__(self, videos: Iterable[Video], num_classes: int | None):
        self.num_classes = num_classes
        self.ids: list[str] = []
        self.labels: list[np.ndarray] = []
        self.segments: list = []  # per video its generations.Segments (2019) or None
        rgb, audio, lengths = [], [], []
        self.level = self.generation = None
        for v in videos:
            if self.level is None:
                self.level, self.generation = v.level, v.generation
            elif v.level != self.level:
                raise UserError(f"video {v.id}: mixes {v.level}-level records with {self.level}-level ones")
            self.ids.append(v.id)
            self.labels.append(v.labels)
            self.segments.append(v.segments)
            rgb.append(v.rgb)
            audio.append(v.audio)
            lengths.append(len(v.rgb))
        if self.level is None:
            raise UserError("no videos to read")
        if self.num_classes is None:
            self.num_classes = gens.default_classes(self.generation)
        if self.level == "frame":
            self.offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
            self.rgb = np.concatenate(rgb) if rgb else np.zeros((0, RGB_DIM), np.uint8)
            self.audio = np.concatenate(audio) if audio else np.zeros((0, AUDIO_DIM), np.uint8)
        else:
            self.rgb, self.audio = np.stack(rgb), np.stack(audio)

    @classmethod
    def from_files(cls, paths, num_classes: int | None, **kw) -> "VideoSet":
        return cls(read_videos(paths, num_classes=num_classes, **kw), num_classes)

    def __len__(self) -> int:
        return len(self.ids)

    def num_frames(self, i: int) -> int:
        return int(self.offsets[i + 1] - self.offsets[i]) if self.level == "frame" else 0

    def multi_hot(self, indices) -> np.ndarray:
        out = np.zeros((len(indices), self.num_classes), np.float32)
        for row, i in enumerate(indices):
            out[row, self.labels[i]] = 1.0
        return out

    def batch(self, indices, sampling: str = "all", n: int = 0, rng: np.random.Generator | None = None) -> dict:
        """A batch as numpy arrays.

        Frame level: rgb float32 [B, F, 1024], audio [B, F, 128], mask
        float32 [B, F] (1 for real frames), num_frames int64 [B], labels
        float32 [B, C]; F is the longest sampled length in the batch (never
        above 300), which pooling that honours the mask cannot tell from
        the official 300. Video level: rgb [B, 1024], audio [B, 128], labels.
        """
        labels = self.multi_hot(indices)
        if self.level == "video":
            return {"rgb": self.rgb[indices], "audio": self.audio[indices], "labels": labels}
        picks = [self.offsets[i] + sample_frames(self.num_frames(i), sampling, n, rng) for i in indices]
        width = max(1, max(len(p) for p in picks))
        B = len(indices)
        rgb = np.zeros((B, width, RGB_DIM), np.float32)
        audio = np.zeros((B, width, AUDIO_DIM), np.float32)
        mask = np.zeros((B, width), np.float32)
        for row, p in enumerate(picks):
            dequantize_into(self.rgb[p], rgb[row, : len(p)])
            dequantize_into(self.audio[p], audio[row, : len(p)])
            mask[row, : len(p)] = 1.0
        return {"rgb": rgb, "audio": audio, "mask": mask, "num_frames": mask.sum(1).astype(np.int64), "labels": labels}
