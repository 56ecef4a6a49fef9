"""Test-only launcher of the sentiment server: the real entrypoint with the seams the slow tests need.

    python tests/workloads/sentiment/sentiment_test_app.py          # same env vars as python -m workloads.sentiment.server

It runs ``workloads.sentiment.server.main`` (settings, signals, drain, exit codes:
all the production code) with ``create_app(model_loader=...)`` set to a loader that
- waits until the file TEST_LOAD_GATE names exists before loading (when set), so a
  test observes /readyz=503 deterministically;
- wraps the real predictor: a text starting ``[sleep S] `` makes the batch worker
  sleep S seconds before running the batch it is in (the prefix is stripped), to
  fill the queue or pass a deadline on purpose.
Not a test module (no ``test_`` prefix): pytest never collects it.
"""
from __future__ import annotations

import functools
import os
import re
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

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
