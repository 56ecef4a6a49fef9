"""Monitoring: kube-prometheus-stack (Prometheus, Alertmanager, Grafana), dashboards, scrapes and alerts.

What this component creates (``Monitoring``):

- the ``monitoring`` Namespace and its NetworkPolicies (``network_policies``);
- the Grafana admin password: ``grafanaAdminPassword`` from stack config (a Pulumi secret), or a
  ``random.RandomPassword``; it goes into the Secret ``grafana-admin`` and the chart reads it through
  ``grafana.admin.existingSecret``, so it never enters the Helm values (preview.json and the
  manifest show ``admin-password: "[secret]"``);
- **Helm**: ``kube-prometheus-stack`` (pinned in ``infra/versions.py``). Prometheus keeps
  ``monitoring.retention`` on a ``monitoring.storageGib`` volume of ``ceph-block``; Alertmanager and
  Grafana also persist on ``ceph-block``. Prometheus selects every ServiceMonitor, PodMonitor,
  PrometheusRule, Probe and ScrapeConfig in every namespace (``*SelectorNilUsesHelmValues: false``),
  so other components need no release label. EKS hides the control plane, so the etcd,
  scheduler, controller-manager and kube-proxy scrapes (and their rules) are off;
- Grafana dashboards: the JSON files in ``dashboards/``, one ConfigMap each, labelled
  ``grafana_dashboard: "1"`` for the Grafana sidecar (folder "ML Platform");
- ServiceMonitors for Ceph (the mgr prometheus module and ceph-exporter) and the Kubeflow training
  operator. Karpenter, DCGM, neuron-monitor, the sentiment server and the trainer bring their own
  (components/karpenter.py, components/accelerators.py, workloads/*/component.py), created after
  ``release``;
- the PrometheusRule ``eks-ml-platform-alerts`` (``components/alerts.py``).

Every custom resource depends on the release that installs its CRD (pulumi-kubernetes #1712).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components import alerts
from components.netpol import (PROMETHEUS_POD, allow, api_server_cidrs, cidr_peers, default_deny, ingress_policy,
                               namespace_peer, same_namespace, tcp)
from components.scrape import API_VERSION as SCRAPE_API_VERSION
from components.scrape import MONITORING_NAMESPACE, service_monitor
from components.storage import EXPORTER_METRICS, MGR_METRICS
from components.storage import NAMESPACE as CEPH_NAMESPACE
from components.monitoring_settings import MonitoringSettings
from infra.config import PROJECT
from infra.conventions import (
    BLOCK_STORAGE_CLASS,
    SYSTEM_NODE_SELECTOR,
    SYSTEM_TOLERATION,
    required_node_affinity,
    std_labels,
    system_placement,
)
from infra.versions import CHARTS, chart_version

if TYPE_CHECKING:  # pragma: no cover - typing only (infra.platform imports this module at run time)
    from components.storage import RookCeph
    from infra.context import PlatformContext

NAMESPACE = MONITORING_NAMESPACE
RELEASE_SUFFIX = "-release"  # the Helm release's Pulumi name: ``<component>-release``
RELEASE_NAME = "kube-prometheus-stack"  # the chart's fullname: Services kube-prometheus-stack-prometheus, -grafana
PROMETHEUS_PORT = 9090
PROMETHEUS_URL = f"http://{RELEASE_NAME}-prometheus.{NAMESPACE}.svc:{PROMETHEUS_PORT}"
# The prometheus-operator's pods (the chart's Service selector) and its TLS port, which serves the
# admission webhooks (prometheusOperator.tls.internalPort); KEDA's usual namespace (serving.keda).
OPERATOR_POD = {"app": f"{RELEASE_NAME}-operator", "release": RELEASE_NAME}
OPERATOR_WEBHOOK_PORT = 10250
KEDA_NAMESPACE = "keda"
GRAFANA_SECRET = "grafana-admin"
GRAFANA_ADMIN_USER = "admin"
GRAFANA_USER_KEY = "admin-user"          # the chart's grafana.admin.userKey / passwordKey defaults
GRAFANA_PASSWORD_KEY = "admin-password"
DASHBOARD_LABEL = ("grafana_dashboard", "1")  # kube-prometheus-stack's grafana.sidecar.dashboards label/labelValue
FOLDER_ANNOTATION = "grafana_folder"
DASHBOARD_FOLDER = "ML Platform"
DASHBOARD_DIR = Path(__file__).resolve().parents[1] / "dashboards"
TRAINING_OPERATOR_NAMESPACE = "kubeflow"

# The training operator's metrics Service (the workloads' scrape targets are in workloads/*/manifests.py).
TRAINING_OPERATOR_TARGET = {"namespace": TRAINING_OPERATOR_NAMESPACE, "labels": {"app": "training-operator"},
                            "port": "monitoring-port"}  # kubeflow/trainer v1.9.4 manifests/base/service.yaml (8080)

# Metric names of the exporters this chart configures, for dashboards and alerts (the test checks
# every PromQL name against these and the lists next to the other exporters' configs).
KUBE_STATE_METRICS = (  # kube-state-metrics v2 (docs/metrics/workload/pod-metrics.md)
    "kube_pod_container_status_restarts_total",
    "kube_pod_labels",
    "kube_pod_status_phase",
    "kube_pod_info",
)
# The Kubeflow training operator v1.9.4 (pkg/common/metrics.go), labels job_namespace and framework.
TRAINING_OPERATOR_METRICS = (
    "training_operator_jobs_created_total",
    "training_operator_jobs_deleted_total",
    "training_operator_jobs_successful_total",
    "training_operator_jobs_failed_total",
    "training_operator_jobs_restarted_total",
)
# Series Prometheus writes for every target itself.
PROMETHEUS_SYNTHETIC_METRICS = ("up", "scrape_duration_seconds", "scrape_samples_scraped")
# Pod labels kube-state-metrics exports as kube_pod_labels{label_*} (the training alerts join on them).
POD_LABELS_ALLOWLIST = ("app.kubernetes.io/name", "training.kubeflow.org/job-name", "training.kubeflow.org/replica-type")


# ------------------------------------------------------------------------------------- helpers
def _res(cpu: str, memory: str, cpu_limit: str, memory_limit: str) -> dict[str, Any]:
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": cpu_limit, "memory": memory_limit}}


def workload_placement(s: MonitoringSettings) -> dict[str, Any]:
    """Prometheus, Alertmanager and Grafana: Karpenter's general nodes (on-demand in prod); the system
    node group when there is no Karpenter. Their data is on Ceph, so a moved pod keeps it."""
    if not s.karpenter:
        return system_placement()
    if s.prod:
        return {"affinity": required_node_affinity("karpenter.sh/capacity-type", ["on-demand"])}
    return {}


def _volume(storage_class: Optional[str], gib: int) -> dict[str, Any]:
    if storage_class is None:
        return {}
    return {"volumeClaimTemplate": {"spec": {"storageClassName": storage_class, "accessModes": ["ReadWriteOnce"],
                                             "resources": {"requests": {"storage": f"{gib}Gi"}}}}}


def monitoring_values(s: MonitoringSettings, *, storage_class: Optional[str]) -> dict[str, Any]:
    """kube-prometheus-stack values (charts/kube-prometheus-stack/values.yaml at 82.18.0). No secret in here:
    Grafana's admin credentials come from the ``grafana-admin`` Secret."""
    prod = s.prod
    mon = s.monitoring
    system = {"nodeSelector": dict(SYSTEM_NODE_SELECTOR), "tolerations": [dict(SYSTEM_TOLERATION)]}
    place = workload_placement(s)
    tolerations = place.get("tolerations", [])
    affinity = place.get("affinity", {})
    # StatefulSet PVCs (Prometheus, Alertmanager) go with their StatefulSet outside prod, so destroy
    # leaves no RBD image behind to block the pool's deletion.
    pvc_policy = {"whenDeleted": "Retain" if prod else "Delete", "whenScaled": "Retain"}
    return {
        "crds": {"enabled": True},
        "defaultRules": {"create": True, "rules": {
            "etcd": False, "kubeControllerManager": False, "kubeSchedulerAlerting": False,
            "kubeSchedulerRecording": False, "kubeProxy": False}},
        "kubeEtcd": {"enabled": False},
        "kubeControllerManager": {"enabled": False},
        "kubeScheduler": {"enabled": False},
        "kubeProxy": {"enabled": False},  # EKS kube-proxy binds metrics to 127.0.0.1
        "prometheusOperator": {
            **system, "resources": _res("100m", "128Mi", "500m", "512Mi"),
            "admissionWebhooks": {"patch": {**system, "resources": _res("10m", "32Mi", "100m", "64Mi")}},
        },
        "prometheus": {"prometheusSpec": {
            "retention": mon.retention,
            # leave headroom on the volume: compaction needs free space, a full disk stops ingestion
            "retentionSize": f"{int(mon.storage_gib * 0.85)}GiB",
            "storageSpec": _volume(storage_class, mon.storage_gib),
            "persistentVolumeClaimRetentionPolicy": pvc_policy,
            "serviceMonitorSelectorNilUsesHelmValues": False,
            "podMonitorSelectorNilUsesHelmValues": False,
            "ruleSelectorNilUsesHelmValues": False,
            "probeSelectorNilUsesHelmValues": False,
            "scrapeConfigSelectorNilUsesHelmValues": False,
            "serviceMonitorNamespaceSelector": {},
            "podMonitorNamespaceSelector": {},
            "ruleNamespaceSelector": {},
            "replicas": 1,
            "resources": _res("500m", "4Gi", "2", "8Gi") if prod else _res("200m", "1Gi", "1", "2Gi"),
            "tolerations": tolerations,
            "affinity": affinity,
        }},
        "alertmanager": {"enabled": True, "alertmanagerSpec": {
            "storage": _volume(storage_class, 5),
            "persistentVolumeClaimRetentionPolicy": pvc_policy,
            "resources": _res("50m", "128Mi", "200m", "256Mi"),
            "tolerations": tolerations,
            "affinity": affinity,
        }},
        "grafana": {
            "enabled": True,
            "admin": {"existingSecret": GRAFANA_SECRET, "userKey": GRAFANA_USER_KEY, "passwordKey": GRAFANA_PASSWORD_KEY},
            "persistence": ({"enabled": True, "type": "pvc", "storageClassName": storage_class,
                             "accessModes": ["ReadWriteOnce"], "size": "10Gi"} if storage_class else {"enabled": False}),
            "deploymentStrategy": {"type": "Recreate"},  # an RWO volume cannot attach to two pods
            "resources": _res("100m", "256Mi", "500m", "512Mi"),
            "tolerations": tolerations,
            "affinity": affinity,
            "testFramework": {"enabled": False},
            "sidecar": {
                "resources": _res("20m", "64Mi", "200m", "128Mi"),
                "dashboards": {"enabled": True, "label": DASHBOARD_LABEL[0], "labelValue": DASHBOARD_LABEL[1],
                               "searchNamespace": "ALL", "folderAnnotation": FOLDER_ANNOTATION,
                               "provider": {"foldersFromFilesStructure": True}},
            },
        },
        "kube-state-metrics": {
            **system, "resources": _res("50m", "128Mi", "200m", "256Mi"),
            "metricLabelsAllowlist": [f"pods=[{','.join(POD_LABELS_ALLOWLIST)}]"],
        },
        "prometheus-node-exporter": {"resources": _res("20m", "32Mi", "200m", "64Mi")},
    }


