"""The sentiment app in-process: ``create_app(model_loader=...)`` with fake predictors, no model, no torch.

The HTTP contract the slow tests check against the real model, here for what a
real model cannot be made to do on demand: a NaN score, a load that waits or
fails, a worker stuck on a batch.
"""
from __future__ import annotations

import math
import threading
import time

import pytest
from starlette.testclient import TestClient

from workloads.sentiment.app import create_app
from workloads.sentiment.config import Settings

pytestmark = pytest.mark.workload


class FakePredictor:
    """Answers POSITIVE with ``score`` for every text; ``gate`` (when given) holds each batch until set."""

    backend = "fake"
    quantization = "none"
    version = "fake-1"
    path = "/nowhere"

    def __init__(self, score: float = 0.9, gate: threading.Event | None = None) -> None:
        self.score = score
        self.gate = gate
        self.batches: list[list[str]] = []

    def predict(self, texts):
        if self.gate is not None:
            self.gate.wait(10)
        self.batches.append(list(texts))
        return [{"label": "POSITIVE", "score": self.score} for _ in texts]

    def info(self):
        return {"version": self.version, "backend": self.backend, "quantization": self.quantization,
                "model_dir": self.path}


def settings(**env: str) -> Settings:
    return Settings.from_env({"WARMUP": "0", "MAX_BATCH_WAIT_MS": "0", **env})


def wait_ready(client: TestClient, timeout: float = 10.0) -> None:
    t0 = time.monotonic()
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() - t0 < timeout, client.get("/readyz").json()
        time.sleep(0.01)


def serve(predictor=None, loader=None, **env: str) -> TestClient:
    """A TestClient on the app; raise_server_exceptions=False: a 500 is answered, as uvicorn would."""
    app = create_app(settings(**env), model_loader=loader or (lambda s: (predictor, 0.01)))
    return TestClient(app, raise_server_exceptions=False)


def assert_json_error(r, status: int) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert isinstance(body["error"], str) and body["error"] and "detail" in body
    return body


def test_injected_predictor_answers_in_the_pipeline_shape():
    predictor = FakePredictor(score=0.75)
    with serve(predictor) as client:
        wait_ready(client)
        assert client.get("/readyz").json() == {"status": "ready", "version": "fake-1", "backend": "fake",
                                                "engine": "none", "threads": 0}
        assert client.post("/analyze", json={"text": "hi"}).json() == [{"label": "POSITIVE", "score": 0.75}]
        assert client.post("/analyze", json={"texts": ["a", "b"]}).json() == [
            {"label": "POSITIVE", "score": 0.75}] * 2
    assert [t for b in predictor.batches for t in b] == ["hi", "a", "b"]


@pytest.mark.parametrize("score", [math.nan, math.inf, -math.inf])
def test_a_non_finite_score_is_a_json_500_and_the_server_stays_up(score):
    predictor = FakePredictor(score=score)
    with serve(predictor) as client:
        wait_ready(client)
        r = client.post("/analyze", json={"text": "I love this"})
        body = assert_json_error(r, 500)
        assert body == {"error": "internal error", "detail": "NonFiniteOutput"}
        assert "NaN" not in r.text and "Infinity" not in r.text
        assert client.get("/healthz").status_code == 200
        predictor.score = 0.6  # the batch worker survived: the next request is answered
        assert client.post("/analyze", json={"text": "fine"}).json() == [{"label": "POSITIVE", "score": 0.6}]
        metrics = client.get("/metrics").text
        assert 'sentiment_requests_total{endpoint="/analyze",method="POST",status="500"}' in metrics


def test_readyz_and_analyze_are_503_until_the_load_finishes():
    loaded = threading.Event()

    def slow_loader(s):
        loaded.wait(10)
        return FakePredictor(), 0.01

    with serve(loader=slow_loader) as client:
        r = client.get("/readyz")
        assert r.status_code == 503 and r.json()["status"] == "loading" and r.headers["retry-after"] == "2"
        assert_json_error(client.post("/analyze", json={"text": "too early"}), 503)
        assert client.get("/healthz").status_code == 200
        loaded.set()
        wait_ready(client)
        assert client.post("/analyze", json={"text": "now"}).status_code == 200


def test_a_failed_load_is_reported_and_stops_the_server():
    def broken_loader(s):
        raise RuntimeError("no model here")

    app = create_app(settings(), model_loader=broken_loader)
    stopped = threading.Event()
    app.state.on_fatal = stopped.set
    with TestClient(app) as client:
        assert stopped.wait(10), "a failed load must stop the server (exit 1)"
        r = client.get("/readyz")
        assert r.status_code == 503 and r.json()["error"] == "RuntimeError: no model here"


def test_a_full_queue_sheds_with_503_and_retry_after_and_the_deadline_is_504():
    gate = threading.Event()
    predictor = FakePredictor(gate=gate)
    with serve(predictor, MAX_QUEUE="1", MAX_BATCH_SIZE="1", REQUEST_TIMEOUT_S="0.5") as client:
        gate.set()
        wait_ready(client)
        gate.clear()
        results = {}
        blocker = threading.Thread(target=lambda: results.update(
            first=client.post("/analyze", json={"text": "blocker"})))
        blocker.start()
        time.sleep(0.1)  # the worker is now stuck inside the blocker's batch
        queued = threading.Thread(target=lambda: results.update(queued=client.post("/analyze", json={"text": "q"})))
        queued.start()
        time.sleep(0.1)
        shed = client.post("/analyze", json={"text": "one too many"})
        assert_json_error(shed, 503)
        assert int(shed.headers["retry-after"]) >= 1
        blocker.join(5)
        queued.join(5)
        assert_json_error(results["first"], 504)
        assert results["first"].json()["detail"] == {"request_timeout_s": 0.5}
        assert_json_error(results["queued"], 504)  # its deadline passed while it waited
        gate.set()
        t0 = time.monotonic()
        while client.app.state.batcher.depth:  # the worker drops the expired request first
            assert time.monotonic() - t0 < 5
            time.sleep(0.01)
        assert client.post("/analyze", json={"text": "healthy again"}).status_code == 200
