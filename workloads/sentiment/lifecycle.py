"""The server's lifecycle: model load, readiness, drain on SIGTERM, shutdown.

``AppState`` is what the HTTP handlers (``app.py``) read: the batcher, whether
the model is ready, whether the server is draining. The model loads on a
background thread (``AppState.start_loading``), so /healthz answers at once; a
failed load stops the server (exit 1). With MODEL_VERSION=latest a watcher
(``watcher.py``) then follows `latest`: a new version is loaded and warmed on
the watcher's thread, ``AppState.swap`` points the batch worker at it (the
next batch runs on it; no request fails or waits) and frees the old model. A
version that fails to load is reported (log, ``sentiment_model_switches_total``,
/readyz ``switch_error``) and the old one keeps serving. ``run_server`` serves one app in this
process under uvicorn: the first SIGTERM turns /readyz 503, keeps serving for
SHUTDOWN_DELAY_S, then uvicorn stops accepting and waits for in-flight
requests (GRACEFUL_TIMEOUT_S); the lifespan's end drains the batcher.

The model loader is injected (``model_loader``): production loads the real
model (``model.load_predictor``), tests pass one that returns what they need.
"""
from __future__ import annotations

import dataclasses
import functools
import gc
import logging
import signal
import threading
import time
from contextlib import asynccontextmanager
from typing import Any, Callable, List, Optional, Tuple

from workloads.sentiment.artifacts import LATEST, ModelNotFound
from workloads.sentiment.config import Settings
from workloads.sentiment.payload import text_cost
from workloads.sentiment.predictor import finite_score

log = logging.getLogger("sentiment.server")

#: settings -> (a loaded, warmed predictor, seconds the load took)
ModelLoader = Callable[[Settings], Tuple[Any, float]]


def load_model(settings: Settings) -> Tuple[Any, float]:
    """The production loader. torch and transformers are imported here, on the loader thread, not at import."""
    from workloads.sentiment.model import load_predictor

    return load_predictor(settings)


