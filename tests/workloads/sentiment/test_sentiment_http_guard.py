"""The connection limits (``http_guard``) under the real uvicorn, in-process, with a fake predictor.

Each test runs the production server configuration (``lifecycle.uvicorn_config``:
the guarded httptools protocol) on a loopback port in a thread, and talks raw
HTTP/1.1 to it (``sentiment_test_app.exchange``): head size and count (431),
head and body deadlines (408), idle keep-alive, framing errors as JSON (400),
no Host-based redirect, and load shedding before the body is read (503).
No model, no torch: seconds, not minutes.
"""
from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest
import uvicorn
from sentiment_test_app import exchange
from test_sentiment_app import FakePredictor, settings

from workloads.sentiment.app import create_app
from workloads.sentiment.lifecycle import uvicorn_config

pytestmark = pytest.mark.workload

POST = b"POST /analyze HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running(predictor=None, **env: str):
    """The app under uvicorn in a thread; yields (port, app) once /readyz is 200."""
    port = _free_port()
    s = settings(HOST="127.0.0.1", PORT=str(port), LOG_LEVEL="warning", **env)
    app = create_app(s, model_loader=lambda _s: (predictor or FakePredictor(), 0.0))
    server = uvicorn.Server(uvicorn_config(app, s))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    t0 = time.monotonic()
    while _status(port, b"GET /readyz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n") != 200:
        assert time.monotonic() - t0 < 10 and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    try:
        yield port, app
    finally:
        server.should_exit = True
        thread.join(10)


def _status(port: int, raw: bytes):
    try:
        return exchange(port, raw, timeout=2).status
    except OSError:  # not listening yet
        return None


def analyze_request(body: bytes, extra: bytes = b"") -> bytes:
    return POST + extra + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body


def assert_json_refusal(r, status: int) -> dict:
    assert r.status == status, r.data[:300]
    assert r.headers["content-type"] == "application/json" and r.headers["connection"] == "close"
    body = r.json()
    assert isinstance(body["error"], str) and body["error"] and "detail" in body
    assert r.closed_after_s is not None, "the connection must be closed after the refusal"
    return body


def vm_rss_kib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


# --------------------------------------------------------------------------- the head: size and count
def test_a_1mb_header_is_431_json_and_is_not_buffered():
    with running() as (port, _app):
        big = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n"
        huge = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Huge: " + b"a" * (32 << 20) + b"\r\n\r\n"
        r = exchange(port, big)
        body = assert_json_refusal(r, 431)
        assert body == {"error": "request headers too large", "detail": {"max_header_bytes": 16384}}
        before = vm_rss_kib()
        assert_json_refusal(exchange(port, huge, timeout=20), 431)
        assert vm_rss_kib() - before < 4096, "a refused head must not be held in memory"
        assert exchange(port, analyze_request(b'{"text":"fine"}')).status == 200


def test_too_many_headers_is_431_and_a_head_at_the_limits_is_served():
    with running(MAX_HEADERS="20", MAX_HEADER_BYTES="4096") as (port, _app):
        many = b"".join(b"X-H%d: 1\r\n" % i for i in range(21))
        assert_json_refusal(exchange(port, analyze_request(b'{"text":"a"}', many)), 431)
        assert exchange(port, analyze_request(b'{"text":"a"}', b"".join(b"X-H%d: 1\r\n" % i for i in range(15)))
                        ).status == 200
        long_value = b"X-Long: " + b"v" * 3500 + b"\r\n"
        assert exchange(port, analyze_request(b'{"text":"a"}', long_value)).status == 200
        assert_json_refusal(exchange(port, analyze_request(b'{"text":"a"}', long_value * 2)), 431)


# --------------------------------------------------------------------------- deadlines
def test_a_slowloris_head_is_cut_off_after_the_header_timeout():
    with running(HEADER_TIMEOUT_S="1") as (port, _app):
        r = exchange(port, b"GET /healthz HTTP/1.1\r\n", trickle=[b"X"] * 40, interval=0.1, timeout=6)
        assert_json_refusal(r, 408)
        assert 0.9 <= r.closed_after_s < 3.5, r.closed_after_s
        assert r.json()["detail"] == {"header_timeout_s": 1.0}
        silent = exchange(port, b"", timeout=6)  # connected, never sent a byte: closed without an answer
        assert silent.data == b"" and silent.closed_after_s is not None and silent.closed_after_s < 3.5


