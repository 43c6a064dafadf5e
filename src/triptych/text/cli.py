"""`triptych text ...`: argument parsing and output only; the work is in the library.

Nothing heavy is imported at module level so `triptych --help` stays fast.
"""

from __future__ import annotations

import argparse
import sys

from triptych.console import add_train_arguments, at_least, emit_json, print_table, report_training
from triptych.errors import UserError


def register(sub) -> None:
    text = sub.add_parser("text", help="abstractive summarization: train, evaluate, summarize, score")
    verbs = text.add_subparsers(dest="verb", metavar="VERB", parser_class=type(text))
    verbs.required = True

    p = verbs.add_parser("train", help="train a summarizer from a YAML recipe")
    p.add_argument("config", help="recipe, e.g. configs/text/transformer-debian.yaml")
    add_train_arguments(p, "text", "train.lr=3e-4")
    p.set_defaults(func=cmd_train)

    p = verbs.add_parser("eval", help="ROUGE of a checkpoint's summaries on a test file")
    p.add_argument("--checkpoint", required=True, help="a checkpoint directory, e.g. runs/x/best")
    p.add_argument("--data", required=True, help="JSONL (or .source with its .target), gzip accepted")
    add_decode_options(p)
    p.add_argument("--limit", type=int, help="score only the first N pairs")
    p.add_argument("--output", help="also write the generated summaries, one a line")
    p.add_argument("--no-stem", dest="stem", action="store_false", help="ROUGE without Porter stemming")
    p.add_argument("--metric", help="comma-separated: rouge (default), bleu, chrf (sacrebleu) — e.g. bleu,chrf,rouge")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_eval)

    p = verbs.add_parser("summarize", help="summarize a text or a file of documents")
    p.add_argument("--checkpoint", required=True)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", help="one document")
    src.add_argument("--input", help="JSONL with a document field, or plain text with one document a line")
    add_decode_options(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_summarize)

    p = verbs.add_parser("rouge", help="ROUGE of predictions against references (one summary a line)")
    p.add_argument("--pred", required=True)
    p.add_argument("--ref", required=True)
    p.add_argument("--stem", action=argparse.BooleanOptionalAction, default=True, help="Porter stemming (default on)")
    p.add_argument("--cjk", action="store_true", help="score CJK text by characters (automatic when most references are CJK)")
    p.add_argument("--bootstrap", action="store_true", help="95%% confidence intervals by bootstrap resampling")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_rouge)

    p = verbs.add_parser("baseline", help="extractive baselines")
    kinds = p.add_subparsers(dest="kind", metavar="KIND", parser_class=type(text))
    kinds.required = True
    lead = kinds.add_parser("lead", help="the first N words of the first sentence")
    lead.add_argument("--data", required=True)
    lead.add_argument("--words", type=at_least(1), default=10)
    lead.add_argument("--output", help="also write the summaries, one a line")
    lead.add_argument("--json", action="store_true")
    lead.set_defaults(func=cmd_lead)
    cp = kinds.add_parser("copy", help="the source itself as the output (the floor for translation)")
    cp.add_argument("--data", required=True)
    cp.add_argument("--metric", help="comma-separated: rouge (default), bleu, chrf")
    cp.add_argument("--json", action="store_true")
    cp.set_defaults(func=cmd_copy)
    tr = kinds.add_parser("textrank", help="TextRank (Mihalcea & Tarau 2004): the top-ranked sentences, in document order")
    tr.add_argument("--data", required=True)
    tr.add_argument("--sentences", type=at_least(1), default=1, help="how many sentences (default 1)")
    tr.add_argument("--words", type=at_least(1), help="word budget: the summary is cut to N words")
    tr.add_argument("--output", help="also write the summaries, one a line")
    tr.add_argument("--json", action="store_true")
    tr.set_defaults(func=cmd_textrank)

    p = verbs.add_parser("attention", help="heat-map of the attention between a text and the summary generated for it")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--text", required=True, help="the document")
    p.add_argument("-o", "--output", required=True, help="picture to write (.png, .pdf, .svg, .jpg)")
    p.add_argument("--layer", default="all", help="decoder layer to draw, from 1 (default: all, one panel each)")
    p.add_argument("--head", default="mean", help="attention head, from 1 (default: the mean of the heads)")
    add_decode_options(p, rerank=False)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_attention)

    p = verbs.add_parser("compare", help="the comparison table: Lead, TextRank and trained runs on one test file")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories (or checkpoint directories)")
    p.add_argument("--data", help="test file (default: the first run's data.test)")
    p.add_argument("--beam", type=int, default=4, help="beam size of the decoding scored and timed (default 4)")
    p.add_argument("--device", default="cpu", help="device for runs that must be evaluated now")
    p.add_argument("--length-penalty", type=float, help="score every run at this GNMT alpha (default: each run's own)")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_compare)

    p = verbs.add_parser("rerank", help="rerank the beam's n-best list")
    rverbs = p.add_subparsers(dest="rverb", metavar="VERB", parser_class=type(text))
    rverbs.required = True
    rf = rverbs.add_parser("fit", help="fit the reranker's feature weights on a validation file; stored beside the checkpoint")
    rf.add_argument("--checkpoint", required=True, help="a checkpoint directory, e.g. runs/x/best")
    rf.add_argument("--data", required=True, help="validation JSONL (gzip accepted)")
    add_decode_options(rf, rerank=False)
    rf.add_argument("--limit", type=int, help="fit on the first N pairs only")
    rf.add_argument("--lm-order", type=int, default=3, help="order of the Kneser-Ney summary LM (default 3)")
    rf.add_argument("--lm-data", help="training file of the summary LM (default: the checkpoint's data.train)")
    rf.add_argument("--json", action="store_true")
    rf.set_defaults(func=cmd_rerank_fit)

    p = verbs.add_parser("tokenizer", help="subword vocabularies")
    tverbs = p.add_subparsers(dest="tverb", metavar="VERB", parser_class=type(text))
    tverbs.required = True
    tt = tverbs.add_parser("train", help="train a byte-level BPE tokenizer (or a word vocabulary) on a corpus")
    tt.add_argument("--data", required=True, nargs="+", help="corpus files (documents and summaries are both used)")
    tt.add_argument("--out", required=True, help="tokenizer.json to write")
    tt.add_argument("--kind", choices=["bpe", "bpe-char", "word"], default="bpe", help="bpe (byte-level, default), bpe-char (BPE on characters, for Chinese) or word (the top --vocab-size words, the rest <unk>)")
    tt.add_argument("--vocab-size", type=int, default=8000)
    tt.add_argument("--lowercase", action="store_true")
    tt.add_argument("--min-frequency", type=int, default=2)
    tt.add_argument("--special", nargs="*", default=[], help="extra special tokens")
    tt.add_argument("--json", action="store_true")
    tt.set_defaults(func=cmd_tokenizer_train)
    ts = tverbs.add_parser("stats", help="<unk> rate and tokens per text of a tokenizer on a data file")
    ts.add_argument("--tokenizer", required=True, nargs="+", help="tokenizer.json files (or checkpoint/run directories; with separate vocabularies documents are measured with the source one)")
    ts.add_argument("--data", required=True, help="JSONL (or .source with its .target), gzip accepted")
    ts.add_argument("--json", action="store_true")
    ts.set_defaults(func=cmd_tokenizer_stats)