class AppState:
    """Everything the handlers share. Mutated by the loader thread and the signal handler."""

    def __init__(self, settings: Settings, model_loader: Optional[ModelLoader] = None) -> None:
        self.settings = settings
        self.model_loader: ModelLoader = model_loader or load_model
        self.predictor: Any = None
        self.batcher: Any = None
        self.ready = False
        self.draining = False
        self.load_error: Optional[str] = None
        self.switch_error: Optional[dict] = None  # the last version `latest` named that failed to load
        self.loader: Optional[threading.Thread] = None
        self.watcher: Any = None  # watcher.ModelWatcher with MODEL_VERSION=latest, once loaded
        self._using: Any = None  # the predictor the batch worker is running a batch on (None between batches)
        self.on_fatal: Any = None  # set by the runner: stop the server (model failed to load)

    # ------------------------------------------------------------------ loading
    def start_loading(self) -> None:
        self.loader = threading.Thread(target=self._load, name="sentiment-loader", daemon=True)
        self.loader.start()

    def _load(self) -> None:
        """Loader thread: model + batcher, then ready. A failure stops the server (exit 1)."""
        from workloads.sentiment import metrics

        try:
            predictor, seconds = self.model_loader(self.settings)
            self.predictor = predictor
            self.batcher = self._batcher()
            _publish(predictor, seconds)
            self.ready = True
            if not self.draining:
                metrics.model_ready.set(1)
            log.info("ready: model version %s", predictor.version)
        except BaseException as exc:  # noqa: BLE001
            self.load_error = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, ModelNotFound):  # the operator's to fix (a path, a missing artefact): one line
                log.error("model failed to load; stopping: %s", exc)
            else:
                log.exception("model failed to load; stopping")
            if self.on_fatal is not None:
                self.on_fatal()
            return
        self._watch()

    # ------------------------------------------------------------------ following `latest`
    def _watch(self) -> None:
        """MODEL_VERSION=latest: follow the pointer (a pinned version never changes)."""
        s = self.settings
        if s.model_version != LATEST or s.model_watch_interval_s <= 0 or self.draining:
            return
        from workloads.sentiment.watcher import ModelWatcher

        self.watcher = ModelWatcher(s.model_dir, s.model_watch_interval_s, current=lambda: self.predictor.version,
                                    load=self.load_version, swap=self.swap, failed=self.switch_failed)
        self.watcher.start()

    def load_version(self, version: str) -> Tuple[Any, float]:
        """Load and warm ``version`` with the same loader and settings as at start-up, pinned to it."""
        return self.model_loader(dataclasses.replace(self.settings, model_version=version))

    def swap(self, predictor: Any, seconds: float) -> None:
        """Serve ``predictor`` from the next batch on, then free the old one once no batch uses it."""
        old, self.predictor = self.predictor, predictor  # one reference assignment: atomic for the batch worker
        self.switch_error = None
        _publish(predictor, seconds, replaced=old)
        from workloads.sentiment import metrics

        metrics.model_switches_total.labels("success").inc()
        log.info("switched from model version %s to %s (loaded in %.2fs)", old.version, predictor.version, seconds)
        deadline = time.monotonic() + max(5.0, self.settings.request_timeout_s)
        while self._using is old and time.monotonic() < deadline:  # the batch in flight finishes on it
            time.sleep(0.005)
        del old
        release_memory()

    def switch_failed(self, version: str, exc: BaseException) -> None:
        from workloads.sentiment import metrics

        self.switch_error = {"version": version, "error": f"{type(exc).__name__}: {exc}"}
        metrics.model_switches_total.labels("failure").inc()
        log.error("model version %s failed to load; still serving %s", version, self.predictor.version, exc_info=exc)

    def _batcher(self):
        """The micro-batcher in front of ``self.predictor``, read at each batch (``swap`` replaces it);
        each result comes back with the version that computed it (the X-Model-Version header)."""
        from workloads.sentiment import metrics
        from workloads.sentiment.batcher import MicroBatcher

        def on_batch(n: int, dt: float) -> None:
            metrics.batch_size.observe(n)
            metrics.inference_duration.observe(dt)

        def predict(texts: List[str]) -> List[Tuple[dict, str]]:
            predictor = self._using = self.predictor
            try:
                out = predictor.predict(texts)
            finally:
                self._using = None
            for r in out:  # whatever the backend: a NaN/inf score is a 500, never JSON with NaN in it
                finite_score(r["score"])
            for r in out:
                metrics.predictions_total.labels(r["label"]).inc()
            return [(r, predictor.version) for r in out]

        s = self.settings
        return MicroBatcher(
            predict, max_batch_size=s.max_batch_size, max_wait_s=s.max_batch_wait_ms / 1000.0,
            max_queue=s.max_queue, cost=functools.partial(text_cost, max_seq_len=s.max_seq_len),
            max_queue_cost=s.queue_tokens, max_queue_wait_s=s.queue_wait_s,
            on_batch=on_batch, on_depth=metrics.queue_depth.set, name="sentiment-batcher",
        )

    # ------------------------------------------------------------------ draining
    def begin_drain(self) -> None:
        """/readyz answers 503 from now on and the ready gauge drops to 0."""
        from workloads.sentiment import metrics

        self.draining = True
        metrics.model_ready.set(0)

    def shutdown(self) -> None:
        """After uvicorn stopped accepting and waited for in-flight requests: drain what is queued."""
        self.begin_drain()
        if self.watcher is not None:
            self.watcher.stop()
        if self.batcher is not None:
            self.batcher.close(drain=True, timeout_s=max(1.0, self.settings.graceful_timeout_s))

    @asynccontextmanager
    async def lifespan(self, app):
        """The ASGI lifespan: load in the background on start-up, drain on shutdown."""
        self.start_loading()
        try:
            yield
        finally:
            self.shutdown()


def _publish(predictor: Any, seconds: float, replaced: Any = None) -> None:
    """The metrics of the version served: its info series 1 (the replaced one's 0, then gone), its load time."""
    from workloads.sentiment import metrics

    if replaced is not None:
        old = _info_labels(replaced)
        metrics.model_info.labels(**old).set(0)  # with WORKERS > 1 the 0 stays in the worker's file: not served
        metrics.model_info.remove(*old.values())
    metrics.model_info.labels(**_info_labels(predictor)).set(1)
    metrics.model_load_seconds.set(seconds)