def test_a_slow_body_is_cut_off_after_the_body_timeout():
    with running(BODY_TIMEOUT_S="1") as (port, _app):
        head = POST + b"Content-Length: 400\r\n\r\n{"
        r = exchange(port, head, trickle=[b" "] * 40, interval=0.1, timeout=6)
        assert_json_refusal(r, 408)
        assert 0.9 <= r.closed_after_s < 3.5, r.closed_after_s
        assert exchange(port, analyze_request(b'{"text":"fine"}')).status == 200


def test_an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout():
    with running(KEEPALIVE_TIMEOUT_S="0.5") as (port, _app):
        r = exchange(port, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", timeout=5)
        assert r.status == 200 and "connection" not in r.headers  # kept alive ...
        assert r.closed_after_s is not None and r.closed_after_s < 2.5  # ... until idle for 0.5 s


# --------------------------------------------------------------------------- framing errors, redirects
FRAMING = [
    ("bad content-length", POST + b"Content-Length: 12abc\r\n\r\n"),
    ("two content-lengths", POST + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\n"),
    ("content-length and chunked", POST + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
    ("invalid chunk size", POST + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n"),
    ("malformed request line", b"GARBAGE\r\n\r\n"),
    ("bad http version", b"GET /healthz HTTP/9.x\r\nHost: t\r\n\r\n"),
    ("bad header name", b"GET /healthz HTTP/1.1\r\nHo st: t\r\n\r\n"),
]


@pytest.mark.parametrize("name,raw", FRAMING, ids=[f[0] for f in FRAMING])
def test_framing_errors_are_json_400(name, raw):
    with running() as (port, _app):
        body = assert_json_refusal(exchange(port, raw), 400)
        assert body["error"] == "malformed HTTP request" and isinstance(body["detail"], str)


def test_a_trailing_slash_is_a_json_404_not_a_redirect_built_from_host():
    with running() as (port, _app):
        for method in (b"POST", b"GET"):
            r = exchange(port, method + b" /analyze/ HTTP/1.1\r\nHost: evil.example\r\nContent-Length: 0\r\n"
                                        b"Connection: close\r\n\r\n")
            assert r.status == 404 and "location" not in r.headers, r.data[:300]
            assert r.headers["content-type"] == "application/json" and r.json()["error"] == "Not Found"


# --------------------------------------------------------------------------- shedding before the body
def _sample(name: str, **labels: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_full_queue_is_shed_with_503_before_the_body_is_read_and_held_beyond_the_prompt_rate():
    gate = threading.Event()
    predictor = FakePredictor(gate=gate)
    env = dict(MAX_BATCH_SIZE="1", MAX_QUEUE_TOKENS="40", REQUEST_TIMEOUT_S="10", SHED_PROMPT_PER_S="1")
    shed_before = _sample("sentiment_rejected_total", reason="queue_full")
    answered_before = _sample("sentiment_requests_total", endpoint="/analyze", method="POST", status="503")
    with running(predictor, **env) as (port, _app):
        results = []
        fill = [threading.Thread(target=lambda t=t: results.append(
            exchange(port, analyze_request(b'{"texts":["%s"]}' % (b"x" * 100)), timeout=15))) for t in range(2)]
        fill[0].start()
        time.sleep(0.3)  # the worker holds the first batch at the gate
        fill[1].start()
        time.sleep(0.3)  # the second one waits in the queue: 27 of 40 tokens
        t0 = time.monotonic()
        r = exchange(port, POST + b"Content-Length: 200000\r\n\r\n", timeout=5)  # headers only, no body
        assert time.monotonic() - t0 < 1.0, "the answer must not wait for the body"
        body = assert_json_refusal(r, 503)
        assert int(r.headers["retry-after"]) >= 1
        assert body["detail"] == {"queued_texts": 1, "queued_tokens": 27}
        t0 = time.monotonic()  # over SHED_PROMPT_PER_S: the next 503 is held for its Retry-After first
        held = exchange(port, POST + b"Content-Length: 200000\r\n\r\n", timeout=8)
        assert_json_refusal(held, 503)
        assert time.monotonic() - t0 >= 0.9
        assert _sample("sentiment_rejected_total", reason="queue_full") == shed_before + 2
        assert _sample("sentiment_requests_total", endpoint="/analyze", method="POST",
                       status="503") == answered_before + 2
        gate.set()
        for t in fill:
            t.join(15)
        assert sorted(x.status for x in results) == [200, 200]
        assert exchange(port, analyze_request(b'{"text":"served again"}')).status == 200