def dashboard_files(directory: Path = DASHBOARD_DIR) -> dict[str, str]:
    """``{file name: JSON text}`` of every dashboard, text normalised (sorted keys) so diffs stay stable."""
    out = {}
    for path in sorted(directory.glob("*.json")):
        out[path.name] = json.dumps(json.loads(path.read_text()), indent=2, sort_keys=True) + "\n"
    return out


def dashboard_config_map(file_name: str, text: str) -> dict[str, Any]:
    name = f"grafana-dashboard-{Path(file_name).stem}"
    return {"metadata": {"name": name, "namespace": NAMESPACE,
                         "labels": {**std_labels(name), DASHBOARD_LABEL[0]: DASHBOARD_LABEL[1]},
                         "annotations": {FOLDER_ANNOTATION: DASHBOARD_FOLDER}},
            "data": {file_name: text}}


def scrape_monitors(s: MonitoringSettings, *, storage: bool) -> list[tuple[str, dict[str, Any]]]:
    """``[(kind, document)]``: the ServiceMonitors this component owns (the workloads create their own)."""
    out: list[tuple[str, dict[str, Any]]] = []
    if storage:
        # as rook's deploy/examples/monitoring/service-monitor.yaml and exporter-service-monitor.yaml
        out.append(("ServiceMonitor", service_monitor(
            "rook-ceph-mgr", namespace=CEPH_NAMESPACE, labels=MGR_METRICS["service_labels"], port=MGR_METRICS["port"],
            interval="15s", honor_labels=True)))
        out.append(("ServiceMonitor", service_monitor(
            "rook-ceph-exporter", namespace=CEPH_NAMESPACE, labels=EXPORTER_METRICS["service_labels"],
            port=EXPORTER_METRICS["port"], interval="30s")))
    if s.training_operator:
        t = TRAINING_OPERATOR_TARGET
        out.append(("ServiceMonitor", service_monitor("training-operator", namespace=t["namespace"], labels=t["labels"],
                                                      port=t["port"])))
    return out


