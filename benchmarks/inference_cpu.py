"""The Transformer's two CPU inference paths against the plain ones, op by op.

1. Linear layers (`triptych.nn.prepacked`): `F.linear`, which sends
   float32 to MKL's sgemm, against oneDNN with the weight reordered once,
   at the benchmark model's shapes (d_model 256, FFN 1024, vocabulary 8000):
   a decoding step's 32 rows, and an encoder batch's 3,000 packed tokens.
2. Encoder self-attention under inference (`SelfAttention._attend_rows`):
   the fused kernel over the masked (B, S) grid against one call a row over
   the row's own tokens, for the first `--batches` x 32 documents of the
   Debian descriptions validation split as `text_decode.py` batches them
   (corpus order, natural padding: about a third of the grid is real).

Both sides run in the same process, `--repeats` times after 3 warm-ups.
Prints a table on stderr and one JSON line on stdout, each case with its
milliseconds and "ratio" = plain / fast (> 1: the fast path is faster).
Linear cases also time the bf16 packed path ("bf16_ratio" = plain / bf16,
with its largest absolute error), which `hardware` chooses where the CPU
has AMX or AVX512-BF16: run this on each CPU kind to see which path wins where.

Usage: python benchmarks/inference_cpu.py [--repeats N] [--batches N] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch
import torch.nn.functional as F

from text_train import encode_pairs, load_corpus, train_bpe

from triptych.hardware import bf16_kernels, describe  # noqa: E402
from triptych.nn.prepacked import _packed, linear, packed_weights  # noqa: E402  (text_train put src/ on the path)
from triptych.nn.attention import attend as _attend  # noqa: E402

LINEAR_CASES = [  # (label, rows, inputs, outputs, bias)
    ("step: output projection", 32, 256, 8000, False),
    ("step: fused QKV", 32, 256, 768, True),
    ("step: FFN in", 32, 256, 1024, True),
    ("step: FFN out", 32, 1024, 256, True),
    ("encoder: fused QKV", 3000, 256, 768, True),
    ("encoder: FFN in", 3000, 256, 1024, True),
    ("encoder: FFN out", 3000, 1024, 256, True),
]
HEADS, HEAD_SIZE, BATCH = 4, 64, 32


def timed(fn, repeats: int) -> float:
    for _ in range(3):
        fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats * 1000


def linear_case(rows, n_in, n_out, bias, repeats) -> dict:
    """plain: F.linear (MKL sgemm); fast: oneDNN on a float32 weight packed once;
    bf16: the same on a bf16 copy (the path chosen where the CPU has AMX or AVX512-BF16)."""
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(rows, n_in, generator=g), torch.nn.Parameter(torch.randn(n_out, n_in, generator=g))
    b = torch.randn(n_out, generator=g) if bias else None
    out = {}
    with torch.inference_mode():
        out["plain_ms"] = timed(lambda: F.linear(x, w, b), repeats)
        with packed_weights("float32"):
            torch.testing.assert_close(linear(x, w, b), F.linear(x, w, b), rtol=1e-4, atol=1e-4)
            assert _packed.get(), "the fast path did not run"
            out["fast_ms"] = timed(lambda: linear(x, w, b), repeats)
        if not bf16_kernels():  # an AVX2-only CPU: triptych refuses bf16 there
            return {**out, "bf16_ms": float("nan"), "bf16_max_abs_err": float("nan")}
        with packed_weights("bfloat16"):
            err = (linear(x, w, b) - F.linear(x, w, b)).abs().max().item()
            assert _packed.get()[id(w)][1].dtype == torch.bfloat16, "the bf16 path did not run"
            out["bf16_ms"] = timed(lambda: linear(x, w, b), repeats)
    out["bf16_max_abs_err"] = err
    return out


def attention_case(lengths: list[int], repeats) -> dict:
    g = torch.Generator().manual_seed(0)
    S = max(lengths)
    keep = torch.arange(S)[None] < torch.tensor(lengths)[:, None]
    q, k, v = (torch.randn(len(lengths), HEADS, S, HEAD_SIZE, generator=g) for _ in range(3))
    bias = torch.zeros(keep.shape).masked_fill(~keep, float("-inf"))[:, None, None, :]
    rows = [tuple(t[i : i + 1, :, :n] for t in (q, k, v)) for i, n in enumerate(lengths)]

    def grid():
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias)

    def by_row():
        return [_attend(*row, None, 0.0, False, False)[0] for row in rows]

    with torch.inference_mode():
        whole = grid()
        for i, (n, y) in enumerate(zip(lengths, by_row())):
            torch.testing.assert_close(y[0], whole[i, :, :n], rtol=1e-4, atol=1e-4)
        return {"plain_ms": timed(grid, repeats), "fast_ms": timed(by_row, repeats), "bf16_ms": float("nan")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--batches", type=int, default=3)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    rows = load_corpus()
    tok = train_bpe([r["document"] for r in rows] + [r["summary"] for r in rows])
    docs = [len(d) for d, _ in encode_pairs(rows[: args.batches * BATCH], tok)]
    cases = [(label, "linear", lambda c=(n, i, o, b): linear_case(*c, args.repeats)) for label, n, i, o, b in LINEAR_CASES]
    for start in range(0, len(docs), BATCH):
        lengths = docs[start : start + BATCH]
        real = sum(lengths) / (len(lengths) * max(lengths))
        cases.append((f"encoder attention, S={max(lengths)}, {real:.0%} real", "attention",
                      lambda n=lengths: attention_case(n, args.repeats)))  # fmt: skip

    result = {"benchmark": "inference_cpu", "threads": args.threads, "repeats": args.repeats, "cases": []}
    print(f"{'case':34s} {'plain ms':>9s} {'fast ms':>8s} {'ratio':>6s} {'bf16 ms':>8s} {'bf16 ratio':>10s}", file=sys.stderr)
    for label, kind, run in cases:
        ms = run()
        ratio, bf16_ratio = ms["plain_ms"] / ms["fast_ms"], ms["plain_ms"] / ms["bf16_ms"]
        result["cases"].append({"case": label, "kind": kind, **{k: round(v, 4) for k, v in ms.items() if v == v},
                                "ratio": round(ratio, 2), **({"bf16_ratio": round(bf16_ratio, 2)} if bf16_ratio == bf16_ratio else {})})
        print(f"{label:34s} {ms['plain_ms']:9.3f} {ms['fast_ms']:8.3f} {ratio:6.2f} {ms['bf16_ms']:8.3f} {bf16_ratio:10.2f}",
              file=sys.stderr)
    print(json.dumps({**result, "machine": describe()}))


if __name__ == "__main__":
    main()
