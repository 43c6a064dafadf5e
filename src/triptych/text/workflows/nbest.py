"""The n-best workflows: `text rerank fit`, and `text eval` / `text summarize`
with `nbest` or `rerank` set in their `DecodeConfig`.

The reranking algorithm is `triptych.text.generation.rerank`; this module
reads the files, decodes the candidates through the one dispatcher and
stores or scores the result.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from triptych.errors import SettingError
from triptych.text.config import DecodeConfig
from triptych.text.generation.rerank import WEIGHTS_FILE, Reranker, fit_reranker, rerank_all, train_summary_lm
from triptych.text.tokenizer import looks_cjk


def _pairs(cfg, data, split: str, limit: int | None):
    from triptych.text.data import drop_empty, read_pairs

    pairs = drop_empty(read_pairs(data, split=split, source_field=cfg.data.source_field, target_field=cfg.data.target_field), data)
    return pairs[: max(limit, 1)] if limit is not None else pairs


def _candidates(summarizer, documents: list[str], decode: DecodeConfig, nbest: int, data, desc: str):
    from triptych.engine.progress import ProgressBar

    sources = summarizer.encode_documents(documents, str(data))
    bar = ProgressBar(len(sources), desc=desc)
    try:
        return summarizer.candidates(sources, decode, nbest, bar)
    finally:
        bar.close()


def _reranker(summarizer, decode: DecodeConfig) -> tuple[Reranker | None, int]:
    """The checkpoint's fitted reranker when `decode.rerank`, and the n-best size to decode."""
    if not decode.rerank:
        return None, decode.candidates()
    reranker = Reranker.load(summarizer.directory, summarizer.tokenizer.fingerprint())
    return reranker, decode.candidates(int(reranker.meta.get("nbest", decode.beam)))


def fit_on_file(checkpoint, data, *, decode: DecodeConfig, limit: int | None = None, lm_order: int = 3,
                lm_data: str | None = None, device: str = "cpu") -> dict:
    """`triptych text rerank fit`: the n-best lists of a validation file, the
    summary LM of the training file, the fitted weights — saved beside the checkpoint."""
    from triptych.text.data import drop_empty, read_pairs
    from triptych.text.predictor import Summarizer

    decode = decode.replace(rerank=True)  # checks the beam keeps an n-best list
    nbest = decode.nbest if decode.nbest is not None else decode.beam
    if lm_order < 1:
        raise SettingError(f"{{lm_order}} {lm_order}: must be at least 1")
    summarizer = Summarizer(checkpoint, device=device)
    cfg = summarizer.cfg
    pairs = _pairs(cfg, data, "valid", limit)
    lm_path = lm_data or cfg.data.train
    train = drop_empty(read_pairs(lm_path, split="train", source_field=cfg.data.source_field, target_field=cfg.data.target_field), lm_path)
    start = time.perf_counter()
    lm = train_summary_lm(summarizer.tokenizer, [p.target for p in train], order=lm_order)
    lm_seconds = time.perf_counter() - start
    cands = _candidates(summarizer, [p.source for p in pairs], decode, nbest, data, "n-best lists")
    refs = [p.target for p in pairs]
    cjk = looks_cjk(refs)
    meta = {"nbest": nbest, "beam": decode.beam, "length_penalty": decode.length_penalty, "lm_order": lm_order,
            "lm_data": str(lm_path), "fitted_on": str(data)}
    reranker, report = fit_reranker(cands, [p.source for p in pairs], refs, lm, stem=cfg.eval.stem, cjk=cjk, meta=meta)
    reranker.save(checkpoint)
    return {**report, **meta, "cjk": cjk, "lm_summaries": len(train), "lm_seconds": lm_seconds,
            "seconds": time.perf_counter() - start, "saved": str(Path(checkpoint) / WEIGHTS_FILE)}


def evaluate_nbest(checkpoint, data, *, decode: DecodeConfig, limit=None, output=None, stem=True, device="cpu") -> dict:
    """`text eval` with an n-best list: ROUGE of the beam's top candidate or
    of the reranker's choice (then also of the top one, under `beam_top`),
    the oracle (best candidate by ROUGE-L) and the time decoding and
    reranking took."""
    from triptych.text.data import write_lines
    from triptych.text.metrics.corpus import rouge_f1_x100
    from triptych.text.metrics.rouge import RougeScorer
    from triptych.text.predictor import Summarizer

    summarizer = Summarizer(checkpoint, device=device)
    reranker, nbest = _reranker(summarizer, decode)
    pairs = _pairs(summarizer.cfg, data, "test", limit)
    refs = [p.target for p in pairs]
    cjk = looks_cjk(refs)
    start = time.perf_counter()
    cands = _candidates(summarizer, [p.source for p in pairs], decode, nbest, data, "summarizing")
    decode_seconds = time.perf_counter() - start
    summaries = rerank_all(reranker, [p.source for p in pairs], cands) if reranker else [c[0].text for c in cands]
    seconds = time.perf_counter() - start
    result = rouge_f1_x100(summaries, refs, stem=stem, cjk=cjk)
    if reranker is not None:  # the beam's own choice among the same candidates, for comparison
        top = rouge_f1_x100([c[0].text for c in cands], refs, stem=stem, cjk=cjk)
        result["beam_top"] = {**top, "avg_summary_words": sum(len(c[0].text.split()) for c in cands) / len(cands)}
    scorer = RougeScorer(("rougeL",), stem=stem, cjk=cjk)
    oracle = np.mean([max(scorer.score(c.text, r)["rougeL"].fmeasure for c in cs) for cs, r in zip(cands, refs)])
    result.update(pairs=len(pairs), beam=decode.beam, nbest=nbest, rerank=decode.rerank, cjk=cjk, rougeL_oracle=100 * float(oracle),
                  seconds=seconds, decode_seconds=decode_seconds, rerank_seconds=seconds - decode_seconds,
                  checkpoint=str(checkpoint), data=str(data), avg_summary_words=sum(len(s.split()) for s in summaries) / len(summaries))
    if output:
        write_lines(output, summaries)
    return result


def summarize_nbest(summarizer, documents: list[str], decode: DecodeConfig, *, source: str = "input") -> tuple[list[str], list[list[dict]]]:
    """`text summarize` with an n-best list: each document's chosen summary and its candidates."""
    reranker, nbest = _reranker(summarizer, decode)
    cands = summarizer.candidates(summarizer.encode_documents(documents, source), decode, nbest)
    chosen = rerank_all(reranker, documents, cands) if reranker else [c[0].text for c in cands]
    lists = [[{"summary": c.text, "score": c.score, "logprob": c.logprob} for c in cs] for cs in cands]
    return chosen, lists
