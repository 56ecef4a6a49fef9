"""Dynamic micro-batching: many small requests, few large forward passes.

Requests (each a list of items) go into a bounded FIFO queue. One dedicated
worker thread takes the oldest request, waits until ``max_wait_s`` after that
request arrived (or until ``max_batch_size`` items are queued), and runs the
model function once on everything it took, in arrival order. While a batch
runs, new requests queue up, so under load the next batch is ready at once and
no time is spent waiting; an idle server adds at most ``max_wait_s``.

Standard library only: the model function is injected, so the batching logic is
tested without torch.

Guarantees:
- one call of ``fn`` never gets more than ``max_batch_size`` items (a request
  larger than that is split over consecutive calls, still in order);
- a request's results come back in the order of its items, and requests are
  served first come first served;
- at most ``max_queue`` items wait, at most ``max_queue_cost`` of work (each
  item's ``cost``, e.g. its estimated tokens), and at most ``max_queue_wait_s``
  estimated seconds of it (the queued cost times the measured seconds per unit
  of cost, once a batch has run): a request that does not fit is refused with
  ``QueueFull`` rather than queued, so what is queued can be served before its
  deadline; an empty queue always takes one request;
- a request whose caller gave up (its future cancelled, e.g. on a deadline) or
  whose deadline passed while queued is dropped before it costs a forward pass;
- ``close(drain=True)`` finishes every accepted request before the thread ends.
"""
from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import math
import threading
import time
from typing import Any, Callable, Deque, List, Optional, Sequence

__all__ = ["MicroBatcher", "QueueFull", "BatcherClosed"]


class QueueFull(Exception):
    """The queue has no room for the request (items, cost or estimated wait): shed it (HTTP 503 + Retry-After)."""

    def __init__(self, depth: int, retry_after_s: float, cost: float = 0.0) -> None:
        super().__init__(f"queue full ({depth} items waiting)")
        self.depth = depth
        self.cost = cost
        self.retry_after_s = retry_after_s


class BatcherClosed(Exception):
    """The batcher is shutting down and takes no new work."""


class _Entry:
    __slots__ = ("items", "cost", "future", "enqueued", "deadline")

    def __init__(self, items: Sequence, cost: float, deadline: Optional[float]) -> None:
        self.items = list(items)
        self.cost = cost
        self.future: concurrent.futures.Future = concurrent.futures.Future()
        self.enqueued = time.monotonic()
        self.deadline = deadline


