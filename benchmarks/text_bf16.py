"""bf16 autocast against fp32: training tokens/s of triptych's recipe model, same run.

The recipe (`configs/text/transformer-debian.yaml`) trains with
`train.precision: bf16`; this measures what that buys on this CPU. One
Transformer of the recipe's size with copy attention trains on the same real
batches (from `text_train.py`) alternately in fp32 and under bf16 autocast;
each precision keeps its best round. The quality side (ROUGE of each
precision after the same number of steps) is in docs/results.md.

Each precision's MFU is its model FLOPs a second (torch's FLOP counter)
over the GEMM peak of its own dtype, measured in the same run: bf16 can be
faster and still use less of what this CPU's bf16 units could give.

Usage: python benchmarks/text_bf16.py [--rounds R] [--batches N] [--tokens T] [--threads N]
Prints one JSON line last, "ratio" = bf16 tokens/s over fp32 tokens/s.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch
from text_train import PAD, SIZE, VOCAB, encode_pairs, load_corpus, make_batches, ours_loss, round_flops, run_round, train_bpe

from triptych.hardware import describe, gemm_peak_gflops, mfu_report
from triptych.text.models import build_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--tokens", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = load_corpus()
    tok = train_bpe([r["document"] for r in rows] + [r["summary"] for r in rows])
    batches = make_batches(encode_pairs(rows, tok), args.tokens, args.batches)
    tgt_tokens = sum(int((b[2] != PAD).sum()) for b in batches)
    model = build_model("transformer", {**SIZE, "copy": True}, VOCAB, PAD)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for precision in times:  # warm-up
        run_round(model, opt, ours_loss, batches[:2], precision)
    for r in range(args.rounds):
        for precision in (["fp32", "bf16"] if r % 2 == 0 else ["bf16", "fp32"]):
            times[precision].append(run_round(model, opt, ours_loss, batches, precision))
    result = {"benchmark": "text_bf16", "threads": args.threads, "batches": len(batches), "target_tokens": tgt_tokens}
    for precision, ts in times.items():
        result[f"{precision}_tok_per_s"] = round(tgt_tokens / min(ts), 1)
        print(f"{precision} {tgt_tokens / min(ts):9.1f} target tok/s (all {', '.join(f'{t:.2f}' for t in ts)} s)", file=sys.stderr)
    for precision, ts in times.items():
        dtype = "bfloat16" if precision == "bf16" else "float32"
        report = mfu_report(round_flops(model, ours_loss, batches, precision), min(ts), dtype, gemm_peak_gflops(dtype))
        result[f"{precision}_model_gflop_per_s"], result[f"{precision}_mfu"] = report["model_gflop_per_s"], report["mfu"]
        result[f"{precision}_peak_gflop_per_s"] = report["peak_gflop_per_s"]
        print(f"{precision} {report['model_gflop_per_s']:7.1f} model GFLOP/s = MFU {report['mfu']:.3f} "
              f"of the {dtype} GEMM peak {report['peak_gflop_per_s']:.0f} GFLOP/s", file=sys.stderr)
    result["ratio"] = round(result["bf16_tok_per_s"] / result["fp32_tok_per_s"], 3)
    print(json.dumps({**result, "machine": describe()}))


if __name__ == "__main__":
    main()
