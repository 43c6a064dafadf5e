"""A toy training run in its own process, for the signal and DDP tests.

    python -m tests.engine.worker RUN_DIR '{"train": {...}, "dropout": 0.1, ...}'

Run from the repository root. Under a torchrun-style environment (RANK,
WORLD_SIZE, MASTER_ADDR, MASTER_PORT) it joins the process group like any
triptych run would. Rank 0 prints the summary as one JSON line on stdout.
"""

from __future__ import annotations

import json
import os
import sys

from tests.engine.toy_task import make
from triptych.engine.trainer import train


def main(argv: list[str]) -> int:
    run_dir, spec = argv[0], json.loads(argv[1])
    task, cfg = make(spec.get("train"), dropout=spec.get("dropout", 0.1), batch_size=spec.get("batch_size", 8),
                     delay=spec.get("delay", 0.0),
                     signal_after=spec.get("signal_after") if os.environ.get("RANK", "0") == "0" else None)
    torch_threads = spec.get("threads", 1)
    import torch

    torch.set_num_threads(torch_threads)
    summary = train(task, cfg.train, run_dir, full_config=cfg, seed=spec.get("seed", 0),
                    resume=spec.get("resume", False), progress=False)
    if os.environ.get("RANK", "0") == "0":
        print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