class MicroBatcher:
    """Collects items from many callers into batches for ``fn`` on one worker thread.

    ``fn(items) -> results`` must return one result per item, in order.
    ``cost(item) -> float`` is an item's work (default 1: the bounds count items).
    ``on_batch(n_items, seconds)`` and ``on_depth(n_items_waiting)`` are optional
    observers (metrics); they run on the worker thread / the submitting thread.
    """

    def __init__(
        self,
        fn: Callable[[List], List],
        *,
        max_batch_size: int = 32,
        max_wait_s: float = 0.005,
        max_queue: int = 1024,
        cost: Optional[Callable[[Any], float]] = None,
        max_queue_cost: float = math.inf,
        max_queue_wait_s: float = math.inf,
        on_batch: Optional[Callable[[int, float], None]] = None,
        on_depth: Optional[Callable[[int], None]] = None,
        name: str = "micro-batcher",
    ) -> None:
        if max_batch_size < 1 or max_queue < 1 or max_wait_s < 0 or max_queue_cost <= 0 or max_queue_wait_s <= 0:
            raise ValueError("max_batch_size and max_queue must be >= 1, max_wait_s >= 0, the cost bounds > 0")
        self._fn = fn
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self._cost_of: Callable[[Any], float] = cost or (lambda item: 1.0)
        self.max_queue_cost = max_queue_cost
        self.max_queue_wait_s = max_queue_wait_s
        self._on_batch = on_batch
        self._on_depth = on_depth
        self._pending: Deque[_Entry] = collections.deque()
        self._depth = 0  # items in _pending
        self._cost = 0.0  # their cost
        self._cond = threading.Condition(threading.Lock())
        self._closing = False
        self._s_per_cost = 0.002  # running estimate, for Retry-After and the wait bound
        self._calibrated = False  # a batch has run: the wait bound applies from then on
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ callers
    @property
    def depth(self) -> int:
        return self._depth

    @property
    def queued_cost(self) -> float:
        return self._cost

    def cost_of(self, items: Sequence) -> float:
        return float(sum(self._cost_of(it) for it in items))

    def admits(self, n_items: int, cost: float) -> bool:
        """Whether a request of ``n_items`` costing ``cost`` would be queued now (no lock: a hint,
        for shedding before a request's body is read; ``submit`` decides)."""
        if not self._depth:
            return True
        if self._depth + n_items > self.max_queue or self._cost + cost > self.max_queue_cost:
            return False
        return not self._calibrated or (self._cost + cost) * self._s_per_cost <= self.max_queue_wait_s

    def submit(self, items: Sequence, *, timeout_s: Optional[float] = None) -> concurrent.futures.Future:
        """Queue ``items``; the future resolves to their results (a list, same order).

        Raises ``QueueFull`` or ``BatcherClosed`` at once instead of queueing.
        ``timeout_s`` drops the request if it is still queued after that long.
        """
        if not items:
            f: concurrent.futures.Future = concurrent.futures.Future()
            f.set_result([])
            return f
        deadline = time.monotonic() + timeout_s if timeout_s is not None else None
        entry = _Entry(items, self.cost_of(items), deadline)
        with self._cond:
            if self._closing:
                raise BatcherClosed("shutting down")
            if not self.admits(len(entry.items), entry.cost):
                raise QueueFull(self._depth, self.retry_after_s(), self._cost)
            self._pending.append(entry)
            self._depth += len(entry.items)
            self._cost += entry.cost
            depth = self._depth
            self._cond.notify()
        if self._on_depth is not None:
            self._on_depth(depth)
        return entry.future

    async def submit_async(self, items: Sequence, *, timeout_s: Optional[float] = None) -> List:
        """``submit`` for asyncio callers; on timeout raises ``asyncio.TimeoutError``
        and the request is dropped if the worker has not started it yet."""
        fut = asyncio.wrap_future(self.submit(items, timeout_s=timeout_s))
        if timeout_s is None:
            return await fut
        return await asyncio.wait_for(fut, timeout_s)

    def retry_after_s(self) -> float:
        """A hint for clients that were refused: the time to work off the queue."""
        return max(1.0, self._cost * self._s_per_cost)

    def close(self, *, drain: bool = True, timeout_s: Optional[float] = None) -> bool:
        """Stop taking work. With ``drain`` the queued requests are still served;
        without it they fail with ``BatcherClosed``. Returns True if the worker ended."""
        with self._cond:
            self._closing = True
            if not drain:
                while self._pending:
                    e = self._pending.popleft()
                    if e.future.set_running_or_notify_cancel():
                        e.future.set_exception(BatcherClosed("shutting down"))
                self._depth = 0
                self._cost = 0.0
            self._cond.notify_all()
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    @property
    def closed(self) -> bool:
        return self._closing

    # ------------------------------------------------------------------ worker
    def _take(self) -> Optional[List[_Entry]]:
        """Block until a batch is due; return its entries (None: closed and empty)."""
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                if not self._pending:
                    return None  # closing and drained
                # Wait for company until the oldest request has waited max_wait_s.
                due = self._pending[0].enqueued + self.max_wait_s
                while self._depth < self.max_batch_size and not self._closing:
                    left = due - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                taken: List[_Entry] = []
                n = 0
                now = time.monotonic()
                while self._pending:
                    e = self._pending[0]
                    if taken and n + len(e.items) > self.max_batch_size:
                        break
                    self._pending.popleft()
                    self._depth -= len(e.items)
                    self._cost = max(0.0, self._cost - e.cost)
                    if e.deadline is not None and now > e.deadline:
                        e.future.cancel()  # the caller is answering 504 already
                        continue
                    if not e.future.set_running_or_notify_cancel():
                        continue  # caller gave up
                    taken.append(e)
                    n += len(e.items)
                    if n >= self.max_batch_size:
                        break
                if not self._pending:
                    self._cost = 0.0  # no float drift left behind
                depth = self._depth
            if self._on_depth is not None:
                self._on_depth(depth)
            if taken:
                return taken
            # everything taken had expired: go round again

    def _run(self) -> None:
        while True:
            taken = self._take()
            if taken is None:
                return
            try:
                results = self._call([it for e in taken for it in e.items])
            except BaseException as exc:  # noqa: BLE001 - handed to every caller, the worker lives on
                for e in taken:
                    e.future.set_exception(exc)
                continue
            pos = 0
            for e in taken:
                k = len(e.items)
                e.future.set_result(results[pos:pos + k])
                pos += k

    def _learn(self, dt: float, chunk: List) -> None:
        """The seconds per unit of cost, a running average weighted by how full the batch was: under
        load (when the estimate matters) batches are full, and a small batch's fixed overhead per
        item would overstate the time to work off a long queue."""
        rate = dt / (self.cost_of(chunk) or 1.0)
        if not self._calibrated:
            self._s_per_cost, self._calibrated = rate, True
            return
        alpha = 0.2 * len(chunk) / self.max_batch_size
        self._s_per_cost += alpha * (rate - self._s_per_cost)

    def _call(self, items: List) -> List:
        """``fn`` over ``items`` in chunks of at most ``max_batch_size``, observed and checked."""
        results: List = []
        for i in range(0, len(items), self.max_batch_size):
            chunk = items[i:i + self.max_batch_size]
            t0 = time.perf_counter()
            out = self._fn(chunk)
            dt = time.perf_counter() - t0
            if len(out) != len(chunk):
                raise RuntimeError(f"batch function returned {len(out)} results for {len(chunk)} items")
            results.extend(out)
            self._learn(dt, chunk)
            if self._on_batch is not None:
                self._on_batch(len(chunk), dt)
        return results
