"""One-sentence decoding under two packing size rules, side by side in one process.

`triptych.nn.prepacked.BIG_WEIGHT` is the weight size (entries) from which
a linear layer goes through its packed oneDNN copy whatever the rows; below
it, products of fewer than `MIN_MACS` multiply-adds keep MKL's `F.linear`.
Where the crossover lies depends on the CPU (the module docstring), so this
times triptych's own decoding at each candidate value, alternating which
goes first each round, and prints the median of each with the ratio
against the first value given (`--sizes`; > 1: faster than it).

The model and documents are `text_decode.py`'s (benchmark-size Transformer,
random weights, the Debian descriptions validation split, byte-level BPE),
decoded one sentence at a time (a server's single requests), 24 new tokens
at most, one `packed_weights()` context a pass, greedy and beam 4, with
float32 packed copies (`--dtype bfloat16`: bf16 copies, the default
inference path where the CPU has native bf16 products).

Usage: python benchmarks/decode_packing.py [--sizes 1048576,262144] [--documents 40] [--rounds 9] [--dtype float32|bfloat16] [--threads N]
Prints a human line per search on stderr and one JSON line last on stdout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from text_decode import ours
from text_train import SIZE, VOCAB, PAD, encode_pairs, load_corpus, pad, train_bpe

from triptych.hardware import describe  # noqa: E402  (text_train put src/ on the path)
from triptych.nn import prepacked  # noqa: E402
from triptych.text.models import build_model  # noqa: E402


def one_pass(model, docs, beam: int, dtype: str) -> float:
    start = time.perf_counter()
    with prepacked.packed_weights(dtype):
        for doc in docs:
            ours(model, pad([doc]), beam)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default=f"{1 << 20},{1 << 18}", help="BIG_WEIGHT values, comma-separated; the first is the baseline")
    ap.add_argument("--documents", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32", help="the packed copies' dtype")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    rows = load_corpus()
    tok = train_bpe([r["document"] for r in rows] + [r["summary"] for r in rows])
    docs = [d for d, _ in encode_pairs(rows[: args.documents], tok)]
    model = build_model("transformer", SIZE, VOCAB, PAD).eval()
    chosen = prepacked.BIG_WEIGHT
    result = {"benchmark": "decode_packing", "documents": len(docs), "rounds": args.rounds, "threads": args.threads,
              "dtype": args.dtype, "big_weight_here": chosen}  # fmt: skip
    try:
        for beam, label in ((1, "greedy"), (4, "beam4")):
            one_pass(model, docs[:2], beam, args.dtype)  # warm-up
            times: dict[int, list[float]] = {size: [] for size in sizes}
            for r in range(args.rounds):
                for size in sizes if r % 2 == 0 else sizes[::-1]:
                    prepacked.BIG_WEIGHT = size
                    times[size].append(one_pass(model, docs, beam, args.dtype))
            medians = {size: statistics.median(t) for size, t in times.items()}
            result[label] = {str(size): {"median_s": round(m, 3), "ratio": round(medians[sizes[0]] / m, 3)}
                             for size, m in medians.items()}  # fmt: skip
            print(f"{label:7s} " + "  ".join(f"{size}: {m:.3f} s ({medians[sizes[0]] / m:.2f}x)" for size, m in medians.items()),
                  file=sys.stderr)  # fmt: skip
    finally:
        prepacked.BIG_WEIGHT = chosen
    print(json.dumps({**result, "machine": describe()}))


if __name__ == "__main__":
    main()
