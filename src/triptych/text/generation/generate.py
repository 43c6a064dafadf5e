"""THE decoding dispatcher: a `DecodeConfig` in, tokens out.

Every caller that generates text — `text summarize` and `text eval`, the
server, captions, attention maps, the report's pictures — comes here with a
`DecodeConfig`, so the choice between the strategies of `search.py` is
written once. A new strategy is a function in `search.py`, a field of
`DecodeConfig` (checked in its `__post_init__`; the `text` commands take it
as a flag) and a branch in `_search`: top-k / top-p sampling came in so.
"""

from __future__ import annotations

import torch

from triptych.nn.prepacked import packed_weights
from triptych.text.config import DecodeConfig
from triptych.text.generation.search import Hypothesis, beam_search, greedy, sample


def _common(decode: DecodeConfig, bos: int, eos: int) -> dict:
    return dict(bos=bos, eos=eos, max_len=decode.max_len, min_len=decode.min_len, no_repeat_ngram=decode.no_repeat_ngram)


def _generator(decode: DecodeConfig, device) -> torch.Generator | None:
    """The draws of a seeded sampling run (None: torch's global generator)."""
    return torch.Generator(device=device).manual_seed(decode.seed) if decode.sampling and decode.seed is not None else None


def _search(model, src: torch.Tensor, decode: DecodeConfig, *, bos: int, eos: int, nbest: int,
            generator: torch.Generator | None = None) -> list[list[Hypothesis]]:
    """Each row's candidates, best first: one drawn when sampling (top-k /
    top-p), `nbest` from beam search, or one greedy when the beam is 1 (score
    and logprob left at 0 for the last two)."""
    common = _common(decode, bos, eos)
    if decode.sampling:
        generator = generator or _generator(decode, src.device)
        tokens, _ = sample(model, src, top_k=decode.top_k, top_p=decode.top_p, generator=generator, **common)
        return [[Hypothesis(list(t), 0.0, 0.0)] for t in tokens]
    if decode.beam <= 1:
        return [[Hypothesis(list(t), 0.0, 0.0)] for t in greedy(model, src, **common)]
    return beam_search(model, src, beam=decode.beam, nbest=nbest, length_penalty=decode.length_penalty, **common)


def generate(model, src: torch.Tensor, decode: DecodeConfig, *, bos: int, eos: int,
             generator: torch.Generator | None = None) -> list[list[int]]:
    """src (B, S) token ids (or images, for captions) -> each row's chosen tokens
    (without bos and eos). `generator`: the draws when sampling (default: one
    seeded with `decode.seed`)."""
    return [h[0].tokens for h in _search(model, src, decode, bos=bos, eos=eos, nbest=1, generator=generator)]


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
    from triptych.text.data import pad

    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    out: list = [None] * len(sources)
    generator = _generator(decode, device)  # one stream of draws for all the batches
    for start in range(0, len(order), decode.batch_size):
        chunk = order[start : start + decode.batch_size]
        src = pad([sources[i] for i in chunk], tokenizer.pad_id).to(device)  # (b, S)
        if nbest is None:
            tokens = generate(model, src, decode, bos=tokenizer.bos_id, eos=tokenizer.eos_id, generator=generator)
            results = tokenizer.decode_batch([list(t) for t in tokens])
        else:
            results = generate_nbest(model, src, decode, bos=tokenizer.bos_id, eos=tokenizer.eos_id, nbest=nbest)
        for i, r in zip(chunk, results):
            out[i] = r
        if progress is not None:
            progress.update(len(chunk))
    return out
