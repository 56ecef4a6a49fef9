"""Accelerator device plugins and metrics for the Karpenter GPU and Neuron pools.

Installed only for the accelerators some pool actually has (``cfg.pools``), each switchable with
``addons.<name>.enabled``:

- **NVIDIA** (namespace ``nvidia-device-plugin``): the NVIDIA device plugin (advertises
  ``nvidia.com/gpu``) and the DCGM exporter (GPU metrics on :9400, with this module's counter list
  ``DCGM_METRICS`` shipped as the chart's ``customMetrics``). Both tolerate ``nvidia.com/gpu:
  NoSchedule`` and are pinned by required node affinity to ``eks-ml-platform/accelerator=nvidia``,
  the label every NVIDIA pool's nodes carry; the charts' NFD-based affinity is replaced (NFD is not
  installed) and their blanket ``CriticalAddonsOnly`` toleration dropped.
- **Neuron** (``kube-system``): the Neuron helm chart's device plugin (advertises
  ``aws.amazon.com/neuron`` and ``aws.amazon.com/neuroncore``) on ``eks-ml-platform/accelerator=
  neuron`` nodes, tolerating ``aws.amazon.com/neuron:NoSchedule``, and the Neuron scheduler
  extension with its own kube-scheduler (``schedulerName: my-scheduler``, image matched to the
  cluster's minor version) on the system node group. The node-problem-detector of that chart is
  off. The AL2023 Neuron AMI (pinned alias) brings the driver; on inf1 it loads the legacy 2.21
  driver at boot: never install or upgrade the Neuron driver on inf1 nodes yourself.
- **neuron-monitor** (namespace ``neuron-monitor``): AWS's neuron-monitor image with its
  Prometheus exporter (:8000) as a DaemonSet on the Neuron nodes, a headless Service, and a
  NetworkPolicy that admits only Prometheus (the monitoring namespace);
- in each namespace it creates, a default-deny ingress NetworkPolicy; the DCGM exporter's port
  admits only Prometheus. (The Neuron device plugin and scheduler run in ``kube-system``, which is
  not this platform's namespace: no policy there.)
- a **ServiceMonitor** per exporter, only when the monitoring add-on (its CRDs) exists.
- **EFA** (``kube-system``): the EFA device plugin, only where some pool has ``efa: true``; and with
  ``serving.gpuSharing`` the NVIDIA device plugin's config map, shared GPUs on the serving pool's nodes only
  (both built in ``components/device_plugins.py``). The metric tables are in ``components/accelerator_metrics.py``.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s

from components.karpenter import (
    ACCELERATOR_LABEL,
    GPU_TAINT,
    NEURON,
    NEURON_TAINT,
    NVIDIA,
    pool_kind,
    service_monitor,
)
from components.accelerator_metrics import DCGM_COUNTERS, DCGM_METRICS, NEURON_METRICS  # noqa: F401 - re-exported
from components.device_plugins import efa_device_plugin_values, sharing_values
from components.netpol import allow, default_deny, ingress_policy, prometheus_peer, tcp
from infra.config import GpuSharing, NodePoolConfig, PlatformConfig
from infra.conventions import std_labels, system_placement
from infra.versions import CHARTS, IMAGES, NEURON_KUBE_SCHEDULER, chart_version

if TYPE_CHECKING:  # pragma: no cover - typing only (infra.platform imports this module at run time)
    from infra.context import PlatformContext

NVIDIA_NAMESPACE = CHARTS["nvidia_device_plugin"].namespace  # shared by the DCGM exporter
NEURON_NAMESPACE = CHARTS["neuron"].namespace  # kube-system: the chart's namespaceOverride default
EFA_NAMESPACE = CHARTS["efa_device_plugin"].namespace
NEURON_MONITOR_NAMESPACE = "neuron-monitor"
MONITORING_NAMESPACE = CHARTS["monitoring"].namespace  # where Prometheus runs
NEURON_MONITOR_PORT = 8000
DCGM_PORT_NAME = "metrics"  # dcgm-exporter chart templates/service.yaml
DCGM_PORT = 9400  # the chart's service.port / service.address (":9400"), the exporter's listen port
# the chart's selector labels (release dcgm-exporter), on the pods and the Service
DCGM_SELECTOR = {"app.kubernetes.io/name": "dcgm-exporter", "app.kubernetes.io/instance": "dcgm-exporter"}
# The dcgm-exporter 4.8.2 chart renders customMetrics into the ConfigMap exporter-metrics-config-map
# (templates/metrics-configmap.yaml) and, by its default extraConfigMapVolumes/extraVolumeMounts
# (deployment/values.yaml), mounts that ConfigMap's `metrics` key over this file (subPath): `-f` with
# it reads customMetrics. (`-m <ns>:exporter-metrics-config-map` would read it through the API, but the
# chart gives the pod no service-account token unless pod labels/UID or DRA are on: the exporter exits.)
DCGM_COUNTERS_FILE = "/etc/dcgm-exporter/default-counters.csv"
DCGM_COUNTERS_ANNOTATION = "eks-ml-platform/dcgm-counters-sha256"
NEURON_SCHEDULER_NAME = "my-scheduler"  # the chart's scheduler.customScheduler.fullnameOverride

GPU_TOLERATION = {"key": GPU_TAINT["key"], "operator": "Exists", "effect": GPU_TAINT["effect"]}
NEURON_TOLERATION = {"key": NEURON_TAINT["key"], "operator": "Exists", "effect": NEURON_TAINT["effect"]}


def accelerator_affinity(kind: str) -> dict[str, Any]:
    """Required node affinity to the nodes of ``kind`` (``nvidia``/``neuron``) pools only."""
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": ACCELERATOR_LABEL, "operator": "In", "values": [kind]}]},
    ]}}}


def dcgm_counters_csv() -> str:
    lines = ["# DCGM FIELD, Prometheus metric type, help message (eks-ml-platform components/accelerators.py)"]
    lines += [f"{field}, {typ}, {help_}" for field, typ, help_ in DCGM_COUNTERS]
    return "\n".join(lines) + "\n"


def nvidia_device_plugin_values(sharing: Optional[GpuSharing] = None) -> dict[str, Any]:
    """Values for nvidia-device-plugin 0.18.2 (deployments/helm/nvidia-device-plugin/values.yaml); with
    ``sharing`` its config map (components/device_plugins.py), selected by the serving pool's node label."""
    values = {
        "tolerations": [dict(GPU_TOLERATION)],  # replaces the chart's list (no CriticalAddonsOnly)
        "affinity": accelerator_affinity(NVIDIA),  # replaces the NFD-label terms
        "priorityClassName": "system-node-critical",
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "256Mi"}},
        "gfd": {"enabled": False},
    }
    if sharing is not None:
        values["config"] = sharing_values(sharing)
    return values


