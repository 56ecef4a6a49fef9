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
MAX_TEXTS texts), 415 content type not JSON, 404 unknown path, 405 wrong method.
Load shedding: 503 + Retry-After when the queue is full or the model is not
loaded; 504 when REQUEST_TIMEOUT_S passes first.

The model loads on a background thread, so /healthz answers at once. Requests
are micro-batched (``batcher.py``) and run on one dedicated thread, off the
event loop. SIGTERM: /readyz turns 503, the server keeps serving for
SHUTDOWN_DELAY_S, stops accepting, lets in-flight requests finish (up to
GRACEFUL_TIMEOUT_S), drains the batcher and exits 0.

This module imports no pulumi and nothing from ``infra``; torch and
transformers are imported only by the loader thread (``model.py``).
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

import asyncio  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from typing import Any, List, Optional  # noqa: E402

from workloads.sentiment.config import Settings, env_help  # noqa: E402

log = logging.getLogger("sentiment.server")

JSON_TYPES = ("application/json",)


class AppState:
    """Everything the handlers share. Mutated by the loader thread and the signal handler."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.predictor: Any = None
        self.batcher: Any = None
        self.ready = False
        self.draining = False
        self.load_error: Optional[str] = None
        self.loader: Optional[threading.Thread] = None
        self.on_fatal: Any = None  # set by the runner: stop the server (model failed to load)


# --------------------------------------------------------------------------- responses
def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _json_response(status: int, obj: Any, headers: Optional[dict] = None):
    from starlette.responses import Response

    return Response(_dumps(obj), status_code=status, media_type="application/json", headers=headers)


def error(status: int, message: str, detail: Any = None, headers: Optional[dict] = None):
    return _json_response(status, {"error": message, "detail": detail}, headers)


def _retry_after(seconds: float) -> dict:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


class BadRequest(Exception):
    def __init__(self, status: int, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail


# --------------------------------------------------------------------------- request parsing
async def read_body_limited(request, limit: int) -> bytes:
    """The body, refusing (413) as soon as it is known to exceed ``limit`` bytes:
    from Content-Length before reading, else while the stream arrives."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            n = int(declared)
        except ValueError:
            raise BadRequest(400, "invalid Content-Length", declared) from None
        if n > limit:
            raise BadRequest(413, "request body too large", {"max_body_bytes": limit, "content_length": n})
    chunks: List[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(413, "request body too large", {"max_body_bytes": limit})
        chunks.append(chunk)
    return b"".join(chunks)


def _check_text(value: Any, where: str, max_chars: int) -> str:
    if not isinstance(value, str):
        raise BadRequest(400, f"{where} must be a string", {"got": type(value).__name__})
    if not value.strip():
        raise BadRequest(400, f"{where} is empty", None)
    if len(value) > max_chars:
        raise BadRequest(413, f"{where} is too long", {"max_text_chars": max_chars, "chars": len(value)})
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from JSON escapes would break the tokenizer
        raise BadRequest(400, f"{where} is not valid Unicode", "unpaired surrogate") from None
    return value


def parse_payload(body: bytes, settings: Settings):
    """Body bytes -> (texts, single?) or BadRequest."""
    try:
        text_body = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(400, "body is not UTF-8", str(exc)) from None
    try:
        payload = json.loads(text_body)
    except (ValueError, RecursionError) as exc:
        raise BadRequest(400, "body is not valid JSON", str(exc)[:200]) from None
    if not isinstance(payload, dict):
        raise BadRequest(400, "body must be a JSON object with `text` or `texts`", {"got": type(payload).__name__})
    has_text, has_texts = "text" in payload, "texts" in payload
    if has_text and has_texts:
        raise BadRequest(400, "give either `text` or `texts`, not both")
    if not (has_text or has_texts):
        raise BadRequest(400, "missing `text` (a string) or `texts` (a list of strings)")
    if has_text:
        return [_check_text(payload["text"], "`text`", settings.max_text_chars)], True
    texts = payload["texts"]
    if not isinstance(texts, list):
        raise BadRequest(400, "`texts` must be a list of strings", {"got": type(texts).__name__})
    if not texts:
        raise BadRequest(400, "`texts` is empty")
    if len(texts) > settings.max_texts:
        raise BadRequest(413, "too many texts", {"max_texts": settings.max_texts, "texts": len(texts)})
    return [_check_text(t, f"`texts[{i}]`", settings.max_text_chars) for i, t in enumerate(texts)], False


def _is_json(content_type: Optional[str]) -> bool:
    if not content_type:
        return False
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime in JSON_TYPES or (mime.startswith("application/") and mime.endswith("+json"))


# --------------------------------------------------------------------------- model lifecycle
def _load(state: AppState) -> None:
    """Loader thread: model + batcher, then ready. A failure stops the server (exit 1)."""
    from workloads.sentiment import metrics

    s = state.settings
    try:
        from workloads.sentiment.batcher import MicroBatcher
        from workloads.sentiment.model import load_predictor

        if s.test_load_gate:
            import transformers  # noqa: F401  imports first, so only the load itself waits on the gate

            while not os.path.exists(s.test_load_gate) and not state.draining:
                time.sleep(0.05)

        predictor, seconds = load_predictor(s)

        def on_batch(n: int, dt: float) -> None:
            metrics.batch_size.observe(n)
            metrics.inference_duration.observe(dt)

        def predict(texts: List[str]) -> List[dict]:
            out = predictor.predict(texts)
            for r in out:
                metrics.predictions_total.labels(r["label"]).inc()
            return out

        state.batcher = MicroBatcher(
            predict, max_batch_size=s.max_batch_size, max_wait_s=s.max_batch_wait_ms / 1000.0,
            max_queue=s.max_queue, on_batch=on_batch, on_depth=metrics.queue_depth.set, name="sentiment-batcher",
        )
        state.predictor = predictor
        metrics.model_info.labels(**predictor.info()).set(1)
        metrics.model_load_seconds.set(seconds)
        state.ready = True
        if not state.draining:
            metrics.model_ready.set(1)
        log.info("ready: model version %s", predictor.version)
    except BaseException as exc:  # noqa: BLE001
        state.load_error = f"{type(exc).__name__}: {exc}"
        log.exception("model failed to load; stopping")
        if state.on_fatal is not None:
            state.on_fatal()


def create_app(settings: Optional[Settings] = None):
    """The ASGI application (Starlette inside a small metrics/ASGI wrapper)."""
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import ClientDisconnect
    from starlette.responses import Response
    from starlette.routing import Route

    from workloads.sentiment import metrics
    from workloads.sentiment.batcher import BatcherClosed, QueueFull

    settings = settings or Settings.from_env()
    state = AppState(settings)

    async def healthz(request):
        return _json_response(200, {"status": "ok"})

    async def readyz(request):
        if state.draining:
            return _json_response(503, {"status": "draining"}, _retry_after(5))
        if not state.ready:
            return _json_response(503, {"status": "loading", "error": state.load_error}, _retry_after(2))
        return _json_response(200, {"status": "ready", "version": state.predictor.version,
                                    "backend": state.predictor.backend})

    async def metrics_endpoint(request):
        body, ctype = metrics.render()
        return Response(body, media_type=ctype.split(";")[0], headers={"Content-Type": ctype})

    async def analyze(request):
        try:
            if not _is_json(request.headers.get("content-type")):
                raise BadRequest(415, "Content-Type must be application/json",
                                 {"got": request.headers.get("content-type")})
            body = await read_body_limited(request, settings.max_body_bytes)
            texts, single = parse_payload(body, settings)
        except BadRequest as exc:
            return error(exc.status, exc.message, exc.detail)
        except ClientDisconnect:
            return error(400, "client disconnected before sending the whole body")
        batcher = state.batcher
        if not state.ready or batcher is None:
            metrics.rejected_total.labels("not_ready").inc()
            return error(503, "model not loaded yet", {"error": state.load_error}, _retry_after(2))
        hold = 0.0
        if settings.test_hooks:
            try:
                hold = float(request.headers.get("x-test-sleep-s", "0"))
            except ValueError:
                hold = 0.0
        try:
            results = await batcher.submit_async(texts, timeout_s=settings.request_timeout_s, hold_s=hold)
        except QueueFull as exc:
            metrics.rejected_total.labels("queue_full").inc()
            return error(503, "server busy: queue full", {"queued_texts": exc.depth},
                         _retry_after(exc.retry_after_s))
        except BatcherClosed:
            metrics.rejected_total.labels("draining").inc()
            return error(503, "server shutting down", None, _retry_after(1))
        except asyncio.TimeoutError:
            metrics.rejected_total.labels("timeout").inc()
            return error(504, "request deadline exceeded", {"request_timeout_s": settings.request_timeout_s})
        return Response(_dumps(results), media_type="application/json")

    async def http_error(request, exc: HTTPException):
        return error(exc.status_code, str(exc.detail), {"path": request.url.path, "method": request.method},
                     headers=dict(exc.headers or {}))

    async def server_error(request, exc: Exception):
        log.exception("unhandled error on %s", request.url.path)
        return error(500, "internal error", type(exc).__name__)

    @asynccontextmanager
    async def lifespan(app):
        state.loader = threading.Thread(target=_load, args=(state,), name="sentiment-loader", daemon=True)
        state.loader.start()
        try:
            yield
        finally:
            # uvicorn has stopped accepting and waited for in-flight requests; drain what is queued.
            state.draining = True
            metrics.model_ready.set(0)
            if state.batcher is not None:
                state.batcher.close(drain=True, timeout_s=max(1.0, settings.graceful_timeout_s))

    starlette_app = Starlette(
        routes=[
            Route("/analyze", analyze, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error, Exception: server_error},
        lifespan=lifespan,
    )

    async def app(scope, receive, send):
        """Records request count and latency by endpoint and status, for every response."""
        if scope["type"] != "http":
            return await starlette_app(scope, receive, send)
        t0 = time.perf_counter()
        status = [500]

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await starlette_app(scope, receive, send_wrapper)
        finally:
            endpoint = metrics.endpoint_label(scope.get("path", ""))
            code = str(status[0])
            metrics.requests_total.labels(endpoint, scope.get("method", ""), code).inc()
            metrics.request_duration.labels(endpoint, code).observe(time.perf_counter() - t0)

    app.state = state  # type: ignore[attr-defined]
    return app


# --------------------------------------------------------------------------- running
def _uvicorn_config(app, settings: Settings):
    import uvicorn

    return uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level=settings.log_level,
        access_log=settings.access_log, lifespan="on", server_header=False,
        timeout_graceful_shutdown=settings.graceful_timeout_s, timeout_keep_alive=15,
    )


def run_server(settings: Settings, sockets=None) -> int:
    """Serve in this process until SIGTERM/SIGINT; returns the exit code."""
    import uvicorn

    from workloads.sentiment import metrics

    app = create_app(settings)
    state: AppState = app.state  # type: ignore[attr-defined]

    class DrainingServer(uvicorn.Server):
        def handle_exit(self, sig, frame):  # signal handler (main thread)
            if state.draining:
                if sig == signal.SIGINT:  # a second Ctrl+C: stop now
                    self.force_exit = True
                self.should_exit = True
                return
            state.draining = True
            metrics.model_ready.set(0)
            delay = settings.shutdown_delay_s
            log.info("signal %s: draining (readyz=503), closing the listener in %.1fs", sig, delay)
            if delay > 0:
                t = threading.Timer(delay, lambda: setattr(self, "should_exit", True))
                t.daemon = True
                t.start()
            else:
                self.should_exit = True
            # Not appended to _captured_signals: uvicorn would re-raise it and die by the signal, not exit 0.

    server = DrainingServer(_uvicorn_config(app, settings))

    def fatal() -> None:
        server.should_exit = True

    state.on_fatal = fatal

    def late_signal(sig, frame):  # before uvicorn takes the signals over, and after it gives them back
        if not server.started and not state.draining:
            server.handle_exit(sig, frame)
        else:
            log.info("signal %s: already shutting down", sig)

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, late_signal)  # a repeated SIGTERM while exiting must not kill the process
    server.run(sockets=sockets)
    if threading.current_thread() is threading.main_thread():
        # Exiting now. SIG_IGN (unlike a Python handler) survives interpreter finalization, so a
        # repeated SIGTERM cannot turn a clean exit 0 into death by signal.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)
    return 1 if state.load_error is not None else 0


