"""Synthetic YouTube-8M: official layout and dimensions, a known generative process.

The real YouTube-8M cannot be downloaded here, so tests, benchmarks and the
demo use files written in exactly its layout (frame level: SequenceExample
with context `id`, `labels` and feature lists `rgb` 1024 bytes / `audio`
128 bytes a frame; video level: Example with `mean_rgb` / `mean_audio`),
drawn from this process:

1. The world (seeded by `seed`): P patterns, each a random direction in rgb
   space (N(0, amp^2) per value) and in audio space, with P the smallest
   number such that P(P-1)/2 >= classes (and at least 8); every class c is
   a distinct unordered pair of patterns (p_c, q_c); a Zipf-like class
   prior (c+1)^-0.7 as in the real, long-tailed label set.
2. A video: T frames, T ~ U[min_frames, max_frames]; 1-3 "true" classes
   drawn from the prior, each placing BOTH its patterns in the same random
   segment of frames; 1-2 "decoy" classes placing their two patterns in
   two DISJOINT segments. Each frame is N(0, noise^2) plus the sum of the
   patterns present, clipped and quantised to uint8 like the real features.
3. Labels are read off the content: class c is a label iff some frame
   holds both p_c and q_c.

So the labels depend on which frames contain which patterns: a decoy has
the same frame-averaged features as a real label, so mean pooling cannot
tell them apart, while a pooling that looks at frames (NetVLAD, DBoF, ...)
can. Video-level files hold the mean of the dequantised frames.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from triptych.errors import UserError
from triptych.files import atomic_write_text
from triptych.video.io import example as pb
from triptych.video.io.tfrecord import write_records
from triptych.video.io.yt8m import AUDIO_DIM, DEQUANT_LUT, RGB_DIM, quantize

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@dataclass
class SynthSpec:
    videos: int = 1000  # training videos
    valid_videos: int | None = None  # default videos // 5
    classes: int | None = None  # None: the generation's (4716 for 2017, 3862 after)
    level: str = "frame"
    generation: str = "2018"  # 2017 (`video_id`), 2018 (`id`), 2019-segments (+ rated segments)
    min_frames: int = 20
    max_frames: int = 60
    shards: int = 1
    seed: int = 0
    noise: float = 0.5
    amp: float = 0.6
    compress: bool = False


class World:
    """The patterns, class pairs and class prior shared by every split."""

    def __init__(self, classes: int, amp: float, seed: int):
        rng = np.random.default_rng([seed, 0])
        P = 8
        while P * (P - 1) // 2 < classes:
            P += 1
        self.num_patterns = P
        pairs = np.array([(a, b) for a in range(P) for b in range(a + 1, P)])
        self.pairs = pairs[rng.choice(len(pairs), classes, replace=False)]  # [C, 2]
        self.rgb = (rng.standard_normal((P, RGB_DIM)) * amp).astype(np.float32)
        self.audio = (rng.standard_normal((P, AUDIO_DIM)) * amp).astype(np.float32)
        prior = (np.arange(classes) + 1.0) ** -0.7
        self.prior = prior / prior.sum()


def _segment(rng, T: int, taken: list[tuple[int, int]]) -> tuple[int, int] | None:
    """A random segment of 2..T/8 frames that overlaps none in `taken`."""
    length = min(T, int(rng.integers(2, max(3, T // 8 + 1))))
    for _ in range(20):
        start = int(rng.integers(0, T - length + 1))
        if all(start + length <= s or start >= e for s, e in taken):
            taken.append((start, start + length))
            return start, start + length
    return None


def make_video(world: World, rng: np.random.Generator, spec: SynthSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rgb uint8 [T, 1024], audio uint8 [T, 128], labels int64 [L]) of one video.

    Segments never overlap, so patterns co-occur only where a true class
    put them; an event that finds no room is left out.
    """
    rgb, audio, labels, _ = make_video_frames(world, rng, spec)
    return rgb, audio, labels


def make_video_frames(world: World, rng: np.random.Generator, spec: SynthSpec):
    """make_video's (rgb, audio, labels) and `both` bool [T, C]: where each class is present."""
    C = len(world.pairs)
    T = int(rng.integers(spec.min_frames, spec.max_frames + 1))
    present = np.zeros((T, world.num_patterns), bool)
    taken: list[tuple[int, int]] = []
    n_true = int(rng.integers(1, 4))
    chosen = rng.choice(C, size=min(C, n_true + 2), replace=False, p=world.prior)
    for c in chosen[:n_true]:
        seg = _segment(rng, T, taken)
        if seg is not None:
            present[seg[0] : seg[1], world.pairs[c]] = True
    for c in chosen[n_true : n_true + int(rng.integers(1, 3))]:
        first = _segment(rng, T, taken)
        second = _segment(rng, T, taken) if first is not None else None
        if second is None:
            continue
        present[first[0] : first[1], world.pairs[c][0]] = True
        present[second[0] : second[1], world.pairs[c][1]] = True
    rgb = rng.standard_normal((T, RGB_DIM), dtype=np.float32) * spec.noise + present @ world.rgb
    audio = rng.standard_normal((T, AUDIO_DIM), dtype=np.float32) * spec.noise + present @ world.audio
    both = present[:, world.pairs[:, 0]] & present[:, world.pairs[:, 1]]  # [T, C]
    labels = np.flatnonzero(both.any(axis=0)).astype(np.int64)
    return quantize(rgb), quantize(audio), labels, both


