"""The generations of the official YouTube-8M files, told apart by their records.

* 2017 (the first Kaggle challenge, 4,716 classes): the video's id is the
  context feature `video_id`.
* 2018 (3,862 classes): the id is `id`; features unchanged.
* 2019 segment-rated validation/test ("2019-segments"): as 2018, plus three
  context lists of equal length: `segment_labels` (int64, a class),
  `segment_start_times` (int64, the first frame of a 5-frame segment; one
  frame a second, so also seconds) and `segment_scores` (float, 1 when the
  rater saw the class in the segment, 0 when not).

A record says which generation it is; a set of files must be of one
generation (a training set that mixed 4,716- and 3,862-class label spaces
would silently train on nonsense), so `GenerationGuard` names two files of
different kinds. The 2019 training data is the 2018 training data: a glob
of 2018 records with 2019 segment-rated ones is also refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from triptych.errors import UserError

SEGMENT_FRAMES = 5  # the 2019 challenge's segment: 5 frames, 5 seconds
SEGMENT_FIELDS = ("segment_labels", "segment_start_times", "segment_scores")


@dataclass(frozen=True)
class Generation:
    name: str
    id_key: str
    num_classes: int
    segments: bool


GENERATIONS = {
    "2017": Generation("2017", "video_id", 4716, False),
    "2018": Generation("2018", "id", 3862, False),
    "2019-segments": Generation("2019-segments", "id", 3862, True),
}
CHOICES = ("auto", *GENERATIONS)


def check_choice(name: str, key: str = "data.generation") -> str:
    if name not in CHOICES:
        raise UserError(f"{key}: '{name}' is not a generation ({', '.join(CHOICES)})")
    return name


def default_classes(generation: str | None) -> int:
    """The class count of a generation (3862 when unknown: the current label space)."""
    g = GENERATIONS.get(generation or "", None)
    return g.num_classes if g is not None else GENERATIONS["2018"].num_classes


def same_label_space(train: str | None, valid: str | None, train_files, valid_files) -> None:
    """Training and validation sets must share classes (2018 training with
    2019 segment-rated validation is the 2019 challenge's own setting)."""
    if train and valid and default_classes(train) != default_classes(valid):
        raise UserError(f"{valid_files}: {valid} records ({default_classes(valid)} classes) cannot validate a "
                        f"model trained on {train_files}: {train} records ({default_classes(train)} classes)")


@dataclass
class Segments:
    """A 2019 record's rated segments, in record order."""

    start: np.ndarray  # int64 [S], first frame of each segment
    label: np.ndarray  # int64 [S], the class rated
    score: np.ndarray  # float32 [S], 1.0 (class present) or 0.0

    def __len__(self) -> int:
        return len(self.start)

    def as_json(self) -> list[dict]:
        return [{"start": int(s), "label": int(c), "score": float(r)}
                for s, c, r in zip(self.start, self.label, self.score)]


def identify(context: dict, error) -> str:
    """The generation of one record from its context keys; `error(msg)` raises."""
    has_id, has_old = "id" in context, "video_id" in context
    present = [k for k in SEGMENT_FIELDS if k in context]
    if has_id and has_old:
        raise error("holds both 'id' (2018+) and 'video_id' (2017): which is the video's id?")
    if not has_id and not has_old:
        raise error("missing 'id' feature (2018+ files) and 'video_id' (2017 files)")
    if present and len(present) != len(SEGMENT_FIELDS):
        missing = [k for k in SEGMENT_FIELDS if k not in context]
        raise error(f"has {', '.join(present)} but not {', '.join(missing)} (2019 segment fields come together)")
    if has_old:
        if present:
            raise error("2019 segment fields in a 2017 record (key 'video_id')")
        return "2017"
    return "2019-segments" if present else "2018"


def read_segments(context: dict, num_classes: int, frames: int | None, error) -> Segments:
    """The segment lists of a 2019 record, checked: kinds, equal lengths,
    starts within the video (when its frames are known), classes in range,
    scores 0 or 1."""
    kinds = {"segment_labels": "int64", "segment_start_times": "int64", "segment_scores": "float"}
    values = {}
    for name, kind in kinds.items():
        got, vals = context[name]
        if got is None:
            vals = np.zeros(0, np.float32 if kind == "float" else np.int64)
        elif got != kind:
            raise error(f"'{name}' must be an {kind} list, got a {got} list")
        values[name] = vals
    lengths = {k: len(v) for k, v in values.items()}
    if len(set(lengths.values())) != 1:
        raise error("segment fields of unequal lengths (" + ", ".join(f"{k} {n}" for k, n in lengths.items()) + ")")
    start, label = values["segment_start_times"], values["segment_labels"]
    score = values["segment_scores"].astype(np.float32)
    bad = np.flatnonzero((label < 0) | (label >= num_classes))
    if len(bad):
        raise error(f"segment {bad[0]}: label {int(label[bad[0]])} outside [0, {num_classes})")
    bad = np.flatnonzero(start < 0)
    if len(bad):
        raise error(f"segment {bad[0]}: start time {int(start[bad[0]])} is negative")
    if frames is not None:
        bad = np.flatnonzero(start >= frames)
        if len(bad):
            raise error(f"segment {bad[0]}: start time {int(start[bad[0]])} is past the video's end ({frames} frames)")
    bad = np.flatnonzero((score != 0) & (score != 1))
    if len(bad):
        raise error(f"segment {bad[0]}: score {float(score[bad[0]])} is not 0 or 1")
    return Segments(start.astype(np.int64), label.astype(np.int64), score)


class GenerationGuard:
    """Remembers the generation of the first record read and where it came
    from; a record of another generation is a UserError naming both files.
    `forced` (not "auto") makes every record prove it is that generation."""

    def __init__(self, forced: str = "auto"):
        self.forced = check_choice(forced, "generation")
        self.generation: str | None = None if forced == "auto" else forced
        self.where: str | None = None

    def check(self, generation: str, path: Path, record: int) -> None:
        here = f"{path} (record {record})"
        if self.generation is None:
            self.generation = generation
        if generation == self.generation:
            self.where = self.where or here
            return
        if self.where is None:  # forced, nothing read yet
            raise UserError(f"{here}: a {generation} record, but the generation asked for is {self.forced}")
        raise UserError(f"mixed generations: {self.where} is a {self.generation} record but {here} is a "
                        f"{generation} record; give files of one generation")
