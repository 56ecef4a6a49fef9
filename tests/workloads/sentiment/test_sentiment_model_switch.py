"""The model lifecycle for real: the trainer promotes (or not), the running server follows, with no failed request.

One sequence on tiny real versions (1 epoch on 64-96 samples of the shipped sample, ~15 s each):
train A; serve it twice (one server following `latest`, one pinned to A); train B, which passes the
gate, while a client sends requests the whole time: every answer 2xx, X-Model-Version goes from A to B,
and the follower's RSS comes back down after the switch (A is freed); the pinned server stays on A.
Then train C with --min-accuracy above what the sample reaches: exported, not promoted, the reason
in its metadata, `latest` and the follower still on B. Last, `promote.py A` by hand (a rollback).
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from conftest import run_trainer
from test_sentiment_server import ServerProcess

REPO = Path(__file__).resolve().parents[3]
TINY = ("--epochs", "1", "--eval-max-samples", "32", "--num-workers", "0", "--metrics-port", "0")
pytestmark = [pytest.mark.workload, pytest.mark.slow]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def train(root: Path, name: str, *extra: str) -> subprocess.CompletedProcess:
    proc = run_trainer(root / "models", root / f"ckpt-{name}", *TINY, *extra)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def latest(root: Path) -> str:
    return (root / "models" / "latest").read_text().strip()


class Client:
    """Two threads posting /analyze back to back until stopped: (status, version, seconds) per answer."""

    def __init__(self, base: str) -> None:
        self.base, self.answers, self.stop = base, [], threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(2)]
        for t in self.threads:
            t.start()

    def _run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=30) as c:
            while not self.stop.is_set():
                t0 = time.perf_counter()
                r = c.post("/analyze", json={"text": "a wonderful, moving film"})
                self.answers.append((r.status_code, r.headers.get("x-model-version"), time.perf_counter() - t0))

    def versions(self) -> list[str]:
        return [v for _, v, _ in self.answers]

    def finish(self) -> list[tuple]:
        self.stop.set()
        for t in self.threads:
            t.join(60)
        return list(self.answers)


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0.0, threading.Event()
        self.start()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, rss_mib(self.pid))
            time.sleep(0.05)


def wait_version(client: Client, version: str, timeout: float = 120.0) -> None:
    t0 = time.monotonic()
    while not client.answers or client.answers[-1][1] != version:
        assert time.monotonic() - t0 < timeout, f"still {client.answers[-1:]} after {timeout}s"
        time.sleep(0.1)


def test_train_promote_switch_pin_gate_and_roll_back(tmp_path):
    train(tmp_path, "a", "--max-samples", "64", "--min-accuracy", "0")
    a = latest(tmp_path)
    models = tmp_path / "models"
    follow = ServerProcess(models, tmp_path / "follow.log", MODEL_WATCH_INTERVAL_S="0.5")
    pinned = ServerProcess(models, tmp_path / "pinned.log", MODEL_VERSION=a)
    try:
        follow.wait("/readyz")
        pinned.wait("/readyz")
        client = Client(follow.base)
        time.sleep(3)  # steady state on A
        rss_a = rss_mib(follow.proc.pid)
        sampler = RssSampler(follow.proc.pid)

        train(tmp_path, "b", "--max-samples", "96", "--min-accuracy", "0", "--max-regression", "1")
        b = latest(tmp_path)
        assert b != a
        wait_version(client, b)
        time.sleep(3)  # serving on B
        sampler.stop.set()
        rss_b = rss_mib(follow.proc.pid)
        answers = client.finish()
        statuses = {s for s, _, _ in answers}
        versions = [v for _, v, _ in answers]
        assert statuses == {200}, [x for x in answers if x[0] != 200][:5]
        assert versions[0] == a and versions[-1] == b and set(versions) == {a, b}
        last_a = len(versions) - 1 - versions[::-1].index(a)
        assert last_a < versions.index(b) + 4  # once B answers, only requests already in a batch on A finish on A
        print(f"\nRSS of the follower: {rss_a:.0f} MiB serving A, peak {sampler.peak:.0f} MiB while B loaded "
              f"beside it, {rss_b:.0f} MiB serving B; {len(answers)} requests, all 200")
        assert sampler.peak - rss_a > 20, "loading B beside A should show in RSS"
        assert rss_b - rss_a < 0.5 * (sampler.peak - rss_a), (rss_a, sampler.peak, rss_b)
        ready = follow.client.get("/readyz").json()
        assert ready["version"] == b and "switch_error" not in ready
        assert f'version="{b}"' in follow.client.get("/metrics").text

        assert pinned.client.get("/readyz").json()["version"] == a  # a pin ignores the new `latest`
        assert pinned.analyze({"text": "fine"}).headers["x-model-version"] == a

        gated = train(tmp_path, "c", "--max-samples", "80", "--min-accuracy", "0.99")
        assert latest(tmp_path) == b
        c = next(p.name for p in models.iterdir() if p.name not in (a, b, "latest"))
        meta = json.loads((models / c / "metadata.json").read_text())["promotion"]
        assert meta["promoted"] is False and "below --min-accuracy 0.99" in meta["reason"], meta
        assert meta["baseline_version"] == b
        assert "NOT promoted" in gated.stdout and '"event": "promotion"' in gated.stdout
        time.sleep(1.5)
        assert follow.analyze({"text": "fine"}).headers["x-model-version"] == b

        back = subprocess.run([sys.executable, str(REPO / "workloads" / "training" / "promote.py"), "--model-dir",
                               str(models), a], capture_output=True, text=True)
        assert back.returncode == 0 and latest(tmp_path) == a, back.stderr
        t0 = time.monotonic()
        while follow.analyze({"text": "fine"}).headers["x-model-version"] != a:
            assert time.monotonic() - t0 < 60, follow.logs()
            time.sleep(0.2)
    finally:
        assert follow.stop() == 0 and pinned.stop() == 0
