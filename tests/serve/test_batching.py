"""The dynamic batcher: who shares a model call, bounds, overload, timeouts — alone and under a live server."""

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from triptych.serve.batching import Batcher
from triptych.serve.limits import ApiError

from .test_bad_input import still_serving


class Recorder:
    """A fake model: records the payloads of each call, answers payload * 10."""

    def __init__(self, delay: float = 0.0, fail_on=None):
        self.calls, self.threads, self.delay, self.fail_on = [], set(), delay, fail_on

    def __call__(self, payloads):
        self.calls.append(list(payloads))
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)
        if self.fail_on is not None and self.fail_on in payloads:
            raise ApiError(422, f"bad payload {self.fail_on}")
        return [p * 10 for p in payloads]


def run(coro_fn, **kw):
    """Run `coro_fn(batcher)` in a fresh event loop with a started Batcher(**kw)."""

    async def main():
        b = Batcher(**kw)
        b.start()
        try:
            return await coro_fn(b)
        finally:
            await b.stop()

    return asyncio.run(main())


def test_concurrent_jobs_with_one_key_share_a_call_in_order():
    model = Recorder()
    results = run(lambda b: asyncio.gather(*(b.submit(model, i, key="k") for i in range(5))), wait_s=0.05)
    assert results == [0, 10, 20, 30, 40] and model.calls == [[0, 1, 2, 3, 4]]


def test_keys_do_not_mix_and_none_runs_alone():
    model = Recorder()

    async def go(b):
        return await asyncio.gather(b.submit(model, 1, key="a"), b.submit(model, 2, key="b"), b.submit(model, 3, key="a"),
                                    b.submit(model, 4), b.submit(model, 5))

    assert run(go, wait_s=0.05) == [10, 20, 30, 40, 50]
    assert sorted(model.calls) == [[1, 3], [2], [4], [5]]


def test_max_batch_bounds_the_documents_of_a_call():
    model = Recorder()

    async def go(b):
        return await asyncio.gather(*(b.submit(model, i, key="k", size=2) for i in range(5)))

    run(go, wait_s=0.05, max_batch=4)
    assert [len(c) for c in model.calls] == [2, 2, 1]


def test_max_batch_one_is_batching_off():
    model = Recorder()
    run(lambda b: asyncio.gather(*(b.submit(model, i, key="k") for i in range(4))), wait_s=0.05, max_batch=1)
    assert model.calls == [[0], [1], [2], [3]]


def test_the_model_runs_on_one_worker_thread_and_the_loop_stays_free():
    model = Recorder(delay=0.2)

    async def go(b):
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        t = asyncio.create_task(ticker())
        await asyncio.gather(b.submit(model, 1), b.submit(model, 2))
        t.cancel()
        return ticks

    ticks = run(go)
    assert ticks >= 20  # 0.4 s of model work; the loop ticked all along
    assert len(model.threads) == 1 and next(iter(model.threads)).startswith("triptych-model")


def test_worker_init_runs_once_in_the_worker_thread_before_the_jobs():
    """The server passes `hold_packed_weights`: every job then finds the same
    packed-weights context open, while the event loop's thread has none."""
    from triptych.nn import prepacked

    seen = []

    def job(payloads):
        seen.append((threading.current_thread().name, id(prepacked._packed.get())))
        return payloads

    async def go(b):
        for i in range(3):
            await b.submit(job, i)

    run(go, worker_init=prepacked.hold_packed_weights)
    assert len(seen) == 3 and len(set(seen)) == 1
    assert seen[0][0].startswith("triptych-model") and seen[0][1] != id(None)
    assert prepacked._packed.get() is None


def test_a_full_queue_is_503_with_retry_after():
    model = Recorder(delay=0.1)

    async def go(b):
        return await asyncio.gather(*(b.submit(model, i, key="k") for i in range(5)), return_exceptions=True)

    out = run(go, wait_s=0.05, queue_depth=2)
    errors = [e for e in out if isinstance(e, ApiError)]
    assert out[:2] == [0, 10] and len(errors) == 3
    assert all(e.status == 503 and int(e.headers["Retry-After"]) >= 1 and "--queue-depth 2" in e.message for e in errors)


def test_a_timeout_is_503_and_leaves_the_queue():
    model = Recorder(delay=0.4)

    async def go(b):
        first = asyncio.create_task(b.submit(model, 1))
        await asyncio.sleep(0.01)
        # 2 starts when 1 ends (0.4 s) and is still running at its deadline; 3 is still queued at its own
        late = await asyncio.gather(b.submit(model, 2), b.submit(model, 3), return_exceptions=True)
        assert all(isinstance(e, ApiError) and e.status == 503 and "--timeout" in e.message
                   and "Retry-After" in e.headers for e in late)
        assert not b.queue and b.stats["timed_out"] == 2
        return await first

    assert run(go, timeout_s=0.6) == 10
    assert model.calls == [[1], [2]]  # 3 timed out in the queue and never ran


def test_an_error_reaches_the_jobs_of_its_call_only():
    model = Recorder(fail_on=2)

    async def go(b):
        shared = await asyncio.gather(b.submit(model, 1, key="k"), b.submit(model, 2, key="k"), return_exceptions=True)
        return shared, await b.submit(model, 3, key="k")

    shared, later = run(go, wait_s=0.05)
    assert all(isinstance(e, ApiError) and e.status == 422 for e in shared) and later == 30


# --- under a live server -------------------------------------------------------------


def _concurrently(fn, n):
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(fn, range(n)))


def test_concurrent_requests_share_a_model_call_and_get_their_own_answers(start_server):
    from tests.conftest import debian_pairs

    docs = [p["document"] for p in debian_pairs("test", 6)]
    server = start_server(batch_wait_ms=400)
    alone = [httpx.post(server.url + "/v1/summarize", json={"documents": [d]}).json()["summaries"][0] for d in docs]
    before = server.stats()
    replies = _concurrently(lambda i: httpx.post(server.url + "/v1/summarize", json={"documents": [docs[i]]}, timeout=60), 6)
    after = server.stats()
    assert [r.json()["summaries"][0] for r in replies] == alone  # padding in a shared batch changes nothing
    assert after["jobs"] - before["jobs"] == 6
    assert after["model_calls"] - before["model_calls"] < 6 and after["largest_call"] >= 2


def test_a_burst_beyond_the_queue_is_503_then_the_server_serves_again(start_server):
    server = start_server(queue_depth=2, batch_wait_ms=500)
    replies = _concurrently(lambda i: httpx.post(server.url + "/v1/summarize", json={"documents": [f"package {i}"]}, timeout=60), 8)
    codes = sorted(r.status_code for r in replies)
    assert codes.count(200) >= 2 and codes.count(503) >= 1 and set(codes) == {200, 503}
    for r in replies:
        if r.status_code == 503:
            assert int(r.headers["retry-after"]) >= 1 and "server busy" in r.json()["error"]
    still_serving(server)
