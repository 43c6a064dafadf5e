"""Every speed target of issues 16 and 19 on this CPU, each benchmark run several times, in one table.

The targets must hold on both CPU kinds a newcomer may have (AMD EPYC, Intel
Xeon with AMX) and over repeated runs, not in the best one. This runs the
benchmarks behind them one after another in fresh processes, `--runs`
times each (3 by default: about 30 minutes on a 2-core VM, nothing else may
run beside it), and reports each target's median, its spread and whether
the median reaches it:

| target | benchmark | needs |
|---|---|---|
| training, fp32 | `text_train.py --rounds 5` | >= 1.5x HF BART |
| training, bf16 autocast | `text_train.py --rounds 5 --precision bf16` | >= 1.5x |
| greedy / beam 4, float32 | `text_decode.py --rounds 5` | >= 2.5x / >= 3x HF `generate` |
| TFRecord reading | `video_read.py` | >= 3x the `tfrecord` package |
| GAP@20 | `video_metrics.py` | >= 20x the reference |
| ROUGE, one thread | `rouge.py` | >= 1x `rouge-score-rs`, or it inside (`"engine": "native"`) |

Besides the targets it keeps the figures a results row quotes: MFU of each
training side, the decoding ratio at this CPU's default inference dtype,
reading against tf.data. A benchmark that fails is reported as failed and
the others still run.

Usage: python benchmarks/cpu_targets.py [--runs 3] [--only text_train,video_read] [--no-tf]
Prints a markdown table on stderr (ready for docs/results.md) and one JSON
line last on stdout with every run's figures and the machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from triptych.hardware import describe

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Target:
    label: str
    key: str  # the figure in the benchmark's JSON line
    needs: float  # the median must reach this
    or_when: tuple[str, object] | None = None  # (key, value): met anyway when every run reports it


@dataclass(frozen=True)
class Bench:
    name: str
    args: tuple[str, ...]
    targets: tuple[Target, ...]
    extras: tuple[str, ...] = ()  # further JSON figures worth quoting, when present
    peers: tuple[str, ...] = ()  # the modules its peer needs in this venv (`make bench` installs them)


BENCHES = (
    Bench("text_train", ("text_train.py", "--rounds", "5"),
          (Target("training vs HF BART, fp32", "ratio", 1.5),), ("triptych_mfu", "bart_mfu", "bart_eager_mfu"),
          ("transformers",)),
    Bench("text_train_bf16", ("text_train.py", "--rounds", "5", "--precision", "bf16"),
          (Target("training vs HF BART, bf16 autocast", "ratio", 1.5),),
          ("triptych_mfu", "bart_mfu", "bart_eager_mfu"), ("transformers",)),
    Bench("text_decode", ("text_decode.py", "--rounds", "5"),
          (Target("greedy vs HF generate, float32", "greedy_ratio", 2.5),
           Target("beam 4 vs HF generate, float32", "beam4_ratio", 3.0)),
          ("greedy_default_ratio", "beam4_default_ratio"), ("transformers",)),
    Bench("video_read", ("video_read.py",), (Target("TFRecord reading vs tfrecord", "ratio", 3.0),),
          ("ratio_vs_tf_data",), ("tfrecord", "google.protobuf")),
    Bench("video_metrics", ("video_metrics.py",), (Target("GAP@20 vs the reference", "ratio", 20.0),)),
    Bench("rouge", ("rouge.py",),
          (Target("ROUGE vs rouge-score-rs, one thread", "rs_ratio", 1.0, or_when=("engine", "native")),), ("ratio",),
          ("rouge_score", "rouge_score_rs")),
)


def last_json_line(text: str) -> dict | None:
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                return None
    return None


def missing_peers(benches) -> list[str]:
    """The peer modules the chosen benchmarks need that this interpreter cannot import."""
    def importable(name: str) -> bool:
        try:
            return importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # a dotted name whose parent is missing
            return False

    return sorted({name for bench in benches for name in bench.peers if not importable(name)})


def run_once(bench: Bench, extra_args: list[str]) -> dict:
    """One fresh process of the benchmark -> its JSON line, or {"error": ...}."""
    cmd = [sys.executable, str(HERE / bench.args[0]), *bench.args[1:], *extra_args]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE.parent)
    result = last_json_line(proc.stdout) if proc.returncode == 0 else None
    if result is None:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"error": f"exit {proc.returncode}: {tail[0][:200]}"}
    return result


def summarize(target: Target, results: list[dict]) -> dict:
    """Median, spread and verdict of one target's figures over the runs (failed runs left out)."""
    values = [r[target.key] for r in results if isinstance(r.get(target.key), (int, float))]
    if not values:
        return {"runs": 0, "met": False}
    median = statistics.median(values)
    met = median >= target.needs
    if target.or_when is not None:
        key, value = target.or_when
        met = met or all(r.get(key) == value for r in results)
    return {"runs": len(values), "median": round(median, 3), "min": round(min(values), 3),
            "max": round(max(values), 3), "needs": target.needs, "met": met}