def video_id(i: int, split: str) -> str:
    """Four characters like the anonymised 2018 ids; longer past 62^4 - 1."""
    chars = []
    n = i
    while True:
        chars.append(_ALPHABET[n % 62])
        n //= 62
        if n == 0 and len(chars) >= 4:
            break
    return split[0] + "".join(reversed(chars))


def rate_segments(both: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> dict:
    """2019-style rated segments of one video: for up to two of its labels,
    up to two 5-frame segments where the class is present (score 1) and up
    to two where it is not (score 0), as context features."""
    from triptych.video.generations import SEGMENT_FRAMES

    T = len(both)
    starts = np.arange(0, T, SEGMENT_FRAMES)
    rated = []
    for c in rng.permutation(labels)[:2]:
        present = np.array([both[s : s + SEGMENT_FRAMES, c].any() for s in starts])
        for pool, score in ((starts[present], 1.0), (starts[~present], 0.0)):
            for s in rng.permutation(pool)[:2]:
                rated.append((int(s), int(c), score))
    rated.sort()
    return {"segment_labels": ("int64", [c for _, c, _ in rated]),
            "segment_start_times": ("int64", [s for s, _, _ in rated]),
            "segment_scores": ("float", [r for _, _, r in rated])}


def encode(vid: str, labels: np.ndarray, rgb: np.ndarray, audio: np.ndarray, level: str,
           id_key: str = "id", extra: dict | None = None) -> bytes:
    context = {id_key: ("bytes", [vid.encode("utf-8")]), "labels": ("int64", labels), **(extra or {})}
    if level == "frame":
        return pb.encode_sequence_example(context, {"rgb": rgb, "audio": audio})
    mean_rgb = DEQUANT_LUT[rgb].mean(axis=0, dtype=np.float32)
    mean_audio = DEQUANT_LUT[audio].mean(axis=0, dtype=np.float32)
    return pb.encode_example({**context, "mean_rgb": ("float", mean_rgb), "mean_audio": ("float", mean_audio)})


def write_split(out: Path, split: str, n: int, world: World, spec: SynthSpec, stream: int) -> list[str]:
    """Write `n` videos as `{split}0000.tfrecord`... shards; returns file names."""
    from triptych.video.generations import GENERATIONS

    rng = np.random.default_rng([spec.seed, stream])
    rate_rng = np.random.default_rng([spec.seed, stream, 2019])  # leaves the frames as 2018's
    generation = GENERATIONS[spec.generation]
    names = []
    per = -(-n // spec.shards) if n else 0
    for shard in range(spec.shards):
        lo, hi = shard * per, min(n, (shard + 1) * per)

        def records(lo=lo, hi=hi):
            for i in range(lo, hi):
                rgb, audio, labels, both = make_video_frames(world, rng, spec)
                extra = rate_segments(both, labels, rate_rng) if generation.segments else None
                yield encode(video_id(i, split), labels, rgb, audio, spec.level, generation.id_key, extra)

        name = f"{split}{shard:04d}.tfrecord" + (".gz" if spec.compress else "")
        write_records(out / name, records(), compress=spec.compress)
        names.append(name)
    return names


def synthesize(out: str | Path, spec: SynthSpec) -> dict:
    """Write train and validate shards and `synth.json` (the spec) into `out`."""
    from triptych.video.generations import GENERATIONS, default_classes

    if spec.level not in ("frame", "video"):
        raise UserError(f"--level must be frame or video, not {spec.level!r}")
    if spec.generation not in GENERATIONS:
        raise UserError(f"--generation must be one of {', '.join(GENERATIONS)}, not {spec.generation!r}")
    if spec.classes is None:
        spec.classes = default_classes(spec.generation)
    if spec.classes < 2 or spec.videos < 0 or spec.shards < 1:
        raise UserError("--classes must be >= 2, --videos >= 0, --shards >= 1")
    if not 1 <= spec.min_frames <= spec.max_frames:
        raise UserError("need 1 <= --min-frames <= --max-frames")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    valid = spec.videos // 5 if spec.valid_videos is None else spec.valid_videos
    world = World(spec.classes, spec.amp, spec.seed)
    files = {
        "train": write_split(out, "train", spec.videos, world, spec, 1),
        "validate": write_split(out, "validate", valid, world, spec, 2) if valid else [],
    }
    summary = {"out": str(out), "files": files, "spec": asdict(spec) | {"valid_videos": valid}}
    atomic_write_text(out / "synth.json", json.dumps(summary, indent=2) + "\n")
    return summary
