import gzip
import json
import os
from pathlib import Path

import pytest

# The suite runs float32 inference on every CPU: on one with AMX the default
# would be bf16 products, and equalities that hold between float32 code
# paths (cache vs none, beam 1 vs greedy) would rest on bf16 rounding. The
# bf16 path has tests of its own that force it. Set before anything is
# imported, so that subprocesses inherit it.
os.environ.setdefault("TRIPTYCH_INFERENCE_DTYPE", "float32")

ROOT = Path(__file__).resolve().parents[1]
DEBIAN = ROOT / "data" / "debian-descriptions"


@pytest.fixture
def bf16_kernels():
    """Skip where this CPU has no oneDNN bf16 kernels (an AVX2-only AMD EPYC):
    there triptych refuses bf16 with a clear error, which tests/test_hardware.py checks."""
    from triptych import hardware

    if not hardware.bf16_kernels():
        pytest.skip(f"no oneDNN bf16 kernels on this CPU ({hardware.cpu_model()})")


@pytest.fixture
def run_cli(capsys):
    """Run `triptych ARGS...` in-process; return (exit status, stdout, stderr)."""
    from triptych.cli import main

    def run(*args):
        try:
            status = main([str(a) for a in args])
        except SystemExit as e:  # argparse usage errors
            status = e.code
        out = capsys.readouterr()
        return status, out.out, out.err

    return run


def write_jsonl(path: Path, records, gz: bool = False) -> Path:
    lines = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(lines)
    else:
        path.write_text(lines, encoding="utf-8")
    return path


def video_recipe(path: Path, shards, steps: int, *, data: dict | None = None, model: dict | None = None) -> Path:
    """Write the tiny video recipe the video and serve tests share: synthesized shards under
    `shards` (12 classes), 4 sampled frames, mean-MoE unless `model` says otherwise, `steps`
    steps with an evaluation and a checkpoint at the last; `data`/`model` add or replace keys."""
    import yaml

    recipe = {
        "seed": 1,
        "data": {"train": f"{shards}/train*.tfrecord", "valid": f"{shards}/validate*.tfrecord", "num_classes": 12,
                 "sampling": "random", "frames": 4, "batch_size": 16, **(data or {})},
        "model": {"name": "mean-moe", **(model or {})},
        "train": {"max_steps": steps, "eval_every": steps, "save_every": steps, "warmup_steps": 1, "log_every": 0},
    }
    path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    return path


def debian_pairs(split: str = "test", n: int | None = None) -> list[dict]:
    out = []
    with gzip.open(DEBIAN / f"{split}.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            out.append(json.loads(line))
            if n is not None and len(out) >= n:
                break
    return out