def table(rows: list[dict], cpu: str) -> str:
    lines = [f"CPU: {cpu}", "", "| target | median | spread | runs | needs | met |", "|---|---|---|---|---|---|"]
    for row in rows:
        s = row["summary"]
        if not s["runs"]:
            lines.append(f"| {row['label']} | failed | {row.get('error', '')} | 0 | {row['needs']}x | no |")
            continue
        verdict = "yes" if s["met"] and s["median"] >= s["needs"] else "yes (inside)" if s["met"] else "**no**"
        lines.append(f"| {row['label']} | {s['median']:.2f}x | {s['min']:.2f}-{s['max']:.2f} | {s['runs']} | "
                     f"{s['needs']}x | {verdict} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="fresh runs of each benchmark")
    ap.add_argument("--only", help="comma-separated benchmark names: " + ", ".join(b.name for b in BENCHES))
    ap.add_argument("--no-tf", action="store_true", help="video_read without tf.data (no TensorFlow venv)")
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs must be >= 1")
    chosen = BENCHES
    if args.only:
        names = {n.strip() for n in args.only.split(",") if n.strip()}
        unknown = names - {b.name for b in BENCHES}
        if unknown:
            ap.error(f"--only: unknown benchmark {sorted(unknown)[0]!r}; known: {', '.join(b.name for b in BENCHES)}")
        chosen = tuple(b for b in BENCHES if b.name in names)

    missing = missing_peers(chosen)
    if missing:  # every run would fail alike: say so once, before half an hour of them
        print(f"cpu_targets: the peers are not installed ({', '.join(missing)}); install them with "
              f"`{sys.executable} -m pip install -e '.[bench]'` (make bench's install line)", file=sys.stderr)
        return 2
    machine = describe()
    print(f"CPU: {machine['cpu']}", file=sys.stderr)
    rows, runs = [], {}
    for bench in chosen:
        extra = ["--no-tf"] if args.no_tf and bench.name == "video_read" else []
        results = []
        for i in range(args.runs):
            result = run_once(bench, extra)
            results.append(result)
            figures = {k: result[k] for k in (*(t.key for t in bench.targets), *bench.extras) if k in result}
            print(f"{bench.name} run {i + 1}/{args.runs}: {result.get('error') or figures}",
                  file=sys.stderr, flush=True)
        runs[bench.name] = [{k: v for k, v in r.items() if k != "machine"} for r in results]
        for target in bench.targets:
            row = {"benchmark": bench.name, "label": target.label, "key": target.key, "needs": target.needs,
                   "summary": summarize(target, results)}
            errors = [r["error"] for r in results if "error" in r]
            if errors:
                row["error"] = errors[0]
            rows.append(row)
    print("\n" + table(rows, machine["cpu"]), file=sys.stderr)
    print(json.dumps({"benchmark": "cpu_targets", "runs_each": args.runs, "targets": rows, "runs": runs,
                      "all_met": all(r["summary"]["met"] for r in rows), "machine": machine}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