def _info_labels(predictor: Any) -> dict:
    """``sentiment_model_info``'s labels, in the metric's order; accuracy "" when the version recorded none."""
    info = predictor.info()
    acc = getattr(predictor, "accuracy", None)  # a test's stand-in predictor may not have one
    info["accuracy"] = "" if acc is None else f"{acc:g}"
    return {k: info[k] for k in ("version", "backend", "quantization", "model_dir", "accuracy")}


def release_memory() -> None:
    """Collect the replaced model now and hand the freed heap back to the OS: glibc keeps freed pages
    otherwise, and the pod's RSS (what its memory limit counts) would stay at two models."""
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (musl, macOS): the allocator's own policy applies
        pass


# --------------------------------------------------------------------------- running
def http_limits(settings: Settings):
    """The per-connection bounds of ``http_guard`` from the settings."""
    from workloads.sentiment.http_guard import HttpLimits

    return HttpLimits(max_header_bytes=settings.max_header_bytes, max_headers=settings.max_headers,
                      header_timeout_s=settings.header_timeout_s, body_timeout_s=settings.body_timeout_s)


def uvicorn_config(app, settings: Settings):
    """uvicorn on the guarded httptools protocol (``http_guard``), which sheds with the app's ``shed``
    check before a request reaches the app; no WebSocket support: an HTTP-only API."""
    import uvicorn

    from workloads.sentiment.http_guard import protocol_factory

    return uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level=settings.log_level,
        access_log=settings.access_log, lifespan="on", server_header=False,
        http=protocol_factory(http_limits(settings), getattr(app, "shed", None)), ws="none",
        timeout_graceful_shutdown=settings.graceful_timeout_s, timeout_keep_alive=settings.keepalive_timeout_s,
    )


def _drain_on_signal(server, state: AppState, settings: Settings, sig) -> None:
    """uvicorn's exit handler, replaced: the first signal drains (readyz=503) and closes the listener later."""
    if state.draining:
        if sig == signal.SIGINT:  # a second Ctrl+C: stop now
            server.force_exit = True
        server.should_exit = True
        return
    state.begin_drain()
    delay = settings.shutdown_delay_s
    log.info("signal %s: draining (readyz=503), closing the listener in %.1fs", sig, delay)
    if delay > 0:
        t = threading.Timer(delay, lambda: setattr(server, "should_exit", True))
        t.daemon = True
        t.start()
    else:
        server.should_exit = True
    # Not appended to _captured_signals: uvicorn would re-raise it and die by the signal, not exit 0.


def run_server(app, settings: Settings, sockets=None) -> int:
    """Serve ``app`` (from ``app.create_app``) in this process until SIGTERM/SIGINT; returns the exit code."""
    import uvicorn

    state: AppState = app.state  # type: ignore[attr-defined]

    class DrainingServer(uvicorn.Server):
        def handle_exit(self, sig, frame):  # signal handler (main thread)
            _drain_on_signal(self, state, settings, sig)

    server = DrainingServer(uvicorn_config(app, settings))

    def fatal() -> None:
        server.should_exit = True

    state.on_fatal = fatal

    def late_signal(sig, frame):  # before uvicorn takes the signals over, and after it gives them back
        if not server.started and not state.draining:
            server.handle_exit(sig, frame)
        else:
            log.info("signal %s: already shutting down", sig)

    main_thread = threading.current_thread() is threading.main_thread()
    if main_thread:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, late_signal)  # a repeated SIGTERM while exiting must not kill the process
    server.run(sockets=sockets)
    if main_thread:
        ignore_exit_signals()
    return 1 if state.load_error is not None else 0


def ignore_exit_signals() -> None:
    """Exiting now. SIG_IGN (unlike a Python handler) survives interpreter finalization, so a
    repeated SIGTERM cannot turn a clean exit 0 into death by signal."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