def add_decode_options(p, rerank: bool = True) -> None:
    """One flag a `DecodeConfig` field (`--max-len` for max_len), its help
    from `DECODE_HELP`; unset flags keep the checkpoint's setting."""
    import dataclasses
    import typing

    from triptych.text.config import DECODE_HELP, DecodeConfig

    types = typing.get_type_hints(DecodeConfig)
    for f in dataclasses.fields(DecodeConfig):
        if f.name == "rerank" and not rerank:
            continue
        kind = types[f.name]
        if kind is bool:
            p.add_argument("--" + f.name.replace("_", "-"), action="store_true", default=None, help=DECODE_HELP[f.name])
        else:
            kind = next(k for k in typing.get_args(kind) or (kind,) if k is not type(None))  # int | None -> int
            p.add_argument("--" + f.name.replace("_", "-"), type=kind, help=DECODE_HELP[f.name])
    p.add_argument("--device", default="cpu")


def _decode(args, checkpoint=None):
    """The checkpoint's `DecodeConfig` with the flags given on top (checked there)."""
    import dataclasses

    from triptych.text.predictor import Summarizer

    base = Summarizer.read_config(checkpoint or args.checkpoint).decode
    return base.replace(**{f.name: getattr(args, f.name, None) for f in dataclasses.fields(base)})


