"""Cost of the checkpoint CRC-32 + finite check on the transformer-debian recipe's model (issue 18).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/checkpoint_verify_cost.py
"""
import json, sys, tempfile, time
from pathlib import Path
import torch, yaml
from safetensors.torch import load_model
from triptych.engine import checkpoint as ckpt
from triptych.text.models import build_model

cfg = yaml.safe_load(open("configs/text/transformer-debian.yaml"))
model = build_model("transformer", cfg["model"], 8000, 0)
t0 = time.perf_counter(); build_model("transformer", cfg["model"], 8000, 0); t_build = time.perf_counter() - t0
params = sum(p.numel() for p in model.parameters())
with tempfile.TemporaryDirectory() as d:
    t0 = time.perf_counter(); c = ckpt.save_checkpoint(Path(d) / "c", model, domain="text", config={}); t_save = time.perf_counter() - t0
    size = (c / ckpt.WEIGHTS).stat().st_size
    def best(f, n=7):
        ts = []
        for _ in range(n):
            t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
        return min(ts)
    t_plain = best(lambda: load_model(model, str(c / ckpt.WEIGHTS), strict=False))
    t_full = best(lambda: ckpt.load_weights(c, model))
    t_sha = best(lambda: ckpt.file_crc32(c / ckpt.WEIGHTS))
    t_fin = best(lambda: ckpt.check_finite(model, c))
print(json.dumps({"params": params, "mb": round(size / 2**20, 1), "load_plain_s": round(t_plain, 4), "load_verified_s": round(t_full, 4),
                  "crc32_s": round(t_sha, 4), "finite_s": round(t_fin, 4), "overhead_ratio": round(t_full / t_plain, 2), "save_s": round(t_save, 3), "build_model_s": round(t_build, 3)}))
