"""The Kueue chart's values, its manager Configuration, the namespace's NetworkPolicies and the metrics scrape (pure).

Keys are the kueue 0.19.2 chart's (``charts/kueue/values.yaml`` at v0.19.2, pinned in infra/upstream.py and
checked by ``check``'s Helm-values check). The manager reads ``managerConfig.controllerManagerConfigYaml``
(a ``config.kueue.x-k8s.io/v1beta2`` Configuration, ``apis/config/v1beta2/configuration_types.go``):

- ``integrations.frameworks``: only what the platform runs: ``batch/job`` (data prep, the retraining
  CronJob's Jobs) and, with the training operator, ``kubeflow.org/pytorchjob`` and ``kubeflow.org/tfjob``;
- ``waitForPodsReady``: all-or-nothing starts. An admitted job whose pods are not all ready within the
  timeout is evicted and requeued (exponential backoff from 60 s), and ``blockAdmission`` admits the next
  job only once the previous one's pods are all ready, so two jobs never hold half a pool each;
- ``managedJobsNamespaceSelector``: only ``ml-workloads`` (the chart turns it into the webhooks'
  namespaceSelector too, so a Kueue outage never blocks Jobs in other namespaces);
- ``metrics.enableClusterQueueResources``: the quota and usage gauges the training dashboard shows;
- ``resources.excludeResourcePrefixes``: EFA interfaces (``vpc.amazonaws.com/efa``, requested by the
  PyTorchJob on an ``efa: true`` pool) are no quota: the queue covers cpu, memory and devices only, and
  Kueue would never admit a job requesting a resource no flavor covers.

The controller listens on 9443 (webhooks), 8082 (the visibility API, an APIService the API server calls),
8443 (metrics over HTTPS, authorised by TokenReview/SubjectAccessReview) and 8081 (probes).
"""
from __future__ import annotations

from typing import Any

import yaml

from components.kueue.settings import KueueSettings
from components.netpol import DNS_EGRESS, HTTPS_EGRESS, allow, cidr_peers, default_deny, prometheus_peer, tcp
from components.netpol import network_policy as network_policy_doc
from components.scrape import MONITORING_NAMESPACE
from infra.conventions import SYSTEM_NODE_SELECTOR, SYSTEM_TOLERATION, std_labels
from infra.versions import IMAGES

RELEASE_NAME = "kueue"  # contains the chart name, so the chart's fullname (kueue-controller-manager, ...) is "kueue"
WEBHOOK_PORT = 9443
VISIBILITY_PORT = 8082
METRICS_PORT = 8443
METRICS_PORT_NAME = "https"  # values.yaml metricsService.ports
PROBE_PORT = 8081
#: The controller pods' labels (templates/_helpers.tpl "kueue.selectorLabels").
SELECTOR = {"app.kubernetes.io/name": "kueue", "app.kubernetes.io/instance": RELEASE_NAME,
            "control-plane": "controller-manager"}
METRICS_COMPONENT = "metrics-service"  # app.kubernetes.io/component of kueue-controller-manager-metrics-service
METRICS_READER_ROLE = f"{RELEASE_NAME}-metrics-reader"  # templates/rbac/metrics_reader_role.yaml
#: kube-prometheus-stack's Prometheus ServiceAccount (components/monitoring.py's release "kube-prometheus-stack").
PROMETHEUS_SERVICE_ACCOUNT = "kube-prometheus-stack-prometheus"
TOKEN_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token"

# Kueue's metrics (pkg/metrics/metrics.go at v0.19.2, subsystem "kueue"), for the dashboard and the alerts.
KUEUE_METRICS = (
    "kueue_pending_workloads",               # cluster_queue, status (active | inadmissible)
    "kueue_admitted_active_workloads",       # cluster_queue
    "kueue_reserving_active_workloads",      # cluster_queue
    "kueue_cluster_queue_resource_usage",    # cohort, cluster_queue, flavor, resource
    "kueue_cluster_queue_nominal_quota",     # cohort, cluster_queue, flavor, resource
    "kueue_evicted_workloads_total",         # cluster_queue, reason
    "kueue_admission_wait_time_seconds",      # histogram: cluster_queue, priority_class
    "kueue_cluster_queue_status",
)
FRAMEWORKS_KUBEFLOW = ("kubeflow.org/pytorchjob", "kubeflow.org/tfjob")
#: Resources the queue leaves to Karpenter: EFA interfaces come with the instance, not from a pool limit.
EXCLUDED_RESOURCE_PREFIXES = ("vpc.amazonaws.com/efa",)