def network_policies(s: MonitoringSettings, *, storage: bool) -> list[dict[str, Any]]:
    """Default deny; the stack's pods (Prometheus, Alertmanager, Grafana, the operator, kube-state-metrics)
    from each other; the operator's webhook port from the API server (the VPC CIDR: its source has no pod
    labels); Prometheus's API from the Ceph mgr (its dashboard's graphs) and KEDA (``serving.keda``).

    Grafana is reached by ``kubectl port-forward``, which enters the pod's network namespace through the
    kubelet and the container runtime, so no rule admits it from outside. node-exporter runs on the host
    network, where these policies do not apply."""
    out = [default_deny(NAMESPACE), same_namespace(NAMESPACE),
           ingress_policy("prometheus-operator-webhook", NAMESPACE, OPERATOR_POD,
                          [allow(cidr_peers(api_server_cidrs(s.vpc)), tcp(OPERATOR_WEBHOOK_PORT))])]
    clients = [namespace_peer(CEPH_NAMESPACE, {"app": "rook-ceph-mgr"})] if storage else []
    if s.keda:
        clients.append(namespace_peer(KEDA_NAMESPACE))
    if clients:
        out.append(ingress_policy("prometheus-clients", NAMESPACE, PROMETHEUS_POD,
                                  [allow(clients, tcp(PROMETHEUS_PORT))]))
    return out


