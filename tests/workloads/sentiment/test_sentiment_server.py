"""The sentiment server for real: `python -m workloads.sentiment.server` on loopback.

Three server processes, all on the model the real trainer produced (fixture
`trained_model_dir`), started together so that their start-ups overlap:
- `served`: default settings: the seed's curl, labels, batches, every bad
  input, metrics;
- `hooked`: tiny queue, and texts prefixed ``[sleep S]`` make the batch worker
  sleep first: back-pressure (503 + Retry-After) and the deadline (504);
- `lifecycle`: MODEL_DIR is the version directory itself, the load waits on a
  gate file: /readyz 503 before the load and 200 after, then SIGTERM during a
  slow in-flight request (it completes, the process exits 0).
`hooked` and `lifecycle` run the real entrypoint through the test-only launcher
``sentiment_test_app.py``, which injects the slow predictor and the load gate
through ``create_app(model_loader=...)``; production code has no test hooks.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sentiment_test_app import sleep_prefix

from workloads.sentiment.metrics import METRIC_NAMES

REPO = Path(__file__).resolve().parents[3]
LAUNCHER = Path(__file__).resolve().parent / "sentiment_test_app.py"
SERVER = ["-m", "workloads.sentiment.server"]
pytestmark = [pytest.mark.workload, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    def __init__(self, model_dir: Path, log: Path, command=SERVER, **env: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        full_env = dict(os.environ, MODEL_DIR=str(model_dir), PORT=str(self.port), HOST="127.0.0.1",
                        LOG_LEVEL="info", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TORCH_THREADS="1",
                        PYTHONUNBUFFERED="1", **env)
        self.log = log
        self._log = open(log, "wb")
        self.proc = subprocess.Popen([sys.executable, *command], cwd=str(REPO),
                                     env=full_env, stdout=self._log, stderr=subprocess.STDOUT)
        self.client = httpx.Client(base_url=self.base, timeout=30)
        self.terminated = False

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def wait(self, path: str, timeout: float = 120.0) -> float:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            assert self.proc.poll() is None, f"server exited {self.proc.returncode}:\n{self.logs()}"
            try:
                if self.client.get(path, timeout=2).status_code == 200:
                    return time.monotonic() - t0
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"{path} not 200 after {timeout}s:\n{self.logs()}")

    def analyze(self, payload, **kw) -> httpx.Response:
        return self.client.post("/analyze", json=payload, **kw)

    def terminate(self) -> None:
        if self.proc.poll() is None and not self.terminated:
            self.terminated = True
            self.proc.send_signal(signal.SIGTERM)

    def stop(self) -> int:
        self.client.close()
        self.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
        return self.proc.returncode


def assert_json_error(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"] and "detail" in body
    return body


def metric_value(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, rest = head.partition("{")
        if metric != name:
            continue
        if all(f'{k}="{v}"' in rest for k, v in labels.items()):
            total += float(value)
    return total


@pytest.fixture(scope="module")
def servers(trained_model_dir, tmp_path_factory):
    """Start the three servers at once, so their start-ups overlap."""
    tmp = tmp_path_factory.mktemp("sentiment")
    version = (trained_model_dir / "latest").read_text().strip()
    procs = {
        "served": ServerProcess(trained_model_dir, tmp / "served.log", PYTHONWARNINGS="default",  # show them all
                                MAX_TEXT_CHARS="2000", MAX_TEXTS="16", MAX_BODY_BYTES="65536"),
        "hooked": ServerProcess(trained_model_dir, tmp / "hooked.log", [str(LAUNCHER)], WARMUP="0",
                                MAX_QUEUE="4", MAX_BATCH_SIZE="4", REQUEST_TIMEOUT_S="3"),
        # MODEL_DIR naming a version directory itself (not the root with `latest`) works too.
        "lifecycle": ServerProcess(trained_model_dir / version, tmp / "lifecycle.log", [str(LAUNCHER)],
                                   TEST_LOAD_GATE=str(tmp / "gate"), SHUTDOWN_DELAY_S="0.8",
                                   WARMUP="0", CPU_ENGINE="torch-fp32"),
    }
    procs["lifecycle"].gate = tmp / "gate"
    yield procs
    for p in procs.values():
        p.terminate()  # all at once: their shutdowns overlap too
    codes = {name: p.stop() for name, p in procs.items()}
    assert codes["served"] == 0 and codes["hooked"] == 0, (codes, procs["served"].logs(), procs["hooked"].logs())


@pytest.fixture(scope="module")
def served(servers):
    servers["served"].wait("/readyz")
    return servers["served"]


@pytest.fixture(scope="module")
def hooked(servers):
    servers["hooked"].wait("/readyz")
    return servers["hooked"]


# --------------------------------------------------------------------------- the trainer's model
def test_seed_curl_works_unchanged(served):
    # curl -X POST -H 'Content-Type: application/json' -d '{"text":"I love this"}' http://host/analyze
    proc = subprocess.run(["curl", "-s", "-X", "POST", "-H", "Content-Type: application/json",
                           "-d", '{"text":"I love this"}', f"{served.base}/analyze"],
                          capture_output=True, text=True, timeout=30) if _has_curl() else None
    body = json.loads(proc.stdout) if proc else served.analyze({"text": "I love this"}).json()
    assert isinstance(body, list) and len(body) == 1
    assert set(body[0]) == {"label", "score"}
    assert body[0]["label"] in ("POSITIVE", "NEGATIVE") and 0.5 <= body[0]["score"] <= 1.0


def _has_curl() -> bool:
    from shutil import which

    return which("curl") is not None


def test_clear_sentences_get_the_right_labels(served):
    pos = "This is wonderful. I love it, it works perfectly and I would buy it again."
    neg = "Terrible. It broke after two days, a complete waste of money. Avoid."
    assert served.analyze({"text": pos}).json()[0]["label"] == "POSITIVE"
    assert served.analyze({"text": neg}).json()[0]["label"] == "NEGATIVE"


def test_texts_batch_answers_one_entry_per_text_in_order(served):
    texts = ["I love this, it is excellent.", "Awful, it broke at once.", "Absolutely fantastic service!",
             "The worst purchase I have ever made.", "Great value, highly recommended."]
    r = served.analyze({"texts": texts})
    assert r.status_code == 200
    body = r.json()
    assert [x["label"] for x in body] == ["POSITIVE", "NEGATIVE", "POSITIVE", "NEGATIVE", "POSITIVE"]
    singles = [served.analyze({"text": t}).json()[0] for t in texts]
    for b, s in zip(body, singles):
        assert b["label"] == s["label"] and abs(b["score"] - s["score"]) < 0.05


def test_concurrent_requests_are_batched_and_all_answered(served):
    before = served.client.get("/metrics").text
    texts = [f"Review number {i}: {'great, I love it' if i % 2 else 'awful, I hate it'}." for i in range(48)]
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda t: served.analyze({"text": t}), texts))
    assert all(r.status_code == 200 and len(r.json()) == 1 for r in results)
    after = served.client.get("/metrics").text
    batches = metric_value(after, "sentiment_batch_size_count") - metric_value(before, "sentiment_batch_size_count")
    batched = metric_value(after, "sentiment_batch_size_sum") - metric_value(before, "sentiment_batch_size_sum")
    assert batched == 48
    assert batches < 48, "concurrent requests should share forward passes"


BAD_INPUTS = [
    # (name, request kwargs, expected status)
    ("not json", dict(content=b"{text: nope", headers={"Content-Type": "application/json"}), 400),
    ("not utf-8", dict(content=b'{"text": "caf\xe9 \xff"}', headers={"Content-Type": "application/json"}), 400),
    ("json not an object", dict(json=["I love this"]), 400),
    ("missing text", dict(json={"txt": "I love this"}), 400),
    ("text and texts", dict(json={"text": "a", "texts": ["b"]}), 400),
    ("text not a string", dict(json={"text": 42}), 400),
    ("text null", dict(json={"text": None}), 400),
    ("texts not a list", dict(json={"texts": "I love this"}), 400),
    ("texts item not a string", dict(json={"texts": ["ok", 3]}), 400),
    ("texts empty", dict(json={"texts": []}), 400),
    ("empty string", dict(json={"text": ""}), 400),
    ("whitespace only", dict(json={"text": "   \n\t"}), 400),
    ("empty string in texts", dict(json={"texts": ["fine", ""]}), 400),
    ("lone surrogate", dict(content=b'{"text": "bad \\ud800 text"}', headers={"Content-Type": "application/json"}), 400),
    ("deeply nested", dict(content=b"[" * 20000 + b"]" * 20000, headers={"Content-Type": "application/json"}), 400),
    ("text too long", dict(json={"text": "a" * 2001}), 413),
    ("too many texts", dict(json={"texts": ["ok"] * 17}), 413),
    ("body too large", dict(json={"texts": ["x" * 1900] * 40}), 413),
    ("no content type", dict(content=b'{"text": "I love this"}'), 415),
    ("wrong content type", dict(content=b'{"text": "I love this"}', headers={"Content-Type": "text/plain"}), 415),
    ("form content type", dict(data={"text": "I love this"}), 415),
]


@pytest.mark.parametrize("name,kwargs,status", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_is_a_json_4xx_and_the_server_stays_up(served, name, kwargs, status):
    r = served.client.post("/analyze", **kwargs)
    assert_json_error(r, status)
    assert served.client.get("/healthz").status_code == 200
    assert served.analyze({"text": "still fine"}).status_code == 200


def test_wrong_method_unknown_path_and_texts_limits(served):
    body = assert_json_error(served.client.get("/analyze"), 405)
    assert body["error"]
    assert "POST" in served.client.get("/analyze").headers.get("allow", "")
    assert_json_error(served.client.put("/analyze", json={"text": "x"}), 405)
    assert_json_error(served.client.get("/nope"), 404)
    assert_json_error(served.client.post("/healthz", json={}), 405)
    assert served.analyze({"texts": ["ok"] * 16}).status_code == 200
    assert served.analyze({"text": "a" * 2000}).status_code == 200  # at the limit: accepted (and token-truncated)


def _raw(port: int, head: bytes, body_chunks=(), read_timeout: float = 10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as s:
        s.sendall(head)
        for c in body_chunks:
            s.sendall(c)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def test_body_limit_from_content_length_answers_before_the_body_is_sent(served):
    head = (f"POST /analyze HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {10 * 1024 * 1024}\r\n\r\n").encode()
    resp = _raw(served.port, head)  # no body at all: the answer must not wait for it
    assert resp.startswith(b"HTTP/1.1 413"), resp[:200]


def test_body_limit_is_enforced_while_streaming(served):
    # Chunked, no Content-Length; send 80 KiB (> 64 KiB limit) and never finish the body.
    head = (b"POST /analyze HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"a" * 8192
    chunks = [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * 10
    resp = _raw(served.port, head, [b'5\r\n{"tex\r\n'] + chunks)
    assert resp.startswith(b"HTTP/1.1 413"), resp[:200]
    assert served.client.get("/healthz").status_code == 200


def test_metrics_are_exposed_and_count(served, trained_model_dir):
    text = served.client.get("/metrics").text
    before = metric_value(text, "sentiment_requests_total", endpoint="/analyze", status="200")
    for _ in range(3):
        assert served.analyze({"text": "nice"}).status_code == 200
    assert served.analyze({"text": ""}).status_code == 400
    r = served.client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    for name in METRIC_NAMES:
        assert f"# TYPE {name.removesuffix('_total')}" in text, name
    assert metric_value(text, "sentiment_requests_total", endpoint="/analyze", status="200") == before + 3
    assert metric_value(text, "sentiment_requests_total", endpoint="/analyze", status="400") >= 1
    assert metric_value(text, "sentiment_request_duration_seconds_count", endpoint="/analyze", status="200") >= 3
    assert metric_value(text, "sentiment_inference_duration_seconds_count") >= 1
    assert metric_value(text, "sentiment_queue_depth") == 0
    assert metric_value(text, "sentiment_model_ready") == 1
    version = (trained_model_dir / "latest").read_text().strip()
    assert metric_value(text, "sentiment_model_info", version=version, backend="cpu") == 1
    assert metric_value(text, "sentiment_predictions_total") >= 3
    ready = served.client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["version"] == version


# --------------------------------------------------------------------------- slowed down: back-pressure, deadline
def test_back_pressure_sheds_load_with_503_and_retry_after(hooked):
    hooked.wait("/readyz")
    results = []
    blocker = threading.Thread(target=lambda: results.append(
        hooked.analyze({"text": sleep_prefix(1.5) + "blocker"})))
    blocker.start()
    time.sleep(0.3)  # the worker is now asleep inside the blocker's batch
    with ThreadPoolExecutor(12) as pool:
        burst = list(pool.map(lambda i: hooked.client.post("/analyze", json={"text": f"burst {i}"}), range(12)))
    blocker.join(30)
    statuses = [r.status_code for r in burst]
    assert set(statuses) <= {200, 503}, statuses
    shed = [r for r in burst if r.status_code == 503]
    assert len(shed) >= 12 - 4, statuses  # MAX_QUEUE=4 texts may wait
    assert statuses.count(200) >= 1
    for r in shed:
        assert_json_error(r, 503)
        assert int(r.headers["retry-after"]) >= 1
    assert results[0].status_code == 200
    text = hooked.client.get("/metrics").text
    assert metric_value(text, "sentiment_rejected_total", reason="queue_full") >= len(shed)


def test_request_deadline_is_504_json(hooked):
    hooked.wait("/readyz")
    t0 = time.monotonic()
    r = hooked.analyze({"text": sleep_prefix(3.6) + "slow"})  # REQUEST_TIMEOUT_S=3
    assert_json_error(r, 504)
    assert r.json()["detail"]["request_timeout_s"] == 3
    assert time.monotonic() - t0 < 3 + 1.5
    time.sleep(1.0)  # let the worker wake up
    assert hooked.analyze({"text": "healthy again"}).status_code == 200


# --------------------------------------------------------------------------- readiness and graceful shutdown
def test_lifecycle_readyz_503_until_loaded_then_sigterm_drains_and_exits_0(servers):
    srv = servers["lifecycle"]
    srv.wait("/healthz", timeout=60)  # liveness answers while the model is not loaded
    r = srv.client.get("/readyz")
    assert r.status_code == 503 and r.json()["status"] == "loading" and "retry-after" in r.headers
    r = srv.analyze({"text": "too early"})
    assert_json_error(r, 503)
    assert "retry-after" in r.headers
    assert srv.client.get("/healthz").status_code == 200
    srv.gate.touch()  # let the load proceed
    srv.wait("/readyz", timeout=120)
    assert srv.analyze({"text": "I love this"}).status_code == 200

    out = {}
    slow = threading.Thread(target=lambda: out.update(r=httpx.post(
        f"{srv.base}/analyze", json={"text": sleep_prefix(2.0) + "I love this"}, timeout=30)))
    slow.start()
    time.sleep(0.5)
    srv.terminate()  # SIGTERM
    time.sleep(0.2)
    r = httpx.get(f"{srv.base}/readyz", timeout=5)  # still listening during SHUTDOWN_DELAY_S
    assert r.status_code == 503 and r.json()["status"] == "draining"
    srv.proc.send_signal(signal.SIGTERM)  # a repeated SIGTERM closes the listener at once, still graceful
    slow.join(30)
    assert out["r"].status_code == 200, out["r"].text
    assert out["r"].json()[0]["label"] in ("POSITIVE", "NEGATIVE")
    assert srv.proc.wait(30) == 0, srv.logs()


def test_start_up_serves_onnx_int8_without_a_deprecation_warning(served):
    """The default CPU engine on the trainer's model is its ONNX int8 graph (within the accuracy budget on
    the shipped sample), and the start-up log, Python warnings included, names nothing deprecated."""
    body = served.client.get("/readyz").json()
    assert (body["backend"], body["engine"], body["threads"]) == ("cpu", "onnx-int8", 1)
    log = served.log.read_text(errors="replace")
    assert "CPU_ENGINE=auto: onnx-int8" in log
    assert "deprecat" not in log.lower() and "Warning" not in log, log[-3000:]
