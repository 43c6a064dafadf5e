"""`triptych text rouge` and `text baseline {lead,textrank,copy}`: the
commands that score text without a model (registered in text/commands.py)."""

from __future__ import annotations

from triptych.errors import UserError
from triptych.text.cli import print_table, report_rouge, write_lines


def cmd_copy(args) -> int:
    """Score the sources themselves as outputs: what a translation model must be far above."""
    from triptych.text.metrics.bleu import parse_metrics, translation_scores
    from triptych.text.data import drop_empty, read_pairs
    from triptych.text.metrics.rouge import rouge_f1_x100

    metrics = parse_metrics(args.metric)
    pairs = drop_empty(read_pairs(args.data, split="test"), args.data)
    sources, refs = [p.source for p in pairs], [p.target for p in pairs]
    result = rouge_f1_x100(sources, refs)
    result.update(translation_scores(sources, refs, metrics), pairs=len(pairs), data=str(args.data))
    return report_rouge(args, result, f"{len(pairs)} pairs, the source copied as the output")


def read_summary_lines(path) -> list[str]:
    from triptych.files import read_lines

    lines = [text for _, text in read_lines(path)]
    if not lines:
        raise UserError(f"{path}: empty file")
    return lines


def cmd_rouge(args) -> int:
    from triptych.text.metrics import rouge

    preds, refs = read_summary_lines(args.pred), read_summary_lines(args.ref)
    if len(preds) != len(refs):
        raise UserError(f"{args.pred} has {len(preds)} lines but {args.ref} has {len(refs)}")
    from triptych.text.tokenizer import looks_cjk

    per_pair = rouge.score_pairs(preds, refs, stem=args.stem, cjk=args.cjk or looks_cjk(refs))
    means = rouge.mean_scores(per_pair)
    result = {k: 100 * v.fmeasure for k, v in means.items()}
    result["pairs"] = len(preds)
    result["detail"] = {k: {"precision": 100 * v.precision, "recall": 100 * v.recall, "f1": 100 * v.fmeasure} for k, v in means.items()}
    if args.bootstrap:
        intervals = rouge.bootstrap_intervals(per_pair)
        result["intervals"] = {k: {kk: 100 * vv for kk, vv in v.items()} for k, v in intervals.items()}
    if args.json:
        from triptych.cli import emit_json

        emit_json(result)
        return 0
    rows = []
    for k, v in means.items():
        row = [k, f"{100 * v.precision:.2f}", f"{100 * v.recall:.2f}", f"{100 * v.fmeasure:.2f}"]
        if args.bootstrap:
            ci = result["intervals"][k]
            row.append(f"[{ci['low']:.2f}, {ci['high']:.2f}]")
        rows.append(tuple(row))
    print_table(rows, ("metric", "P", "R", "F1") + (("F1 95% CI",) if args.bootstrap else ()))
    print(f"{len(preds)} pairs, stemming {'on' if args.stem else 'off'}")
    return 0


def cmd_lead(args) -> int:
    from triptych.text.data import drop_empty, read_pairs
    from triptych.text.baselines.extractive import lead
    from triptych.text.metrics.rouge import rouge_f1_x100
    from triptych.text.tokenizer import looks_cjk

    if args.words is not None and args.words < 1:
        raise UserError(f"--words {args.words}: must be at least 1")
    pairs = drop_empty(read_pairs(args.data, split="data"), args.data)
    summaries = [lead(p.source, args.words) for p in pairs]
    refs = [p.target for p in pairs]
    result = rouge_f1_x100(summaries, refs, stem=True, cjk=looks_cjk(refs))
    result["pairs"] = len(pairs)
    if args.output:
        write_lines(args.output, summaries)
    return report_rouge(args, result, f"lead-{args.words} of the first sentence, {len(pairs)} pairs")


def cmd_textrank(args) -> int:
    from triptych.text.data import drop_empty, read_pairs
    from triptych.text.metrics.rouge import rouge_f1_x100
    from triptych.text.baselines.textrank import textrank_many
    from triptych.text.tokenizer import looks_cjk

    for flag, value in (("--sentences", args.sentences), ("--words", args.words)):
        if value is not None and value < 1:
            raise UserError(f"{flag} {value}: must be at least 1")
    pairs = drop_empty(read_pairs(args.data, split="data"), args.data)
    summaries = textrank_many([p.source for p in pairs], sentences=args.sentences, words=args.words)
    refs = [p.target for p in pairs]
    result = rouge_f1_x100(summaries, refs, stem=True, cjk=looks_cjk(refs))
    result.update(pairs=len(pairs), sentences=args.sentences, words=args.words)
    if args.output:
        write_lines(args.output, summaries)
    budget = f", cut to {args.words} words" if args.words else ""
    return report_rouge(args, result, f"TextRank top-{args.sentences} sentence(s){budget}, {len(pairs)} pairs")
