"""The always-on pods (Rook-Ceph, monitoring, cpu serving replicas) and the per-node DaemonSets,
with their requests read from the components' own pure builders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

from .table import quantity_gib


# DaemonSets of the EKS add-ons (infra/cluster.py installs them with their default resources),
# on every node: requests from the upstream defaults. The DaemonSets the platform configures
# itself (node-exporter) are read from the component's values instead.
EKS_NODE_DAEMONSETS = (
    ("aws-node (vpc-cni)", "25m", "0"),        # amazon-vpc-cni-k8s charts/aws-vpc-cni resources
    ("kube-proxy", "100m", "0"),                # the EKS kube-proxy add-on manifest
    ("ebs-csi-node", "10m", "40Mi"),            # aws-ebs-csi-driver chart node.resources
)


def cpu_m(value: Any) -> float:
    """A CPU quantity (``250m``, ``1``, ``0.5``) in millicores."""
    text = str(value).strip()
    return float(text[:-1]) if text.endswith("m") else float(text) * 1000


def mem_mib(value: Any) -> float:
    """A memory quantity (``512Mi``, ``4Gi``) in MiB."""
    return quantity_gib(value) * 1024


@dataclass(frozen=True)
class Pod:
    """One always-on pod, as the scheduler sees it."""

    name: str
    cpu_m: float
    mem_mib: float
    on_demand: bool = False
    """Its affinity requires ``karpenter.sh/capacity-type: on-demand``."""
    anti: Optional[str] = None
    """At most one pod of this group per node (required anti-affinity, allowMultiplePerNode false)."""
    spread: Optional[str] = None
    """Spread evenly over the nodes (soft topology spread)."""
    owner: str = ""
    """What declares it (for the notes)."""


def _requests(resources: Mapping[str, Any] | None) -> tuple[float, float]:
    req = (resources or {}).get("requests") or {}
    return cpu_m(req.get("cpu", "0")), mem_mib(req.get("memory", "0"))


def requires_on_demand(affinity: Mapping[str, Any] | None) -> bool:
    """Whether a node affinity only admits on-demand capacity (every required term does)."""
    terms = (((affinity or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms") or []
    if not terms:
        return False
    for term in terms:
        ok = any(e.get("key") == "karpenter.sh/capacity-type" and e.get("operator") == "In"
                 and set(e.get("values") or []) == {"on-demand"} for e in term.get("matchExpressions") or [])
        if not ok:
            return False
    return True


def ceph_pods(cfg: Any) -> list[Pod]:
    """Rook-Ceph's long-running daemons, from ``components/storage.py``'s rendered specs."""
    from components import storage

    st = storage.StorageSettings.from_config(cfg)
    spec = storage.ceph_cluster_spec(st)
    fs = storage.filesystem_spec(st)
    res = spec["resources"]
    on_demand = requires_on_demand(spec["placement"]["all"])
    pods: list[Pod] = []
    mon = spec["mon"]
    c, m = _requests(res.get("mon"))
    for i in range(mon["count"]):
        pods.append(Pod(f"ceph mon {i}", c, m, on_demand,
                        anti=None if mon.get("allowMultiplePerNode") else "mon", owner="Rook-Ceph"))
    mgr = spec["mgr"]
    c, m = _requests(res.get("mgr"))
    for i in range(mgr["count"]):
        pods.append(Pod(f"ceph mgr {i}", c, m, on_demand,
                        anti=None if mgr.get("allowMultiplePerNode") else "mgr", owner="Rook-Ceph"))
    for ds in spec["storage"]["storageClassDeviceSets"]:
        c, m = _requests(ds.get("resources"))
        for i in range(ds["count"]):
            pods.append(Pod(f"ceph osd {ds['name']}-{i}", c, m, on_demand, spread="osd", owner="Rook-Ceph"))
    mds = fs["metadataServer"]
    count = mds["activeCount"] * (2 if mds.get("activeStandby") else 1)
    anti = "mds" if (mds.get("placement") or {}).get("podAntiAffinity") else None
    c, m = _requests(mds.get("resources"))
    for i in range(count):
        pods.append(Pod(f"ceph mds {i}", c, m, requires_on_demand(mds.get("placement")) or on_demand,
                        anti=anti, owner="Rook-Ceph"))
    return pods


def monitoring_pods(cfg: Any) -> list[Pod]:
    """Prometheus, Alertmanager and Grafana, from ``components/monitoring.py``'s chart values (the
    operator and kube-state-metrics run on the system node group)."""
    from components import monitoring

    values = monitoring.monitoring_values(monitoring.MonitoringSettings.from_config(cfg), storage_class=None)
    prom = values["prometheus"]["prometheusSpec"]
    am = values["alertmanager"]["alertmanagerSpec"]
    graf = values["grafana"]
    pods: list[Pod] = []
    c, m = _requests(prom.get("resources"))
    for i in range(int(prom.get("replicas", 1))):
        pods.append(Pod(f"prometheus {i}", c, m, requires_on_demand(prom.get("affinity")), owner="monitoring"))
    if values["alertmanager"].get("enabled", True):
        c, m = _requests(am.get("resources"))
        pods.append(Pod("alertmanager", c, m, requires_on_demand(am.get("affinity")), owner="monitoring"))
    if graf.get("enabled", True):
        c, m = _requests(graf.get("resources"))
        sc, sm = _requests((graf.get("sidecar") or {}).get("resources"))
        pods.append(Pod("grafana", c + sc, m + sm, requires_on_demand(graf.get("affinity")), owner="monitoring"))
    return pods


def node_daemonsets(cfg: Any) -> list[tuple[str, float, float]]:
    """``[(name, cpu_m, mem_mib)]`` of the DaemonSet pods every cpu-pool node runs (with requests)."""
    out = [(name, cpu_m(c), mem_mib(m)) for name, c, m in EKS_NODE_DAEMONSETS]
    if cfg.addons.monitoring.enabled:
        from components import monitoring

        values = monitoring.monitoring_values(monitoring.MonitoringSettings.from_config(cfg), storage_class=None)
        c, m = _requests(values["prometheus-node-exporter"].get("resources"))
        out.append(("node-exporter", c, m))
    return out


def serving_cpu_pods(cfg: Any) -> list[Pod]:
    """The sentiment replicas when ``serving.device`` is cpu, with the Deployment's own requests
    (``workloads/sentiment/manifests.py``); one per node (its hostname spread is required)."""
    from workloads.sentiment.manifests import container_resources
    from workloads.sentiment.plan import plan
    from workloads.sentiment.settings import ServingSettings

    settings = ServingSettings.from_config(cfg)
    req = container_resources(settings, plan(settings))["requests"]
    return [Pod(f"sentiment {i}", cpu_m(req["cpu"]), mem_mib(req["memory"]), anti="sentiment", owner="serving")
            for i in range(cfg.serving.replicas)]
