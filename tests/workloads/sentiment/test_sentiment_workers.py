"""The sentiment server with WORKERS=2 for real: a parent owning the socket and two spawned workers.

- both workers answer /analyze (told apart by their per-process metric files);
- /metrics adds up both processes: after N requests the /analyze request counter is N on every
  scrape, whichever worker answered it (scraped until both have);
- SIGTERM to the parent exits 0 within seconds and no worker (nor any other child) outlives it.

On the model the real trainer produced (fixture `trained_model_dir`), with the helpers of
test_sentiment_server.py.
"""
from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from test_sentiment_server import ServerProcess, metric_value

from workloads.sentiment.metrics import PREDICTIONS_TOTAL, REQUESTS_TOTAL

pytestmark = [pytest.mark.workload, pytest.mark.slow]


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found |= {int(x) for x in (task / "children").read_text().split()}
        except OSError:
            pass
    return found


def alive(pids: set[int]) -> list[int]:
    """Those of `pids` still running (a zombie is dead, just not reaped by this container's init)."""
    out = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.append(pid)
    return out


def per_worker(prom_dir: Path, endpoint: str) -> dict[int, float]:
    """requests_total{endpoint} of each worker, read from its own counter file (multiprocess mode)."""
    from prometheus_client.multiprocess import MultiProcessCollector

    out = {}
    for f in prom_dir.glob("counter_*.db"):
        total = sum(s.value for m in MultiProcessCollector.merge([str(f)], accumulate=True) for s in m.samples
                    if s.name == REQUESTS_TOTAL and s.labels.get("endpoint") == endpoint)
        out[int(f.stem.split("_")[1])] = total
    return out


def fresh(base: str, method: str, path: str, **kw) -> httpx.Response:
    """One request on a new connection, so the kernel hands it to either worker's accept()."""
    with httpx.Client(base_url=base, timeout=30, headers={"Connection": "close"}) as c:
        return c.request(method, path, **kw)


@pytest.fixture(scope="module")
def workers(trained_model_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("workers")
    prom = tmp / "prom"
    prom.mkdir()
    srv = ServerProcess(trained_model_dir, tmp / "workers.log", WORKERS="2", PROMETHEUS_MULTIPROC_DIR=str(prom))
    srv.prom = prom
    yield srv
    kids = children(srv.proc.pid) if srv.proc.poll() is None else set()
    srv.stop()
    for pid in alive(kids):  # a failed test left them running: never leave processes behind
        os.kill(pid, signal.SIGKILL)


def test_two_workers_answer_and_metrics_add_up_then_sigterm_exits_cleanly(workers):
    srv = workers
    srv.wait("/readyz")
    deadline = time.monotonic() + 60
    while len(children(srv.proc.pid)) < 2 or not all(fresh(srv.base, "GET", "/readyz").status_code == 200
                                                       for _ in range(6)):
        assert time.monotonic() < deadline, f"both workers not ready:\n{srv.logs()}"  # one may still be loading
        time.sleep(0.2)

    sent = 0
    with ThreadPoolExecutor(8) as pool:
        for _ in range(25):
            rs = list(pool.map(lambda i: fresh(srv.base, "POST", "/analyze", json={"text": f"great movie {i}"}),
                               range(sent, sent + 8)))
            sent += len(rs)
            assert all(r.status_code == 200 and r.json()[0]["label"] in ("POSITIVE", "NEGATIVE") for r in rs)
            counts = per_worker(srv.prom, "/analyze")
            if len(counts) == 2 and all(counts.values()):
                break
    counts = per_worker(srv.prom, "/analyze")
    assert len(counts) == 2 and all(counts.values()), (sent, counts)   # both processes answered /analyze
    assert set(counts) <= children(srv.proc.pid)                      # ... and they are the parent's workers

    deadline = time.monotonic() + 10  # a worker counts a request just after its response went out
    while sum(per_worker(srv.prom, "/analyze").values()) < sent and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sum(per_worker(srv.prom, "/analyze").values()) == sent
    scrapes = 0
    while scrapes < 60:
        r = fresh(srv.base, "GET", "/metrics")
        scrapes += 1
        assert r.status_code == 200
        assert metric_value(r.text, REQUESTS_TOTAL, endpoint="/analyze", status="200") == sent, r.text[:3000]
        assert metric_value(r.text, PREDICTIONS_TOTAL) == sent
        if scrapes >= 4 and len(scraped := per_worker(srv.prom, "/metrics")) == 2 and all(scraped.values()):
            break
    scraped = per_worker(srv.prom, "/metrics")
    assert len(scraped) == 2 and all(scraped.values()), scraped        # each worker answered a scrape

    kids = children(srv.proc.pid)
    assert len(kids) >= 2, kids
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    srv.terminated = True
    rc = srv.proc.wait(timeout=30)
    took = time.monotonic() - t0
    assert rc == 0, srv.logs()
    assert took < 8, f"exit took {took:.1f}s:\n{srv.logs()}"
    deadline = time.monotonic() + 3
    while alive(kids) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = alive(kids)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"children {left} outlived the parent:\n{srv.logs()}"