def report_rouge(args, result: dict, caption: str) -> int:
    """ROUGE F1 x 100 as one JSON object (--json) or as a table with a caption."""
    if args.json:
        emit_json(result)
    else:
        keys = [k for k in ("rouge1", "rouge2", "rougeL", "rougeLsum", "bleu", "chrf") if k in result]
        print_table([(k, f"{result[k]:.2f}") for k in keys], ("metric", "score (x 100)"))
        print(caption)
    return 0


# --- handlers ---------------------------------------------------------------

def cmd_train(args) -> int:
    import os

    from triptych.text.train import run_training

    summary = run_training(args.config, args.overrides, out=args.out, resume=args.resume, seed=args.seed, device=args.device)
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 reports
        return 0
    return report_training(args, summary)


def cmd_eval(args) -> int:
    from triptych.text.metrics.bleu import parse_metrics
    from triptych.text.workflows.evaluate import evaluate_checkpoint

    decode = _decode(args)
    result = evaluate_checkpoint(args.checkpoint, args.data, decode=decode, limit=args.limit, output=args.output,
                                 stem=args.stem, device=args.device, metrics=parse_metrics(args.metric))
    caption = f"{result['pairs']} pairs, beam {result['beam']}"
    if "nbest" in result:
        how = "reranked" if result["rerank"] else "top"
        caption += f", {how} of {result['nbest']}-best (oracle R-L {result['rougeL_oracle']:.2f})"
    return report_rouge(args, result, f"{caption}, {result['seconds']:.1f} s")


def cmd_summarize(args) -> int:
    from triptych.text.data import read_documents
    from triptych.text.predictor import Summarizer

    if args.text is not None:
        if not args.text.strip():
            raise UserError("--text: the document is empty")
        documents, source = [args.text], "--text"
    else:
        documents, source = read_documents(args.input)
    summarizer = Summarizer(args.checkpoint, device=args.device)
    decode = _decode(args)
    nbest_lists = None
    if decode.rerank or decode.nbest is not None:
        from triptych.text.workflows.nbest import summarize_nbest

        summaries, nbest_lists = summarize_nbest(summarizer, documents, decode, source=source)
    else:
        summaries = summarizer.summarize(documents, decode, source=source)
    if args.json:
        emit_json({"summaries": summaries, **({"nbest": nbest_lists} if nbest_lists is not None else {})})
    else:
        for s in summaries:
            print(s)
    return 0


def cmd_attention(args) -> int:
    from triptych.text.workflows.attention_map import draw_attention

    if args.nbest is not None:
        raise UserError("--nbest: the attention map is drawn for the best summary only")
    if not args.text.strip():
        raise UserError("--text: the document is empty")
    result = draw_attention(args.checkpoint, args.text, args.output, layer=args.layer, head=args.head, decode=_decode(args),
                            device=args.device)
    if args.json:
        emit_json(result)
    else:
        print(result["summary"])
    return 0


def cmd_compare(args) -> int:
    from triptych.text.workflows.compare import compare, format_rows, markdown_table

    table = compare(args.runs, data=args.data, beam=args.beam, device=args.device, length_penalty=args.length_penalty)
    if args.json:
        emit_json(table)
        return 0
    header, rows = format_rows(table)
    if args.markdown:
        print(markdown_table(header, rows))
    else:
        print_table(rows, header)
    print(f"{table['rows'][0]['pairs']} pairs of {table['data']}; ROUGE F1 x 100, stemmed")
    return 0


def cmd_tokenizer_train(args) -> int:
    from triptych.text.data import drop_empty, read_pairs
    from triptych.text.tokenizer import describe, train_tokenizer

    texts: list[str] = []
    for path in args.data:
        for p in drop_empty(read_pairs(path, need_target=False, split="data"), path, need_target=False):
            texts.append(p.source)
            if p.target:
                texts.append(p.target)
    tokenizer = train_tokenizer(texts, kind=args.kind, vocab_size=args.vocab_size, lowercase=args.lowercase, min_frequency=args.min_frequency, extra_special_tokens=args.special)
    tokenizer.save(args.out)
    info = {**describe(tokenizer), "path": args.out, "texts": len(texts)}
    if args.json:
        emit_json(info)
    else:
        print(f"wrote {args.out}: {info['vocab_size']} tokens from {len(texts)} texts", file=sys.stderr)
    return 0


