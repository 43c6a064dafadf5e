"""Decoding photos in DataLoader worker processes, ahead of the training loop.

The engine asks the task for one batch at a time (`collate(indices)`), but
the batches to come are known: an epoch's plan is a pure function of (seed,
epoch), and evaluation walks a set in consecutive slices. `Prefetcher`
turns that into a `torch.utils.data.DataLoader` over whole batches
(`batch_size=None`), so `workers` processes open, decode, crop and flip
the next batches while the model trains on this one.

Determinism does not depend on the workers: each batch's augmentation is
drawn from its own seed (run seed, epoch, position in the plan), so one
worker or eight, resumed or not, give the same images. A request that does
not follow the expected order (a resume, a DDP shard) restarts the stream
there, or is decoded in place.

A bad file found in a worker comes back as the `UserError` itself, raised
here as one line (DataLoader would otherwise wrap it in a traceback).
"""

from __future__ import annotations

import functools
from typing import Callable, Iterator

import torch

from triptych.errors import UserError
from triptych.vision.transforms import normalize, normalize_


class _Batches(torch.utils.data.Dataset):
    """item (indices, train, seed) -> (images, labels), or the UserError a bad file raised.

    `finish` (the normalisation) runs here too, so in the worker: a 64-image
    batch at 224 pixels is 38 MB of floats, and standardising it in the
    main process took a core's share from the workers (0.71-0.88x
    torchvision's ImageFolder, which normalises in its workers)."""

    def __init__(self, images, finish: Callable | None = None):
        self.images, self.finish = images, finish

    def __getitem__(self, item):
        indices, train, seed = item
        with torch.random.fork_rng(devices=[]):  # in the main process the global RNG must not move
            torch.manual_seed(seed)
            try:
                x, y = self.images.batch(list(indices), train)
            except UserError as e:
                return e
        return (self.finish(x) if self.finish else x), y


def decode(images, indices, train: bool, seed: int, finish: Callable | None = None):
    out = _Batches(images, finish)[(tuple(indices), train, seed)]
    if isinstance(out, UserError):
        raise out
    return out


class Prefetcher:
    """One image set, one mode (train or eval): batches decoded ahead in `workers` processes."""

    def __init__(self, images, train: bool, workers: int, upcoming: Callable[[list[int]], Iterator[tuple]],
                 prefetch: int = 2, finish: Callable | None = None):
        self.images, self.train, self.workers, self.prefetch = images, train, workers, prefetch
        self.finish = finish  # applied to each decoded batch, in the worker
        self.upcoming = upcoming  # indices -> iterator of (indices, seed), starting with this batch; or None
        self._it = None
        self._expected: list[tuple] = []  # the (indices, seed) items handed to the loader, not yet taken
        self.starts = 0  # streams started: 1 for a whole run that follows its plan

    def _start(self, items: Iterator[tuple]) -> None:
        self.close()
        self.starts += 1
        expected = self._expected = []

        def feed():
            for indices, seed in items:
                expected.append((tuple(indices), seed))
                yield (tuple(indices), self.train, seed)

        loader = torch.utils.data.DataLoader(
            _Batches(self.images, self.finish), batch_size=None, sampler=feed(), num_workers=self.workers,
            prefetch_factor=self.prefetch if self.workers else None, collate_fn=lambda b: b,
        )
        self._it = iter(loader)

    def get(self, indices: list[int], seed: int):
        key = tuple(indices)
        if self._it is None or not self._expected or self._expected[0][0] != key:
            items = self.upcoming(indices) if self.workers else None
            if items is None:
                return decode(self.images, indices, self.train, seed, self.finish)
            self._start(items)
        out = next(self._it)
        self._expected.pop(0)
        if isinstance(out, UserError):
            self.close()
            raise out
        return out

    def close(self) -> None:
        self._it = None  # the DataLoader iterator's workers exit when it is collected
        self._expected = []


def _batch_seed(run_seed: int, epoch: int, position: int) -> int:
    return ((run_seed * 1_000_003 + epoch) * 1_000_033 + position) % (2**63)


class Feeds:
    """A task's batches, normalised: decoded ahead in workers for photo
    folders, in place for in-memory sets."""

    def __init__(self, task, workers: int):
        self.task, self.workers = task, workers
        self.epoch = 0  # the epoch whose plan the engine asked for last
        self._plans: dict[int, list[list[int]]] = {}
        self._prefetchers: dict[tuple[int, bool], Prefetcher] = {}

    def planned(self, epoch: int, plan: list[list[int]]) -> None:
        self.epoch = epoch
        self._plans = {epoch: plan}

    def _train_stream(self, indices: list[int]) -> Iterator[tuple] | None:
        plan = self._plans.get(self.epoch)
        if plan is None or indices not in plan:
            return None  # not a whole planned batch (a DDP shard): decoded in place

        start = self.epoch

        def stream(epoch=start, position=plan.index(indices)):
            while True:  # on into the next epochs: their plans are pure functions of (seed, epoch)
                current = plan if epoch == start else self.task.batch_plan_pure(epoch)
                for pos in range(position, len(current)):
                    yield current[pos], _batch_seed(self.task.cfg.seed, epoch, pos)
                epoch, position = epoch + 1, 0

        return stream()

    @staticmethod
    def _eval_stream(images, indices: list[int]) -> Iterator[tuple] | None:
        first, n = indices[0], len(indices)
        if indices != list(range(first, first + n)):
            return None
        return ((list(range(a, min(a + n, len(images)))), 0) for a in range(first, len(images), n))

    def batch(self, images, indices: list[int], train: bool):
        from triptych.vision.data import FolderImages

        mean, std = self.task.cfg.data.mean, self.task.cfg.data.std
        if not isinstance(images, FolderImages):  # its batch may be a view (Fashion's 3-channel expand): not in place
            x, y = images.batch(indices, train)
            return normalize(x, mean, std), y
        finish = functools.partial(normalize_, mean=mean, std=std)  # a fresh torch.stack: in place is safe
        if not self.workers:
            x, y = images.batch(indices, train)
            return finish(x), y
        key = (id(images), train)
        if key not in self._prefetchers:
            upcoming = self._train_stream if train else (lambda ix, im=images: self._eval_stream(im, ix))
            self._prefetchers[key] = Prefetcher(images, train, self.workers, upcoming, finish=finish)
        seed = int(torch.randint(0, 2**62, ())) if train else 0  # used only when decoded in place
        return self._prefetchers[key].get(indices, seed)
