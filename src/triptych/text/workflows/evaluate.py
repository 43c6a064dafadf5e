"""`triptych text eval`: summarize a test file with a checkpoint and score it with ROUGE.

Every full evaluation is also kept beside the weights it scored, as
``<checkpoint>/eval/<key>.json`` (the key: data file, decoding settings,
limit), with the data file's SHA-256, the checkpoint's step and the decoding
speed; `triptych text compare` reads these instead of decoding again. A
checkpoint directory is replaced as a whole when it changes (e.g. a new
`best/`), so a kept result never outlives the weights it describes.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

from triptych.text.config import DecodeConfig


def file_sha256(path) -> str:
    from triptych.files import require_file

    digest = hashlib.sha256()
    with open(require_file(path), "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def result_key(data_sha256: str, decode: dict, limit, stem: bool) -> str:
    """The file name (without .json) under which an evaluation is kept."""
    spec = json.dumps({"data": data_sha256, "decode": decode, "limit": limit, "stem": stem}, sort_keys=True)
    return f"beam{decode['beam']}-{hashlib.sha256(spec.encode()).hexdigest()[:16]}"


def save_result(checkpoint, result: dict) -> Path | None:
    """Keep `result` in <checkpoint>/eval/; a checkpoint we cannot write to only costs a warning."""
    from triptych.files import atomic_write_text

    path = Path(checkpoint) / "eval" / (result_key(result["data_sha256"], result["decode"], result["limit"], result["stem"]) + ".json")
    try:
        atomic_write_text(path, json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    except OSError as e:
        print(f"triptych: {path}: could not keep the result ({e.strerror or e})", file=sys.stderr)
        return None
    return path


def load_result(checkpoint, data_sha256: str, decode: dict, limit=None, stem: bool = True, match: tuple[str, ...] = ()) -> dict | None:
    """A kept result for these settings and the checkpoint's current step, or None.

    With `match` (decoding keys, e.g. ("beam",)), when none was kept for
    exactly `decode`, the latest kept that agrees with `decode` on those keys
    is taken instead (its other settings may differ: the result records them).
    """
    from triptych.engine.checkpoint import load_checkpoint_meta

    folder = Path(checkpoint) / "eval"
    exact = folder / (result_key(data_sha256, decode, limit, stem) + ".json")
    others = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True) if match and folder.is_dir() else []
    meta, _ = load_checkpoint_meta(checkpoint, expected_domain="text")
    keys = match or tuple(decode)
    for path in [exact, *others]:
        try:
            result = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if (isinstance(result, dict) and result.get("step") == meta.get("step") and result.get("data_sha256") == data_sha256
                and result.get("limit") == limit and result.get("stem") == stem and "rougeL" in result
                and all(result.get("decode", {}).get(k) == decode[k] for k in keys)):
            return result
    return None


def evaluate_checkpoint(checkpoint, data, *, decode: DecodeConfig | None = None, limit=None, output=None, stem=True, device="cpu",
                        save=True, metrics=("rouge",)) -> dict:
    """Summarize `data` with `checkpoint` as `decode` says (default: the
    checkpoint's own settings) and score the summaries; with `decode.nbest`
    or `decode.rerank`, the n-best workflow (`nbest.evaluate_nbest`)."""
    from triptych.engine.progress import ProgressBar
    from triptych.text.data import drop_empty, read_pairs, write_lines
    from triptych.text.predictor import Summarizer

    if decode is not None and (decode.rerank or decode.nbest is not None):
        from triptych.text.workflows.nbest import evaluate_nbest

        return evaluate_nbest(checkpoint, data, decode=decode, limit=limit, output=output, stem=stem, device=device)
    from triptych.text.metrics.corpus import rouge_f1_x100
    from triptych.text.tokenizer import looks_cjk

    summarizer = Summarizer(checkpoint, device=device)
    cfg = summarizer.cfg
    pairs = read_pairs(data, source_field=cfg.data.source_field, target_field=cfg.data.target_field, split="test")
    pairs = drop_empty(pairs, data)
    if limit is not None:
        pairs = pairs[: max(limit, 0)] or pairs[:1]
    decode = decode or cfg.decode
    start = time.perf_counter()
    bar = ProgressBar(len(pairs), desc="summarizing")
    try:
        summaries = summarizer.summarize([p.source for p in pairs], decode, str(data), progress=bar)
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    refs = [p.target for p in pairs]
    result = rouge_f1_x100(summaries, refs, stem=stem, cjk=looks_cjk(refs))  # Chinese is scored by characters
    if set(metrics) - {"rouge"}:  # translation: BLEU and chrF by sacrebleu, beside ROUGE
        from triptych.text.metrics.bleu import translation_scores

        result.update(translation_scores(summaries, refs, tuple(metrics)))
    result.update(pairs=len(pairs), beam=decode.beam, seconds=seconds, checkpoint=str(checkpoint), data=str(data))
    result["avg_summary_words"] = sum(len(s.split()) for s in summaries) / len(summaries)
    result.update(sentences_per_s=len(pairs) / max(seconds, 1e-9), device=str(device), decode=asdict(decode),
                  limit=limit, stem=stem, step=summarizer.meta.get("step"), data_sha256=file_sha256(data))
    if output:
        write_lines(output, summaries)
    if save:
        save_result(checkpoint, result)
    return result