def dcgm_exporter_values() -> dict[str, Any]:
    """Values for dcgm-exporter 4.8.2 (deployment/values.yaml); its default ConfigMap mount is kept."""
    csv = dcgm_counters_csv()
    return {
        "tolerations": [dict(GPU_TOLERATION)],  # replaces the chart's control-plane toleration
        "affinity": accelerator_affinity(NVIDIA),
        "customMetrics": csv,  # the chart's exporter-metrics-config-map, mounted at DCGM_COUNTERS_FILE
        "arguments": ["-f", DCGM_COUNTERS_FILE],
        # a subPath mount never sees a changed ConfigMap: a new counter list rolls the DaemonSet instead
        "podAnnotations": {DCGM_COUNTERS_ANNOTATION: hashlib.sha256(csv.encode()).hexdigest()},
        "serviceMonitor": {"enabled": False},  # created by this component once monitoring exists
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}},
    }


def neuron_values(k8s_version: str) -> dict[str, Any]:
    """Values for the Neuron helm chart (charts/neuron-helm-chart/values.yaml)."""
    repo, tag = NEURON_KUBE_SCHEDULER[k8s_version].rsplit(":", 1)
    system = system_placement()
    return {
        "devicePlugin": {
            "enabled": True,
            "tolerations": [dict(NEURON_TOLERATION)],  # replaces the chart's list (no CriticalAddonsOnly)
            "affinity": accelerator_affinity(NEURON),  # replaces the instance-type list
        },
        "scheduler": {
            "enabled": True,
            **system,
            "customScheduler": {"enabled": True, "image": {"repository": repo, "tag": tag}, **system},
            "defaultScheduler": {"enabled": False},  # needs access to the control plane's scheduler: not on EKS
        },
        "npd": {"enabled": False},
        "draDriver": {"enabled": False},
    }


