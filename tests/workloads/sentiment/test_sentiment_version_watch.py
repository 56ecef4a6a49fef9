"""Following `latest` without a real model: the watcher's decisions, AppState.swap, X-Model-Version, /readyz.

Fake predictors through ``create_app(model_loader=...)`` (the loader gets the settings pinned to the version
the watcher asks for); the real switch under load is test_sentiment_model_switch.py.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from workloads.sentiment import artifacts, lifecycle
from workloads.sentiment.app import create_app
from workloads.sentiment.config import Settings
from workloads.sentiment.watcher import ModelWatcher

pytestmark = pytest.mark.workload


class Versioned:
    """A fake predictor of one version; ``gate`` holds each batch until set."""

    backend = "fake"
    quantization = "none"
    path = "/nowhere"

    def __init__(self, version: str, accuracy: float | None = 0.9, gate: threading.Event | None = None) -> None:
        self.version, self.accuracy, self.gate = version, accuracy, gate

    def predict(self, texts):
        if self.gate is not None:
            self.gate.wait(10)
        return [{"label": "POSITIVE", "score": 0.9} for _ in texts]

    def info(self):
        return {"version": self.version, "backend": self.backend, "quantization": self.quantization,
                "model_dir": self.path}


def write_latest(root: Path, name: str) -> None:
    tmp = root / ".latest.tmp"
    tmp.write_text(name)
    os.replace(tmp, root / "latest")


def loader_for(root: Path, broken: tuple[str, ...] = ()):
    """A model_loader: the version MODEL_VERSION names (or `latest`'s), refused when in ``broken``."""
    loads: list[str] = []

    def load(settings: Settings):
        name = settings.model_version if settings.model_version != "latest" else artifacts.pointed_version(root)
        loads.append(name)
        if name in broken:
            raise artifacts.ModelNotFound(f"{name} is broken")
        return Versioned(name), 0.01
    return load, loads


def app_client(root: Path, loader, **env: str) -> TestClient:
    s = Settings.from_env({"WARMUP": "0", "MAX_BATCH_WAIT_MS": "0", "MODEL_DIR": str(root),
                           "MODEL_WATCH_INTERVAL_S": "0.02", **env})
    return TestClient(create_app(s, model_loader=loader), raise_server_exceptions=False)


def wait_for(cond, timeout: float = 10.0) -> None:
    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < timeout, "condition not met in time"
        time.sleep(0.01)


def test_switches_to_a_new_latest_and_names_the_version_everywhere(tmp_path):
    write_latest(tmp_path, "vA")
    load, loads = loader_for(tmp_path)
    with app_client(tmp_path, load) as client:
        wait_for(lambda: client.get("/readyz").status_code == 200)
        r = client.post("/analyze", json={"text": "good"})
        assert r.status_code == 200 and r.headers["x-model-version"] == "vA"
        assert client.get("/healthz").headers["x-model-version"] == "vA"
        write_latest(tmp_path, "vB")
        wait_for(lambda: client.get("/readyz").json()["version"] == "vB")
        assert client.post("/analyze", json={"text": "good"}).headers["x-model-version"] == "vB"
        assert client.post("/analyze", json={}).headers["x-model-version"] == "vB"  # errors say it too
        metrics = client.get("/metrics").text
        assert 'sentiment_model_info{accuracy="0.9",backend="fake",model_dir="/nowhere",quantization="none",' \
               'version="vB"} 1.0' in metrics
        assert 'version="vA"' not in metrics  # the replaced version's series is gone
        assert 'sentiment_model_switches_total{result="success"}' in metrics
    assert loads == ["vA", "vB"]


def test_a_version_that_fails_to_load_is_reported_and_the_old_one_serves(tmp_path):
    write_latest(tmp_path, "vA")
    load, loads = loader_for(tmp_path, broken=("vBad",))
    with app_client(tmp_path, load) as client:
        wait_for(lambda: client.get("/readyz").status_code == 200)
        write_latest(tmp_path, "vBad")
        wait_for(lambda: "switch_error" in client.get("/readyz").json())
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["version"] == "vA"
        assert ready.json()["switch_error"] == {"version": "vBad", "error": "ModelNotFound: vBad is broken"}
        assert client.post("/analyze", json={"text": "x"}).headers["x-model-version"] == "vA"
        assert 'sentiment_model_switches_total{result="failure"} 1.0' in client.get("/metrics").text
        time.sleep(0.1)
        assert loads == ["vA", "vBad"]  # not retried while `latest` is not written again
        write_latest(tmp_path, "vC")
        wait_for(lambda: client.get("/readyz").json()["version"] == "vC")
        assert "switch_error" not in client.get("/readyz").json()


def test_a_pinned_version_ignores_latest(tmp_path):
    write_latest(tmp_path, "vA")
    load, loads = loader_for(tmp_path)
    with app_client(tmp_path, load, MODEL_VERSION="vPinned") as client:
        wait_for(lambda: client.get("/readyz").status_code == 200)
        write_latest(tmp_path, "vB")
        time.sleep(0.15)
        assert client.get("/readyz").json()["version"] == "vPinned"
        assert client.app.state.watcher is None
    assert loads == ["vPinned"]


def test_swap_waits_for_the_batch_in_flight_then_frees_the_old_model(tmp_path, monkeypatch):
    """The batch running on the old model finishes on it; the next batch runs on the new one."""
    gate = threading.Event()
    old = Versioned("vA", gate=gate)
    freed = []
    monkeypatch.setattr(lifecycle, "release_memory", lambda: freed.append(True))
    with app_client(tmp_path, lambda s: (old, 0.01), MODEL_WATCH_INTERVAL_S="0") as client:
        wait_for(lambda: client.get("/readyz").status_code == 200)
        state = client.app.state
        assert state.watcher is None  # interval 0: no watching
        fut = state.batcher.submit(["slow"])
        wait_for(lambda: state._using is old)
        swapper = threading.Thread(target=state.swap, args=(Versioned("vB"), 0.5))
        swapper.start()
        time.sleep(0.1)
        assert state.predictor.version == "vB" and not freed  # switched, but the old batch still runs
        gate.set()
        swapper.join(5)
        assert fut.result(5) == [({"label": "POSITIVE", "score": 0.9}, "vA")] and freed == [True]
        assert state.batcher.submit(["next"]).result(5)[0][1] == "vB"


def test_watcher_check_once_skips_what_did_not_change(tmp_path):
    current = ["vA"]
    events = []
    w = ModelWatcher(str(tmp_path), 1.0, current=lambda: current[0], load=lambda name: (Versioned(name), 0.0),
                     swap=lambda p, s: (events.append(p.version), current.__setitem__(0, p.version)),
                     failed=lambda name, exc: events.append(("failed", name)))
    assert w.check_once() is None  # no `latest` at all
    write_latest(tmp_path, "vA")
    assert w.check_once() is None  # names the version served
    write_latest(tmp_path, "../escape")
    assert w.check_once() is None  # malformed: ignored
    write_latest(tmp_path, "vB")
    assert w.check_once() == "switched" and events == ["vB"]
    assert w.check_once() is None  # unchanged pointer: not even read


def test_watcher_thread_survives_a_failing_poll(tmp_path, caplog):
    write_latest(tmp_path, "vB")
    calls = []

    def swap(p, s):
        calls.append(p.version)
        raise RuntimeError("bug in a callback")

    w = ModelWatcher(str(tmp_path), 0.01, current=lambda: "vA", load=lambda n: (Versioned(n), 0.0), swap=swap,
                     failed=lambda n, e: None)
    w.start()
    wait_for(lambda: calls)
    write_latest(tmp_path, "vC")
    wait_for(lambda: len(calls) == 2)
    w.stop()
    assert "checking" in caplog.text and calls == ["vB", "vC"]


def test_release_memory_without_glibc_is_a_no_op(monkeypatch):
    import ctypes

    def no_libc(name):
        raise OSError("no libc.so.6")

    monkeypatch.setattr(ctypes, "CDLL", no_libc)
    lifecycle.release_memory()  # no error: the allocator keeps its own policy


def test_pinned_resolution_and_the_settings(tmp_path):
    (tmp_path / "v1").mkdir()
    (tmp_path / "v1" / "config.json").write_text("{}")
    write_latest(tmp_path, "v2")
    assert artifacts.resolve_model_dir(str(tmp_path), "v1").version == "v1"
    with pytest.raises(artifacts.ModelNotFound, match=r"MODEL_VERSION=v3: .* \(no config.json\)"):
        artifacts.resolve_model_dir(str(tmp_path), "v3")
    os.unlink(tmp_path / "latest")
    os.symlink(tmp_path / "v1", tmp_path / "latest")
    assert artifacts.pointed_version(tmp_path) == "v1"
    s = Settings.from_env({})
    assert (s.model_version, s.model_watch_interval_s) == ("latest", 5.0)
    for bad in ("../v1", "a/b", ".."):
        with pytest.raises(ValueError, match="MODEL_VERSION="):
            Settings.from_env({"MODEL_VERSION": bad})
