"""The karpenter chart's values and the controller's ServiceMonitor (pure).

The controller runs on the system node group (its label and toleration from infra.conventions)
and gets the interruption queue's name as ``settings.interruptionQueue``.
"""
from __future__ import annotations

from typing import Any, Optional

from components.karpenter.settings import KarpenterSettings
from infra.conventions import SYSTEM_NODE_SELECTOR, SYSTEM_TOLERATION, std_labels

NAMESPACE = "kube-system"
RELEASE_NAME = "karpenter"  # the chart's fullname, Service and ServiceAccount are all "karpenter"
CRD_RELEASE_NAME = "karpenter-crd"
SERVICE_ACCOUNT = "karpenter"
METRICS_PORT_NAME = "http-metrics"  # charts/karpenter/templates/service.yaml

# Metric names Karpenter v1.14 exports (website/content/en/v1.14/reference/metrics.md), for the
# monitoring dashboards and alerts.
KARPENTER_METRICS = (
    "karpenter_nodeclaims_created_total",
    "karpenter_nodeclaims_terminated_total",
    "karpenter_nodeclaims_disrupted_total",
    "karpenter_nodes_allocatable",
    "karpenter_nodes_total_pod_requests",
    "karpenter_nodes_created_total",
    "karpenter_nodes_terminated_total",
    "karpenter_nodepools_usage",
    "karpenter_nodepools_limit",
    "karpenter_nodepools_allowed_disruptions",
    "karpenter_pods_state",
    "karpenter_pods_startup_duration_seconds",
    "karpenter_scheduler_queue_depth",
    "karpenter_scheduler_scheduling_duration_seconds",
    "karpenter_voluntary_disruption_decisions_total",
    "karpenter_interruption_received_messages_total",
    "karpenter_interruption_deleted_messages_total",
    "karpenter_cloudprovider_errors_total",
    "karpenter_cloudprovider_instance_launch_failures_total",
    "karpenter_cluster_state_synced",
    "karpenter_cluster_state_node_count",
)


def karpenter_values(s: KarpenterSettings, *, queue_name: Any, cluster_endpoint: Any = None) -> dict[str, Any]:
    """Values for the karpenter chart (v1.14.1 values.yaml keys)."""
    # nodeRepair (alpha, off in the chart): replace nodes whose kubelet is NotReady for 30 min, or whose
    # GPU/Neuron the EKS node monitoring agent reports failed (AcceleratedHardwareReady=False) for 10 min.
    # reservedCapacity (beta, on in the chart): native ODCR / Capacity Block support, spelled out because
    # reserved pools rely on it.
    settings: dict[str, Any] = {"clusterName": s.cluster_name, "interruptionQueue": queue_name,
                                "featureGates": {"nodeRepair": s.node_repair, "reservedCapacity": True}}
    if cluster_endpoint is not None:
        settings["clusterEndpoint"] = cluster_endpoint
    return {
        "settings": settings,
        "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},  # the Pod Identity association names it
        "replicas": 2,
        "nodeSelector": {"kubernetes.io/os": "linux", **SYSTEM_NODE_SELECTOR},
        "tolerations": [dict(SYSTEM_TOLERATION)],
        "controller": {"resources": {"requests": {"cpu": "250m", "memory": "512Mi"},
                                     "limits": {"cpu": "1", "memory": "1Gi"}}},
        "logLevel": "info",
        "serviceMonitor": {"enabled": False},  # created by this component once monitoring exists
    }


def service_monitor(*, name: str, namespace: str, selector: dict[str, str], port: str, interval: str = "30s",
                    labels: Optional[dict[str, str]] = None) -> dict[str, Any]:
    """A monitoring.coreos.com/v1 ServiceMonitor (metadata + spec) for one metrics port."""
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": labels or std_labels(name)},
        "spec": {"selector": {"matchLabels": dict(selector)}, "namespaceSelector": {"matchNames": [namespace]},
                 "endpoints": [{"port": port, "path": "/metrics", "interval": interval}]},
    }


def karpenter_service_monitor() -> dict[str, Any]:
    return service_monitor(name="karpenter", namespace=NAMESPACE, port=METRICS_PORT_NAME,
                           selector={"app.kubernetes.io/name": "karpenter", "app.kubernetes.io/instance": RELEASE_NAME})
