"""Dynamic batching: concurrent requests share one model call, run off the event loop.

A request becomes a `Job` in one bounded queue. A single worker thread runs
the model (torch gains nothing from two threads racing for the same cores,
and one thread keeps every model call serialised). The collector takes the
oldest job; if its key says it may share (summaries decoded with the same
options), it waits up to `wait_s` for company, then takes every queued job
with the same key up to `max_batch` documents and runs them as one call —
the way Triton's or TF-Serving's dynamic batchers do. Jobs with key None
(an image, a TFRecord) always run alone.

Overload is refused at the door: a full queue answers 503 with
Retry-After instead of letting latency grow without bound. A job that
waits longer than `timeout_s` is taken out of the queue and answered 503.
`max_batch=1` turns batching off (the baseline the load benchmark measures).
`worker_init` runs once in the worker thread before its first job: the
server holds the text models' packed weights there for its whole life.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable

from triptych.serve.limits import ApiError


@dataclass(eq=False)
class Job:
    run: Callable[[list[Any]], list[Any]]  # payloads -> one result each, in order
    payload: Any
    key: Hashable | None  # equal non-None keys may share a model call
    size: int  # documents: what max_batch counts
    future: asyncio.Future = field(repr=False, default=None)


class Batcher:
    def __init__(self, max_batch: int = 32, wait_s: float = 0.005, queue_depth: int = 64, timeout_s: float = 30.0,
                 worker_init: Callable[[], None] | None = None):
        if max_batch < 1 or queue_depth < 1:
            raise ValueError("max_batch and queue_depth must be >= 1")
        self.max_batch, self.wait_s, self.queue_depth, self.timeout_s = max_batch, wait_s, queue_depth, timeout_s
        self.worker_init = worker_init
        self.queue: deque[Job] = deque()
        self.stats = {"model_calls": 0, "jobs": 0, "documents": 0, "largest_call": 0, "rejected": 0, "timed_out": 0}
        self._busy_s = 0.0  # total time in model calls, for Retry-After
        self._executor: ThreadPoolExecutor | None = None
        self._task: asyncio.Task | None = None
        self._arrived: asyncio.Event | None = None

    # --- life cycle (inside the server's event loop) ------------------------

    def start(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="triptych-model", initializer=self.worker_init)
        self._arrived = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._collect())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        for job in self.queue:
            if not job.future.done():
                job.future.set_exception(ApiError(503, "the server is shutting down"))
        self.queue.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    # --- the request side ----------------------------------------------------

    def retry_after(self) -> int:
        """Seconds until the queue has likely drained: a hint, at least 1."""
        calls = max(1, self.stats["model_calls"])
        per_call = self._busy_s / calls
        return max(1, math.ceil(per_call * len(self.queue) / max(1, self.max_batch)))

    async def submit(self, run, payload, key: Hashable | None = None, size: int = 1):
        """Queue one job and wait for its result (ApiError 503 on overload or timeout)."""
        if self._task is None:
            raise RuntimeError("Batcher.start() was not called")
        if len(self.queue) >= self.queue_depth:
            self.stats["rejected"] += 1
            raise ApiError(503, f"server busy: {len(self.queue)} requests already wait for the model "
                                f"(serve --queue-depth {self.queue_depth}); retry later",
                           {"Retry-After": str(self.retry_after())})
        job = Job(run, payload, key, size, asyncio.get_running_loop().create_future())
        self.queue.append(job)
        self._arrived.set()
        try:
            return await asyncio.wait_for(asyncio.shield(job.future), self.timeout_s)
        except asyncio.TimeoutError:
            if job in self.queue:
                self.queue.remove(job)
            self.stats["timed_out"] += 1
            raise ApiError(503, f"no answer from the model within {self.timeout_s:g} s (serve --timeout); retry later",
                           {"Retry-After": str(self.retry_after())}) from None
        finally:
            if job in self.queue and not job.future.done():  # the client went away: don't compute for nobody
                self.queue.remove(job)

    # --- the worker side -----------------------------------------------------

    def _same_key_size(self, key) -> int:
        return sum(j.size for j in self.queue if j.key == key)

    def _take(self) -> list[Job]:
        """The oldest job and, when it may share, every later job with its key (up to max_batch)."""
        first = self.queue.popleft()
        jobs, size = [first], first.size
        if first.key is None or self.max_batch <= 1:
            return jobs
        for job in list(self.queue):
            if job.key == first.key and size + job.size <= self.max_batch:
                self.queue.remove(job)
                jobs.append(job)
                size += job.size
        return jobs

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self.queue:
                self._arrived.clear()
                await self._arrived.wait()
            first = self.queue[0]
            if first.key is not None and self.max_batch > 1 and self.wait_s > 0:
                deadline = loop.time() + self.wait_s
                while self._same_key_size(first.key) < self.max_batch and first in self.queue:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    self._arrived.clear()
                    try:
                        await asyncio.wait_for(self._arrived.wait(), remaining)
                    except asyncio.TimeoutError:
                        break
                if not self.queue:  # everything waiting timed out or left
                    continue
            jobs = self._take()
            started = time.perf_counter()
            try:
                results = await loop.run_in_executor(self._executor, jobs[0].run, [j.payload for j in jobs])
            except Exception as e:  # the jobs' own error (bad upload, ...) goes back to them
                for j in jobs:
                    if not j.future.done():
                        j.future.set_exception(e)
            else:
                for j, r in zip(jobs, results):
                    if not j.future.done():
                        j.future.set_result(r)
            self._busy_s += time.perf_counter() - started
            self.stats["model_calls"] += 1
            self.stats["jobs"] += len(jobs)
            self.stats["documents"] += sum(j.size for j in jobs)
            self.stats["largest_call"] = max(self.stats["largest_call"], sum(j.size for j in jobs))