def _worker_main(sock) -> None:  # pragma: no cover - runs in spawned children
    settings = Settings.from_env()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.exit(run_server(settings, sockets=[sock]))


def run_workers(settings: Settings) -> int:
    """WORKERS > 1: a parent that owns the socket, spawns the workers and forwards SIGTERM/SIGINT."""
    import multiprocessing

    from uvicorn import Config

    sock = Config(app=None, host=settings.host, port=settings.port).bind_socket()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker_main, args=(sock,), name=f"sentiment-worker-{i}")
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
        while True:
            alive = [p for p in procs if p.is_alive()]
            if not alive:
                break
            for p in procs:
                if not p.is_alive() and p.exitcode not in (0, None) and not stopping.is_set():
                    log.error("worker %s exited with %s; stopping the others", p.pid, p.exitcode)
                    code = 1
                    forward(signal.SIGTERM, None)
            time.sleep(0.2)
    finally:
        for p in procs:
            p.join()
            if p.pid:
                from workloads.sentiment import metrics

                metrics.mark_process_dead(p.pid)
            if p.exitcode not in (0, None):
                code = code or 1
        sock.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)  # exiting: see run_server
    return code


def main(argv: Optional[List[str]] = None) -> int:
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
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if settings.workers > 1:
        created = None
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            import tempfile

            created = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="sentiment-prom-")
        try:
            return run_workers(settings)
        finally:
            if created:
                import shutil

                shutil.rmtree(created, ignore_errors=True)
    return run_server(settings)


if __name__ == "__main__":
    sys.exit(main())
