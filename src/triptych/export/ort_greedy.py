"""Greedy summaries from an ONNX export with onnxruntime alone: no torch import.

    from triptych.export.ort_greedy import OrtSummarizer
    OrtSummarizer("runs/x/onnx").summarize(["A library to parse JSON files quickly."])

    python -m triptych.export.ort_greedy runs/x/onnx "first document" "second document"
    python -m triptych.export.ort_greedy runs/x/onnx --input data/debian-descriptions/test.jsonl.gz

It reproduces `triptych.text.generation.search.greedy` as `triptych text summarize
--beam 1` runs it: documents truncated to the model's source length,
decoded in length-sorted batches, bos and pad never generated, eos
forbidden before `min_len` tokens, n-grams never repeated, at most
`max_len` tokens, finished rows dropped from the batch. The only
dependencies are numpy, onnxruntime and the tokenizer (Hugging Face
`tokenizers`), so it runs where torch is not installed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from triptych.errors import UserError, require_extra


class OrtSummarizer:
    """An export directory (encoder.onnx, decoder_step.onnx, tokenizer.json, export.json) ready to decode."""

    def __init__(self, directory: str | Path, threads: int | None = None):
        require_extra("export", "onnxruntime")
        import onnxruntime as ort

        from triptych.export.manifest import read_manifest
        from triptych.text.tokenizer import Tokenizer

        self.directory = Path(directory)
        self.manifest = read_manifest(self.directory)
        if self.manifest.get("domain") != "text":
            raise UserError(f"{directory}: a {self.manifest.get('domain')} export, expected a text one")
        self.tokenizer = Tokenizer.load(self.directory / "tokenizer.json")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        threads = threads or _env_threads()
        if threads:  # else onnxruntime's default: one thread a physical core
            options.intra_op_num_threads = options.inter_op_num_threads = threads
        load = lambda name: ort.InferenceSession(str(self.directory / name), options,  # noqa: E731
                                                  providers=["CPUExecutionProvider"])
        self.encoder, self.step = load("encoder.onnx"), load("decoder_step.onnx")
        m = self.manifest
        self.special = m["special"]
        self.decode = dict(m["decode"])
        self.shape = (m["heads"], m["head_dim"])

    def encode_documents(self, documents: list[str]) -> list[list[int]]:
        limit = self.manifest["max_source_len"]
        return [ids[:limit] or [self.special["unk"]] for ids in self.tokenizer.encode_batch(documents)]

    def summarize(self, documents: list[str], **decode) -> list[str]:
        """Summaries of `documents`, in their order; `decode` overrides max_len, min_len, no_repeat_ngram."""
        return self.tokenizer.decode_batch(self.greedy_ids(self.encode_documents(documents), **decode))

    def greedy_ids(self, sources: list[list[int]], **decode) -> list[list[int]]:
        """Token ids of each summary (no bos/eos), in the input order, batched by length."""
        opts = {**self.decode, **decode}
        if opts["max_len"] > self.manifest["max_positions"]:
            raise UserError(f"max_len {opts['max_len']}: above the model's {self.manifest['max_positions']} positions")
        order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
        out: list[list[int]] = [[] for _ in sources]
        for start in range(0, len(order), opts["batch_size"]):
            chunk = order[start : start + opts["batch_size"]]
            width = max(len(sources[i]) for i in chunk)
            src = np.full((len(chunk), width), self.special["pad"], np.int64)  # (B, S), right-padded
            for row, i in enumerate(chunk):
                src[row, : len(sources[i])] = sources[i]
            for i, tokens in zip(chunk, self._greedy(src, opts)):
                out[i] = tokens
        return out

    def _greedy(self, src: np.ndarray, opts: dict) -> list[list[int]]:
        m, sp = self.manifest, self.special
        B = src.shape[0]
        enc = dict(zip(m["encoder_outputs"], self.encoder.run(None, {"src": src})))
        enc["src"] = src
        fixed = [n for n in m["step_inputs"] if n != "tokens" and not n.startswith("past_")]
        past_names = [n for n in m["step_inputs"] if n.startswith("past_")]
        fixed_arrays = {n: enc[n] for n in fixed}
        heads, head_dim = self.shape
        past = [np.zeros((B, heads, 0, head_dim), np.float32) for _ in past_names]  # step 0: an empty cache
        never = [sp["bos"]] if sp["pad"] == sp["bos"] else [sp["bos"], sp["pad"]]
        out: list[list[int]] = [[] for _ in range(B)]
        rows = list(range(B))  # sentence of each active row
        last = np.full(B, sp["bos"], np.int64)
        hist = np.zeros((B, 0), np.int64)
        for t in range(opts["max_len"]):
            res = self.step.run(None, {"tokens": last, **fixed_arrays, **dict(zip(past_names, past))})
            log_p, past = res[0], res[1:]  # (N, V), the grown cache
            constrain(log_p, hist, t, never, sp["eos"], opts["min_len"], opts["no_repeat_ngram"])
            tok = log_p.argmax(-1)  # (N,): the first maximum, as torch's max
            best = log_p[np.arange(len(tok)), tok]
            ended = (tok == sp["eos"]) | (best == -np.inf)
            for r, k, e in zip(rows, tok.tolist(), ended.tolist()):
                if not e:
                    out[r].append(k)
            if ended.any():
                alive = np.flatnonzero(~ended)
                if alive.size == 0:
                    break
                rows = [rows[i] for i in alive]
                tok, hist = tok[alive], hist[alive]
                fixed_arrays = {n: a[alive] for n, a in fixed_arrays.items()}
                past = [p[alive] for p in past]
            hist = np.concatenate([hist, tok[:, None]], 1)
            last = tok.astype(np.int64)
        return out


def _env_threads() -> int | None:
    """OMP_NUM_THREADS, which torch honours and onnxruntime does not: the same limit for both."""
    import os

    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else None


def constrain(log_p: np.ndarray, hist: np.ndarray, t: int, never: list[int], eos: int, min_len: int,
              no_repeat_ngram: int) -> None:
    """In place, as `triptych.text.generation.search._constrain`: forbid `never`, eos before
    `min_len` tokens, and any token that would repeat an n-gram of `hist` (N, t)."""
    log_p[:, never] = -np.inf
    if t < min_len:
        log_p[:, eos] = -np.inf
    n = no_repeat_ngram
    if n > 0 and t >= n:
        for r in range(hist.shape[0]):
            h = hist[r]
            tail = h[t - n + 1 :]  # the last n-1 tokens
            for s in range(t - n + 1):
                if np.array_equal(h[s : s + n - 1], tail):
                    log_p[r, h[s + n - 1]] = -np.inf


def read_documents(path: str) -> list[str]:
    """Documents of a JSONL corpus (as `triptych text summarize --input` reads it) or of a
    plain text file (one a line); empty ones are skipped, as there."""
    from triptych.files import read_lines
    from triptych.text.data import read_pairs

    name = path[:-3] if path.endswith(".gz") else path
    if name.endswith((".jsonl", ".json", ".source")):
        docs = [p.source for p in read_pairs(path, need_target=False, split="input")]
    else:
        docs = [text for _, text in read_lines(path)]
    docs = [d for d in docs if d.strip()]
    if not docs:
        raise UserError(f"{path}: no documents")
    return docs


def main(argv: list[str] | None = None) -> int:
    """`python -m triptych.export.ort_greedy EXPORT_DIR (TEXT ... | --input FILE)`: one summary a line."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m triptych.export.ort_greedy",
                                description="greedy summaries from a triptych ONNX export, with onnxruntime only")
    p.add_argument("export_dir", metavar="EXPORT_DIR")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="documents to summarize")
    p.add_argument("--input", help="JSONL with a document field, or plain text with one document a line")
    p.add_argument("--threads", type=int, help="onnxruntime threads (default: OMP_NUM_THREADS, else one a core)")
    args = p.parse_args(argv)
    if bool(args.texts) == bool(args.input):
        p.error("give documents as arguments or --input FILE, not both nor neither")
    try:
        docs = read_documents(args.input) if args.input else args.texts
        for summary in OrtSummarizer(args.export_dir, threads=args.threads).summarize(docs):
            print(summary)
    except UserError as e:
        print(f"triptych: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
