"""`triptych text compare RUN_DIR...`: the summarization comparison table from run directories.

One row per run: ROUGE-1/2/L (F1 x 100, stemmed) on the test file,
parameters, training minutes and decoding sentences/s at beam 4; above them
Lead and TextRank, computed on the same test file. A run's scores come
from the evaluation `triptych text eval` kept beside its best checkpoint
(`triptych.text.workflows.evaluate`) when one matches the test file (by SHA-256) and
the beam — with the checkpoint's own decoding settings if one was kept,
else the latest (the row records its settings, e.g. a tuned length
penalty; `--length-penalty` asks for one alpha for every run); otherwise the run is evaluated now with its own settings (full
test file, progress on stderr) and the result is kept, so a second
`compare` is instant.

Training minutes are the run's wall-clock time as its metrics log records
it (`elapsed` of the last record, over every resumed session).
Sentences/s is the test file's pair count over the time to summarize it
all (tokenising, batching and decoding), on the machine of that evaluation.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

from triptych.errors import UserError
from triptych.text.config import DecodeError

KEYS = ("rouge1", "rouge2", "rougeL")


def find_checkpoint(path) -> tuple[Path, Path]:
    """(run directory, checkpoint to score) for a run directory or a checkpoint directory."""
    from triptych.engine.checkpoint import latest_checkpoint

    p = Path(path)
    if not p.is_dir():
        raise UserError(f"{p}: no such run directory")
    if (p / "meta.json").is_file():  # a checkpoint: runs/x/best or runs/x/checkpoints/step-N
        run = p.parent.parent if p.parent.name == "checkpoints" else p.parent
        return run, p
    if (p / "best" / "meta.json").is_file():
        return p, p / "best"
    latest = latest_checkpoint(p)
    if latest is None:
        raise UserError(f"{p}: not a run directory (no best/ or checkpoints/ with a checkpoint)")
    return p, latest


def training_minutes(run: Path) -> float | None:
    """Wall-clock minutes of the run, from the last `elapsed` in its metrics.jsonl."""
    elapsed = None
    try:
        lines = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in lines:
        try:
            value = json.loads(line).get("elapsed")
        except (ValueError, AttributeError):
            continue
        if isinstance(value, (int, float)):
            elapsed = value if elapsed is None else max(elapsed, value)
    return None if elapsed is None else elapsed / 60.0


def describe_model(model: dict) -> str:
    """A short label for a `model:` config section, e.g. "rnn bahdanau +copy"."""
    words = [str(model.get("name", "transformer"))]
    for key in ("cell", "attention"):
        if model.get(key):
            words.append(str(model[key]))
    if model.get("copy"):
        words.append("+copy")
    return " ".join(words)


def run_row(path, data: Path, data_sha256: str, beam: int, device: str, length_penalty: float | None = None) -> dict:
    """The table row of one run, evaluating its checkpoint when no kept result matches."""
    from triptych.text.workflows.evaluate import evaluate_checkpoint, load_result
    from triptych.text.predictor import Summarizer

    run, checkpoint = find_checkpoint(path)
    summarizer = Summarizer(checkpoint)
    decode = replace(summarizer.cfg.decode, beam=beam)
    match: tuple[str, ...] = ("beam",)
    if length_penalty is not None:
        decode, match = replace(decode, length_penalty=length_penalty), ("beam", "length_penalty")
    result = load_result(checkpoint, data_sha256, asdict(decode), match=match)
    source = "kept"
    if result is None:
        print(f"triptych: {checkpoint}: no kept evaluation on {data} at beam {beam}; evaluating now", file=sys.stderr)
        result = evaluate_checkpoint(checkpoint, data, decode=decode, device=device)
        source = "evaluated"
    params = sum(p.numel() for p in summarizer.model.parameters())  # shared (tied) weights counted once
    return {
        "system": run.name, "model": describe_model(summarizer.cfg.model), "run_dir": str(run), "checkpoint": str(checkpoint),
        **{k: result[k] for k in KEYS}, "params": params, "train_minutes": training_minutes(run),
        "sentences_per_s": result["sentences_per_s"], "pairs": result["pairs"], "result": source, "decode": result["decode"],
    }


def extractive_rows(data: Path) -> list[dict]:
    """Lead (first sentence cut to 10 words) and TextRank (top sentence) on `data`."""
    from triptych.text.data import drop_empty, read_pairs
    from triptych.text.baselines.extractive import lead
    from triptych.text.metrics.corpus import rouge_f1_x100
    from triptych.text.baselines.textrank import textrank_many
    from triptych.text.tokenizer import looks_cjk

    pairs = drop_empty(read_pairs(data, split="test"), data)
    documents, references = [p.source for p in pairs], [p.target for p in pairs]
    rows = []
    for system, label, summarize in (
        ("Lead", "first sentence, 10 words", lambda: [lead(d, 10) for d in documents]),
        ("TextRank", "top sentence", lambda: textrank_many(documents, sentences=1)),
    ):
        start = time.perf_counter()
        summaries = summarize()
        seconds = max(time.perf_counter() - start, 1e-9)
        scores = rouge_f1_x100(summaries, references, stem=True, cjk=looks_cjk(references))  # Chinese: by characters
        rows.append({"system": system, "model": label, **{k: scores[k] for k in KEYS}, "params": 0,
                     "train_minutes": 0.0, "sentences_per_s": len(pairs) / seconds, "pairs": len(pairs)})
    return rows


def compare(run_dirs: list[str], data: str | None = None, beam: int = 4, device: str = "cpu", length_penalty: float | None = None) -> dict:
    """The whole table as a dict: {"data", "beam", "rows": [...]}, extractive rows first."""
    from triptych import config as configs
    from triptych.engine.checkpoint import load_checkpoint_meta
    from triptych.text.config import TextConfig
    from triptych.text.workflows.evaluate import file_sha256

    if beam < 1:
        raise DecodeError(f"{{beam}} {beam}: must be at least 1")
    if data is None:  # the first run's own test split
        _, checkpoint = find_checkpoint(run_dirs[0])
        _, cfg_dict = load_checkpoint_meta(checkpoint, expected_domain="text")
        data = configs.from_dict(TextConfig, cfg_dict, str(checkpoint / "config.yaml")).data.test
    path = Path(data)
    sha = file_sha256(path)
    rows = extractive_rows(path)
    rows += [run_row(r, path, sha, beam, device, length_penalty) for r in run_dirs]
    return {"data": str(path), "data_sha256": sha, "beam": beam, "rows": rows}


def format_rows(table: dict, markdown: bool = False) -> tuple[tuple, list[tuple]]:
    """(header, rows) of printable cells."""
    header = ("system", "model", "R-1", "R-2", "R-L", "params", "train min", f"sent/s (beam {table['beam']})")
    rows = []
    for r in table["rows"]:
        minutes = r["train_minutes"]
        rows.append((
            r["system"], r["model"], *(f"{r[k]:.2f}" for k in KEYS),
            f"{r['params'] / 1e6:.2f}M" if r["params"] else "-",
            "-" if minutes is None else (f"{minutes:.1f}" if minutes else "0"),
            f"{r['sentences_per_s']:.1f}" if r["sentences_per_s"] < 1e4 else f"{r['sentences_per_s']:.3g}",
        ))
    return header, rows


def markdown_table(header: tuple, rows: list[tuple]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
