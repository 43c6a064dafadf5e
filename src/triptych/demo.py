"""`triptych demo`: the main job on embedded data, where a newcomer starts.

Each domain contributes one part: the text part trains a small Transformer
summarizer with copy attention on the real Debian descriptions for a fixed
time budget, scores it on the test split beside the Lead baseline and shows
a few summaries; the vision and video parts are added by their domains.
"""

from __future__ import annotations

from triptych.console import emit_json

import shutil
import sys
from pathlib import Path

from triptych.errors import UserError

PARTS = ("text", "vision", "video")


def register(sub) -> None:
    p = sub.add_parser("demo", help="train and evaluate the main models on embedded data (about 15 minutes)")
    p.add_argument("--minutes", type=float, default=10.0, help="training budget of the text model (default 10)")
    p.add_argument("--out", default="runs/demo", help="where the demo's runs go (replaced on each run)")
    p.add_argument("--only", nargs="+", choices=PARTS, help="run only these parts")
    p.add_argument("--json", action="store_true", help="print the results as one JSON object")
    p.set_defaults(func=cmd_demo)


def data_root() -> Path:
    """The embedded data folder: ./data when run from a checkout, else beside the package."""
    for candidate in (Path("data"), Path(__file__).resolve().parents[2] / "data"):
        if (candidate / "debian-descriptions" / "train.jsonl.gz").is_file():
            return candidate
    raise UserError("data/debian-descriptions: embedded data not found; run the demo from the triptych checkout")


def say(text: str = "") -> None:
    print(text, file=sys.stderr, flush=True)


def text_part(out: Path, minutes: float) -> dict:
    from triptych.console import print_table
    from triptych.text.data import read_pairs
    from triptych.text.workflows.evaluate import evaluate_checkpoint
    from triptych.text.baselines.extractive import lead
    from triptych.text.predictor import Summarizer
    from triptych.text.metrics.corpus import rouge_f1_x100
    from triptych.text.train import run_training

    data = data_root() / "debian-descriptions"
    run_dir = out / "text"
    shutil.rmtree(run_dir, ignore_errors=True)
    recipe = data.parent.parent / "configs" / "text" / "demo.yaml"
    overrides = [f"data.train={data / 'train.jsonl.gz'}", f"data.valid={data / 'valid.jsonl.gz'}", f"data.test={data / 'test.jsonl.gz'}", f"train.max_minutes={minutes}"]
    say(f"== text: training a Transformer summarizer with copy attention for {minutes:g} minutes on {data}")
    summary = run_training(str(recipe), overrides, out=str(run_dir))
    best = run_dir / "best"
    say(f"== text: scoring {best} on the test split (beam 4)")
    test = data / "test.jsonl.gz"
    ours = evaluate_checkpoint(best, test)
    pairs = read_pairs(test)
    leads = rouge_f1_x100([lead(p.source, 10) for p in pairs], [p.target for p in pairs], stem=True)
    keys = ("rouge1", "rouge2", "rougeL")
    print("\nSummarization, Debian descriptions test split (ROUGE F1 x 100, stemmed):")
    print_table([("Lead (first 10 words of the first sentence)", *(f"{leads[k]:.1f}" for k in keys)),
                 (f"Transformer + copy, {minutes:g} min, beam 4", *(f"{ours[k]:.1f}" for k in keys))],
                ("system", "R-1", "R-2", "R-L"))
    summarizer = Summarizer(best)
    examples = pairs[:3]
    generated = summarizer.summarize([p.source for p in examples])
    shown = []
    for p, g in zip(examples, generated):
        doc = p.source if len(p.source) < 300 else p.source[:300] + "..."
        print(f"\ndocument:  {doc}\nreference: {p.target}\ngenerated: {g}")
        shown.append({"document": p.source, "reference": p.target, "generated": g})
    return {"run_dir": str(run_dir), "training": summary, "test": {k: ours[k] for k in keys}, "lead": {k: leads[k] for k in keys}, "examples": shown}


DEMO_MARK = ".triptych-demo"  # written into --out: this folder is the demo's to replace


def check_demo_folder(out: Path) -> None:
    """The demo replaces <out>/text, vision and video: refuse a folder that is not an
    earlier demo's (its mark, or only part folders that hold runs), so `--out .` or
    `--out ~/project` can never delete the user's own `text/`."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder")
    if not out.is_dir() or (out / DEMO_MARK).is_file():
        return
    entries = list(out.iterdir())
    foreign = sorted(p.name for p in entries if p.name not in PARTS
                     or not any(p.glob("config.yaml")) and not any(p.glob("*/config.yaml")))
    if foreign:
        raise UserError(f"--out {out}: holds {', '.join(foreign[:3])}{' ...' if len(foreign) > 3 else ''}, "
                        "which is not an earlier demo's; the demo replaces its folders, so give an empty or new folder")


def cmd_demo(args) -> int:
    if args.minutes <= 0:
        raise UserError(f"--minutes {args.minutes}: must be positive")
    out = Path(args.out)
    check_demo_folder(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / DEMO_MARK).write_text("made by `triptych demo`: its folders are replaced on each run\n")
    parts = args.only or PARTS
    results: dict = {}
    real_stdout = sys.stdout
    if args.json:  # tables go to stderr; stdout carries only the JSON object
        sys.stdout = sys.stderr
    try:
        if "text" in parts:
            results["text"] = text_part(out, args.minutes)
        for name in ("vision", "video"):
            if name in parts:
                try:
                    module = __import__(f"triptych.{name}.demo", fromlist=["run"])
                except ModuleNotFoundError:
                    say(f"== {name}: not part of this build yet")
                    continue
                results[name] = module.run(out / name)
    finally:
        sys.stdout = real_stdout
    if args.json:

        emit_json(results)
    return 0