def cmd_tokenizer_stats(args) -> int:
    from triptych.text.data import drop_empty, read_pairs
    from triptych.text.tokenizer import describe, tokenizers_of, unk_stats

    pairs = drop_empty(read_pairs(args.data, split="data"), args.data)
    results = []
    for path in args.tokenizer:
        tok, src = tokenizers_of(path)  # a run with separate vocabularies: documents measured with the source's
        results.append({
            "tokenizer": str(path), **describe(tok), **({"source": describe(src)} if src is not tok else {}),
            "documents": unk_stats(src, [p.source for p in pairs]),
            "summaries": unk_stats(tok, [p.target for p in pairs]),
        })
    if args.json:
        emit_json({"data": str(args.data), "pairs": len(pairs), "tokenizers": results})
        return 0
    rows = [(r["tokenizer"], r["kind"], f"{r['source']['vocab_size']}/{r['vocab_size']}" if "source" in r else r["vocab_size"], f"{100 * r['documents']['unk_rate']:.2f}", f"{100 * r['summaries']['unk_rate']:.2f}",
             f"{100 * r['summaries']['texts_with_unk']:.1f}", f"{r['summaries']['tokens_per_text']:.1f}") for r in results]
    print_table(rows, ("tokenizer", "kind", "vocab", "unk% docs", "unk% summaries", "summaries with unk %", "tokens/summary"))
    print(f"{len(pairs)} pairs of {args.data}")
    return 0


def cmd_rerank_fit(args) -> int:
    from triptych.text.workflows.nbest import fit_on_file

    result = fit_on_file(args.checkpoint, args.data, decode=_decode(args), limit=args.limit, lm_order=args.lm_order,
                         lm_data=args.lm_data, device=args.device)
    if args.json:
        emit_json(result)
        return 0
    print_table([(k, f"{result[k]:.2f}") for k in ("rougeL_beam", "rougeL_reranked", "rougeL_oracle")], ("valid", "R-L F1 x 100"))
    print("weights: " + ", ".join(f"{k} {v:+.2f}" for k, v in result["weights"].items()))
    print(f"{result['documents']} documents, {result['nbest']}-best of beam {result['beam']}; saved {result['saved']}")
    return 0


# --- scoring without a model --------------------------------------------------

def cmd_copy(args) -> int:
    from triptych.text.metrics.bleu import parse_metrics
    from triptych.text.workflows.scoring import score_copy

    result = score_copy(args.data, parse_metrics(args.metric))
    return report_rouge(args, result, f"{result['pairs']} pairs, the source copied as the output")


def cmd_rouge(args) -> int:
    from triptych.text.workflows.scoring import score_files

    result = score_files(args.pred, args.ref, stem=args.stem, cjk=args.cjk, bootstrap=args.bootstrap)
    if args.json:
        emit_json(result)
        return 0
    rows = []
    for k, v in result["detail"].items():
        row = [k, f"{v['precision']:.2f}", f"{v['recall']:.2f}", f"{v['f1']:.2f}"]
        if args.bootstrap:
            ci = result["intervals"][k]
            row.append(f"[{ci['low']:.2f}, {ci['high']:.2f}]")
        rows.append(tuple(row))
    print_table(rows, ("metric", "P", "R", "F1") + (("F1 95% CI",) if args.bootstrap else ()))
    print(f"{result['pairs']} pairs, stemming {'on' if args.stem else 'off'}")
    return 0


def _write_and_report(args, result: dict, summaries: list[str], caption: str) -> int:
    if args.output:
        from triptych.text.data import write_lines

        write_lines(args.output, summaries)
    return report_rouge(args, result, caption)


def cmd_lead(args) -> int:
    from triptych.text.workflows.scoring import score_lead

    result, summaries = score_lead(args.data, args.words)
    return _write_and_report(args, result, summaries, f"lead-{args.words} of the first sentence, {result['pairs']} pairs")


def cmd_textrank(args) -> int:
    from triptych.text.workflows.scoring import score_textrank

    result, summaries = score_textrank(args.data, sentences=args.sentences, words=args.words)
    budget = f", cut to {args.words} words" if args.words else ""
    return _write_and_report(args, result, summaries, f"TextRank top-{args.sentences} sentence(s){budget}, {result['pairs']} pairs")
