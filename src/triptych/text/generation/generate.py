"""THE decoding dispatcher: a `DecodeConfig` in, tokens out.

Every caller that generates text — `text summarize` and `text eval`, the
server, captions, attention maps, the report's pictures — comes here with a
`DecodeConfig`, so the choice between the strategies of `search.py` is
written once. A new strategy is a function in `search.py`, a field of
`DecodeConfig` (checked in its `__post_init__`) and a branch in `_search`.
"""

from __future__ import annotations

import torch

from triptych.nn.prepacked import packed_weights
from triptych.text.config import DecodeConfig
from triptych.text.generation.search import Hypothesis, beam_search, greedy


def _common(decode: DecodeConfig, bos: int, eos: int) -> dict:
    return dict(bos=bos, eos=eos, max_len=decode.max_len, min_len=decode.min_len, no_repeat_ngram=decode.no_repeat_ngram)


def _search(model, src: torch.Tensor, decode: DecodeConfig, *, bos: int, eos: int, nbest: int) -> list[list[Hypothesis]]:
    """Each row's candidates, best first: `nbest` from beam search, or one
    (greedy, with score and logprob left at 0) when the beam is 1."""
    common = _common(decode, bos, eos)
    if decode.beam <= 1:
        return [[Hypothesis(list(t), 0.0, 0.0)] for t in greedy(model, src, **common)]
    return beam_search(model, src, beam=decode.beam, nbest=nbest, length_penalty=decode.length_penalty, **common)


def generate(model, src: torch.Tensor, decode: DecodeConfig, *, bos: int, eos: int) -> list[list[int]]:
    """src (B, S) token ids (or images, for captions) -> each row's chosen tokens
    (without bos and eos)."""
    return [h[0].tokens for h in _search(model, src, decode, bos=bos, eos=eos, nbest=1)]


def generate_nbest(model, src: torch.Tensor, decode: DecodeConfig, *, bos: int, eos: int, nbest: int | None = None) -> list[list[Hypothesis]]:
    """src (B, S) -> each row's `nbest` (default `decode.candidates()`) hypotheses,
    best GNMT score first: the candidates a reranker chooses among."""
    return _search(model, src, decode, bos=bos, eos=eos, nbest=nbest or decode.candidates())


@torch.inference_mode()
@packed_weights()  # packed once for all the batches
def decode_documents(model, tokenizer, sources: list[list[int]], decode: DecodeConfig, *, device, nbest: int | None = None,
                     progress=None) -> list:
    """Already-encoded documents decoded in length-sorted batches of
    `decode.batch_size` (little padding), returned in the input order: each
    one's text, or with `nbest`, its list of `nbest` hypotheses."""
    from triptych.text.task import pad

    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    out: list = [None] * len(sources)
    for start in range(0, len(order), decode.batch_size):
        chunk = order[start : start + decode.batch_size]
        src = pad([sources[i] for i in chunk], tokenizer.pad_id).to(device)  # (b, S)
        if nbest is None:
            tokens = generate(model, src, decode, bos=tokenizer.bos_id, eos=tokenizer.eos_id)
            results = tokenizer.decode_batch([list(t) for t in tokens])
        else:
            results = generate_nbest(model, src, decode, bos=tokenizer.bos_id, eos=tokenizer.eos_id, nbest=nbest)
        for i, r in zip(chunk, results):
            out[i] = r
        if progress is not None:
            progress.update(len(chunk))
    return out