def scrape_resource_name(component_name: str, doc: dict[str, Any]) -> str:
    """The Pulumi name of a scrape object this component creates: ``<component>-<object name>``."""
    return f"{component_name}-{doc['metadata']['name']}"


def former_scrape_urn(release_urn: str, kind: str, doc: dict[str, Any]) -> str:
    """The URN a scrape object had when this component created it, from the URN of this component's ``release``.

    The workloads' ServiceMonitor ``sentiment`` and PodMonitor ``sentiment-trainer`` were children of this
    component (``<component>-<object name>``, beside ``<component>-release``); now the workload
    components create them and alias this URN, so ``pulumi up`` moves them in the state instead of
    deleting and recreating them.
    """
    prefix, qualified_type, release_name = release_urn.rsplit("::", 2)
    if not release_name.endswith(RELEASE_SUFFIX) or "$" not in qualified_type:
        raise ValueError(f"{release_urn!r} is not the URN of a Monitoring component's release")
    parent_chain = qualified_type.rsplit("$", 1)[0]  # ...$eks-ml-platform:monitoring:Monitoring
    component_name = release_name.removesuffix(RELEASE_SUFFIX)
    return (f"{prefix}::{parent_chain}$kubernetes:{SCRAPE_API_VERSION}:{kind}::"
            f"{scrape_resource_name(component_name, doc)}")


def grafana_secret_doc(password: Any) -> dict[str, Any]:
    """The Secret ``grafana.admin.existingSecret`` names; ``password`` is a secret Output."""
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": GRAFANA_SECRET, "namespace": NAMESPACE, "labels": std_labels("grafana")},
            "type": "Opaque",
            "stringData": {GRAFANA_USER_KEY: GRAFANA_ADMIN_USER, GRAFANA_PASSWORD_KEY: password}}


# ------------------------------------------------------------------------------------- component
class _Secret(pulumi.CustomResource):
    """``kubernetes:core/v1:Secret`` registered with its keys in the clear and only the secret values
    marked secret. (``k8s.core.v1.Secret`` wraps the whole ``stringData`` map, so preview.json and the
    manifest would show ``stringData: "[secret]"``, hiding which keys exist and failing the core
    schema.) ``data``/``stringData`` stay secret in the state, as the typed class does."""

    def __init__(self, name: str, doc: dict[str, Any], opts: pulumi.ResourceOptions):
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["data", "stringData"]))
        super().__init__("kubernetes:core/v1:Secret", name, dict(doc), opts)


@dataclass(frozen=True)
class MonitoringArgs:
    """Inputs of the monitoring component."""

    settings: MonitoringSettings
    ctx: "PlatformContext"
    """Cluster outputs, providers and the ``cluster_ready`` gate."""
    storage: Optional["RookCeph"] = None
    """The Rook-Ceph component (``ceph-block`` for the volumes, Ceph scrapes); None: no persistence."""


