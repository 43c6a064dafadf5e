"""A peer library's own venv under benchmarks/.peers/, made on first use.

Peers whose dependencies clash with triptych's venv (torchvision wants
another torch, TensorFlow another numpy and protobuf) run in a venv of
their own, as a subprocess of the benchmark.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def ensure_venv(path: Path, packages: list[str]) -> Path | None:
    """The venv's python, installing `packages` into a new venv at `path` if
    there is none; None (and a line on stderr) if that fails."""
    python = path / "bin" / "python"
    if python.exists():
        return python
    print(f"installing the peer ({' '.join(packages)}) into {path} ...", file=sys.stderr)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)
    except (subprocess.CalledProcessError, OSError) as e:
        print(f"could not install the peer: {e}", file=sys.stderr)
        return None
    return python
