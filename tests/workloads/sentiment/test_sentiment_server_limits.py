"""The connection limits and load shedding of the real server process, on the trainer's model.

One server (the real entrypoint through the test-only launcher, so that a
``[sleep S]`` text holds the batch worker) with short read timeouts from the
environment; raw HTTP/1.1 from ``sentiment_test_app.exchange``. What the
in-process tests (test_sentiment_http_guard.py) check against a fake predictor,
here end to end, plus what needs a process of its own: its memory (VmRSS) while
it refuses huge request heads.
"""
from __future__ import annotations

import threading
import time

import pytest
from sentiment_test_app import exchange, sleep_prefix
from test_sentiment_server import LAUNCHER, ServerProcess

pytestmark = [pytest.mark.workload, pytest.mark.slow]

POST = b"POST /analyze HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"


@pytest.fixture(scope="module")
def limited(trained_model_dir, tmp_path_factory):
    log = tmp_path_factory.mktemp("sentiment-limits") / "limited.log"
    srv = ServerProcess(trained_model_dir, log, [str(LAUNCHER)], WARMUP="0", MAX_BATCH_SIZE="4",
                        HEADER_TIMEOUT_S="2", BODY_TIMEOUT_S="1.5", MAX_QUEUE_TOKENS="40", REQUEST_TIMEOUT_S="20")
    try:
        srv.wait("/readyz")
        yield srv
    finally:
        assert srv.stop() == 0, srv.logs()


def vm_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def assert_closed_json(r, status: int) -> dict:
    assert r.status == status, r.data[:300]
    assert r.headers["content-type"] == "application/json" and r.headers["connection"] == "close"
    assert r.closed_after_s is not None, "the server must close the connection"
    body = r.json()
    assert isinstance(body["error"], str) and body["error"] and "detail" in body
    return body


def analyze(text: str) -> bytes:
    body = ('{"text": "%s"}' % text).encode()
    return POST + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body


def test_a_1mb_header_is_431_and_the_server_does_not_grow_by_it(limited):
    pid = limited.proc.pid
    header = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n"
    assert_closed_json(exchange(limited.port, header), 431)  # the refusal path warmed up
    before = vm_rss_kib(pid)
    for _ in range(4):
        body = assert_closed_json(exchange(limited.port, header), 431)
        assert body["detail"] == {"max_header_bytes": 16384}
    huge = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Huge: " + b"a" * (64 << 20) + b"\r\n\r\n"
    assert_closed_json(exchange(limited.port, huge, timeout=30), 431)
    grown = vm_rss_kib(pid) - before
    assert grown < 4096, f"RSS grew by {grown} KiB while refusing 68 MB of headers"
    assert exchange(limited.port, analyze("I love this")).status == 200


def test_a_slowloris_client_is_cut_off_after_the_header_timeout(limited):
    r = exchange(limited.port, b"POST /analyze HTTP/1.1\r\n", trickle=[b"X"] * 20, interval=0.5, timeout=10)
    assert_closed_json(r, 408)
    assert 1.9 <= r.closed_after_s < 4.5, r.closed_after_s
    r = exchange(limited.port, POST + b"Content-Length: 300\r\n\r\n{", trickle=[b" "] * 20, interval=0.5, timeout=10)
    assert_closed_json(r, 408)
    assert 1.4 <= r.closed_after_s < 4.0, r.closed_after_s
    assert exchange(limited.port, analyze("still serving")).status == 200


@pytest.mark.parametrize("raw", [POST + b"Content-Length: nope\r\n\r\n", b"NOT HTTP AT ALL\r\n\r\n",
                                 POST + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n"],
                         ids=["bad content-length", "malformed request line", "invalid chunking"])
def test_framing_errors_are_json_400(limited, raw):
    assert assert_closed_json(exchange(limited.port, raw), 400)["error"] == "malformed HTTP request"


def test_no_redirect_is_built_from_the_host_header(limited):
    r = limited.client.post("/analyze/", json={"text": "x"}, headers={"Host": "evil.example"})
    assert r.status_code == 404 and "location" not in r.headers
    assert r.headers["content-type"].startswith("application/json") and r.json()["error"]


def test_a_full_queue_is_shed_before_the_body_is_read(limited):
    results = []
    blocker = threading.Thread(target=lambda: results.append(
        exchange(limited.port, analyze(sleep_prefix(2.5) + "blocker"), timeout=30)))
    blocker.start()
    time.sleep(0.5)  # the worker sleeps inside the blocker's batch
    queued = threading.Thread(target=lambda: results.append(
        exchange(limited.port, analyze("a queued text of about thirty tokens, " * 3), timeout=30)))
    queued.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    r = exchange(limited.port, POST + b"Content-Length: 200000\r\n\r\n", timeout=10)  # headers only, no body
    assert time.monotonic() - t0 < 1.5, "the 503 must not wait for the body"
    body = assert_closed_json(r, 503)
    assert int(r.headers["retry-after"]) >= 1 and body["detail"]["queued_texts"] == 1
    blocker.join(30)
    queued.join(30)
    assert sorted(x.status for x in results) == [200, 200]