def neuron_monitor_daemonset() -> dict[str, Any]:
    """neuron-monitor + neuron-monitor-prometheus.py on every Neuron node (after AWS's k8s-neuron-monitor-daemonset.yml)."""
    name = "neuron-monitor"
    labels = std_labels(name)
    skips = {  # checkov: what this DaemonSet cannot avoid, with why
        "checkov.io/skip1": "CKV_K8S_16=neuron-monitor reads the Neuron driver's device files and sysfs; AWS runs it privileged",
        "checkov.io/skip2": "CKV_K8S_20=privileged container (see CKV_K8S_16)",
        "checkov.io/skip3": "CKV_K8S_23=the neuron tools run as root to open /dev/neuron*",
        "checkov.io/skip4": "CKV_K8S_40=the neuron tools run as root to open /dev/neuron*",
        "checkov.io/skip5": "CKV_K8S_22=run as AWS ships it: the image is not documented to work on a read-only root",
        "checkov.io/skip6": "CKV_K8S_43=AWS publishes neuron-monitor by version tag; pinned in infra/versions.py",
        "checkov.io/skip7": "CKV_K8S_37=privileged container (see CKV_K8S_16): dropping capabilities has no effect",
        "checkov.io/skip8": "CKV_K8S_28=privileged container (see CKV_K8S_16): dropping NET_RAW has no effect",
    }
    return {
        "metadata": {"name": name, "namespace": NEURON_MONITOR_NAMESPACE, "labels": labels, "annotations": skips},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "automountServiceAccountToken": False,
                    "priorityClassName": "system-node-critical",
                    "tolerations": [dict(NEURON_TOLERATION)],
                    "affinity": accelerator_affinity(NEURON),
                    "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{
                        "name": name,
                        "image": IMAGES["neuron_monitor"],
                        "imagePullPolicy": "Always",
                        "command": ["/opt/bin/entrypoint.sh"],
                        "args": ["--port", str(NEURON_MONITOR_PORT),
                                 "--neuron-monitor-config", "/opt/aws/neuron/bin/neuron-monitor.conf"],
                        "ports": [{"name": "metrics", "containerPort": NEURON_MONITOR_PORT, "protocol": "TCP"}],
                        "env": [{"name": "GOMEMLIMIT", "value": "160MiB"}],
                        "resources": {"requests": {"cpu": "250m", "memory": "128Mi"},
                                      "limits": {"cpu": "500m", "memory": "256Mi"}},
                        "securityContext": {"privileged": True},
                        "livenessProbe": {"tcpSocket": {"port": "metrics"}, "initialDelaySeconds": 30, "periodSeconds": 20},
                        "readinessProbe": {"tcpSocket": {"port": "metrics"}, "initialDelaySeconds": 10, "periodSeconds": 10},
                    }],
                },
            },
        },
    }


def neuron_monitor_service() -> dict[str, Any]:
    name = "neuron-monitor"
    return {
        "metadata": {"name": name, "namespace": NEURON_MONITOR_NAMESPACE, "labels": std_labels(name)},
        "spec": {"clusterIP": "None", "selector": {"app.kubernetes.io/name": name},
                 "ports": [{"name": "metrics", "port": NEURON_MONITOR_PORT, "targetPort": "metrics", "protocol": "TCP"}]},
    }


def neuron_monitor_network_policy() -> dict[str, Any]:
    """Only Prometheus (in the monitoring namespace) may scrape the exporter; nothing else reaches it."""
    name = "neuron-monitor"
    return ingress_policy(name, NEURON_MONITOR_NAMESPACE, {"app.kubernetes.io/name": name},
                          [allow([prometheus_peer()], tcp(NEURON_MONITOR_PORT))])


