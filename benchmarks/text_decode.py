"""Decoding sentences/s of triptych's Transformer against Hugging Face `generate`, same run.

The models are those of `text_train.py` (benchmark size: d_model 256, 3+3
layers, 4 heads, FFN 1024, vocabulary 8000), random weights, in eval mode.
The inputs are real documents: the first `--batches` x `--batch-size` of
the Debian descriptions validation split, byte-level BPE (trained here, as
in text_train.py), cut at 256 tokens, batches of 32 (`--batch-size`) in
corpus order, so with their natural padding; `--batch-size 1` decodes one
sentence at a time, as a server answering single requests does. Both
sides decode at most 24 new tokens:

- greedy: `triptych.text.generation.search.greedy` vs `generate(num_beams=1)`;
- beam 4: `beam_search(beam=4, length_penalty=0.6)` vs `generate(num_beams=4,
  length_penalty=0.6)`, one returned sequence a sentence.

An untrained model almost never emits eos (1 of 8,000 ids), so both sides
run the full 24 steps on nearly every sentence: the same work. Each side
decodes all batches once per round, rounds alternate which side goes first,
and each keeps its best round (the one least disturbed by the neighbours on
a shared machine).

HF decodes twice, with each of its attention implementations ("sdpa", its
default, and "eager": explicit matmuls, which triptych's own steps use on
CPU); the peer of each measure is the faster of the two.

triptych's linear layers reorder their weights for oneDNN (`prepacked`)
once per round, as `triptych text eval` does once per file: one
`packed_weights()` context around all the batches, the reordering timed
with them (about 20 ms a round). Called bare, `greedy` reorders them at
every call.

Memory. The process keeps glibc's malloc defaults. The triptych commands
change them (`hardware.keep_freed_memory`: large tensors reuse freed pages,
our greedy 1.08x faster); in one process that speeds HF up as well, more
than us (docs/history/2026-12-07i-vocab-loss-step-attention.md), so both
run on the defaults here: the ratio is the library's, and `triptych text
eval` decodes about 8% faster than this side does.

Precision. "triptych" decodes in float32, as HF does: its ratio is the
same-precision comparison the targets are about. Where this CPU's default
inference dtype is bfloat16 (a CPU with AMX or AVX512-BF16, or TRIPTYCH_INFERENCE_DTYPE=
bfloat16), a fourth side, "triptych-default", decodes as `triptych text
eval` would there, and its ratio is printed beside (`default_ratio`).

Usage: python benchmarks/text_decode.py [--rounds R] [--batches N] [--batch-size B] [--threads N]
Prints a human line per measure on stderr and one JSON line last on stdout,
with "ratio" = the smaller of the greedy and beam-4 speed-ups (triptych
sentences/s over the faster HF's sentences/s).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from text_train import BOS, EOS, PAD, SIZE, VOCAB, build_bart, encode_pairs, load_corpus, pad, train_bpe

from triptych.hardware import default_inference_dtype, describe  # noqa: E402
from triptych.text.generation.search import beam_search, greedy  # noqa: E402  (text_train put src/ on the path)
from triptych.text.models import build_model  # noqa: E402
from triptych.nn.prepacked import packed_weights  # noqa: E402

MAX_NEW, BATCH, LENGTH_PENALTY = 24, 32, 0.6


def ours(model, src, beam):
    if beam == 1:
        return greedy(model, src, bos=BOS, eos=EOS, max_len=MAX_NEW)
    return beam_search(model, src, beam=beam, bos=BOS, eos=EOS, max_len=MAX_NEW, length_penalty=LENGTH_PENALTY)


def hf(model, src, beam):
    with torch.inference_mode():
        return model.generate(
            input_ids=src, attention_mask=src != PAD, num_beams=beam, do_sample=False,
            max_new_tokens=MAX_NEW, length_penalty=LENGTH_PENALTY, early_stopping=False,
            no_repeat_ngram_size=0, num_return_sequences=1, use_cache=True,
            decoder_start_token_id=BOS, bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD,
            forced_bos_token_id=None, forced_eos_token_id=None,
        )  # fmt: skip


def timed(fn, model, batches, beam, dtype) -> float:
    start = time.perf_counter()
    with packed_weights(dtype):  # triptych's layers only: HF's are plain nn.Linear
        for src in batches:
            fn(model, src, beam)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batches", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=BATCH, help="sentences a batch (1: one at a time)")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    rows = load_corpus()
    tok = train_bpe([r["document"] for r in rows] + [r["summary"] for r in rows])
    size = args.batch_size
    docs = [d for d, _ in encode_pairs(rows[: args.batches * size], tok)]
    batches = [pad(docs[i : i + size]) for i in range(0, len(docs), size)]
    n_sent = len(docs)

    model = build_model("transformer", SIZE, VOCAB, PAD).eval()
    sides = {"triptych": (model, ours), "hf": (build_bart("sdpa").eval(), hf), "hf-eager": (build_bart("eager").eval(), hf)}
    dtypes = {"triptych": "float32"}  # the others: HF ignores the context; None = this CPU's default
    if default_inference_dtype() != "float32":
        sides["triptych-default"] = (model, ours)
    result = {"benchmark": "text_decode", "threads": args.threads, "sentences": n_sent, "batch_size": size,
              "max_new_tokens": MAX_NEW}
    ratios = []
    for beam, label in ((1, "greedy"), (4, "beam4")):
        for model, fn in sides.values():
            fn(model, batches[0][:4], beam)  # warm-up
        times: dict[str, list[float]] = {name: [] for name in sides}
        for r in range(args.rounds):
            for name in list(sides) if r % 2 == 0 else list(sides)[::-1]:
                model, fn = sides[name]
                times[name].append(timed(fn, model, batches, beam, dtypes.get(name)))
        speed = {name: n_sent / min(t) for name, t in times.items()}
        for name in sides:
            result[f"{label}_{name.replace('-', '_')}_sent_per_s"] = round(speed[name], 1)
        peer = max(("hf", "hf-eager"), key=speed.get)
        result[f"{label}_peer"] = peer
        result[f"{label}_ratio"] = round(speed["triptych"] / speed[peer], 3)
        ratios.append(result[f"{label}_ratio"])
        if "triptych-default" in speed:
            result[f"{label}_default_ratio"] = round(speed["triptych-default"] / speed[peer], 3)
        print(f"{label:7s} triptych {speed['triptych']:7.1f} sent/s  hf {speed['hf']:7.1f} sent/s  "
              f"hf-eager {speed['hf-eager']:7.1f} sent/s  ratio {result[f'{label}_ratio']:.2f}",
              file=sys.stderr)  # fmt: skip
        if "triptych-default" in speed:
            print(f"{label:7s} triptych-default ({default_inference_dtype()}) {speed['triptych-default']:7.1f} sent/s  "
                  f"ratio {result[f'{label}_default_ratio']:.2f}", file=sys.stderr)
    result["ratio"] = min(ratios)
    if "triptych-default" in sides:
        result["default_ratio"] = min(result["greedy_default_ratio"], result["beam4_default_ratio"])
    print(json.dumps({**result, "machine": describe()}))


if __name__ == "__main__":
    main()
