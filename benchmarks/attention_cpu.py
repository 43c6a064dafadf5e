"""Attention on CPU: PyTorch's fused kernel against explicit matmuls, forward + backward.

Why the Transformer picks its attention path by precision (see `attend` in
`triptych.nn.attention`): the fused `scaled_dot_product_attention`
is the faster in float32, but under bf16 autocast its backward pass is slow
on this CPU, and two plain matmuls with a float32 softmax win. The shapes are
those of the Debian recipe's batches (4,000 tokens, 4 heads of 64): encoder
self-attention at three source lengths with a padding mask, the decoder's
causal self-attention, and its cross-attention over a 160-token source.

Each case times `--repeats` forward + backward passes after 3 warm-ups, both
paths in the same process. Prints a table on stderr and one JSON
line on stdout with each case's milliseconds and "ratio" = fused / explicit
(> 1: explicit is faster).

Usage: python benchmarks/attention_cpu.py [--repeats N] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from triptych.hardware import describe  # noqa: E402
from triptych.nn.attention import attend as _attend  # noqa: E402

# (label, batch rows, queries, keys, causal): the recipe's 4,000-token batches
CASES = [
    ("encoder, 160 tokens", 25, 160, 160, False),
    ("encoder, 80 tokens", 50, 80, 80, False),
    ("encoder, 40 tokens", 100, 40, 40, False),
    ("decoder self, 12 tokens", 25, 12, 12, True),
    ("decoder cross, 12 x 160", 25, 12, 160, False),
]
HEADS, HEAD_SIZE = 4, 64


def explicit(q, k, v, bias, causal):
    """The model's own explicit path (asking for the weights forces it)."""
    return _attend(q, k, v, bias, 0.0, causal, need_weights=True)[0]


def fused(q, k, v, bias, causal):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, is_causal=causal)


def time_case(fn, rows, queries, keys, causal, precision, repeats) -> float:
    g = torch.Generator().manual_seed(0)
    q = torch.randn(rows, HEADS, queries, HEAD_SIZE, generator=g, requires_grad=True)
    k, v = (torch.randn(rows, HEADS, keys, HEAD_SIZE, generator=g, requires_grad=True) for _ in range(2))
    bias = None
    if not causal:  # a quarter of each row's keys are padding, as a length-bucketed batch has at most
        bias = torch.zeros(rows, 1, 1, keys)
        bias[..., keys * 3 // 4 :] = float("-inf")
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else nullcontext()

    def once():
        with autocast:
            cast = (t.to(torch.bfloat16) for t in (q, k, v)) if precision == "bf16" else (q, k, v)
            y = fn(*cast, bias, causal)
        y.float().square().sum().backward()

    for _ in range(3):
        once()
    start = time.perf_counter()
    for _ in range(repeats):
        once()
    return (time.perf_counter() - start) / repeats * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    result = {"benchmark": "attention_cpu", "threads": args.threads, "repeats": args.repeats, "cases": []}
    print(f"{'case':26s} {'precision':9s} {'fused ms':>9s} {'explicit ms':>12s} {'ratio':>6s}", file=sys.stderr)
    for precision in ("fp32", "bf16"):
        for label, rows, queries, keys, causal in CASES:
            ms = {name: time_case(fn, rows, queries, keys, causal, precision, args.repeats)
                  for name, fn in (("fused", fused), ("explicit", explicit))}
            ratio = ms["fused"] / ms["explicit"]
            result["cases"].append({"case": label, "precision": precision, "fused_ms": round(ms["fused"], 2),
                                    "explicit_ms": round(ms["explicit"], 2), "ratio": round(ratio, 2)})
            print(f"{label:26s} {precision:9s} {ms['fused']:9.2f} {ms['explicit']:12.2f} {ratio:6.2f}", file=sys.stderr)
    print(json.dumps({**result, "machine": describe()}))


if __name__ == "__main__":
    main()
