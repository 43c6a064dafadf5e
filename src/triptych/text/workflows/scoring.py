"""Scoring text without a model: `text rouge` (predictions against
references), and the baselines `text baseline {lead,textrank,copy}`.

Each returns the result as a dict (ROUGE F1 x 100 under rouge1, rouge2,
rougeL, rougeLsum) and, for the baselines, the summaries; the command prints.
"""

from __future__ import annotations

from triptych.errors import UserError
from triptych.text.data import drop_empty, read_pairs
from triptych.text.tokenizer import looks_cjk


def _at_least_one(**values) -> None:
    for name, value in values.items():
        if value is not None and value < 1:
            raise UserError(f"{name} {value}: must be at least 1")


def score_copy(data, metrics: tuple[str, ...]) -> dict:
    """The sources themselves scored as outputs: what a translation model must be far above."""
    from triptych.text.metrics.bleu import translation_scores
    from triptych.text.metrics.corpus import rouge_f1_x100

    pairs = drop_empty(read_pairs(data, split="test"), data)
    sources, refs = [p.source for p in pairs], [p.target for p in pairs]
    result = rouge_f1_x100(sources, refs)
    result.update(translation_scores(sources, refs, metrics), pairs=len(pairs), data=str(data))
    return result


def read_summary_lines(path) -> list[str]:
    from triptych.files import read_lines

    lines = [text for _, text in read_lines(path)]
    if not lines:
        raise UserError(f"{path}: empty file")
    return lines


def score_files(pred, ref, *, stem: bool = True, cjk: bool = False, bootstrap: bool = False) -> dict:
    """ROUGE of one prediction a line against one reference a line: F1 x 100
    under each key, precision/recall/F1 under `detail`, and 95% intervals
    under `intervals` with `bootstrap`."""
    from triptych.text.metrics import corpus, rouge

    preds, refs = read_summary_lines(pred), read_summary_lines(ref)
    if len(preds) != len(refs):
        raise UserError(f"{pred} has {len(preds)} lines but {ref} has {len(refs)}")
    per_pair = rouge.score_pairs(preds, refs, stem=stem, cjk=cjk or looks_cjk(refs))
    means = corpus.mean_scores(per_pair)
    result = {k: 100 * v.fmeasure for k, v in means.items()}
    result["pairs"] = len(preds)
    result["detail"] = {k: {"precision": 100 * v.precision, "recall": 100 * v.recall, "f1": 100 * v.fmeasure} for k, v in means.items()}
    if bootstrap:
        intervals = corpus.bootstrap_intervals(per_pair)
        result["intervals"] = {k: {kk: 100 * vv for kk, vv in v.items()} for k, v in intervals.items()}
    return result


def _score(summaries: list[str], pairs) -> dict:
    from triptych.text.metrics.corpus import rouge_f1_x100

    refs = [p.target for p in pairs]
    return {**rouge_f1_x100(summaries, refs, stem=True, cjk=looks_cjk(refs)), "pairs": len(pairs)}


def score_lead(data, words: int | None = 10) -> tuple[dict, list[str]]:
    """Lead: the first `words` words of the first sentence."""
    from triptych.text.baselines.extractive import lead

    _at_least_one(words=words)
    pairs = drop_empty(read_pairs(data, split="data"), data)
    summaries = [lead(p.source, words) for p in pairs]
    return _score(summaries, pairs), summaries


def score_textrank(data, sentences: int = 1, words: int | None = None) -> tuple[dict, list[str]]:
    """TextRank's top `sentences` in document order, cut to `words` words when given."""
    from triptych.text.baselines.textrank import textrank_many

    _at_least_one(sentences=sentences, words=words)
    pairs = drop_empty(read_pairs(data, split="data"), data)
    summaries = textrank_many([p.source for p in pairs], sentences=sentences, words=words)
    return {**_score(summaries, pairs), "sentences": sentences, "words": words}, summaries
