"""The sentiment server's autoscaler: a HorizontalPodAutoscaler on CPU, or a KEDA ScaledObject.

Pure (plain dicts). ``plan.autoscaler`` picks one: ``keda`` (``serving.keda``) scales on the request
rate Prometheus sees plus CPU, and KEDA then owns the HPA; ``hpa`` scales on CPU; ``none`` when
``maxReplicas`` equals ``replicas``.
"""
from __future__ import annotations

from typing import Any, Optional

from components.monitoring import PROMETHEUS_URL  # the in-cluster kube-prometheus-stack Prometheus
from workloads.sentiment.plan import NAME, NAMESPACE, ServingPlan, meta
from workloads.sentiment.settings import ServingSettings

REQUEST_RATE_QUERY = f'sum(rate(sentiment_requests_total{{namespace="{NAMESPACE}"}}[1m]))'


def _behavior() -> dict[str, Any]:
    """Scale up fast (a new inf1/GPU node takes minutes), scale down slowly, one pod at a time."""
    return {
        "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 60},
                                 {"type": "Pods", "value": 2, "periodSeconds": 60}]},
        "scaleDown": {"stabilizationWindowSeconds": 300, "selectPolicy": "Min",
                      "policies": [{"type": "Pods", "value": 1, "periodSeconds": 120}]},
    }


def _target_ref() -> dict[str, str]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": NAME}


def hpa(s: ServingSettings, p: ServingPlan, *, namespace: str = NAMESPACE) -> Optional[dict[str, Any]]:
    if p.autoscaler != "hpa":
        return None
    return {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": meta(namespace),
        "spec": {
            "scaleTargetRef": _target_ref(), "minReplicas": p.replicas, "maxReplicas": p.max_replicas,
            "metrics": [{"type": "Resource", "resource": {
                "name": "cpu", "target": {"type": "Utilization", "averageUtilization": s.serving.target_cpu_percent}}}],
            "behavior": _behavior(),
        },
    }


def scaled_object(s: ServingSettings, p: ServingPlan, *, namespace: str = NAMESPACE) -> Optional[dict[str, Any]]:
    """KEDA: request rate per replica (Prometheus) and CPU; KEDA creates and owns the HPA ``keda-hpa-sentiment``."""
    if p.autoscaler != "keda":
        return None
    sv = s.serving
    return {
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": meta(namespace),
        "spec": {
            "scaleTargetRef": _target_ref(), "minReplicaCount": p.replicas, "maxReplicaCount": p.max_replicas,
            "pollingInterval": 15, "cooldownPeriod": 300,
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": _behavior()}},
            "triggers": [
                {"type": "prometheus", "name": "request-rate", "metricType": "AverageValue",
                 "metadata": {"serverAddress": PROMETHEUS_URL, "query": REQUEST_RATE_QUERY,
                              "threshold": str(sv.keda_target_rps)}},
                {"type": "cpu", "name": "cpu", "metricType": "Utilization",
                 "metadata": {"value": str(sv.target_cpu_percent)}},
            ],
        },
    }