class Monitoring(pulumi.ComponentResource):
    """See the module docstring. Outputs: ``release`` (kube-prometheus-stack: ServiceMonitors, PodMonitors
    and PrometheusRules depend on it), ``namespace``, ``grafana_admin_password`` (secret),
    ``prometheus_url``."""

    def __init__(self, name: str, args: MonitoringArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("eks-ml-platform:monitoring:Monitoring", name, None, opts)
        ctx, st = args.ctx, args.settings
        storage = args.storage

        def child(*deps: pulumi.Resource) -> pulumi.ResourceOptions:
            return ctx.opts(self, depends_on=list(deps))

        self.namespace = k8s.core.v1.Namespace(
            f"{name}-ns",
            metadata={"name": NAMESPACE, "labels": {**std_labels(NAMESPACE),
                                                    # node-exporter needs the host's network and PID namespaces
                                                    "pod-security.kubernetes.io/enforce": "privileged"}},
            opts=child(),
        )

        for doc in network_policies(st, storage=storage is not None):
            k8s.networking.v1.NetworkPolicy(f"{name}-netpol-{doc['metadata']['name']}", metadata=doc["metadata"],
                                            spec=doc["spec"], opts=child(self.namespace))

        # ---- Grafana admin password: config secret, else generated; always a secret Output
        configured = pulumi.Config(PROJECT).get_secret("grafanaAdminPassword")
        if configured is not None:
            password = pulumi.Output.secret(configured)
        else:
            generated = random.RandomPassword(
                f"{name}-grafana-admin", length=32, special=True, override_special="-_.", min_lower=2,
                min_upper=2, min_numeric=2, opts=pulumi.ResourceOptions(parent=self))
            password = pulumi.Output.secret(generated.result)
        self.grafana_admin_password: pulumi.Output[str] = password
        self.grafana_secret = _Secret(f"{name}-grafana-admin", grafana_secret_doc(password), child(self.namespace))

        # ---- kube-prometheus-stack
        storage_class = BLOCK_STORAGE_CLASS if storage is not None else None
        storage_deps = list(storage.storage_classes) if storage is not None else []
        version = chart_version("monitoring", st.version)
        self.release = k8s.helm.v3.Release(
            f"{name}{RELEASE_SUFFIX}", name=RELEASE_NAME, chart=CHARTS["monitoring"].chart, version=version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=CHARTS["monitoring"].repo),
            namespace=NAMESPACE, create_namespace=False, skip_await=False, atomic=True, cleanup_on_fail=True,
            timeout=900, values=monitoring_values(st, storage_class=storage_class),
            opts=child(self.namespace, self.grafana_secret, *storage_deps),
        )

        # ---- dashboards (the sidecar loads labelled ConfigMaps whenever they appear)
        self.dashboards: list[k8s.core.v1.ConfigMap] = []
        for file_name, text in dashboard_files().items():
            doc = dashboard_config_map(file_name, text)
            self.dashboards.append(k8s.core.v1.ConfigMap(
                f"{name}-dashboard-{Path(file_name).stem}", metadata=doc["metadata"], data=doc["data"],
                opts=child(self.namespace)))

        # ---- scrapes and alerts (their CRDs come with the release)
        self.monitors: list[k8s.apiextensions.CustomResource] = []
        for kind, doc in scrape_monitors(st, storage=storage is not None):
            self.monitors.append(k8s.apiextensions.CustomResource(
                scrape_resource_name(name, doc), api_version=SCRAPE_API_VERSION, kind=kind,
                metadata=doc["metadata"], spec=doc["spec"], opts=child(self.release)))
        self.rules = k8s.apiextensions.CustomResource(
            f"{name}-alerts", api_version="monitoring.coreos.com/v1", kind="PrometheusRule",
            metadata={"name": "eks-ml-platform-alerts", "namespace": NAMESPACE, "labels": std_labels("eks-ml-platform-alerts")},
            spec=alerts.platform_rules(st), opts=child(self.release),
        )

        self.prometheus_url = PROMETHEUS_URL
        self.register_outputs({
            "namespace": NAMESPACE,
            "chartVersion": version,
            "prometheusUrl": PROMETHEUS_URL,
            "grafanaService": f"{NAMESPACE}/{RELEASE_NAME}-grafana",
            "grafanaAdminSecret": f"{NAMESPACE}/{GRAFANA_SECRET}",
            "grafanaAdminPassword": password,
            "dashboards": sorted(dashboard_files()),
        })
