"""The HTTP side of the sentiment server: routes, request handling, JSON responses, request metrics.

``create_app(settings, model_loader=...)`` returns the ASGI application (Starlette
inside a small ASGI wrapper that counts every response). The endpoints and the
error contract are in the module docstring of ``server.py``. What the app
serves with comes from its lifecycle (``lifecycle.AppState``): the model is
loaded by the injected ``model_loader`` (production: ``lifecycle.load_model``),
which is the seam tests use to serve a fake or slowed-down predictor.
Every answer carries ``X-Model-Version``: on ``/analyze`` the version that
computed it (during a switch, the old or the new one), elsewhere the one served.

Starlette and the metrics are imported when the app is created, not at import:
with WORKERS > 1 the metrics module must see PROMETHEUS_MULTIPROC_DIR first.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, Optional

from workloads.sentiment.config import Settings
from workloads.sentiment.lifecycle import AppState, ModelLoader
from workloads.sentiment.payload import BadRequest, body_cost_estimate, read_texts
from workloads.sentiment.shedding import ShedAnswer, Shedder
from workloads.sentiment.shedding import retry_after as _retry_after

log = logging.getLogger("sentiment.server")


# --------------------------------------------------------------------------- responses
def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def json_response(status: int, obj: Any, headers: Optional[dict] = None):
    from starlette.responses import Response

    return Response(_dumps(obj), status_code=status, media_type="application/json", headers=headers)


def error(status: int, message: str, detail: Any = None, headers: Optional[dict] = None):
    """The one error shape of every non-2xx answer: ``{"error": message, "detail": detail}``."""
    return json_response(status, {"error": message, "detail": detail}, headers)


#: On an answer given before the request's body was read: the rest of the body is not waited for.
CLOSE = {"Connection": "close"}
VERSION_HEADER = "X-Model-Version"
_VERSION_KEY = VERSION_HEADER.lower().encode()


def _with_version(start: dict, predictor: Any) -> dict:
    """The ``http.response.start`` message with X-Model-Version added (none before a model is loaded)."""
    headers = list(start.get("headers") or [])
    if predictor is None or any(k.lower() == _VERSION_KEY for k, _ in headers):
        return start
    return {**start, "headers": [*headers, (_VERSION_KEY, str(predictor.version).encode("latin-1", "replace"))]}


async def _shed(answer: ShedAnswer):
    """The 503 of ``answer``, after its hold (see ``shedding``)."""
    if answer.hold_s > 0:
        await asyncio.sleep(answer.hold_s)
    return error(answer.status, answer.message, answer.detail, answer.headers)


# --------------------------------------------------------------------------- handlers
class _Handlers:
    """The route handlers, over the shared ``AppState``."""

    def __init__(self, state: AppState) -> None:
        from workloads.sentiment import metrics

        self.state = state
        self.settings = state.settings
        self.metrics = metrics
        self.shedder = Shedder(self.settings.shed_prompt_per_s)

    async def healthz(self, request):
        return json_response(200, {"status": "ok"})

    async def readyz(self, request):
        state = self.state
        if state.draining:
            return json_response(503, {"status": "draining"}, _retry_after(5))
        if not state.ready:
            return json_response(503, {"status": "loading", "error": state.load_error}, _retry_after(2))
        predictor = state.predictor
        body = {"status": "ready", "version": predictor.version, "backend": predictor.backend,
                "engine": predictor.quantization, "threads": getattr(predictor, "threads", 0)}
        if state.switch_error is not None:  # still ready: the old version serves; say what failed to load
            body["switch_error"] = state.switch_error
        return json_response(200, body)

    async def metrics_endpoint(self, request):
        from starlette.responses import Response

        body, ctype = self.metrics.render()
        return Response(body, media_type=ctype.split(";")[0], headers={"Content-Type": ctype})

    async def analyze(self, request):
        from starlette.requests import ClientDisconnect

        try:
            shed = self.shed_check(request.headers.get("content-length"))
            if shed is not None:
                self.metrics.rejected_total.labels("queue_full").inc()
                return await _shed(shed)
            texts, _single = await read_texts(request, self.settings)
        except BadRequest as exc:
            return error(exc.status, exc.message, exc.detail, CLOSE if exc.body_unread else None)
        except ClientDisconnect:
            return error(400, "client disconnected before sending the whole body")
        batcher = self.state.batcher
        if not self.state.ready or batcher is None:
            self.metrics.rejected_total.labels("not_ready").inc()
            return error(503, "model not loaded yet", {"error": self.state.load_error}, _retry_after(2))
        return await self._predict(batcher, texts)

    def shed_check(self, content_length) -> Optional[ShedAnswer]:
        """The 503 (+ ``Connection: close``) for a ``POST /analyze`` of this Content-Length (bytes or str,
        None when chunked) when the queue has no room for it, else None: decided from the head alone,
        so a shed request costs no body read and no JSON parse. Asked by the connection protocol
        (``http_guard``) before the request reaches the app, and by ``analyze`` itself."""
        batcher = self.state.batcher
        if batcher is None or not self.state.ready:
            return None
        try:
            n = int(content_length) if content_length is not None else None
        except ValueError:
            return None  # a 400, from the parser or from read_texts
        if batcher.admits(1, body_cost_estimate(n, self.settings)):
            return None
        return self.shedder.queue_full(batcher.depth, batcher.queued_cost, batcher.retry_after_s(), close=True)

    async def _predict(self, batcher, texts):
        """The batcher's answer as JSON, or the shedding answer: 503 queue full / draining, 504 deadline."""
        from starlette.responses import Response

        from workloads.sentiment.batcher import BatcherClosed, QueueFull

        rejected = self.metrics.rejected_total
        timeout_s = self.settings.request_timeout_s
        try:
            answered = await batcher.submit_async(texts, timeout_s=timeout_s)
        except QueueFull as exc:
            rejected.labels("queue_full").inc()
            return await _shed(self.shedder.queue_full(exc.depth, exc.cost, exc.retry_after_s, close=False))
        except BatcherClosed:
            rejected.labels("draining").inc()
            return error(503, "server shutting down", None, _retry_after(1))
        except asyncio.TimeoutError:
            rejected.labels("timeout").inc()
            return error(504, "request deadline exceeded", {"request_timeout_s": timeout_s})
        versions = dict.fromkeys(v for _, v in answered)  # two only if a swap fell between a request's batches
        return Response(_dumps([r for r, _ in answered]), media_type="application/json",
                        headers={VERSION_HEADER: ", ".join(versions)})

    async def http_error(self, request, exc):
        return error(exc.status_code, str(exc.detail), {"path": request.url.path, "method": request.method},
                     headers=dict(exc.headers or {}))

    async def server_error(self, request, exc: Exception):
        log.exception("unhandled error on %s", request.url.path)
        return error(500, "internal error", type(exc).__name__)


