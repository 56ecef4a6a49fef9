"""Sentiment analysis HTTP server (ASGI: Starlette on uvicorn).

    MODEL_DIR=/models PORT=8080 python -m workloads.sentiment.server
    python -m workloads.sentiment.server --help-env      # every setting

Endpoints
- ``POST /analyze``  ``{"text": "..."}`` -> ``[{"label": "POSITIVE"|"NEGATIVE", "score": float}]``
  (the shape of the HF ``pipeline("sentiment-analysis")`` the seed served, so the
  seed's curl works unchanged); ``{"texts": [...]}`` -> one entry per text, in order.
- ``GET /healthz``   liveness: 200 while the process serves.
- ``GET /readyz``    200 once the model is loaded and warmed; 503 before that and while draining.
- ``GET /metrics``   Prometheus text (names in ``workloads.sentiment.metrics.METRIC_NAMES``).

Errors are JSON ``{"error": "...", "detail": ...}`` with a 4xx status:
400 malformed (not UTF-8, not JSON, not an object, missing/both/wrong-typed
``text``/``texts``, empty or whitespace-only text, invalid Unicode),
413 too large (body over MAX_BODY_BYTES, checked from Content-Length and while
streaming; a text over MAX_TEXT_CHARS: rejected, not truncated; more than
MAX_TEXTS texts), 415 content type not JSON, 404 unknown path (``/analyze/``
too: no redirect, none built from the Host header), 405 wrong method.
Connection limits (``http_guard.py``, answered before the app, then the
connection is closed): 431 request head over MAX_HEADER_BYTES or MAX_HEADERS,
408 head or body slower than HEADER_TIMEOUT_S / BODY_TIMEOUT_S, 400 for what
the HTTP parser refuses (malformed request line, bad Content-Length, invalid
chunked encoding).
Load shedding: 503 + Retry-After when the queue has no room (MAX_QUEUE texts,
MAX_QUEUE_TOKENS estimated tokens, MAX_QUEUE_WAIT_S estimated seconds), decided
from the headers and Content-Length before the body is read (then with
``Connection: close``); beyond SHED_PROMPT_PER_S a second, each 503 is held for
its Retry-After first (``shedding.py``). 503 also while the model is not
loaded; 504 when REQUEST_TIMEOUT_S passes first.

The model loads on a background thread, so /healthz answers at once. Requests
are micro-batched (``batcher.py``) and run on one dedicated thread, off the
event loop. SIGTERM: /readyz turns 503, the server keeps serving for
SHUTDOWN_DELAY_S, stops accepting, lets in-flight requests finish (up to
GRACEFUL_TIMEOUT_S), drains the batcher and exits 0.

Modules: this entrypoint (settings, workers); ``app.py`` (routes, responses);
``payload.py`` (request parsing); ``http_guard.py`` (the connection protocol:
head and body limits); ``shedding.py`` (the 503 answers); ``lifecycle.py``
(model load, readiness, drain, shutdown); ``batcher.py`` (the batch worker); ``model.py`` and
``neuron_backend.py`` (the backends). None imports pulumi or anything from
``infra``; torch and transformers are imported only by the loader thread.
"""
from __future__ import annotations

import os
import sys

# Offline and read-only-root friendly before anything can import huggingface_hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HOME", os.path.join(os.environ.get("TMPDIR", "/tmp"), "hf"))

import logging  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from typing import Callable, List, Optional  # noqa: E402

from workloads.sentiment.app import create_app  # noqa: E402
from workloads.sentiment.config import Settings, env_help  # noqa: E402
from workloads.sentiment.lifecycle import ignore_exit_signals, run_server  # noqa: E402

log = logging.getLogger("sentiment.server")

#: settings -> the ASGI app to serve (``app.create_app``; a test launcher passes one with its seams set).
AppFactory = Callable[[Settings], object]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def serve(settings: Settings, app_factory: AppFactory = create_app, sockets=None) -> int:
    """One server process: the app ``app_factory`` builds, under uvicorn, until SIGTERM; the exit code."""
    return run_server(app_factory(settings), settings, sockets=sockets)


def _worker_main(sock, app_factory: AppFactory) -> None:
    settings = Settings.from_env()
    logging.basicConfig(level=settings.log_level.upper(), format=LOG_FORMAT)
    sys.exit(serve(settings, app_factory, sockets=[sock]))


def _supervise(procs: list, stopping: threading.Event, forward) -> int:
    """Wait for every worker; the first one that fails (not while stopping) stops the others. 1 if any failed."""
    code = 0
    while any(p.is_alive() for p in procs):
        for p in procs:
            if not p.is_alive() and p.exitcode not in (0, None) and not stopping.is_set():
                log.error("worker %s exited with %s; stopping the others", p.pid, p.exitcode)
                code = 1
                forward(signal.SIGTERM, None)
        time.sleep(0.2)
    return code


def run_workers(settings: Settings, app_factory: AppFactory = create_app) -> int:
    """WORKERS > 1: a parent that owns the socket, spawns the workers and forwards SIGTERM/SIGINT."""
    import multiprocessing

    from uvicorn import Config

    sock = Config(app=None, host=settings.host, port=settings.port).bind_socket()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker_main, args=(sock, app_factory), name=f"sentiment-worker-{i}")
             for i in range(settings.workers)]
    stopping = threading.Event()

    def forward(sig, frame):
        stopping.set()
        for p in procs:
            if p.is_alive() and p.pid:
                os.kill(p.pid, signal.SIGTERM)  # SIGTERM even for Ctrl+C: the tty already sent them SIGINT

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for p in procs:
        p.start()
    code = 0
    try:
        code = _supervise(procs, stopping, forward)
    finally:
        for p in procs:
            p.join()
            if p.pid:
                from workloads.sentiment import metrics

                metrics.mark_process_dead(p.pid)
            if p.exitcode not in (0, None):
                code = code or 1
        sock.close()
        ignore_exit_signals()  # exiting: see lifecycle.run_server
    return code


def _run_workers_with_metrics_dir(settings: Settings, app_factory: AppFactory) -> int:
    """run_workers with PROMETHEUS_MULTIPROC_DIR set (a temporary one unless given), so scrapes add up workers."""
    created = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        import tempfile

        created = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="sentiment-prom-")
    try:
        return run_workers(settings, app_factory)
    finally:
        if created:
            import shutil

            shutil.rmtree(created, ignore_errors=True)


def main(argv: Optional[List[str]] = None, app_factory: AppFactory = create_app) -> int:
    """The entrypoint: ``--help-env``, settings (exit 2 when invalid), then one server or WORKERS of them."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("--help-env", "-h", "--help"):
        print(__doc__.strip().splitlines()[0])
        print("\nEnvironment variables:\n")
        print(env_help())
        return 0
    try:
        settings = Settings.from_env()
    except ValueError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), format=LOG_FORMAT)
    if settings.workers > 1:
        return _run_workers_with_metrics_dir(settings, app_factory)
    return serve(settings, app_factory)


if __name__ == "__main__":
    sys.exit(main())
