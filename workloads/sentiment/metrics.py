"""Prometheus metrics of the sentiment server.

Imports neither torch nor transformers: dashboards, alert rules and their tests
read ``METRIC_NAMES`` from here without loading the model stack.

Names are the ones exposed on ``GET /metrics``. Histograms also expose
``<name>_bucket``, ``<name>_sum`` and ``<name>_count``.

With WORKERS > 1 the server sets PROMETHEUS_MULTIPROC_DIR (under /tmp) before
this module is imported, so every worker's samples are aggregated on each scrape.
"""
from __future__ import annotations

import os
from typing import Tuple

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

disable_created_metrics()  # no *_created series: half the scrape size, nothing a dashboard uses

REQUESTS_TOTAL = "sentiment_requests_total"
REQUEST_DURATION = "sentiment_request_duration_seconds"
BATCH_SIZE = "sentiment_batch_size"
QUEUE_DEPTH = "sentiment_queue_depth"
INFERENCE_DURATION = "sentiment_inference_duration_seconds"
MODEL_INFO = "sentiment_model_info"
MODEL_READY = "sentiment_model_ready"
MODEL_LOAD_SECONDS = "sentiment_model_load_seconds"
PREDICTIONS_TOTAL = "sentiment_predictions_total"
MODEL_SWITCHES_TOTAL = "sentiment_model_switches_total"
REJECTED_TOTAL = "sentiment_rejected_total"

#: Every metric family the server exposes (the names a dashboard or rule may use).
METRIC_NAMES = [
    REQUESTS_TOTAL,        # counter   {endpoint, method, status}
    REQUEST_DURATION,      # histogram {endpoint, status}
    BATCH_SIZE,            # histogram texts per forward pass
    QUEUE_DEPTH,           # gauge     texts waiting for the model
    INFERENCE_DURATION,    # histogram seconds per forward pass (tokenize + model + softmax)
    MODEL_INFO,            # gauge = 1 {version, backend, quantization, model_dir, accuracy}: the version served
    MODEL_READY,           # gauge     1 once loaded and warmed, 0 before and while draining
    MODEL_LOAD_SECONDS,    # gauge     seconds the load + warm-up took (of the version served)
    MODEL_SWITCHES_TOTAL,  # counter   {result} switches to a new `latest`: success, failure (kept the old one)
    PREDICTIONS_TOTAL,     # counter   {label} texts answered per label (drift signal)
    REJECTED_TOTAL,        # counter   {reason} requests shed: queue_full, timeout, not_ready, draining;
    #                                   refused by the connection protocol: header_too_large,
    #                                   header_timeout, body_timeout, bad_framing
]

#: Label values of ``endpoint``: fixed, so unknown paths cannot blow up cardinality.
ENDPOINTS = ("/analyze", "/healthz", "/readyz", "/metrics")
OTHER_ENDPOINT = "other"

_MULTIPROC = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

_LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 256)

requests_total = Counter(REQUESTS_TOTAL, "HTTP requests answered.", ["endpoint", "method", "status"])
request_duration = Histogram(
    REQUEST_DURATION, "HTTP request latency in seconds, body read to response sent.",
    ["endpoint", "status"], buckets=_LATENCY_BUCKETS,
)
batch_size = Histogram(BATCH_SIZE, "Texts per model forward pass.", buckets=_BATCH_BUCKETS)
queue_depth = Gauge(QUEUE_DEPTH, "Texts waiting for the model.", multiprocess_mode="livesum")
inference_duration = Histogram(
    INFERENCE_DURATION, "Seconds per batch: tokenization, forward pass and softmax.", buckets=_LATENCY_BUCKETS,
)
model_info = Gauge(
    MODEL_INFO, "The model version served (value 1; a replaced one drops to 0) and its held-out accuracy.",
    ["version", "backend", "quantization", "model_dir", "accuracy"],
    multiprocess_mode="livemax",
)
model_ready = Gauge(MODEL_READY, "1 when the model is loaded and warmed and not draining.",
                    multiprocess_mode="livemin")
model_load_seconds = Gauge(MODEL_LOAD_SECONDS, "Seconds the model load and warm-up took.",
                           multiprocess_mode="livemax")
predictions_total = Counter(PREDICTIONS_TOTAL, "Texts classified, by predicted label.", ["label"])
model_switches_total = Counter(MODEL_SWITCHES_TOTAL, "Switches to the version `latest` names, by result "
                               "(failure: it did not load; the old one is still served).", ["result"])
rejected_total = Counter(REJECTED_TOTAL, "Requests shed or refused before inference, by reason.", ["reason"])


def endpoint_label(path: str) -> str:
    return path if path in ENDPOINTS else OTHER_ENDPOINT


def render() -> Tuple[bytes, str]:
    """The exposition text and its content type."""
    if _MULTIPROC:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def mark_process_dead(pid: int) -> None:
    """Drop a finished worker's live gauges (multiprocess mode only)."""
    if _MULTIPROC:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
