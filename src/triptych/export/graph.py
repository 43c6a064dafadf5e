"""The ONNX tools every export uses: trace a module into a graph, run a graph
with onnxruntime, compare its outputs with torch's."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch

OPSET = 17
_REGISTERED = False


def register_symbolics() -> None:
    """Teach the TorchScript exporter `aten::logaddexp` (once a process)."""
    global _REGISTERED
    if _REGISTERED:
        return

    def logaddexp(g, a, b):
        top = g.op("Max", a, b)
        gap = g.op("Neg", g.op("Abs", g.op("Sub", a, b)))
        one = g.op("Constant", value_t=torch.tensor(1.0))
        return g.op("Add", top, g.op("Log", g.op("Add", one, g.op("Exp", gap))))

    torch.onnx.register_custom_op_symbolic("aten::logaddexp", logaddexp, OPSET)
    _REGISTERED = True


def trace(module: torch.nn.Module, args: tuple, path: Path, input_names: list[str], output_names: list[str],
          dynamic_axes: dict[str, dict[int, str]]) -> None:
    """Trace `module` on `args` into `path` (opset 17, eval mode, the exporter's chatter silenced)."""
    register_symbolics()
    module.eval()  # the exporter restores the wrapper's mode, and with it every submodule's
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the deprecation notice and tracer warnings about baked-in sizes
        torch.onnx.export(module, args, str(path), dynamo=False, opset_version=OPSET, input_names=input_names,
                          output_names=output_names, dynamic_axes=dynamic_axes, do_constant_folding=True)
    module.eval()


def session(path: str | os.PathLike, threads: int = 1):
    """An onnxruntime CPU session of one graph (one thread: the checks are small, the machine shared)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = options.inter_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def max_abs_diff(ours: list[np.ndarray], theirs: list[torch.Tensor]) -> float:
    return max(float(np.max(np.abs(a - b.detach().cpu().numpy()), initial=0.0)) for a, b in zip(ours, theirs))
