"""A run's report: learning curves, the final metrics table, the domain's picture, one HTML page.

Works for a run of any domain; the domain is the `task` of the run's
config.yaml. The pictures are PNG files in the run directory
(curves.png, and confusion.png, class_ap.png or attention.png); the page
embeds them, so it can travel alone.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from triptych.errors import UserError

DOMAINS = ("text", "vision", "video")


def read_run(run_dir: str | Path) -> tuple[Path, dict, list[dict]]:
    """(run directory, its config, its metrics records), each checked."""
    from triptych.engine.progress import read_metrics

    d = Path(run_dir)
    if not d.is_dir():
        raise UserError(f"{d}: no such run directory")
    config_path = d / "config.yaml"
    if not config_path.is_file():
        raise UserError(f"{d}: not a run directory (no config.yaml)")
    try:
        config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as e:
        raise UserError(f"{config_path}: corrupt run config ({type(e).__name__})") from None
    if not isinstance(config, dict) or config.get("task") not in DOMAINS:
        task = config.get("task") if isinstance(config, dict) else None
        raise UserError(f"{config_path}: task {task!r} is not one of {', '.join(DOMAINS)}")
    if not (d / "metrics.jsonl").is_file():
        raise UserError(f"{d / 'metrics.jsonl'}: no such file (the run logged no metrics)")
    records = [r for r in read_metrics(d) if isinstance(r, dict) and isinstance(r.get("step"), int)]
    if not records:
        raise UserError(f"{d / 'metrics.jsonl'}: no metrics records")
    return d, config, records


def final_metrics(records: list[dict]) -> dict:
    """The last evaluation's metrics (and its step), and the last training record's loss."""
    valid = [r for r in records if r.get("kind") == "valid"]
    train = [r for r in records if r.get("kind") == "train"]
    out: dict = {}
    if valid:
        last = max(valid, key=lambda r: r["step"])
        out["valid"] = {k: v for k, v in last.items() if k not in ("kind", "elapsed", "best")}
    if train:
        last = max(train, key=lambda r: r["step"])
        out["train"] = {k: last[k] for k in ("step", "loss", "lr") if k in last}
    return out


def _best(run: Path) -> dict | None:
    """meta.json of best/: the step and metrics of the checkpoint a report's pictures come from."""
    import json

    from triptych.engine.checkpoint import resolve

    meta_path = resolve(run / "best") / "meta.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def metrics_table(final: dict, best: dict | None):
    from triptych.report.html import Table

    last = final.get("valid", {})
    best_metrics = (best or {}).get("metrics") or {}
    names = [k for k in last if k not in ("step", "best")] + [k for k in best_metrics if k not in last]
    header = ["metric", f"last evaluation (step {last.get('step', '-')})"]
    if best is not None:
        header.append(f"best checkpoint (step {best.get('step', '-')})")
    rows = [[n, last.get(n)] + ([best_metrics.get(n)] if best is not None else []) for n in names]
    if "train" in final:
        t = final["train"]
        rows += [[f"train {k}", t[k]] + ([None] if best is not None else []) for k in ("loss", "lr") if k in t]
    return Table("Final metrics", header, rows)


def build_report(run_dir: str | Path, output: str | Path | None = None) -> dict:
    """Write the pictures and the page; returns {"report", "pictures", "metrics", "skipped", ...}."""
    from triptych.files import atomic_write_text
    from triptych.report import html
    from triptych.report.curves import learning_curves
    from triptych.report.pictures import DOMAIN_PICTURES

    run, config, records = read_run(run_dir)
    domain = config["task"]
    out = Path(output) if output is not None else run / "report.html"
    if out.is_dir():
        raise UserError(f"{out}: is a directory, expected an HTML file name")
    model_name = (config.get("model") or {}).get("name", "?")
    page = html.Page(f"{run.name}: {domain} / {model_name}", subtitle=str(run.resolve()))
    pictures: dict[str, str] = {}
    skipped: dict[str, str] = {}
    try:
        pictures["curves"] = str(learning_curves(records, run / "curves.png", title=f"{domain} / {model_name}"))
        page.figures.append(html.Figure("Learning curves", run / "curves.png",
                                        "loss, validation metrics and learning rate against the optimiser step"))
    except ValueError as e:
        skipped["curves"] = str(e)
    final, best = final_metrics(records), _best(run)
    page.tables.append(metrics_table(final, best))
    filename, title, draw = DOMAIN_PICTURES[domain]
    details: dict = {}
    if best is None:
        skipped[filename] = f"{run / 'best'}: no best checkpoint yet (the run never validated)"
    else:
        print(f"triptych: report: {title.lower()} from {run / 'best'} ...", file=sys.stderr, flush=True)
        try:
            path, details = draw(run / "best", run / filename)
            pictures[filename.rsplit(".", 1)[0]] = str(path)
            caption = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in details.items())
            page.figures.append(html.Figure(title, path, f"best checkpoint (step {best.get('step')}): {caption}"))
        except UserError as e:  # the picture's data is missing or unreadable: say so, keep the rest
            skipped[filename] = str(e)
    for name, reason in skipped.items():
        page.notes.append(f"{name} not drawn: {reason}")
        print(f"triptych: {name} not drawn: {reason}", file=sys.stderr)
    page.appendix = ("Config", yaml.safe_dump(config, sort_keys=False))
    atomic_write_text(out, html.render(page))
    return {"report": str(out), "domain": domain, "model": model_name, "pictures": pictures, "skipped": skipped,
            "metrics": final, "best": {"step": best.get("step"), "metrics": best.get("metrics")} if best else None,
            "picture_details": details}
