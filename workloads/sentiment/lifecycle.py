"""The server's lifecycle: model load, readiness, drain on SIGTERM, shutdown.

``AppState`` is what the HTTP handlers (``app.py``) read: the batcher, whether
the model is ready, whether the server is draining. The model loads on a
background thread (``AppState.start_loading``), so /healthz answers at once; a
failed load stops the server (exit 1). ``run_server`` serves one app in this
process under uvicorn: the first SIGTERM turns /readyz 503, keeps serving for
SHUTDOWN_DELAY_S, then uvicorn stops accepting and waits for in-flight
requests (GRACEFUL_TIMEOUT_S); the lifespan's end drains the batcher.

The model loader is injected (``model_loader``): production loads the real
model (``model.load_predictor``), tests pass one that returns what they need.
"""
from __future__ import annotations

import functools
import logging
import signal
import threading
from contextlib import asynccontextmanager
from typing import Any, Callable, List, Optional, Tuple

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
        self.loader: Optional[threading.Thread] = None
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
            self.batcher = self._batcher(predictor)
            self.predictor = predictor
            metrics.model_info.labels(**predictor.info()).set(1)
            metrics.model_load_seconds.set(seconds)
            self.ready = True
            if not self.draining:
                metrics.model_ready.set(1)
            log.info("ready: model version %s", predictor.version)
        except BaseException as exc:  # noqa: BLE001
            self.load_error = f"{type(exc).__name__}: {exc}"
            log.exception("model failed to load; stopping")
            if self.on_fatal is not None:
                self.on_fatal()

    def _batcher(self, predictor):
        """The micro-batcher in front of ``predictor``, reporting to the metrics."""
        from workloads.sentiment import metrics
        from workloads.sentiment.batcher import MicroBatcher

        def on_batch(n: int, dt: float) -> None:
            metrics.batch_size.observe(n)
            metrics.inference_duration.observe(dt)

        def predict(texts: List[str]) -> List[dict]:
            out = predictor.predict(texts)
            for r in out:  # whatever the backend: a NaN/inf score is a 500, never JSON with NaN in it
                finite_score(r["score"])
            for r in out:
                metrics.predictions_total.labels(r["label"]).inc()
            return out

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
