"""Summarization corpora: JSONL or parallel .source/.target files, and batching.

Reading is strict because a summarizer trained on a silently mangled corpus
is worse than one that refused to start: every problem is a `UserError`
naming the file and line. Empty documents are the one exception — real
corpora have a few — they are skipped with a count when training.

Batches are planned by token budget over length-sorted buckets, so a batch
of short documents holds many and a batch of long ones few, and padding
stays small; the plan is a pure function of (seed, epoch) as the engine's
`--resume` and DDP sharding require.
"""

from __future__ import annotations

import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path

from triptych.errors import UserError, where
from triptych.files import atomic_write_text, check_unicode, read_lines, require_file

# Field pairs recognised when the config names none, in this order.
KNOWN_FIELDS = [("document", "summary"), ("article", "highlights"), ("text", "summary"), ("source", "target")]


@dataclass
class Pair:
    source: str
    target: str


def _is_jsonl(path: Path) -> bool:
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    return name.endswith((".jsonl", ".json"))


def _pick_fields(record: dict, path: Path, line: int, source_field: str | None, target_field: str | None):
    if source_field or target_field:
        return source_field or "document", target_field or "summary"
    for pair in KNOWN_FIELDS:
        if pair[0] in record:
            return pair
    raise UserError(
        f"{where(path, line)}: no document field; expected one of "
        f"{', '.join(p[0] for p in KNOWN_FIELDS)} (or set data.source_field)"
    )


def read_jsonl(path, source_field=None, target_field=None, need_target=True) -> list[Pair]:
    path = Path(path)
    pairs: list[Pair] = []
    fields = None
    for number, line in read_lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{where(path, number)}: not valid JSON ({e.msg})") from None
        if not isinstance(record, dict):
            raise UserError(f"{where(path, number)}: expected a JSON object, got {type(record).__name__}")
        if fields is None:
            fields = _pick_fields(record, path, number, source_field, target_field)
        src_key, tgt_key = fields
        if src_key not in record:
            raise UserError(f"{where(path, number)}: missing field '{src_key}'")
        if need_target and tgt_key not in record:
            raise UserError(f"{where(path, number)}: missing field '{tgt_key}'")
        source, target = record[src_key], record.get(tgt_key, "")
        for key, value in ((src_key, source), (tgt_key, target)):
            if not isinstance(value, str):
                raise UserError(f"{where(path, number)}: field '{key}' must be a string, got {type(value).__name__}")
            check_unicode(value, f"{where(path, number)}: field '{key}'")
        pairs.append(Pair(source, target))
    return pairs


def _target_path(source_path: Path) -> Path:
    name = source_path.name
    gz = name.endswith(".gz")
    stem = name[:-3] if gz else name
    return source_path.with_name(stem[: -len(".source")] + ".target" + (".gz" if gz else ""))


def read_parallel(source_path, need_target=True) -> list[Pair]:
    source_path = Path(source_path)
    sources = [text for _, text in read_lines(source_path)]
    if not need_target:
        return [Pair(s, "") for s in sources]
    target_path = _target_path(source_path)
    require_file(target_path, "target file (the .target beside the .source)")
    targets = [text for _, text in read_lines(target_path)]
    if len(sources) != len(targets):
        raise UserError(f"{source_path}: {len(sources)} lines but {target_path} has {len(targets)}")
    return [Pair(s, t) for s, t in zip(sources, targets)]


def read_pairs(path, *, source_field=None, target_field=None, need_target=True, split="data") -> list[Pair]:
    """Read a corpus file; `need_target=False` for documents to summarize."""
    path = require_file(path, f"{split} file")
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    if name.endswith(".source"):
        pairs = read_parallel(path, need_target)
    elif _is_jsonl(path):
        pairs = read_jsonl(path, source_field, target_field, need_target)
    else:
        raise UserError(f"{path}: unknown format; expected .jsonl, .source (with its .target), optionally .gz")
    if not pairs:
        raise UserError(f"{path}: empty file, no records")
    return pairs


def drop_empty(pairs: list[Pair], path, *, need_target=True) -> list[Pair]:
    """Skip pairs with an empty document (or summary), reporting how many."""
    kept = [p for p in pairs if p.source.strip() and (p.target.strip() or not need_target)]
    skipped = len(pairs) - len(kept)
    if not kept:
        raise UserError(f"{path}: every document is empty or whitespace-only")
    if skipped:
        print(f"triptych: {path}: skipped {skipped} empty document(s) of {len(pairs)}", file=sys.stderr)
    return kept


def read_documents(path) -> tuple[list[str], str]:
    """Documents to summarize: JSONL (or .source) with a document field, or
    plain text with one document a line. Returns them and the name to report."""
    path = Path(path)
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    if name.endswith((".jsonl", ".json", ".source")):
        pairs = read_pairs(path, need_target=False, split="input")
    else:
        pairs = [Pair(text, "") for _, text in read_lines(path)]
        if not pairs:
            raise UserError(f"{path}: empty file, no documents")
    return [p.source for p in drop_empty(pairs, path, need_target=False)], str(path)


def write_lines(path, lines: list[str]) -> None:
    """One summary a line (newlines inside a summary become spaces), written atomically."""
    atomic_write_text(path, "".join(line.replace("\n", " ") + "\n" for line in lines))


def pad(rows: list[list[int]], pad_id: int):
    """Token lists -> one (len(rows), longest) LongTensor, right-padded with `pad_id`."""
    import torch

    width = max(len(r) for r in rows)
    out = torch.full((len(rows), width), pad_id, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return out


def plan_token_batches(
    source_lengths: list[int],
    target_lengths: list[int],
    *,
    max_tokens: int,
    seed: int,
    epoch: int,
    bucket_noise: float = 0.1,
    max_sentences: int | None = None,
) -> list[list[int]]:
    """Batches of indices whose padded size (source + target) stays within `max_tokens`.

    Examples are sorted by length with a little per-epoch noise, so that
    batches differ between epochs yet each holds similar lengths; the batch
    order is then shuffled. Deterministic in (seed, epoch).
    """
    rng = random.Random(seed * 1_000_003 + epoch)
    keys = [
        (s + rng.uniform(-bucket_noise, bucket_noise) * s, t, i)
        for i, (s, t) in enumerate(zip(source_lengths, target_lengths))
    ]
    keys.sort()
    batches: list[list[int]] = []
    batch: list[int] = []
    max_src = max_tgt = 0
    for _, _, i in keys:
        s, t = source_lengths[i], target_lengths[i]
        new_src, new_tgt = max(max_src, s), max(max_tgt, t)
        too_big = (len(batch) + 1) * (new_src + new_tgt) > max_tokens
        too_many = max_sentences is not None and len(batch) >= max_sentences
        if batch and (too_big or too_many):
            batches.append(batch)
            batch, new_src, new_tgt = [], s, t
        batch.append(i)
        max_src, max_tgt = new_src, new_tgt
    if batch:
        batches.append(batch)
    rng.shuffle(batches)
    return batches
