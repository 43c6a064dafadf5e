"""`triptych text eval`: summarize a test file with a checkpoint and score it with ROUGE."""

from __future__ import annotations

import time


def evaluate_checkpoint(checkpoint, data, *, decode_args=None, limit=None, output=None, stem=True, device="cpu") -> dict:
    from triptych.engine.progress import ProgressBar
    from triptych.text.commands import decode_config, write_lines
    from triptych.text.data import drop_empty, read_pairs
    from triptych.text.inference import Summarizer, summarize_ids
    from triptych.text.rouge import rouge_f1_x100
    from triptych.text.tokenizer import looks_cjk

    summarizer = Summarizer(checkpoint, device=device)
    cfg = summarizer.cfg
    pairs = read_pairs(data, source_field=cfg.data.source_field, target_field=cfg.data.target_field, split="test")
    pairs = drop_empty(pairs, data)
    if limit is not None:
        pairs = pairs[: max(limit, 0)] or pairs[:1]
    decode = decode_config(decode_args, cfg.decode) if decode_args is not None else cfg.decode
    start = time.perf_counter()
    sources = summarizer.encode_documents([p.source for p in pairs], str(data))
    bar = ProgressBar(len(sources), desc="summarizing")
    try:
        summaries = summarize_ids(summarizer.model, summarizer.tokenizer, sources, decode, device=summarizer.device, progress=bar)
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    refs = [p.target for p in pairs]
    result = rouge_f1_x100(summaries, refs, stem=stem, cjk=looks_cjk(refs))  # Chinese is scored by characters
    result.update(pairs=len(pairs), beam=decode.beam, seconds=seconds, checkpoint=str(checkpoint), data=str(data))
    result["avg_summary_words"] = sum(len(s.split()) for s in summaries) / len(summaries)
    if output:
        write_lines(output, summaries)
    return result
