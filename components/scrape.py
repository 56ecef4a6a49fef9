"""The prometheus-operator scrape objects (ServiceMonitor, PodMonitor) as plain documents.

Pure (no Pulumi): the monitoring component builds the platform's own scrapes with these (Ceph, the
training operator), and the workload components build theirs (``workloads/*/manifests.py``), so
every scrape object has the same shape: it lives in the ``monitoring`` namespace, next to
Prometheus, and selects its targets in another namespace.
"""
from __future__ import annotations

from typing import Any

from infra.conventions import std_labels

#: Where kube-prometheus-stack runs and where every scrape object lives (components/monitoring.py).
MONITORING_NAMESPACE = "monitoring"
API_VERSION = "monitoring.coreos.com/v1"


def _monitor(name: str, namespace: str, labels: dict[str, str], endpoints: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": MONITORING_NAMESPACE, "labels": std_labels(name)},
            "spec": {"namespaceSelector": {"matchNames": [namespace]}, "selector": {"matchLabels": dict(labels)},
                     **endpoints}}


def service_monitor(name: str, *, namespace: str, labels: dict[str, str], port: str, interval: str = "30s",
                    honor_labels: bool = False) -> dict[str, Any]:
    """A ServiceMonitor that lives in ``monitoring`` and selects Services of ``namespace``."""
    endpoint: dict[str, Any] = {"port": port, "path": "/metrics", "interval": interval}
    if honor_labels:
        endpoint["honorLabels"] = True
    return _monitor(name, namespace, labels, {"endpoints": [endpoint]})


def pod_monitor(name: str, *, namespace: str, labels: dict[str, str], port: str, interval: str = "30s") -> dict[str, Any]:
    """A PodMonitor that lives in ``monitoring`` and selects pods of ``namespace`` (no Service in front)."""
    return _monitor(name, namespace, labels,
                    {"podMetricsEndpoints": [{"port": port, "path": "/metrics", "interval": interval}]})
