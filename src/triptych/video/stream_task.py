"""The engine's batch plan over a streamed training set (see streaming.py).

The engine plans an epoch as micro-batches of example indices and shards
each over ranks. A stream has no indices, so a plan's entries are slots:
epoch * STRIDE + place in the epoch. A rank's shard of micro-batch p is
len(range(rank, B, world)) slots, so before micro-batch p the rank has used
p times that many items of its stream, which is how `take` finds its place
after a resume (or after anything else that skipped ahead).
"""

from __future__ import annotations

from triptych.errors import UserError
from triptych.video.streaming import ShardStream, epoch_order, loader, reader_counts, scan, take

STRIDE = 1 << 40


def world() -> tuple[int, int]:
    """(rank, world size): torch.distributed's when initialised, else torchrun's environment."""
    import os

    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
    except ImportError:  # pragma: no cover
        pass
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


class TrainStream:
    """A training set read as a stream of shards."""

    def __init__(self, paths, cfg, stats):
        d = cfg.data
        self.cfg, self.stats = cfg, stats
        self.files, self.counts, self.generation = scan(paths, d.verify)
        if sum(self.counts) == 0:
            raise UserError(f"{d.train}: no records")
        self._it = None
        self._where: tuple[int, int] | None = None  # (epoch, items used) of the live iterator

    def __len__(self) -> int:
        return sum(self.counts)

    def plan(self, epoch: int) -> list[list[int]]:
        """Full micro-batches every rank can fill while all its workers still have records."""
        d = self.cfg.data
        rank_, world_ = world()
        W = max(1, d.workers)
        order = epoch_order(len(self.files), self.cfg.seed, epoch, True)
        n = reader_counts(self.counts, order, world_ * W)
        B = d.batch_size
        batches = min(W * min(n[r * W:(r + 1) * W]) // len(range(r, B, world_)) for r in range(world_))
        if batches == 0:
            raise UserError(f"{d.train}: {sum(self.counts)} records cannot fill one batch of {B} over "
                            f"{world_} process(es) x {W} reader(s); stream fewer readers or hold it in memory "
                            f"(data.stream: false)")
        base = epoch * STRIDE
        return [list(range(base + p * B, base + (p + 1) * B)) for p in range(batches)]

    def take(self, slots: list[int]) -> list[dict]:
        """The items for this rank's `slots` of one micro-batch (bad records left out)."""
        d = self.cfg.data
        rank_, world_ = world()
        epoch, place = divmod(slots[0], STRIDE)
        used = (place // d.batch_size) * len(range(rank_, d.batch_size, world_))
        if self._where != (epoch, used):
            self._it = None  # shuts the old workers down
            ds = ShardStream(self.files, self.counts, epoch=epoch, seed=self.cfg.seed, rank=rank_, world=world_,
                             workers=d.workers, train=True, buffer=d.shuffle_buffer, sampling=d.sampling,
                             frames=d.frames, max_frames=d.max_frames, num_classes=d.num_classes, level=d.level,
                             verify=d.verify, skip_bad=d.skip_bad_records, consumed=used)
            self._it = loader(ds)
        items = take(self._it, len(slots), self.stats)
        self._where = (epoch, used + len(slots))
        return items