def dcgm_network_policy() -> dict[str, Any]:
    """Only Prometheus may scrape the DCGM exporter. The device plugin needs no ingress at all: the kubelet
    talks to it over a unix socket, so the namespace's default deny covers it."""
    return ingress_policy("dcgm-exporter", NVIDIA_NAMESPACE, DCGM_SELECTOR, [allow([prometheus_peer()], tcp(DCGM_PORT))])


def dcgm_service_monitor() -> dict[str, Any]:
    return service_monitor(name="dcgm-exporter", namespace=NVIDIA_NAMESPACE, port=DCGM_PORT_NAME, interval="15s",
                           selector=DCGM_SELECTOR)


def neuron_monitor_service_monitor() -> dict[str, Any]:
    return service_monitor(name="neuron-monitor", namespace=NEURON_MONITOR_NAMESPACE, port="metrics",
                           selector={"app.kubernetes.io/name": "neuron-monitor"})


def accelerator_kinds(pools: Sequence[NodePoolConfig]) -> set[str]:
    return {k for k in (pool_kind(p) for p in pools) if k}


@dataclass(frozen=True)
class AcceleratorsSettings:
    """What the component installs (:meth:`from_config`): each release only for the accelerators some pool
    has and only when its switch is on, with its chart version override (None: the pinned chart)."""

    nvidia_device_plugin: bool = False
    dcgm_exporter: bool = False
    neuron: bool = False
    versions: Mapping[str, Optional[str]] = field(default_factory=dict)  # chart key -> override
    kubernetes_version: str = ""  # the neuron scheduler extender follows the cluster's version
    #: The accelerator kinds of the pools with ``efa: true`` (the EFA device plugin runs on them); empty: none.
    efa_kinds: tuple[str, ...] = ()
    gpu_sharing: Optional[GpuSharing] = None  # ``serving.gpuSharing`` when GPU serving is on

    @classmethod
    def from_config(cls, cfg: PlatformConfig) -> "AcceleratorsSettings":
        kinds, a = accelerator_kinds(cfg.pools), cfg.addons
        return cls(nvidia_device_plugin=NVIDIA in kinds and a.nvidia_device_plugin.enabled,
                   dcgm_exporter=NVIDIA in kinds and a.dcgm_exporter.enabled,
                   neuron=NEURON in kinds and a.neuron.enabled,
                   versions={"nvidia_device_plugin": a.nvidia_device_plugin.version,
                             "dcgm_exporter": a.dcgm_exporter.version, "neuron": a.neuron.version},
                   kubernetes_version=cfg.cluster.version,
                   efa_kinds=tuple(sorted(accelerator_kinds([p for p in cfg.pools if p.efa]))),
                   gpu_sharing=cfg.serving.gpu_sharing if cfg.serving.enabled and cfg.serving.device == "gpu" else None)


@dataclass(frozen=True)
class AcceleratorsArgs:
    """Inputs of the Accelerators component."""

    settings: AcceleratorsSettings
    ctx: PlatformContext
    """Cluster outputs, providers and the ``cluster_ready`` gate."""
    monitoring_release: Optional[pulumi.Resource] = None
    """The kube-prometheus-stack release (installs the ServiceMonitor CRD); None: no ServiceMonitors."""