def manager_config(s: KueueSettings) -> dict[str, Any]:
    """The controller's Configuration (what the chart mounts as controller_manager_config.yaml)."""
    frameworks = ["batch/job", *(FRAMEWORKS_KUBEFLOW if s.kubeflow else ())]
    return {
        "apiVersion": "config.kueue.x-k8s.io/v1beta2",
        "kind": "Configuration",
        "health": {"healthProbeBindAddress": f":{PROBE_PORT}"},
        "metrics": {"bindAddress": f":{METRICS_PORT}", "enableClusterQueueResources": True},
        "webhook": {"port": WEBHOOK_PORT},
        "leaderElection": {"leaderElect": True, "resourceName": "c1f6bfd2.kueue.x-k8s.io"},
        "manageJobsWithoutQueueName": False,
        "managedJobsNamespaceSelector": {"matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": [s.workloads_namespace]}]},
        "waitForPodsReady": {
            "timeout": f"{s.pods_ready_timeout_minutes}m",
            "blockAdmission": True,
            "requeuingStrategy": {"timestamp": "Eviction", "backoffBaseSeconds": 60, "backoffMaxSeconds": 3600},
        },
        "integrations": {"frameworks": frameworks},
        "resources": {"excludeResourcePrefixes": list(EXCLUDED_RESOURCE_PREFIXES)},
    }


def kueue_values(s: KueueSettings) -> dict[str, Any]:
    """Values of the kueue chart: the release image, the system nodes, the manager Configuration."""
    repository, tag = IMAGES["kueue"].rsplit(":", 1)
    return {
        "enablePrometheus": False,  # the ServiceMonitor lives in monitoring, beside Prometheus (service_monitor)
        "enableCertManager": False,  # the manager's internal cert rotation fills kueue-webhook-server-cert
        "controllerManager": {
            "replicas": 2 if s.prod else 1,
            "podDisruptionBudget": {"enabled": s.prod, "minAvailable": 1},
            "nodeSelector": dict(SYSTEM_NODE_SELECTOR),
            "tolerations": [dict(SYSTEM_TOLERATION)],
            "manager": {
                "image": {"repository": repository, "tag": tag, "pullPolicy": "IfNotPresent"},
                "resources": {"requests": {"cpu": "100m", "memory": "256Mi"},
                              "limits": {"cpu": "1", "memory": "512Mi"}},
            },
        },
        "managerConfig": {"controllerManagerConfigYaml": yaml.safe_dump(manager_config(s), sort_keys=True)},
    }


def namespace_doc(s: KueueSettings) -> dict[str, Any]:
    """``kueue-system``, Pod Security ``restricted`` (the chart's pods run as non-root, read-only, no caps)."""
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": s.namespace, "labels": {
                **std_labels(s.namespace), "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
                "pod-security.kubernetes.io/audit": "restricted", "pod-security.kubernetes.io/warn": "restricted"}}}


def network_policies(s: KueueSettings) -> list[dict[str, Any]]:
    """Default deny; the controller takes webhook and visibility-API calls from the API server (the VPC CIDR:
    its ENIs match no pod selector) and scrapes from Prometheus, and talks only to the API server and DNS.
    The probe port needs no rule: the kubelet probes from the node's IP, which the VPC CNI always admits."""
    ingress = [allow(cidr_peers(s.api_server_cidrs), tcp(WEBHOOK_PORT, VISIBILITY_PORT))]
    if s.monitoring:
        ingress.append(allow([prometheus_peer()], tcp(METRICS_PORT)))
    controller = network_policy_doc({"name": "kueue-controller-manager", "namespace": s.namespace,
                                     "labels": std_labels("kueue-controller-manager")},
                                    {"matchLabels": dict(SELECTOR)}, ingress, [HTTPS_EGRESS, DNS_EGRESS])
    return [default_deny(s.namespace), controller]


def service_monitor(s: KueueSettings) -> dict[str, Any]:
    """The ServiceMonitor (metadata + spec, in ``monitoring``) for kueue-controller-manager-metrics-service,
    as the chart's own (templates/prometheus/monitor.yaml): HTTPS with Prometheus' ServiceAccount token; the
    certificate is the manager's self-signed one, hence insecureSkipVerify."""
    return {
        "metadata": {"name": RELEASE_NAME, "namespace": MONITORING_NAMESPACE, "labels": std_labels(RELEASE_NAME)},
        "spec": {"namespaceSelector": {"matchNames": [s.namespace]},
                 "selector": {"matchLabels": {"app.kubernetes.io/name": "kueue",
                                              "app.kubernetes.io/component": METRICS_COMPONENT}},
                 "endpoints": [{"port": METRICS_PORT_NAME, "path": "/metrics", "scheme": "https", "interval": "30s",
                                "bearerTokenFile": TOKEN_FILE, "tlsConfig": {"insecureSkipVerify": True}}]},
    }


def metrics_reader_binding() -> dict[str, Any]:
    """Prometheus may GET /metrics of the manager: the chart's ``kueue-metrics-reader`` ClusterRole, bound."""
    name = f"{METRICS_READER_ROLE}-prometheus"
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": std_labels(name)},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": METRICS_READER_ROLE},
            "subjects": [{"kind": "ServiceAccount", "name": PROMETHEUS_SERVICE_ACCOUNT,
                          "namespace": MONITORING_NAMESPACE}]}
