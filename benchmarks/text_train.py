"""Training tokens/s of triptych's Transformer against Hugging Face BART, same run.

Both models have the benchmark size of the foundation issue: d_model 256,
3+3 layers, 4 heads, FFN 1024, vocabulary 8000, ReLU, dropout 0.1 (HF's
`BartForConditionalGeneration` with `activation_function="relu"`, built from
a config, random weights). They train on the same batches in the same
precision with the same threads: label-smoothed (0.1) cross-entropy, AdamW,
one optimiser step a batch.

The batches are real: the validation split of the Debian descriptions corpus,
tokenized with a byte-level BPE of 8,000 entries that this script trains on
the same documents (a few seconds), documents cut at 256 tokens and
summaries at 64, then grouped by length into batches of about `--tokens`
source tokens (the length-bucketed batching of triptych's text task).

Each side runs every batch once per round; rounds alternate which side goes
first, and each side keeps its best (least disturbed) round: on a shared
machine the minimum is the figure least polluted by the neighbours.

HF runs twice, with each of its attention implementations: "sdpa" (its
default, the fused kernel) and "eager" (explicit matmuls and softmax). On
this CPU the fused kernel is the faster in fp32 and far the slower in bf16
(its backward), so the peer is whichever of the two is faster, per run.

Usage: python benchmarks/text_train.py [--rounds R] [--batches N] [--tokens T]
           [--threads N] [--precision fp32|bf16]
Prints a human line per side on stderr and one JSON line last on stdout, with
"ratio" = triptych target tokens/s over the faster BART's target tokens/s,
each side's MFU (its FLOPs, counted by torch's FLOP counter, a second over
the GEMM peak of the same dtype measured in the same run) and the machine.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import time
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from triptych.hardware import counted_flops, describe, gemm_peak_gflops, mfu_report  # noqa: E402
from triptych.text.models import build_model  # noqa: E402

VOCAB, PAD, BOS, EOS = 8000, 0, 1, 2
SIZE = dict(d_model=256, heads=4, encoder_layers=3, decoder_layers=3, ffn=1024, dropout=0.1)


def load_corpus(split: str = "valid") -> list[dict]:
    with gzip.open(ROOT / f"data/debian-descriptions/{split}.jsonl.gz", "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def train_bpe(texts: list[str]):
    """A byte-level BPE of VOCAB entries, ids 0-2 = pad, bos, eos."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return tok


def encode_pairs(rows: list[dict], tok, src_max: int = 256, tgt_max: int = 64) -> list[tuple[list[int], list[int]]]:
    docs = tok.encode_batch([r["document"] for r in rows])
    sums = tok.encode_batch([r["summary"] for r in rows])
    return [(d.ids[:src_max], s.ids[:tgt_max]) for d, s in zip(docs, sums)]


