"""Unit tests of the dynamic micro-batcher (no model, no torch)."""
from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time

import pytest

from workloads.sentiment.batcher import BatcherClosed, MicroBatcher, QueueFull

pytestmark = pytest.mark.workload


class Recorder:
    """A batch function that records every batch it gets and answers item*10."""

    def __init__(self, delay: float = 0.0, gate: threading.Event = None) -> None:
        self.batches = []
        self.delay = delay
        self.gate = gate
        self.lock = threading.Lock()

    def __call__(self, items):
        if self.gate is not None:
            self.gate.wait(5)
        with self.lock:
            self.batches.append(list(items))
        if self.delay:
            time.sleep(self.delay)
        return [x * 10 for x in items]


def test_requests_within_the_wait_form_one_batch_in_arrival_order():
    rec = Recorder()
    b = MicroBatcher(rec, max_batch_size=64, max_wait_s=0.2, max_queue=100)
    try:
        futs = [b.submit([i]) for i in range(10)]
        assert [f.result(5) for f in futs] == [[i * 10] for i in range(10)]
        assert rec.batches == [list(range(10))]
    finally:
        b.close()


def test_max_batch_size_is_respected_and_a_full_batch_does_not_wait():
    rec = Recorder()
    b = MicroBatcher(rec, max_batch_size=4, max_wait_s=10.0, max_queue=100)
    try:
        t0 = time.monotonic()
        futs = [b.submit([i]) for i in range(8)]
        assert [f.result(5)[0] for f in futs] == [i * 10 for i in range(8)]
        assert time.monotonic() - t0 < 5, "full batches must run without waiting for max_wait"
        assert all(len(batch) <= 4 for batch in rec.batches)
        assert [x for batch in rec.batches for x in batch] == list(range(8))
    finally:
        b.close()


def test_a_request_larger_than_max_batch_is_split_in_order():
    rec = Recorder()
    b = MicroBatcher(rec, max_batch_size=3, max_wait_s=0.0, max_queue=100)
    try:
        assert b.submit(list(range(8))).result(5) == [i * 10 for i in range(8)]
        assert rec.batches == [[0, 1, 2], [3, 4, 5], [6, 7]]
    finally:
        b.close()


def test_multi_item_requests_keep_their_order_and_are_not_mixed_up():
    rec = Recorder(delay=0.01)
    b = MicroBatcher(rec, max_batch_size=5, max_wait_s=0.01, max_queue=1000)
    try:
        reqs = [list(range(k * 100, k * 100 + (k % 4) + 1)) for k in range(30)]
        futs = [b.submit(r) for r in reqs]
        for r, f in zip(reqs, futs):
            assert f.result(5) == [x * 10 for x in r]
        assert all(len(batch) <= 5 for batch in rec.batches)
        assert len(rec.batches) < len(reqs), "requests were batched together"
    finally:
        b.close()


def test_an_idle_request_waits_at_most_about_max_wait():
    rec = Recorder()
    b = MicroBatcher(rec, max_batch_size=64, max_wait_s=0.05, max_queue=10)
    try:
        t0 = time.monotonic()
        assert b.submit([1]).result(5) == [10]
        assert 0.04 <= time.monotonic() - t0 < 2.0
    finally:
        b.close()


def test_queue_full_is_refused_at_once_with_a_retry_hint():
    gate = threading.Event()
    rec = Recorder(gate=gate)
    b = MicroBatcher(rec, max_batch_size=2, max_wait_s=0.0, max_queue=3)
    try:
        first = b.submit([0])          # taken by the worker, which blocks on the gate
        time.sleep(0.1)
        queued = [b.submit([1, 2]), b.submit([3])]  # 3 items waiting: full
        with pytest.raises(QueueFull) as info:
            b.submit([4])
        assert info.value.retry_after_s >= 1
        gate.set()
        assert first.result(5) == [0]
        assert [f.result(5) for f in queued] == [[10, 20], [30]]
        assert b.submit([5]).result(5) == [50]  # accepted again once drained
    finally:
        gate.set()
        b.close()


def test_the_queue_is_bounded_in_cost_so_long_items_are_shed_sooner():
    gate = threading.Event()
    rec = Recorder(gate=gate)
    b = MicroBatcher(rec, max_batch_size=1, max_wait_s=0.0, max_queue=100, cost=lambda x: x, max_queue_cost=10)
    try:
        first = b.submit([1])          # taken by the worker, which blocks on the gate
        time.sleep(0.1)
        queued = [b.submit([2, 2]), b.submit([5])]  # cost 9 of 10 waiting, 3 items of 100
        assert (b.depth, b.queued_cost) == (3, 9.0)
        assert b.admits(1, 1) and not b.admits(1, 2)
        with pytest.raises(QueueFull) as info:
            b.submit([2])  # one item, far from max_queue items, but over the cost bound
        assert (info.value.depth, info.value.cost) == (3, 9.0)
        last = b.submit([1])  # exactly fills the bound: taken
        gate.set()
        assert [f.result(5) for f in (first, *queued, last)] == [[10], [20, 20], [50], [10]]
        assert b.queued_cost == 0
    finally:
        gate.set()
        b.close()