class Accelerators(pulumi.ComponentResource):
    """See the module docstring. Outputs: ``releases`` (release names installed)."""

    def __init__(self, name: str, args: AcceleratorsArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("eks-ml-platform:accelerators:Accelerators", name, None, opts)
        ctx, st = args.ctx, args.settings
        ready = list(ctx.cluster_ready)
        self.releases: dict[str, k8s.helm.v3.Release] = {}
        self.service_monitors: dict[str, k8s.apiextensions.CustomResource] = {}
        self.namespaces: dict[str, k8s.core.v1.Namespace] = {}

        if st.nvidia_device_plugin or st.dcgm_exporter:
            ns = self._namespace(name, NVIDIA_NAMESPACE, ready)
            if st.nvidia_device_plugin:
                self._release(name, "nvidia-device-plugin", "nvidia_device_plugin", st.versions.get("nvidia_device_plugin"),
                              NVIDIA_NAMESPACE, nvidia_device_plugin_values(st.gpu_sharing), [*ready, ns])
            if st.dcgm_exporter:
                release = self._release(name, "dcgm-exporter", "dcgm_exporter", st.versions.get("dcgm_exporter"),
                                        NVIDIA_NAMESPACE, dcgm_exporter_values(), [*ready, ns])
                self._network_policy(f"{name}-netpol-dcgm-exporter", dcgm_network_policy(), [*ready, ns])
                self._service_monitor(name, "dcgm-exporter", dcgm_service_monitor(), args.monitoring_release, release)
        if st.efa_kinds:  # kube-system, as AWS installs it; the plugin talks to the kubelet only (no Service)
            self._release(name, "aws-efa-k8s-device-plugin", "efa_device_plugin", None, EFA_NAMESPACE,
                          efa_device_plugin_values(st.efa_kinds), ready)
        if st.neuron:
            self._release(name, "neuron", "neuron", st.versions.get("neuron"), NEURON_NAMESPACE,
                          neuron_values(st.kubernetes_version), ready)
            ns = self._namespace(name, NEURON_MONITOR_NAMESPACE, ready)
            ds = neuron_monitor_daemonset()
            self.neuron_monitor = k8s.apps.v1.DaemonSet(
                f"{name}-neuron-monitor", metadata=ds["metadata"], spec=ds["spec"],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[*ready, ns]),
            )
            self._network_policy(f"{name}-neuron-monitor", neuron_monitor_network_policy(), [*ready, ns])
            svc = neuron_monitor_service()
            service = k8s.core.v1.Service(
                f"{name}-neuron-monitor", metadata=svc["metadata"], spec=svc["spec"],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[*ready, ns]),
            )
            self._service_monitor(name, "neuron-monitor", neuron_monitor_service_monitor(), args.monitoring_release, service)

        self.register_outputs({"releases": sorted(self.releases), "service_monitors": sorted(self.service_monitors)})

    # ------------------------------------------------------------------ helpers
    def _namespace(self, name: str, namespace: str, ready: list[pulumi.Resource]) -> k8s.core.v1.Namespace:
        labels = std_labels(namespace)
        # Device plugins mount host paths; DCGM needs SYS_ADMIN; neuron-monitor is privileged.
        labels["pod-security.kubernetes.io/enforce"] = "privileged"
        ns = k8s.core.v1.Namespace(f"{name}-ns-{namespace}", metadata={"name": namespace, "labels": labels},
                                   opts=pulumi.ResourceOptions(parent=self, depends_on=ready))
        self.namespaces[namespace] = ns
        self._network_policy(f"{name}-netpol-{namespace}-default-deny", default_deny(namespace), [*ready, ns])
        return ns

    def _network_policy(self, resource_name: str, doc: dict[str, Any], depends_on: list[pulumi.Resource]) -> None:
        k8s.networking.v1.NetworkPolicy(resource_name, metadata=doc["metadata"], spec=doc["spec"],
                                        opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on))

    def _release(self, name: str, release: str, chart_key: str, override: Optional[str], namespace: str,
                 values: dict[str, Any], depends_on: list[pulumi.Resource]) -> k8s.helm.v3.Release:
        chart = CHARTS[chart_key]
        kwargs: dict[str, Any] = {}
        if chart.repo:
            kwargs["repository_opts"] = {"repo": chart.repo}
        self.releases[release] = k8s.helm.v3.Release(
            f"{name}-{release}", name=release, chart=chart.chart, version=chart_version(chart_key, override),
            namespace=namespace, create_namespace=False, values=values, skip_await=False, atomic=True,
            cleanup_on_fail=True, timeout=600, opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on), **kwargs,
        )
        return self.releases[release]

    def _service_monitor(self, name: str, key: str, manifest: dict[str, Any], monitoring: Optional[pulumi.Resource],
                         target: pulumi.Resource) -> None:
        if monitoring is None:
            return
        self.service_monitors[key] = k8s.apiextensions.CustomResource(
            f"{name}-servicemonitor-{key}", api_version="monitoring.coreos.com/v1", kind="ServiceMonitor",
            metadata=manifest["metadata"], spec=manifest["spec"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[monitoring, target]),
        )
