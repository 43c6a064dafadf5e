"""The policy gradient's log-probabilities: re-scoring the samples vs keeping the sampling graph.

Self-critical RL needs d/dtheta sum_t log p(y^s_t) of every sampled summary.
Two ways to get it, both measured here in the same run, on the same real
documents and the same samples (one thread, fp32, no dropout):

- rescore (what `triptych.text.rl` does): draw the samples without autograd
  (`decoding.sample`, key/value cache), then one teacher-forced forward pass
  over the samples, and backward;
- graph: draw the samples step by step with autograd on (the same cache),
  summing the chosen tokens' log-probabilities as they are drawn, and
  backward through all the steps.

Both give the same gradient (checked: the largest relative difference of
the two gradients is printed). The model is a checkpoint when one is given
(its tokenizer too), else the recipe's size with random weights.

Usage: python benchmarks/text_rl_logprob.py [--checkpoint runs/text/transformer-debian/best]
       [--sentences 32] [--rounds 3] [--max-len 40]
Prints one JSON line last, "ratio" = graph seconds over rescore seconds (> 1: re-scoring is faster).
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path

import torch

from triptych.hardware import describe
from triptych.text.generation.search import sample
from triptych.text.rl import sequence_log_probs
from triptych.text.task import pad


def graph_log_probs(model, src, tokens, closed, bos, eos):
    """Replay `tokens` step by step through the cache with autograd on -> (B,) summed log-probs."""
    B = src.size(0)
    enc = model.encode(src)
    state = model.init_state(enc)
    width = max(len(t) + c for t, c in zip(tokens, closed))
    target = torch.full((B, width), -1, dtype=torch.long)
    for i, (t, c) in enumerate(zip(tokens, closed)):
        target[i, : len(t) + c] = torch.tensor(t + [eos] * c, dtype=torch.long)
    last = torch.full((B,), bos, dtype=torch.long)
    total = torch.zeros(B)
    for t in range(width):
        log_p, state = model.step(last, enc, state)  # (B, V)
        keep = target[:, t] >= 0
        total = total + log_p.gather(1, target[:, t].clamp(min=0)[:, None]).squeeze(1) * keep
        last = target[:, t].clamp(min=0)
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default="runs/text/transformer-debian/best")
    ap.add_argument("--data", default="data/debian-descriptions/valid.jsonl.gz")
    ap.add_argument("--sentences", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max-len", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    from triptych.text.predictor import Summarizer

    if not Path(args.checkpoint).is_dir():
        raise SystemExit(f"{args.checkpoint}: no checkpoint (train configs/text/transformer-debian.yaml first)")
    summarizer = Summarizer(args.checkpoint)
    model, tok = summarizer.model, summarizer.tokenizer
    with gzip.open(args.data, "rt", encoding="utf-8") as fh:
        docs = [json.loads(line)["document"] for _, line in zip(range(args.sentences), fh)]
    src = pad(summarizer.encode_documents(docs), tok.pad_id)
    model.eval()
    tokens, closed = sample(model, src, bos=tok.bos_id, eos=tok.eos_id, max_len=args.max_len, no_repeat_ngram=0)
    tgt_in = pad([[tok.bos_id] + t for t in tokens], tok.pad_id)
    tgt_out = pad([t + [tok.eos_id] * c for t, c in zip(tokens, closed)], tok.pad_id)
    tgt_out = torch.nn.functional.pad(tgt_out, (0, tgt_in.size(1) - tgt_out.size(1)), value=tok.pad_id)
    params = [p for p in model.parameters() if p.requires_grad]

    def rescore():
        with torch.inference_mode():  # the sampling is part of the cost of both ways
            sample(model, src, bos=tok.bos_id, eos=tok.eos_id, max_len=args.max_len)
        lp = sequence_log_probs(model, src, tgt_in, tgt_out, tok.pad_id)
        lp.sum().backward()
        return lp

    def graph():
        lp = graph_log_probs(model, src, tokens, closed, tok.bos_id, tok.eos_id)
        lp.sum().backward()
        return lp

    times = {"rescore": [], "graph": []}
    grads = {}
    for _ in range(args.rounds):
        for name, fn in (("rescore", rescore), ("graph", graph)):
            model.zero_grad(set_to_none=True)
            t0 = time.perf_counter()
            lp = fn()
            times[name].append(time.perf_counter() - t0)
            grads[name] = (lp.detach(), torch.cat([p.grad.flatten() for p in params if p.grad is not None]))
    diff_lp = float((grads["rescore"][0] - grads["graph"][0]).abs().max())
    g1, g2 = grads["rescore"][1], grads["graph"][1]
    diff_grad = float((g1 - g2).abs().max() / g1.abs().max())
    best = {k: min(v) for k, v in times.items()}
    result = {"sentences": len(docs), "mean_sample_tokens": sum(map(len, tokens)) / len(tokens),
              "rescore_s": round(best["rescore"], 3), "graph_s": round(best["graph"], 3),
              "max_abs_logprob_diff": diff_lp, "max_rel_grad_diff": diff_grad,
              "ratio": round(best["graph"] / best["rescore"], 3)}
    print(json.dumps({**result, "machine": describe()}))


if __name__ == "__main__":
    main()