def pad(seqs: list[list[int]]) -> torch.Tensor:
    out = torch.full((len(seqs), max(len(s) for s in seqs)), PAD, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.tensor(s)
    return out


def make_batches(pairs, tokens_per_batch: int, n: int, seed: int = 0):
    """Length-bucketed batches: sort by source length, cut at a token budget, shuffle."""
    order = sorted(range(len(pairs)), key=lambda i: (len(pairs[i][0]), len(pairs[i][1])))
    batches, cur = [], []
    for i in order:
        longest = max([len(pairs[j][0]) for j in cur] + [len(pairs[i][0])])
        if cur and longest * (len(cur) + 1) > tokens_per_batch:
            batches.append(cur)
            cur = []
        cur.append(i)
    batches.append(cur)
    random.Random(seed).shuffle(batches)
    out = []
    for b in batches[:n]:
        src = pad([pairs[i][0] for i in b])
        tin = pad([[BOS] + pairs[i][1] for i in b])
        tout = pad([pairs[i][1] + [EOS] for i in b])
        out.append((src, tin, tout))
    return out


def build_bart(attention: str = "sdpa"):
    from transformers import BartConfig, BartForConditionalGeneration

    config = BartConfig(
        vocab_size=VOCAB, d_model=256, encoder_layers=3, decoder_layers=3,
        encoder_attention_heads=4, decoder_attention_heads=4,
        encoder_ffn_dim=1024, decoder_ffn_dim=1024, max_position_embeddings=1024,
        activation_function="relu", dropout=0.1, attention_dropout=0.0, activation_dropout=0.1,
        scale_embedding=True, pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS,
        decoder_start_token_id=BOS, forced_eos_token_id=None, attn_implementation=attention,
    )  # fmt: skip
    return BartForConditionalGeneration(config)


def ours_loss(model, batch):
    src, tin, tout = batch
    loss, n = model.loss(src, tin, tout, label_smoothing=0.1)
    return loss / n


def bart_loss(model, batch):
    src, tin, tout = batch
    logits = model(
        input_ids=src, attention_mask=src != PAD, decoder_input_ids=tin, decoder_attention_mask=tin != PAD
    ).logits
    return F.cross_entropy(logits.flatten(0, 1), tout.flatten(), ignore_index=PAD, label_smoothing=0.1)


def autocast_for(precision: str):
    return torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else nullcontext()


def round_flops(model, loss_fn, batches, precision: str) -> int:
    """Model FLOPs of one round (forward + backward of every batch), counted by torch."""
    def once():
        for batch in batches:
            with autocast_for(precision):
                loss = loss_fn(model, batch)
            loss.backward()
        model.zero_grad(set_to_none=True)

    return counted_flops(once)


def run_round(model, opt, loss_fn, batches, precision: str) -> float:
    autocast = autocast_for(precision)
    model.train()
    start = time.perf_counter()
    for batch in batches:
        with autocast:
            loss = loss_fn(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--tokens", type=int, default=2000, help="source tokens a batch (with padding)")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    rows = load_corpus()
    tok = train_bpe([r["document"] for r in rows] + [r["summary"] for r in rows])
    batches = make_batches(encode_pairs(rows, tok), args.tokens, args.batches)
    tgt_tokens = sum(int((b[2] != PAD).sum()) for b in batches)
    src_tokens = sum(int((b[0] != PAD).sum()) for b in batches)

    sides = {
        "triptych": (build_model("transformer", SIZE, VOCAB, PAD), ours_loss),
        "bart": (build_bart("sdpa"), bart_loss),
        "bart-eager": (build_bart("eager"), bart_loss),
    }
    runs = {}
    for name, (model, loss_fn) in sides.items():
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)  # as the engine does
        run_round(model, opt, loss_fn, batches[:2], args.precision)  # warm-up: allocator, kernels
        runs[name] = (model, opt, loss_fn)
    times: dict[str, list[float]] = {name: [] for name in sides}
    for r in range(args.rounds):
        for name in (list(sides) if r % 2 == 0 else list(sides)[::-1]):
            model, opt, loss_fn = runs[name]
            times[name].append(run_round(model, opt, loss_fn, batches, args.precision))

    result = {"benchmark": "text_train", "precision": args.precision, "threads": args.threads,
              "batches": len(batches), "target_tokens": tgt_tokens, "source_tokens": src_tokens}  # fmt: skip
    for name, (model, _) in sides.items():
        best = min(times[name])
        result[f"{name.replace('-', '_')}_tok_per_s"] = round(tgt_tokens / best, 1)
        result[f"{name.replace('-', '_')}_params"] = sum(p.numel() for p in model.parameters())
        print(f"{name:10s} {tgt_tokens / best:9.1f} target tok/s  (best of {args.rounds}: {best:.2f} s; "
              f"all {', '.join(f'{t:.2f}' for t in times[name])})", file=sys.stderr)  # fmt: skip
    # MFU: counted model FLOPs a second over this CPU's GEMM peak in the same dtype, same run.
    dtype = "bfloat16" if args.precision == "bf16" else "float32"
    peak = gemm_peak_gflops(dtype)
    for name, (model, loss_fn) in sides.items():
        report = mfu_report(round_flops(model, loss_fn, batches, args.precision), min(times[name]), dtype, peak)
        key = name.replace("-", "_")
        result[f"{key}_model_gflop_per_s"], result[f"{key}_mfu"] = report["model_gflop_per_s"], report["mfu"]
        print(f"{name:10s} {report['model_gflop_per_s']:7.1f} model GFLOP/s = MFU {report['mfu']:.3f} "
              f"of the {dtype} GEMM peak {peak:.0f} GFLOP/s", file=sys.stderr)
    result["peak_gflop_per_s"] = round(peak, 1)
    result["machine"] = describe()
    peer = max(("bart", "bart_eager"), key=lambda name: result[f"{name}_tok_per_s"])
    result["peer"] = peer
    result["ratio"] = round(result["triptych_tok_per_s"] / result[f"{peer}_tok_per_s"], 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
