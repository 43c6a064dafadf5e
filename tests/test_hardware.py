"""The CPU facts and the paths chosen from them."""

import json

import pytest

from triptych import hardware


def test_describe_names_the_cpu_and_the_paths():
    d = hardware.describe()
    json.dumps(d)  # goes into every benchmark's JSON line
    assert d["cpu"] and d["cpu"] != "unknown"
    assert d["inference_dtype"] in ("float32", "bfloat16")
    assert set(d["isa"]) <= set(hardware._INTERESTING)
    assert isinstance(d["onednn"], bool) and d["threads"] >= 1


@pytest.mark.parametrize("flags,expected", [
    ({"avx2", "avx512f"}, "float32"),
    ({"avx512f", "avx512_bf16"}, "bfloat16"),  # AMD Zen 4: measured to win end to end
    ({"avx512f", "avx512_bf16", "amx_tile", "amx_bf16"}, "bfloat16"),  # Intel Sapphire Rapids
])
def test_inference_dtype_follows_the_matrix_units(monkeypatch, flags, expected):
    monkeypatch.setattr(hardware, "bf16_kernels", lambda: True)
    monkeypatch.delenv("TRIPTYCH_INFERENCE_DTYPE", raising=False)
    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset(flags))
    assert hardware.default_inference_dtype() == expected


def test_the_environment_forces_a_path(monkeypatch):
    monkeypatch.setattr(hardware, "bf16_kernels", lambda: True)
    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset())
    monkeypatch.setenv("TRIPTYCH_INFERENCE_DTYPE", "bfloat16")
    assert hardware.default_inference_dtype() == "bfloat16"
    monkeypatch.setenv("TRIPTYCH_INFERENCE_DTYPE", "nonsense")
    assert hardware.default_inference_dtype() == "float32"


def test_gemm_peak_is_a_positive_rate():
    assert hardware.gemm_peak_gflops("float32", n=256, seconds=0.05) > 0


def test_inference_autocast_follows_the_dtype(monkeypatch, bf16_kernels):
    import torch

    x = torch.randn(4, 8)
    w = torch.randn(8, 3)
    monkeypatch.setenv("TRIPTYCH_INFERENCE_DTYPE", "bfloat16")
    with hardware.inference_autocast("cpu"):
        assert (x @ w).dtype == torch.bfloat16
    monkeypatch.setenv("TRIPTYCH_INFERENCE_DTYPE", "float32")
    with hardware.inference_autocast("cpu"):
        assert (x @ w).dtype == torch.float32


@pytest.mark.parametrize("flags,expected", [
    ({"avx2", "avx512f"}, "fp32"),  # emulated bf16 products would be slower than fp32
    ({"avx512f", "avx512_bf16"}, "bf16"),  # AMD Zen 4
    ({"avx512f", "avx512_bf16", "amx_tile", "amx_bf16"}, "bf16"),  # Intel Sapphire Rapids
])
def test_auto_training_precision_follows_the_matrix_units(monkeypatch, flags, expected):
    monkeypatch.setattr(hardware, "bf16_kernels", lambda: True)
    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset(flags))
    assert hardware.training_precision("auto", "cpu") == expected
    assert hardware.training_precision("fp32", "cpu") == "fp32"  # what is asked is kept
    assert hardware.training_precision("bf16", "cpu") == "bf16"


def test_bf16_is_refused_with_one_line_where_the_cpu_has_no_bf16_kernels(monkeypatch):
    """An AVX2-only CPU (AMD EPYC Zen 2/3): oneDNN refuses bf16 LSTMs and packed linears,
    so bf16 is never chosen there, and asking for it is a clear error, not a crash mid-run."""
    from triptych.errors import UserError

    monkeypatch.setattr(hardware, "bf16_kernels", lambda: False)
    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset({"avx2", "avx512_bf16", "amx_bf16"}))
    assert hardware.training_precision("auto", "cpu") == "fp32"
    monkeypatch.delenv("TRIPTYCH_INFERENCE_DTYPE", raising=False)
    assert hardware.default_inference_dtype() == "float32"
    with pytest.raises(UserError, match=r"train.precision bf16: this CPU \(.*\) has no bf16 kernels"):
        hardware.training_precision("bf16", "cpu")
    monkeypatch.setenv("TRIPTYCH_INFERENCE_DTYPE", "bfloat16")
    with pytest.raises(UserError, match="TRIPTYCH_INFERENCE_DTYPE=bfloat16: this CPU"):
        hardware.default_inference_dtype()


def test_bf16_kernels_agrees_with_the_cpu_flags():
    """torch's own probe and the ISA rule oneDNN states (AVX512BW+VL+DQ, or AVX-NE-CONVERT)."""
    flags = hardware.cpu_flags()
    if not flags:
        pytest.skip("no /proc/cpuinfo flags here")
    by_flags = "avx_ne_convert" in flags or {"avx512bw", "avx512vl", "avx512dq"} <= flags
    assert hardware.bf16_kernels() == by_flags


@pytest.mark.parametrize("device,expected", [
    ("cpu", "channels_last"),  # measured 1.0-2.0x on every recipe's model, fp32 and bf16, training and evaluation
    ("cuda", "contiguous"),  # not measured: left as torch lays it out
])
def test_auto_memory_format_follows_the_measurements(device, expected):
    assert hardware.conv_memory_format("auto", device) == expected
    for asked in ("channels_last", "contiguous"):  # what is asked is kept
        assert hardware.conv_memory_format(asked, device) == asked


_FAULTS = """
import ctypes, resource
from triptych import hardware
state = hardware.keep_freed_memory()
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_size_t], [ctypes.c_void_p]
size = 20 << 20  # over glibc's default mmap threshold
block = libc.malloc(size); ctypes.memset(block, 1, size); libc.free(block)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
block = libc.malloc(size); ctypes.memset(block, 1, size)
print(state, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before, hardware.describe()["allocator"])
"""


def _run_faults(env_extra):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "LD_PRELOAD"}
    out = subprocess.run([sys.executable, "-c", _FAULTS], env={**env, **env_extra}, capture_output=True, text=True, check=True)
    state, faults, described = out.stdout.split()
    return state, int(faults), described


@pytest.mark.skipif(__import__("platform").libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_freed_large_blocks_are_reused_without_page_faults():
    state, faults, described = _run_faults({})
    assert state == described == "glibc-kept"
    user_state, default_faults, _ = _run_faults({"MALLOC_ARENA_MAX": "4"})
    assert user_state == "user"  # the user's own settings win, and glibc's defaults then stand
    assert faults * 10 < default_faults  # the freed block's pages reused, not faulted in afresh


def test_every_command_asks_for_it(monkeypatch):
    from triptych import cli

    calls = []
    monkeypatch.setattr(hardware, "keep_freed_memory", lambda: calls.append(1) or "default")
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert calls == [1]
