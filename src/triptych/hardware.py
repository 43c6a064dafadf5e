"""What this CPU can do, read at run time, and the kernel paths chosen from it.

Our speed-ups were first tuned on AMD EPYC machines; a newcomer may as well
have an Intel Xeon whose AMX tiles run a bf16 matrix product six times
faster than float32 (AMD's AVX512-BF16: about two), or an AVX2-only EPYC
with no bf16 kernels at all. A path is therefore
chosen by what the CPU has, never by which machine it was tuned on, and every
benchmark prints `describe()` beside its figures so a number always says
where it was taken.

Nothing here imports torch at module level: `cpu_flags()` and `cpu_model()`
serve `triptych --help`-speed code paths too.
"""

from __future__ import annotations

import functools
import os
import platform
import time

from triptych.errors import UserError

# The ISA extensions that change which kernels win, in the names Linux uses
# in /proc/cpuinfo.
_INTERESTING = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16",
                "avx512_fp16", "avx_ne_convert", "amx_tile", "amx_bf16", "amx_int8")


@functools.lru_cache(maxsize=None)
def _cpuinfo() -> dict[str, str]:
    """The first processor's block of /proc/cpuinfo (empty where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            block = f.read().split("\n\n", 1)[0]
    except OSError:
        return {}
    info = {}
    for line in block.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            info[key.strip()] = value.strip()
    return info


def cpu_model() -> str:
    """'AMD EPYC', 'Intel(R) Xeon(R) Platinum 8480+', ... (the platform's word elsewhere)."""
    return _cpuinfo().get("model name") or platform.processor() or platform.machine() or "unknown"


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux names them ('avx512_bf16', 'amx_bf16', ...)."""
    return frozenset(_cpuinfo().get("flags", "").split())


def has_native_bf16() -> bool:
    """Any bf16 dot-product instruction: AMX, or AVX512-BF16 (AMD Zen 4+, Cooper Lake+)."""
    flags = cpu_flags()
    return "amx_bf16" in flags or "avx512_bf16" in flags


@functools.lru_cache(maxsize=None)
def bf16_kernels() -> bool:
    """Whether this torch build has oneDNN's bf16 kernels on this CPU.

    They need AVX512BW/VL/DQ or AVX-NE-CONVERT: an AMD EPYC of the Zen 2 or 3
    generation (AVX2 only) has neither, and there oneDNN refuses a bf16 LSTM
    or packed linear outright, though ATen's plain bf16 products still run
    (emulated, slower than float32). So bf16 is offered only where this is
    true."""
    import torch

    probe = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    if probe is not None:
        return bool(probe())
    flags = cpu_flags()
    return "avx_ne_convert" in flags or {"avx512bw", "avx512vl", "avx512dq"} <= flags


def require_bf16_kernels(what: str, hint: str = "") -> None:
    """Refuse bf16 in one line where this CPU has no bf16 kernels, naming what asked and the CPU."""
    if not bf16_kernels():
        have = ", ".join(sorted(cpu_flags() & set(_INTERESTING))) or "neither"
        raise UserError(f"{what}: this CPU ({cpu_model()}) has no bf16 kernels (they need AVX512BW/VL/DQ "
                        f"or AVX-NE-CONVERT; it has {have}){hint}")


def training_precision(requested: str, device="cpu") -> str:
    """The precision a run trains in: 'auto' becomes 'bf16' where products in bf16
    are native (a CPU with AVX512-BF16 or AMX; a CUDA GPU that supports bf16),
    else 'fp32'. 'fp32' and 'bf16' are kept as asked.

    Training is not inference: its products are large (a batch of images or of
    padded sequences), so even AVX512-BF16's 2.2x product speed carries
    through: ResNet-18 on 28x28 images trains at 1.9x the fp32 images/s on
    the AMD EPYC machines, and autocast keeps norms and losses in float32.
    Without native bf16 the products are emulated and slower than fp32, and
    without `bf16_kernels()` some layers (oneDNN's LSTM) refuse bf16 at all:
    asking for bf16 on such a CPU is a `UserError`, not a crash mid-run."""
    import torch

    kind = torch.device(device).type
    if requested == "bf16" and kind == "cpu":
        require_bf16_kernels("train.precision bf16", "; use auto or fp32")
    if requested != "auto":
        return requested
    if kind == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if kind == "cpu" and has_native_bf16() and bf16_kernels() else "fp32"


def conv_memory_format(requested: str = "auto", device="cpu") -> str:
    """The layout a model's convolution weights take, for training or inference:
    'auto' becomes 'channels_last' on a CPU, 'contiguous' elsewhere.
    'channels_last' and 'contiguous' are kept as asked.

    With channels-last weights oneDNN runs every convolution, pooling and
    batch norm in NHWC whatever the input's layout, and torch's NCHW max
    pooling is the slow one: GoogLeNet's stride-1 3x3 pools in every
    Inception block took a third of its step. Measured channels-last over
    NCHW, 2 threads, `benchmarks/vision_memory_format.py` (every
    Fashion-MNIST recipe's model), training steps:
    AVX2-only EPYC, fp32: GoogLeNet 1.39x, LeNet-5 1.26x, AlexNet 1.10x,
    ResNet-18 1.09x, VGG-11/16-BN and ZFNet 1.02-1.05x;
    AVX-512 EPYC (Zen 4), fp32: GoogLeNet 1.79x, LeNet-5 1.29x, the others
    1.00-1.12x; bf16 autocast: GoogLeNet 1.98x, LeNet-5 1.37x, the others
    1.04-1.20x (the ResNet-18 recipe end to end 1.10-1.12x); evaluation
    1.07-2.3x on both. Not measured on AMX, where oneDNN's bf16 kernels are
    NHWC-native too, nor on CUDA, which keeps torch's layout."""
    import torch

    if requested != "auto":
        return requested
    return "channels_last" if torch.device(device).type == "cpu" else "contiguous"


def default_inference_dtype() -> str:
    """'bfloat16' where the CPU has native bf16 products (AMX or AVX512-BF16)
    and oneDNN's bf16 kernels, else 'float32'.

    AVX512-BF16's product is only about 2.2x float32 at 2048 x 2048 (AMX's
    6.3x), and inference runs many small products where casts weigh more,
    so it had to win end to end first. It does, on the Zen 4 EPYC
    (2026-12-05): text decoding 1.26x (batches of 32) and 1.26-1.45x greedy
    one sentence at a time (beam 4 there 0.90x and 1.07x: even), vision
    evaluation 1.6x (ZFNet) and 1.8x (GoogLeNet), video evaluation even
    (reading dominates); accuracy, ROUGE and GAP the same within noise.
    The environment variable TRIPTYCH_INFERENCE_DTYPE=
    float32|bfloat16 overrides the rule, which is how the benchmarks force
    each path in turn.
    """
    forced = os.environ.get("TRIPTYCH_INFERENCE_DTYPE", "").strip().lower()
    if forced == "bfloat16":
        require_bf16_kernels("TRIPTYCH_INFERENCE_DTYPE=bfloat16")
    if forced in ("float32", "bfloat16"):
        return forced
    return "bfloat16" if has_native_bf16() and bf16_kernels() else "float32"


def inference_autocast(device="cpu"):
    """A context for a model's inference: bf16 autocast where `default_inference_dtype()`
    says bfloat16 (on CUDA only when forced), else nothing.

    Autocast keeps the reductions (softmax, norms, losses) in float32 and runs
    convolutions and matrix products in bf16: the vision and video models'
    whole cost. Text decoding has its own bf16 path (`nn.prepacked`)."""
    import contextlib

    import torch

    kind = torch.device(device).type
    forced = os.environ.get("TRIPTYCH_INFERENCE_DTYPE", "").strip().lower() == "bfloat16"
    if default_inference_dtype() == "bfloat16" and (kind == "cpu" or forced):
        return torch.autocast(kind, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def torch_paths() -> dict:
    """What this torch build will use on this CPU: vector ISA, oneDNN, MKL, threads."""
    import torch

    caps = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "unknown")()
    return {
        "torch": torch.__version__,
        "cpu_capability": caps,  # the ATen kernels' vector width: AVX512, AVX2, DEFAULT
        "onednn": bool(torch.backends.mkldnn.is_available()),
        "bf16_kernels": bf16_kernels(),
        "mkl": bool(torch.backends.mkl.is_available()),
        "threads": torch.get_num_threads(),
    }


# glibc's defaults hand every freed block over 128 KB back to the kernel (the
# threshold creeps up to 32 MB as such blocks are freed, but the trim below
# it undoes that), so each new large tensor faults its pages in afresh:
# greedy decoding of the benchmark's 96 documents took 34-40k page faults a
# run, 2 with these settings, and ran 1.08x faster (Intel Xeon, 2 threads);
# ResNet-18 training 1.05x (2.0M faults in 120 steps -> 0.2M).
# Peak memory is the same (593 against 590 MB); freed memory up to the trim
# threshold stays with the process for its next tensors.
MMAP_THRESHOLD, TRIM_THRESHOLD = 32 << 20, 256 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (malloc.h)
_allocator = "default"


def keep_freed_memory() -> str:
    """Ask glibc's malloc to serve blocks up to 32 MB from its heap and to keep
    up to 256 MB freed at the heap's top; the commands call it at start.
    Left alone where the user chose (MALLOC_*_ environment settings, an
    allocator in LD_PRELOAD) or the C library is not glibc. Returns what the
    process now has: "glibc-kept", "default" or "user"."""
    global _allocator
    if _allocator != "default":
        return _allocator
    if any(k.startswith("MALLOC_") for k in os.environ) or "malloc" in os.environ.get("LD_PRELOAD", ""):
        _allocator = "user"
        return _allocator
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return _allocator
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return _allocator
    if mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1:
        _allocator = "glibc-kept"
    return _allocator


def describe() -> dict:
    """Everything a benchmark line needs to say where it ran and which paths it took."""
    flags = cpu_flags()
    return {
        "cpu": cpu_model(),
        "vendor": _cpuinfo().get("vendor_id", "unknown"),
        "isa": [f for f in _INTERESTING if f in flags],
        **torch_paths(),
        "inference_dtype": default_inference_dtype(),
        "allocator": _allocator,
    }


def gemm_peak_gflops(dtype: str = "float32", n: int = 2048, seconds: float = 1.0) -> float:
    """Measured n x n x n matrix-product rate in GFLOP/s at the current thread count.

    The denominator of MFU: a model's FLOP/s over what the same CPU's GEMM
    reaches in the same dtype, in the same run (a published peak says
    nothing about a shared 2-core VM).
    """
    import torch

    dt = getattr(torch, dtype)
    a, b = torch.randn(n, n).to(dt), torch.randn(n, n).to(dt)
    torch.mm(a, b)  # warm-up: kernel selection, packing buffers
    best = float("inf")
    deadline = time.perf_counter() + seconds
    while True:
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
        if time.perf_counter() > deadline:
            break
    return 2 * n**3 / best / 1e9


def counted_flops(fn) -> int:
    """Floating-point operations of the matrix products, convolutions and
    attention that fn() runs (forward and backward alike), by torch's own
    FLOP counter: the 'model FLOPs' of MFU, counted, not estimated."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def mfu_report(flops: int, seconds: float, dtype: str, peak_gflops: float | None = None) -> dict:
    """{"model_gflop_per_s", "peak_gflop_per_s", "mfu"}: achieved over the GEMM peak
    of the same dtype (measured now unless given)."""
    peak = peak_gflops if peak_gflops is not None else gemm_peak_gflops(dtype)
    achieved = flops / seconds / 1e9
    return {"model_gflop_per_s": round(achieved, 1), "peak_gflop_per_s": round(peak, 1),
            "mfu": round(achieved / peak, 4)}
