"""Prometheus metrics of the trainer.

This module must not import torch: the monitoring tests and dashboards check
metric names against METRIC_NAMES without the training stack installed.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

# Port the trainer's rank 0 serves /metrics on (the PyTorchJob's container port
# and the PodMonitor/ServiceMonitor use the same number). 0 disables the server.
DEFAULT_METRICS_PORT = 9464

# Exactly the names that appear in the /metrics exposition (counters with their
# `_total` suffix), in a stable order.
METRIC_NAMES: tuple[str, ...] = (
    "trainer_loss",
    "trainer_samples_per_second",
    "trainer_eval_accuracy",
    "trainer_epoch",
    "trainer_global_step",
    "trainer_samples_total",
    "trainer_checkpoints_total",
)

log = logging.getLogger("trainer")


class _Noop:
    """Stands in for a metric when metrics are off (ranks > 0, port 0)."""

    def set(self, *_: Any) -> None:
        pass

    def inc(self, *_: Any) -> None:
        pass


@dataclass
class TrainerMetrics:
    loss: Any
    samples_per_second: Any
    eval_accuracy: Any
    epoch: Any
    global_step: Any
    samples: Any
    checkpoints: Any
    port: int | None = None  # the port actually served, None when off


def noop_metrics() -> TrainerMetrics:
    n = _Noop()
    return TrainerMetrics(n, n, n, n, n, n, n, None)


def start_metrics(port: int, addr: str = "0.0.0.0") -> TrainerMetrics:
    """Create the metrics and serve them on `port` (0 or an unusable port: no-op metrics)."""
    if not port:
        return noop_metrics()
    try:
        from prometheus_client import Counter, Gauge, start_http_server
    except ImportError:
        log.warning("prometheus_client is not installed; metrics disabled")
        return noop_metrics()
    try:
        start_http_server(port, addr=addr)
    except OSError as exc:
        log.warning("metrics server could not listen on %s:%s (%s); metrics disabled", addr, port, exc)
        return noop_metrics()
    m = TrainerMetrics(
        loss=Gauge("trainer_loss", "Training loss of the last logged step window (rank 0)."),
        samples_per_second=Gauge("trainer_samples_per_second",
                                 "Training throughput over the last logged window, all ranks together."),
        eval_accuracy=Gauge("trainer_eval_accuracy", "Held-out accuracy after the last completed epoch."),
        epoch=Gauge("trainer_epoch", "Epoch in progress, counted from 1."),
        global_step=Gauge("trainer_global_step", "Optimizer steps completed, including resumed ones."),
        samples=Counter("trainer_samples", "Training samples processed by this process group since start."),
        checkpoints=Counter("trainer_checkpoints", "Checkpoints written since start."),
        port=port,
    )
    log.info("metrics served on %s:%d/metrics", addr, port)
    return m