def _with_request_metrics(inner, metrics, state: AppState):
    """An ASGI wrapper recording request count and latency by endpoint and status, for every response,
    and adding the X-Model-Version of the version served to those that do not name one already."""

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return await inner(scope, receive, send)
        t0 = time.perf_counter()
        status = [500]

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message = _with_version(message, state.predictor)
            await send(message)

        try:
            await inner(scope, receive, send_wrapper)
        finally:
            endpoint = metrics.endpoint_label(scope.get("path", ""))
            code = str(status[0])
            metrics.requests_total.labels(endpoint, scope.get("method", ""), code).inc()
            metrics.request_duration.labels(endpoint, code).observe(time.perf_counter() - t0)

    return app


def create_app(settings: Optional[Settings] = None, *, model_loader: Optional[ModelLoader] = None):
    """The ASGI application; ``app.state`` is its ``AppState``.

    ``model_loader(settings) -> (predictor, load_seconds)`` loads the model on the
    loader thread (default: the real model, ``lifecycle.load_model``).
    """
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.routing import Route

    state = AppState(settings or Settings.from_env(), model_loader)
    h = _Handlers(state)
    starlette_app = Starlette(
        routes=[
            Route("/analyze", h.analyze, methods=["POST"]),
            Route("/healthz", h.healthz, methods=["GET"]),
            Route("/readyz", h.readyz, methods=["GET"]),
            Route("/metrics", h.metrics_endpoint, methods=["GET"]),
        ],
        exception_handlers={HTTPException: h.http_error, Exception: h.server_error},
        lifespan=state.lifespan,
    )
    # No redirect built from the Host header: /analyze/ is a 404 like any unknown path, not a 307.
    starlette_app.router.redirect_slashes = False
    app = _with_request_metrics(starlette_app, h.metrics, state)
    app.state = state  # type: ignore[attr-defined]
    app.shed = h.shed_check  # type: ignore[attr-defined]  # for the connection protocol (lifecycle.uvicorn_config)
    return app
