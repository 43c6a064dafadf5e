"""torchrun / DDP helpers: one process when there is no torchrun environment.

`setup()` reads the variables torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR, MASTER_PORT) and joins the process group: gloo on CPU, nccl on
CUDA. Everything else here is a no-op in a single process, so the trainer
is written once and runs unchanged under `torchrun --nproc_per_node=N`.

Gradients are summed with `all_reduce_grads` after the last micro-batch of
a step instead of wrapping the model in DistributedDataParallel. That is the
same arithmetic DDP does, but it lets a task call any method of its model
(DDP only synchronises what goes through `forward`), tolerates parameters a
batch does not use and ranks whose shard of a micro-batch is empty, and
needs no `no_sync` bookkeeping for gradient accumulation.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from triptych.errors import SettingError, UserError


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False  # whether setup() created the process group (and cleanup() ends it)


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise UserError(f"environment variable {name}: expected an integer, got {raw!r}") from None


def env_world_size() -> int:
    return _env_int("WORLD_SIZE", 1)


def setup(device: str | torch.device = "cpu") -> DistInfo:
    """Join the torchrun process group if there is one; pick this rank's device."""
    world = env_world_size()
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", rank)
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise SettingError(f"{{device}} {device}: no CUDA device is available here")
        if dev.index is None:
            dev = torch.device("cuda", local_rank if world > 1 else torch.cuda.current_device())
        torch.cuda.set_device(dev)
    if world <= 1:
        return DistInfo(0, 1, 0, dev, False)
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, dev, False)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    timeout = datetime.timedelta(minutes=30)
    try:  # device_id (torch >= 2.3) binds NCCL to this rank's GPU up front
        kwargs = {"device_id": dev} if dev.type == "cuda" else {}
        dist.init_process_group(backend, rank=rank, world_size=world, timeout=timeout, **kwargs)
    except TypeError:
        dist.init_process_group(backend, rank=rank, world_size=world, timeout=timeout)
    return DistInfo(rank, world, local_rank, dev, True)


def cleanup(info: DistInfo) -> None:
    if info.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """Rank 0: the only process that writes files or prints progress."""
    return rank() == 0


def barrier() -> None:
    if active():
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum `tensor` over ranks, in place; returns it (unchanged in one process)."""
    if active():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast_module(module: torch.nn.Module, src: int = 0) -> None:
    """Copy rank `src`'s parameters and buffers to every rank (same start, same state)."""
    if not active():
        return
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src)


def all_reduce_grads(params: list[torch.nn.Parameter]) -> None:
    """Sum the gradients of `params` over ranks, as one flat buffer per dtype.

    A parameter without a gradient on this rank counts as zeros, so ranks
    that skipped a parameter (or had no examples at all) stay in step.
    """
    if not active():
        return
    by_dtype: dict[torch.dtype, list[torch.nn.Parameter]] = {}
    for p in params:
        by_dtype.setdefault(p.dtype, []).append(p)
    for group in by_dtype.values():
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in group])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        offset = 0
        for p in group:
            n = p.numel()
            g = flat[offset:offset + n].view_as(p)
            if p.grad is None:
                p.grad = torch.empty_like(p).copy_(g)  # in the parameter's layout (channels-last too)
            else:
                p.grad.copy_(g)
            offset += n


def all_gather_object(obj):
    """[obj of rank 0, obj of rank 1, ...] on every rank ([obj] in one process)."""
    if not active():
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj, src: int = 0):
    """Rank `src`'s `obj`, on every rank."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src)
    return box[0]
