"""Test-only launcher of the sentiment server: the real entrypoint with the seams the slow tests need.

    python tests/workloads/sentiment/sentiment_test_app.py          # same env vars as python -m workloads.sentiment.server

It runs ``workloads.sentiment.server.main`` (settings, signals, drain, exit codes:
all the production code) with ``create_app(model_loader=...)`` set to a loader that
- waits until the file TEST_LOAD_GATE names exists before loading (when set), so a
  test observes /readyz=503 deterministically;
- wraps the real predictor: a text starting ``[sleep S] `` makes the batch worker
  sleep S seconds before running the batch it is in (the prefix is stripped), to
  fill the queue or pass a deadline on purpose.
Not a test module (no ``test_`` prefix): pytest never collects it. It also holds the
raw-socket client the connection-limit tests share (``exchange``, ``parse_response``):
they send what no HTTP library would (a 1 MB header, a byte a second, bad framing).
"""
from __future__ import annotations

import functools
import json
import os
import re
import socket
import sys
import time
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from workloads.sentiment import server  # noqa: E402  first: it sets the offline HF environment
from workloads.sentiment.app import create_app  # noqa: E402
from workloads.sentiment.config import Settings  # noqa: E402

SLEEP = re.compile(r"^\[sleep ([0-9.]+)\] ")


def sleep_prefix(seconds: float) -> str:
    """The prefix that makes the launcher's predictor sleep ``seconds`` before the batch holding the text."""
    return f"[sleep {seconds}] "


class SlowPredictor:
    """The real predictor, but a batch holding ``[sleep S] `` texts waits S seconds (the longest) first."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def predict(self, texts: Sequence[str]) -> List[Dict]:
        delays, clean = [0.0], []
        for text in texts:
            m = SLEEP.match(text)
            delays.append(float(m.group(1)) if m else 0.0)
            clean.append(text[m.end():] if m else text)
        time.sleep(max(delays))
        return self.inner.predict(clean)


class Exchange:
    """What a raw connection got back: the bytes until the server closed (or ``timeout``), and when."""

    def __init__(self, data: bytes, closed_after_s: Optional[float]) -> None:
        self.data = data
        self.closed_after_s = closed_after_s  # None: still open at the timeout
        self.status, self.headers, self.body = parse_response(data)

    def json(self):
        return json.loads(self.body)


def parse_response(data: bytes) -> Tuple[Optional[int], Dict[str, str], bytes]:
    """The first response in ``data``: status, headers (names lower-case), body (Content-Length bytes)."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        return None, {}, b""
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), headers, rest[:int(headers.get("content-length", len(rest)))]


def exchange(port: int, data: bytes = b"", trickle: Iterable[bytes] = (), interval: float = 0.0,
             timeout: float = 10.0) -> Exchange:
    """Send ``data``, then each piece of ``trickle`` ``interval`` seconds apart (until the server
    answers or closes), then read until the server closes the connection or ``timeout`` passes."""
    import select

    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
            for piece in trickle:
                if select.select([s], [], [], interval)[0]:
                    break  # an answer or the close: stop sending
                s.sendall(piece)
        except OSError:  # the server closed while we were sending: read what it answered
            pass
        out, closed = b"", None
        s.settimeout(max(0.05, timeout - (time.monotonic() - t0)))
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    closed = time.monotonic() - t0
                    break
                out += chunk
        except socket.timeout:
            pass
        except OSError:
            closed = time.monotonic() - t0
    return Exchange(out, closed)


def gated_loader(gate: str, settings: Settings) -> Tuple[SlowPredictor, float]:
    """The real model load, after ``gate`` exists (when given), wrapped in a SlowPredictor."""
    from workloads.sentiment.lifecycle import load_model

    if gate:
        import transformers  # noqa: F401  imports first, so only the load itself waits on the gate

        while not os.path.exists(gate):
            time.sleep(0.05)
    predictor, seconds = load_model(settings)
    return SlowPredictor(predictor), seconds


if __name__ == "__main__":
    loader = functools.partial(gated_loader, os.environ.get("TEST_LOAD_GATE", ""))
    sys.exit(server.main(sys.argv[1:], app_factory=functools.partial(create_app, model_loader=loader)))