def test_the_estimated_wait_bound_applies_once_a_batch_has_been_timed():
    gate = threading.Event()
    b = MicroBatcher(Recorder(delay=0.05, gate=gate), max_batch_size=1, max_wait_s=0.0, max_queue=100,
                     max_queue_wait_s=0.12)
    try:
        gate.set()
        assert b.submit([1]).result(5) == [10]  # timed: about 0.05 s per item from now on
        gate.clear()
        first = b.submit([1])
        time.sleep(0.1)  # the worker holds it at the gate
        futures = [b.submit([2]), b.submit([3])]  # 2 x 0.05 s waiting: within 0.12 s
        assert not b.admits(1, 1.0)
        with pytest.raises(QueueFull) as info:
            b.submit([4])  # a third would wait about 0.15 s
        assert info.value.retry_after_s >= 1
        gate.set()
        assert [f.result(5) for f in [first, *futures]] == [[10], [20], [30]]
    finally:
        gate.set()
        b.close()


def test_an_empty_queue_takes_a_request_larger_than_max_queue():
    b = MicroBatcher(Recorder(), max_batch_size=2, max_wait_s=0.0, max_queue=2)
    try:
        assert b.submit([1, 2, 3, 4, 5]).result(5) == [10, 20, 30, 40, 50]
    finally:
        b.close()


def test_expired_and_cancelled_requests_are_dropped_before_inference():
    gate = threading.Event()
    rec = Recorder(gate=gate)
    b = MicroBatcher(rec, max_batch_size=8, max_wait_s=0.0, max_queue=100)
    try:
        blocker = b.submit([0])
        time.sleep(0.1)
        expired = b.submit([1], timeout_s=0.05)
        cancelled = b.submit([2])
        assert cancelled.cancel()
        kept = b.submit([3])
        time.sleep(0.15)
        gate.set()
        assert blocker.result(5) == [0] and kept.result(5) == [30]
        with pytest.raises(concurrent.futures.CancelledError):
            expired.result(5)
        assert [x for batch in rec.batches for x in batch] == [0, 3]
    finally:
        gate.set()
        b.close()


def test_async_timeout_raises_and_the_worker_skips_the_request():
    gate = threading.Event()
    rec = Recorder(gate=gate)
    b = MicroBatcher(rec, max_batch_size=8, max_wait_s=0.0, max_queue=100)

    async def scenario():
        blocker = asyncio.ensure_future(b.submit_async([0], timeout_s=5))
        await asyncio.sleep(0.1)
        with pytest.raises(asyncio.TimeoutError):
            await b.submit_async([1], timeout_s=0.1)
        gate.set()
        assert await blocker == [0]
        assert await b.submit_async([2], timeout_s=5) == [20]

    try:
        asyncio.run(scenario())
        assert [x for batch in rec.batches for x in batch] == [0, 2]
    finally:
        gate.set()
        b.close()


def test_errors_reach_every_caller_of_the_batch_and_the_worker_survives():
    calls = []

    def flaky(items):
        calls.append(list(items))
        if len(calls) == 1:
            raise RuntimeError("boom")
        return items

    b = MicroBatcher(flaky, max_batch_size=8, max_wait_s=0.05, max_queue=100)
    try:
        futs = [b.submit([1]), b.submit([2])]
        for f in futs:
            with pytest.raises(RuntimeError, match="boom"):
                f.result(5)
        assert b.submit([3]).result(5) == [3]
    finally:
        b.close()


def test_close_drains_accepted_work_then_refuses_new_work():
    rec = Recorder(delay=0.05)
    b = MicroBatcher(rec, max_batch_size=2, max_wait_s=0.0, max_queue=100)
    futs = [b.submit([i]) for i in range(6)]
    assert b.close(drain=True, timeout_s=10)
    assert [f.result(0) for f in futs] == [[i * 10] for i in range(6)]
    with pytest.raises(BatcherClosed):
        b.submit([9])


def test_metrics_observers_see_batches_and_depth():
    sizes, depths = [], []
    b = MicroBatcher(lambda xs: xs, max_batch_size=4, max_wait_s=0.05, max_queue=100,
                     on_batch=lambda n, dt: sizes.append(n), on_depth=depths.append)
    try:
        futs = [b.submit([i]) for i in range(6)]
        [f.result(5) for f in futs]
        assert sum(sizes) == 6 and max(sizes) <= 4
        assert max(depths) >= 2 and depths[-1] == 0
    finally:
        b.close()
