"""Load shedding answers: the 503 a request gets when the batch queue has no room, and when it is sent.

The queue's bounds (``batcher.MicroBatcher``: texts, estimated tokens, estimated
seconds) decide *whether* a request is shed. This module decides the answer:
503, Retry-After the time to work off the queue, and *when* it goes out.

Up to SHED_PROMPT_PER_S sheds a second are answered at once. Beyond that rate
(clients retrying at once instead of after Retry-After), each 503 is held for
its Retry-After (at most ``MAX_HOLD_S``) before it is sent, the connection idle
meanwhile. Answering thousands of 503s a second costs the event loop's thread
the CPU and the GIL that the batch worker's thread needs: measured on 2 cores,
256 clients retrying at once cut the model's throughput to a third; held, the
retries arrive at most once per Retry-After per client.

Standard library only.
"""
from __future__ import annotations

import math
import threading
import time
from typing import Any, Dict, NamedTuple

#: Longest a 503 is held back (seconds), whatever its Retry-After.
MAX_HOLD_S = 5.0

BUSY = "server busy: queue full"


class ShedAnswer(NamedTuple):
    """A shed request's answer: ``hold_s`` seconds from now, status and JSON error."""

    status: int
    message: str
    detail: Any
    headers: Dict[str, str]
    hold_s: float = 0.0


def retry_after(seconds: float) -> Dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


class PromptBudget:
    """A token bucket: ``rate`` prompt answers a second, bursts of up to one second's worth."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.burst = max(1.0, rate)
        self._tokens = self.burst
        self._at = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False


class Shedder:
    """Builds the 503 queue-full answers of one server, holding them back beyond the prompt rate."""

    def __init__(self, prompt_per_s: float) -> None:
        self.budget = PromptBudget(prompt_per_s)

    def queue_full(self, depth: int, tokens: float, retry_after_s: float, close: bool) -> ShedAnswer:
        """The queue's texts and estimated tokens; ``close``: the body was not read (``Connection: close``)."""
        headers = dict(retry_after(retry_after_s))
        if close:
            headers["Connection"] = "close"
        hold = 0.0 if self.budget.take() else min(MAX_HOLD_S, max(1.0, retry_after_s))
        return ShedAnswer(503, BUSY, {"queued_texts": depth, "queued_tokens": int(tokens)}, headers, hold)
