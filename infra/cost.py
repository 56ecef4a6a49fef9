"""Cost estimate of a stack from the price table shipped in ``infra/prices/<region>.json``.

``python -m infra cost --stack dev [--json]``

* **idle** $/hour: what the platform costs with no jobs running: EKS control plane, the system
  node group (and its root volumes), NAT gateways (and their public IPv4 addresses), the serving
  load balancer, and the **always-on pods that land on Karpenter's cpu pool**:

  - Rook-Ceph's mons, mgrs, OSDs and MDSes (``components/storage.py``). They require
    **on-demand** capacity (``daemon_placement``) and carry ``karpenter.sh/do-not-disrupt``, so
    Karpenter keeps those nodes up and never moves them to spot. Mons never share a host
    (``allowMultiplePerNode: false``), neither do mgrs nor the two MDSes (required
    anti-affinity), and the OSDs must sit on at least ``replicas`` hosts (``failureDomain:
    host``) or zones (``zone``): at least max(monCount, hosts of the failure domain) nodes;
  - Prometheus, Alertmanager and Grafana (``components/monitoring.py``): on Karpenter's
    general nodes (on-demand in prod), so they fill the room left on the Ceph nodes first.

  Their CPU/memory **requests are read from the components' own pure builders**
  (``ceph_cluster_spec``, ``filesystem_spec``, ``monitoring_values``), never copied here, then
  bin-packed (see :func:`pack`) onto nodes of one instance type of the cpu pool: every allowed
  type is tried and the cheapest packing wins. A node's room is Karpenter's allocatable estimate
  (:func:`node_allocatable`: kube-reserved by Karpenter's formula, 7.5 % VM memory overhead,
  100Mi eviction threshold) less the requests of the DaemonSets on every node. Nodes that hold
  only pods allowed on spot are priced at spot where the pool allows it. Plus the gp3 volumes:
  OSDs, Ceph mon stores, and the root volumes of those nodes. Without Karpenter, Ceph and
  monitoring run on the system node group instead (no extra nodes; a note says whether they fit).
* **serving**: the sample sentiment Deployment keeps ``serving.replicas`` pods on its device
  (one device each, or, on cpu, the pod's own requests and one pod per node) all the time;
  ``idle_with_serving_usd_per_hour`` adds that, priced at spot where the pool allows spot
  (Karpenter launches spot first), at on-demand otherwise.
* **max** $/hour: idle plus every NodePool filled to its ``limits`` (Karpenter never launches
  past them) with the instance types the pool allows, chosen greedily for the highest cost. The
  always-on nodes of the cpu pool count against its limits, so the pool is filled only with what
  its limits leave. ``max_usd_per_hour`` is the worst case: on-demand wherever the pool allows
  on-demand. ``max_spot_usd_per_hour`` is the same capacity at typical spot prices where spot is
  allowed.

Excluded (usage-based or transient): NAT data processing ($/GB), load balancer LCUs, data
transfer, CloudWatch logs, EBS snapshots, ECR storage, and transient pods (OSD prepare jobs,
data-prep and training jobs) with the nodes they start. PVCs on ``ceph-block`` /
``ceph-filesystem`` (Prometheus, Alertmanager, Grafana, datasets, models) are thin RBD/CephFS
images inside the OSD volumes, which are billed in full; a note compares what they may grow to
with Ceph's usable capacity. ``estimate(cfg)`` is pure: the same config and table give the same
numbers (time-dependent prices, like EKS extended support, are judged at the table's date).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

PRICES_DIR = Path(__file__).resolve().parent / "prices"
REPO = Path(__file__).resolve().parents[1]
CEPH_NEARFULL_RATIO = 0.85  # Ceph's default mon_osd_nearfull_ratio: HEALTH_WARN above it

# Karpenter's estimate of a node's allocatable (karpenter-provider-aws
# pkg/providers/instancetype/types.go: kubeReservedResources, evictionThreshold; the global
# setting vmMemoryOverheadPercent defaults to 0.075).
VM_MEMORY_OVERHEAD = 0.075
EVICTION_HARD_MIB = 100
KUBE_RESERVED_CPU_TIERS = ((0, 1000, 0.06), (1000, 2000, 0.01), (2000, 4000, 0.005),
                           (4000, 1 << 31, 0.0025))
# ENI-limited max pods (ENIs x (IPv4 per ENI - 1) + 2) of the Nitro general-purpose/compute/
# memory families the cpu pools use (m6i, m7i, c6i, c7i, r6i), by vCPU count; Karpenter's
# kube-reserved memory is 11Mi per pod + 255Mi. Approximate for other families.
ENI_MAX_PODS = ((2, 29), (8, 58), (48, 234), (1 << 20, 737))

# DaemonSets of the EKS add-ons (infra/cluster.py installs them with their default resources),
# on every node: requests from the upstream defaults. The DaemonSets the platform configures
# itself (node-exporter) are read from the component's values instead.
EKS_NODE_DAEMONSETS = (
    ("aws-node (vpc-cni)", "25m", "0"),        # amazon-vpc-cni-k8s charts/aws-vpc-cni resources
    ("kube-proxy", "100m", "0"),                # the EKS kube-proxy add-on manifest
    ("ebs-csi-node", "10m", "40Mi"),            # aws-ebs-csi-driver chart node.resources
)

_QTY = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$")
_TO_GIB = {None: 1 / 2**30, "Ki": 1 / 2**20, "Mi": 1 / 2**10, "Gi": 1, "Ti": 2**10, "Pi": 2**20,
           "k": 1e3 / 2**30, "M": 1e6 / 2**30, "G": 1e9 / 2**30, "T": 1e12 / 2**30,
           "P": 1e15 / 2**30}
ACCEL_DIM = {"nvidia": "gpu", "inf1": "neuron", "inf2": "neuron", "trn1": "neuron", "trn2": "neuron"}
SERVING_POOL = {"inf1": "inf1", "gpu": "nvidia", "cpu": "none"}


class PriceTableError(Exception):
    pass


def load_prices(region: str, prices_dir: Path = PRICES_DIR) -> dict[str, Any]:
    path = Path(prices_dir) / f"{region}.json"
    if not path.is_file():
        have = sorted(p.stem for p in Path(prices_dir).glob("*.json"))
        raise PriceTableError(f"no price table for region {region} (have: {', '.join(have) or 'none'}); "
                              f"add infra/prices/{region}.json")
    return json.loads(path.read_text())


def quantity_gib(value: Any) -> float:
    """A Kubernetes memory quantity (``256Gi``) in GiB."""
    m = _QTY.match(str(value).strip())
    if not m:
        raise ValueError(f"not a quantity: {value!r}")
    return float(m[1]) * _TO_GIB[m[2]]


def _r(x: float) -> float:
    return round(x, 4)


def _item(name: str, category: str, quantity: float, unit: str, unit_usd_per_hour: float,
          hpm: float, *, scope: str, note: str = "") -> dict[str, Any]:
    per_hour = quantity * unit_usd_per_hour
    out = {"name": name, "category": category, "scope": scope, "quantity": quantity, "unit": unit,
           "unit_usd_per_hour": _r(unit_usd_per_hour), "usd_per_hour": _r(per_hour),
           "usd_per_month": round(per_hour * hpm, 2)}
    if note:
        out["note"] = note
    return out


def _instance(prices: Mapping[str, Any], itype: str) -> Mapping[str, Any]:
    try:
        return prices["instances"][itype]
    except KeyError:
        raise PriceTableError(f"{itype} is not in the price table for {prices.get('region')}") from None


def pool_types(pool: Any, prices: Mapping[str, Any]) -> tuple[dict[str, Mapping[str, Any]], list[str]]:
    """Instance types of the table that a pool may launch, and the families the table lacks."""
    fams = list(pool.instance_families)
    sizes = set(pool.instance_sizes or [])
    found: dict[str, Mapping[str, Any]] = {}
    for name, spec in prices["instances"].items():
        fam, _, size = name.partition(".")
        if fam in fams and (not sizes or size in sizes):
            found[name] = spec
    missing = [f for f in fams if not any(n.startswith(f + ".") for n in found)]
    return found, missing


def pool_limits(pool: Any) -> dict[str, float]:
    limits = {"vcpu": float(pool.limits.cpu), "memory_gib": quantity_gib(pool.limits.memory)}
    if getattr(pool.limits, "gpu", None):
        limits["gpu"] = float(pool.limits.gpu)
    if getattr(pool.limits, "neuron", None):
        limits["neuron"] = float(pool.limits.neuron)
    return limits


def fill_to_limits(types: Mapping[str, Mapping[str, Any]], limits: Mapping[str, float],
                   price_key: str) -> list[tuple[str, int]]:
    """The costliest set of instances whose total stays within ``limits`` (greedy).

    Repeatedly takes the type with the highest price per share of the pool's limits it uses,
    as many as still fit. Returns ``[(type, count)]``.
    """
    remaining = dict(limits)
    chosen: list[tuple[str, int]] = []

    def share(spec: Mapping[str, Any]) -> float:
        return max(spec.get(d, 0) / limits[d] for d in limits)

    while True:
        fits = [(n, s) for n, s in types.items()
                if share(s) > 0 and all(s.get(d, 0) <= remaining[d] + 1e-9 for d in remaining)]
        if not fits:
            return chosen
        name, spec = max(fits, key=lambda ns: (ns[1][price_key] / share(ns[1]), ns[1][price_key],
                                               ns[0]))
        count = int(min(math.floor((remaining[d] + 1e-9) / spec[d])
                        for d in remaining if spec.get(d, 0) > 0))
        chosen.append((name, count))
        for d in remaining:
            remaining[d] -= count * spec.get(d, 0)


def _cheapest_hosting(types: Mapping[str, Mapping[str, Any]], dim: str, need: float,
                      price_key: str) -> tuple[str, int, float] | None:
    best = None
    for name, spec in sorted(types.items()):
        per = spec.get(dim, 0)
        if per <= 0:
            continue
        count = math.ceil(need / per)
        cost = count * spec[price_key]
        if best is None or cost < best[2] - 1e-12:
            best = (name, count, cost)
    return best


def _eks_hourly(version: str, prices: Mapping[str, Any]) -> tuple[float, str]:
    svc = prices["services"]
    ends = prices.get("eks_standard_support_end") or {}
    end = ends.get(version)
    if end and prices.get("date") and date.fromisoformat(prices["date"]) > date.fromisoformat(end):
        return svc["eks_extended_support_per_hour"], (
            f"Kubernetes {version} left EKS standard support on {end}: extended support rate")
    return svc["eks_control_plane_per_hour"], f"Kubernetes {version}, standard support"


# --------------------------------------------------------------------------------------------
# Always-on pods and the nodes they keep up
# --------------------------------------------------------------------------------------------


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

    spec = storage.ceph_cluster_spec(cfg)
    fs = storage.filesystem_spec(cfg)
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

    values = monitoring.monitoring_values(cfg, storage_class=None)
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

        values = monitoring.monitoring_values(cfg, storage_class=None)
        c, m = _requests(values["prometheus-node-exporter"].get("resources"))
        out.append(("node-exporter", c, m))
    return out


def eni_max_pods(vcpu: float) -> int:
    return next(pods for most, pods in ENI_MAX_PODS if vcpu <= most)


def node_allocatable(spec: Mapping[str, Any]) -> tuple[float, float]:
    """Karpenter's estimate of a node's allocatable ``(cpu_m, mem_mib)`` for an instance type."""
    cpu = float(spec["vcpu"]) * 1000
    reserved_cpu = sum((min(cpu, end) - start) * pct for start, end, pct in KUBE_RESERVED_CPU_TIERS
                       if cpu > start)
    memory = float(spec["memory_gib"]) * 1024
    reserved_mem = 11 * eni_max_pods(spec["vcpu"]) + 255
    mem = memory - math.ceil(memory * VM_MEMORY_OVERHEAD) - reserved_mem - EVICTION_HARD_MIB
    return cpu - reserved_cpu, mem


@dataclass
class _Node:
    cpu: float
    mem: float
    on_demand: bool = False
    pods: list[str] = field(default_factory=list)
    groups: set[str] = field(default_factory=set)
    spread: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Packing:
    instance_type: str
    nodes: tuple[tuple[bool, tuple[str, ...]], ...]
    """``(on_demand, pod names)`` per node."""
    usd_per_hour: float

    @property
    def on_demand_nodes(self) -> int:
        return sum(1 for od, _ in self.nodes if od)

    @property
    def spot_nodes(self) -> int:
        return len(self.nodes) - self.on_demand_nodes


def pack(pods: list[Pod], itype: str, spec: Mapping[str, Any], *, overhead: tuple[float, float],
         min_nodes: int, spot_allowed: bool) -> Optional[Packing]:
    """Place ``pods`` on nodes of ``itype`` (None when one pod fits no node of it).

    Starts with ``min_nodes`` nodes (the hosts the Ceph failure domain needs), then places the
    pods that must not share a host, then the spread ones (the OSDs: fewest of their group, then
    most free memory), then the rest best-fit (least memory left), the state Karpenter's
    consolidation converges to. A new node opens only when no node has room.
    """
    alloc_cpu, alloc_mem = node_allocatable(spec)
    alloc_cpu -= overhead[0]
    alloc_mem -= overhead[1]
    if any(p.cpu_m > alloc_cpu + 1e-9 or p.mem_mib > alloc_mem + 1e-9 for p in pods):
        return None
    nodes = [_Node(alloc_cpu, alloc_mem) for _ in range(min_nodes)]

    def order(p: Pod) -> tuple:
        rank = 0 if p.anti else 1 if p.spread else 2
        return (rank, p.anti or p.spread or "", -p.mem_mib, -p.cpu_m, p.name)

    for pod in sorted(pods, key=order):
        fits = [(i, n) for i, n in enumerate(nodes)
                if n.cpu + 1e-9 >= pod.cpu_m and n.mem + 1e-9 >= pod.mem_mib
                and not (pod.anti and pod.anti in n.groups)]
        if not fits:
            nodes.append(_Node(alloc_cpu, alloc_mem))
            fits = [(len(nodes) - 1, nodes[-1])]
        if pod.spread:
            _, node = min(fits, key=lambda t: (t[1].spread.get(pod.spread, 0), -t[1].mem, t[0]))
        elif pod.anti:
            _, node = min(fits, key=lambda t: (-t[1].mem, t[0]))
        else:
            _, node = min(fits, key=lambda t: (t[1].mem - pod.mem_mib, t[0]))
        node.cpu -= pod.cpu_m
        node.mem -= pod.mem_mib
        node.on_demand = node.on_demand or pod.on_demand or not spot_allowed
        node.pods.append(pod.name)
        if pod.anti:
            node.groups.add(pod.anti)
        if pod.spread:
            node.spread[pod.spread] = node.spread.get(pod.spread, 0) + 1
    used = [n for n in nodes if n.pods]
    cost = sum(spec["on_demand"] if n.on_demand else spec["spot"] for n in used)
    return Packing(itype, tuple((n.on_demand, tuple(n.pods)) for n in used), cost)


def best_packing(cfg: Any, pods: list[Pod], pool: Any, prices: Mapping[str, Any], *,
                 min_nodes: int = 0) -> Optional[Packing]:
    """The cheapest :func:`pack` of ``pods`` over the instance types ``pool`` allows (ties: fewer
    nodes, then the type's name), or None when some pod fits none of them."""
    types, _ = pool_types(pool, prices)
    ds = node_daemonsets(cfg)
    overhead = (sum(c for _, c, _ in ds), sum(m for _, _, m in ds))
    spot_allowed = "spot" in pool.capacity_types
    best: Optional[Packing] = None
    for name in sorted(types):
        found = pack(pods, name, types[name], overhead=overhead, min_nodes=min_nodes, spot_allowed=spot_allowed)
        if found and (best is None or (round(found.usd_per_hour, 6), len(found.nodes), found.instance_type)
                      < (round(best.usd_per_hour, 6), len(best.nodes), best.instance_type)):
            best = found
    return best


def fill_existing(cfg: Any, pods: list[Pod], packing: Packing, placed: list[Pod],
                  prices: Mapping[str, Any]) -> list[Pod]:
    """Put ``pods`` into the room ``packing``'s nodes have left (most room first; at most one pod of
    an anti-affinity group per node). Returns the pods that did not fit."""
    alloc_cpu, alloc_mem = node_allocatable(_instance(prices, packing.instance_type))
    ds = node_daemonsets(cfg)
    by_name = {p.name: p for p in placed}
    nodes = [_Node(alloc_cpu - sum(c for _, c, _ in ds) - sum(by_name[n].cpu_m for n in names),
                   alloc_mem - sum(m for _, _, m in ds) - sum(by_name[n].mem_mib for n in names))
             for _, names in packing.nodes]
    left = []
    for pod in pods:
        fits = [(i, n) for i, n in enumerate(nodes) if n.cpu + 1e-9 >= pod.cpu_m and n.mem + 1e-9 >= pod.mem_mib
                and not (pod.anti and pod.anti in n.groups)]
        if not fits:
            left.append(pod)
            continue
        _, node = min(fits, key=lambda t: (-t[1].mem, t[0]))
        node.cpu -= pod.cpu_m
        node.mem -= pod.mem_mib
        if pod.anti:
            node.groups.add(pod.anti)
    return left


def serving_cpu_pods(cfg: Any) -> list[Pod]:
    """The sentiment replicas when ``serving.device`` is cpu, with the Deployment's own requests
    (``workloads/sentiment/component.py``); one per node (its hostname spread is required)."""
    from workloads.sentiment import component as sentiment

    req = sentiment.container_resources(cfg, sentiment.plan(cfg))["requests"]
    return [Pod(f"sentiment {i}", cpu_m(req["cpu"]), mem_mib(req["memory"]), anti="sentiment", owner="serving")
            for i in range(cfg.serving.replicas)]


def ceph_hosts_needed(cfg: Any) -> int:
    """Nodes Ceph needs at least: one per mon, and the hosts (or zones) of its failure domain."""
    return max(cfg.storage.mon_count, cfg.ceph_replicas)


def _always_on_pool(pools: list[Any], on_demand: bool) -> Any:
    """The NodePool Karpenter launches for untainted pods: the cpu pool, else the heaviest plain
    pool (that allows on-demand when a pod requires it)."""
    plain = [p for p in pools if p.accelerator == "none"
             and (not on_demand or any(c in p.capacity_types for c in ("on-demand", "reserved")))]
    if not plain:
        return None
    from infra.config import cpu_pool

    preferred = cpu_pool(pools)
    if preferred in plain:
        return preferred
    return sorted(plain, key=lambda p: -(p.weight or 0))[0]


def always_on(cfg: Any, prices: Mapping[str, Any]) -> dict[str, Any]:
    """The always-on pods of the add-ons and where they run: the cpu-pool nodes they keep up
    (``packing``), or the system node group when Karpenter is off."""
    pods: list[Pod] = []
    if cfg.addons.rook_ceph.enabled:
        pods += ceph_pods(cfg)
    if cfg.addons.monitoring.enabled:
        pods += monitoring_pods(cfg)
    out: dict[str, Any] = {
        "pods": [{"name": p.name, "owner": p.owner, "cpu_m": p.cpu_m, "memory_mib": p.mem_mib,
                  "on_demand": p.on_demand} for p in pods],
        "requests": {"cpu": _r(sum(p.cpu_m for p in pods) / 1000),
                     "memory_gib": _r(sum(p.mem_mib for p in pods) / 1024)},
        "where": None, "pool": None, "packing": None, "notes": [],
    }
    if not pods:
        return out
    notes = out["notes"]
    if not cfg.addons.karpenter.enabled:
        out["where"] = "system"
        sn = cfg.cluster.system_nodes
        spec = _instance(prices, sn.instance_types[0])
        cpu, mem = node_allocatable(spec)
        ds = node_daemonsets(cfg)
        cpu -= sum(c for _, c, _ in ds)
        mem -= sum(m for _, _, m in ds)
        notes.append(f"Karpenter is off: Rook-Ceph and monitoring run on the system node group "
                     f"({out['requests']['cpu']} vCPU, {out['requests']['memory_gib']:.1f} GiB requested; "
                     f"{sn.desired_size} x {sn.instance_types[0]} allot about {sn.desired_size * cpu / 1000:.1f} "
                     f"vCPU, {sn.desired_size * mem / 1024:.1f} GiB before the controllers)")
        if ceph_hosts_needed(cfg) > sn.desired_size and cfg.addons.rook_ceph.enabled:
            notes.append(f"Ceph needs {ceph_hosts_needed(cfg)} hosts but the system node group has "
                         f"{sn.desired_size}: mons stay Pending; raise systemNodes.desiredSize")
        return out

    need_od = any(p.on_demand for p in pods)
    pool = _always_on_pool(list(cfg.pools), need_od)
    if pool is None:
        notes.append("no NodePool without an accelerator" + (" allows on-demand capacity" if need_od else "")
                     + ": the always-on add-on pods stay Pending (not priced)")
        return out
    out["where"] = "karpenter"
    out["pool"] = pool.name
    types, _ = pool_types(pool, prices)
    ds = node_daemonsets(cfg)
    min_nodes = ceph_hosts_needed(cfg) if cfg.addons.rook_ceph.enabled else 0
    best = best_packing(cfg, pods, pool, prices, min_nodes=min_nodes)
    out["pod_objects"] = pods
    if best is None:
        notes.append(f"an always-on pod fits no instance type of pool {pool.name}: not priced")
        return out
    out["packing"] = best
    out["daemonsets"] = [{"name": n, "cpu_m": c, "memory_mib": m} for n, c, m in ds]
    out["min_nodes"] = min_nodes
    spec = types[best.instance_type]
    limits = pool_limits(pool)
    used = {"vcpu": len(best.nodes) * spec["vcpu"], "memory_gib": len(best.nodes) * spec["memory_gib"]}
    over = [d for d in used if used[d] > limits[d] + 1e-9]
    if over:
        notes.append(f"the always-on nodes of pool {pool.name} ({used['vcpu']} vCPU, {used['memory_gib']} GiB) "
                     f"exceed its limits ({', '.join(over)}): Karpenter stops short and pods stay Pending")
    return out


def ceph_capacity_note(cfg: Any) -> Optional[str]:
    """What the Ceph-backed PVCs may grow to, against Ceph's usable capacity."""
    if not cfg.addons.rook_ceph.enabled:
        return None
    from components import monitoring, storage

    ds = storage.device_set(cfg)
    raw = ds["count"] * quantity_gib(ds["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"])
    usable = raw / cfg.ceph_replicas
    claims: list[tuple[str, float]] = []
    if cfg.addons.monitoring.enabled:
        v = monitoring.monitoring_values(cfg, storage_class=storage.BLOCK_STORAGE_CLASS)
        for name, vol in (("Prometheus", v["prometheus"]["prometheusSpec"]["storageSpec"]),
                          ("Alertmanager", v["alertmanager"]["alertmanagerSpec"]["storage"])):
            if vol:
                claims.append((name, quantity_gib(vol["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"])))
        if v["grafana"]["persistence"].get("enabled"):
            claims.append(("Grafana", quantity_gib(v["grafana"]["persistence"]["size"])))
    if cfg.training.enabled or cfg.serving.enabled:
        claims += [("datasets", float(cfg.training.datasets_size_gib)), ("models", float(cfg.training.models_size_gib))]
    total = sum(g for _, g in claims)
    text = (f"Ceph-backed PVCs ({', '.join(f'{n} {g:g} GiB' for n, g in claims) or 'none'}) are thin images inside the "
            f"OSD volumes (billed above): {total:g} GiB if full, of {usable:g} GiB usable "
            f"({raw:g} GiB raw / {cfg.ceph_replicas} replicas)")
    if total > CEPH_NEARFULL_RATIO * usable:
        text += (f"; above Ceph's nearfull ratio ({CEPH_NEARFULL_RATIO:.0%}) once they fill: raise "
                 "storage.osdSizeGib or osdCount")
    return text


def estimate(cfg: Any, prices: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The cost estimate of a validated ``PlatformConfig`` (pure; no AWS calls)."""
    prices = prices if prices is not None else load_prices(cfg.region)
    if prices.get("region") != cfg.region:
        raise PriceTableError(f"price table is for {prices.get('region')}, stack is in {cfg.region}")
    svc = prices["services"]
    hpm = float(prices.get("hours_per_month", 730))
    gp3_hour = svc["gp3_per_gb_month"] / hpm
    items: list[dict[str, Any]] = []
    notes: list[str] = []

    # --- idle floor
    eks_rate, eks_note = _eks_hourly(cfg.cluster.version, prices)
    items.append(_item("EKS control plane", "eks", 1, "cluster", eks_rate, hpm, scope="idle",
                       note=eks_note))

    sn = cfg.cluster.system_nodes
    sys_type = sn.instance_types[0]
    items.append(_item(f"system nodes ({sys_type}, on-demand)", "compute", sn.desired_size,
                       "node", _instance(prices, sys_type)["on_demand"], hpm, scope="idle",
                       note=f"managed node group desiredSize {sn.desired_size} (max {sn.max_size})"))
    items.append(_item("system node root volumes (gp3)", "storage",
                       sn.desired_size * sn.disk_size_gib, "GiB", gp3_hour, hpm, scope="idle"))

    if getattr(cfg.vpc, "byo", False):
        notes.append("bring-your-own VPC: its NAT gateways are not counted")
    else:
        nats = cfg.vpc.az_count if cfg.nat_mode == "perAz" else 1
        items.append(_item(f"NAT gateways ({cfg.nat_mode})", "network", nats, "gateway",
                           svc["nat_gateway_per_hour"], hpm, scope="idle",
                           note=f"plus ${svc['nat_gateway_per_gb_processed']}/GB processed "
                                "(excluded)"))
        items.append(_item("public IPv4 (NAT gateway EIPs)", "network", nats, "address",
                           svc["public_ipv4_per_hour"], hpm, scope="idle"))

    serving = cfg.serving
    if serving.enabled and serving.exposure != "none":
        kind = "ALB" if serving.exposure == "ingress" else "NLB"
        rate = svc["alb_per_hour"] if kind == "ALB" else svc["nlb_per_hour"]
        lcu = "alb_per_lcu_hour" if kind == "ALB" else "nlb_per_nlcu_hour"
        items.append(_item(f"{kind} for serving ({'internet-facing' if serving.public else 'internal'})",
                           "network", 1, "load balancer", rate, hpm, scope="idle",
                           note=f"plus ${svc[lcu]}/LCU-hour (excluded)"))
        if serving.public:
            items.append(_item(f"public IPv4 ({kind}, one per AZ)", "network", cfg.vpc.az_count,
                               "address", svc["public_ipv4_per_hour"], hpm, scope="idle"))

    if cfg.addons.rook_ceph.enabled:
        from components import storage

        ds = storage.device_set(cfg)
        osd_gib = quantity_gib(ds["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"])
        items.append(_item(f"Ceph OSD volumes ({ds['count']} x {osd_gib:g} GiB gp3)", "storage",
                           ds["count"] * osd_gib, "GiB", gp3_hour, hpm, scope="idle"))
        mon = storage.ceph_cluster_spec(cfg)["mon"]
        mon_gib = quantity_gib(mon["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"])
        items.append(_item(f"Ceph mon volumes ({mon['count']} x {mon_gib:g} GiB gp3)", "storage",
                           mon["count"] * mon_gib, "GiB", gp3_hour, hpm, scope="idle",
                           note="each mon keeps its store on a PVC of ebs-gp3-encrypted"))
        ceph_note = ceph_capacity_note(cfg)
        if ceph_note:
            notes.append(ceph_note)

    # --- always-on add-on pods (Rook-Ceph, monitoring) and the cpu-pool nodes they keep up
    pools = list(cfg.pools)
    ao = always_on(cfg, prices)
    notes.extend(ao["notes"])
    packing: Optional[Packing] = ao["packing"]
    ao_pool = next((p for p in pools if p.name == ao["pool"]), None)
    always_on_info: dict[str, Any] = {
        "where": ao["where"], "pool": ao["pool"], "requests": ao["requests"], "pods": ao["pods"],
        "nodes": 0, "instance_type": None, "on_demand_nodes": 0, "spot_nodes": 0, "usd_per_hour": 0.0,
    }
    if packing is not None and ao_pool is not None:
        spec = _instance(prices, packing.instance_type)
        owners = sorted({p["owner"] for p in ao["pods"]})
        ceph_count = {}
        for p in ao["pods"]:
            if p["owner"] == "Rook-Ceph":
                kind = p["name"].split()[1]
                ceph_count[kind] = ceph_count.get(kind, 0) + 1
        plural = {"mon": "mons", "mgr": "mgrs", "osd": "OSDs", "mds": "MDSes"}
        what = ", ".join(f"{n} {plural[k] if n > 1 else k.upper() if k in ('osd', 'mds') else k}"
                         for k, n in ceph_count.items())
        mon_pods = [p["name"] for p in ao["pods"] if p["owner"] == "monitoring"]
        detail = "; ".join(x for x in (f"Rook-Ceph {what}" if what else "",
                                       f"monitoring: {', '.join(mon_pods)}" if mon_pods else "") if x)
        reqs = ao["requests"]
        hosts = (f"at least {ao['min_nodes']} hosts (one per mon, and the hosts of Ceph's failure domain); "
                 if ao["min_nodes"] else "")
        basis = (f"{reqs['cpu']:g} vCPU / {reqs['memory_gib']:.1f} GiB requested ({detail}); {hosts}"
                 f"per-node DaemonSets {', '.join(d['name'] for d in ao['daemonsets'])}")
        for od, count in (("on-demand", packing.on_demand_nodes), ("spot", packing.spot_nodes)):
            if count:
                key = "on_demand" if od == "on-demand" else "spot"
                items.append(_item(f"always-on {ao_pool.name}-pool nodes ({count} x {packing.instance_type}, {od}) "
                                   f"for {' and '.join(owners)}", "compute", count, "node", spec[key], hpm,
                                   scope="idle", note=basis if od == "on-demand" or not packing.on_demand_nodes
                                   else "pods that may run on spot and did not fit on the on-demand nodes"))
        root = ao_pool.root_volume
        items.append(_item(f"always-on {ao_pool.name}-pool node root volumes ({len(packing.nodes)} x {root} GiB gp3)",
                           "storage", len(packing.nodes) * root, "GiB", gp3_hour, hpm, scope="idle"))
        always_on_info.update(
            nodes=len(packing.nodes), instance_type=packing.instance_type, min_nodes=ao["min_nodes"],
            on_demand_nodes=packing.on_demand_nodes, spot_nodes=packing.spot_nodes,
            usd_per_hour=_r(packing.usd_per_hour + len(packing.nodes) * root * gp3_hour),
            placement=[{"capacity_type": "on-demand" if od else "spot", "pods": list(names)}
                       for od, names in packing.nodes],
            daemonsets=ao["daemonsets"])
        notes.append(
            f"always-on nodes: the add-on pods' requests are bin-packed onto one instance type of pool "
            f"{ao_pool.name} (the cheapest packing of every type it allows wins: {len(packing.nodes)} x "
            f"{packing.instance_type}); allocatable is Karpenter's estimate (kube-reserved, 7.5% VM overhead, "
            f"eviction threshold) less the DaemonSets' requests. Containers without declared requests (Rook's "
            f"crash collector and ceph-exporter, the Ceph CSI node plugins, the Prometheus config reloader) "
            f"and transient pods (OSD prepare jobs) are not counted")

    idle = sum(i["usd_per_hour"] for i in items if i["scope"] == "idle")

    # --- serving replicas (always on)
    serving_hour = 0.0
    serving_info: dict[str, Any] | None = None
    if serving.enabled:
        pool = serving.pool_for(pools)
        if pool is None:
            notes.append(f"serving on {serving.device}: no matching NodePool, not priced")
        elif serving.device == "cpu":
            spot_ok = "spot" in pool.capacity_types
            root = pool.root_volume
            sv_pods = serving_cpu_pods(cfg)
            shared = ao_pool is not None and pool.name == ao_pool.name and packing is not None
            # The always-on nodes exist already (and Karpenter never replaces them: do-not-disrupt), so
            # replicas first take the room they leave, then new nodes of the cheapest fitting type.
            left = fill_existing(cfg, sv_pods, packing, ao["pod_objects"], prices) if shared else sv_pods
            new_nodes = best_packing(cfg, left, pool, prices) if left else None
            if left and new_nodes is None:
                notes.append(f"serving on cpu: a replica fits no instance type of pool {pool.name}, not priced")
            else:
                count = len(new_nodes.nodes) if new_nodes else 0
                itype = new_nodes.instance_type if new_nodes else (packing.instance_type if shared else None)
                hour = new_nodes.usd_per_hour if new_nodes else 0.0
                on_shared = len(sv_pods) - len(left)
                items.append(_item(f"serving: {serving.replicas} cpu replicas ({on_shared} on the always-on nodes, "
                                   f"{count} x {itype or '-'} {'spot' if spot_ok else 'on-demand'})", "compute", count,
                                   "node", hour / count if count else 0.0, hpm, scope="serving",
                                   note="the Deployment's own requests, one replica per node (required hostname "
                                        "spread)"))
                vol = _item(f"serving node root volumes ({count} x {root} GiB gp3)", "storage", count * root,
                            "GiB", gp3_hour, hpm, scope="serving")
                items.append(vol)
                serving_hour = hour + vol["usd_per_hour"]
                serving_info = {"pool": pool.name, "instance_type": itype, "count": count,
                                "on_always_on_nodes": on_shared,
                                "capacity_type": "spot" if spot_ok else "on-demand", "usd_per_hour": _r(serving_hour),
                                "on_demand_usd_per_hour": None}
        else:
            types, _ = pool_types(pool, prices)
            dim = ACCEL_DIM.get(pool.accelerator, "vcpu")
            need = serving.replicas
            spot_ok = "spot" in pool.capacity_types
            key = "spot" if spot_ok else "on_demand"
            best = _cheapest_hosting(types, dim, need, key)
            od = _cheapest_hosting(types, dim, need, "on_demand")
            if best:
                name, count, _ = best
                serving_hour = count * types[name][key]
                items.append(_item(f"serving: {serving.replicas} replicas on {count} x {name} "
                                   f"({'spot' if spot_ok else 'on-demand'})", "compute", count,
                                   "node", types[name][key], hpm, scope="serving",
                                   note=f"one {dim} per replica; on-demand: "
                                        f"${od[2]:.4f}/h" if od else ""))
                root = pool.root_volume
                vol = _item(f"serving node root volumes ({count} x {root} GiB gp3)", "storage",
                            count * root, "GiB", gp3_hour, hpm, scope="serving")
                items.append(vol)
                serving_hour += vol["usd_per_hour"]
                serving_info = {"pool": pool.name, "instance_type": name, "count": count,
                                "capacity_type": "spot" if spot_ok else "on-demand",
                                "usd_per_hour": _r(serving_hour),
                                "on_demand_usd_per_hour": _r(od[2] + vol["usd_per_hour"]) if od else None}

    # --- every NodePool at its limits (the always-on nodes count against their pool's limits)
    pool_out = []
    max_od = max_spot = 0.0
    for pool in pools:
        types, missing = pool_types(pool, prices)
        if missing:
            notes.append(f"pool {pool.name}: no prices for {', '.join(missing)} (not counted)")
        limits = pool_limits(pool)
        idle_nodes = 0
        room = dict(limits)
        if packing is not None and ao_pool is not None and pool.name == ao_pool.name:
            idle_nodes = len(packing.nodes)
            spec = _instance(prices, packing.instance_type)
            for d in room:
                room[d] = max(0.0, room[d] - idle_nodes * spec.get(d, 0))
        root = pool.root_volume
        allows_od = any(c in pool.capacity_types for c in ("on-demand", "reserved"))
        allows_spot = "spot" in pool.capacity_types
        per: dict[str, Any] = {}
        for label, key in (("on_demand", "on_demand"), ("spot", "spot")):
            chosen = fill_to_limits(types, room, key) if all(room[d] > 0 for d in ("vcpu", "memory_gib")) else []
            nodes = sum(c for _, c in chosen)
            compute = sum(types[n][key] * c for n, c in chosen)
            volumes = nodes * root * gp3_hour
            per[label] = {"usd_per_hour": _r(compute + volumes), "nodes": nodes,
                          "instances": [{"type": n, "count": c, "unit_usd_per_hour": types[n][key]}
                                        for n, c in chosen]}
        worst = per["on_demand"] if allows_od else per["spot"]
        typical = per["spot"] if allows_spot else per["on_demand"]
        max_od += worst["usd_per_hour"]
        max_spot += typical["usd_per_hour"]
        mix = ", ".join(f"{i['count']} x {i['type']}" for i in worst["instances"]) or "nothing fits"
        beyond = f" beyond its {idle_nodes} always-on nodes" if idle_nodes else ""
        items.append(_item(f"pool {pool.name} at its limits{beyond} ({mix})",
                           "compute", 1, "pool", worst["usd_per_hour"], hpm, scope="max",
                           note=("on-demand" if allows_od else "spot") + " prices, incl. root volumes"))
        pool_out.append({
            "name": pool.name, "accelerator": pool.accelerator,
            "capacity_types": list(pool.capacity_types),
            "limits": {k: (int(v) if float(v).is_integer() else v) for k, v in limits.items()},
            "idle_nodes": idle_nodes,
            "max_on_demand": per["on_demand"] if allows_od else None,
            "max_spot": per["spot"] if allows_spot else None,
        })

    excluded = [
        "NAT gateway data processing ($/GB) and data transfer",
        "load balancer LCUs",
        "CloudWatch logs of the control plane",
        "EBS snapshots (VolumeSnapshotClasses), ECR storage",
        "transient pods (OSD prepare jobs, data-prep and training jobs) and the nodes they start",
    ]
    out = {
        "stack": cfg.stack,
        "region": cfg.region,
        "currency": prices.get("currency", "USD"),
        "price_table": {"date": prices.get("date"), "source": prices.get("source"),
                        "spot_note": prices.get("spot_note")},
        "hours_per_month": hpm,
        "idle_usd_per_hour": _r(idle),
        "idle_usd_per_month": round(idle * hpm, 2),
        "serving_usd_per_hour": _r(serving_hour),
        "idle_with_serving_usd_per_hour": _r(idle + serving_hour),
        "idle_with_serving_usd_per_month": round((idle + serving_hour) * hpm, 2),
        "max_usd_per_hour": _r(idle + max_od),
        "max_on_demand_usd_per_hour": _r(idle + max_od),
        "max_spot_usd_per_hour": _r(idle + max_spot),
        "max_usd_per_month": round((idle + max_od) * hpm, 2),
        "serving": serving_info,
        "always_on": always_on_info,
        "pools": pool_out,
        "items": items,
        "excluded": excluded,
        "notes": notes,
    }
    return out


def _money(x: float) -> str:
    return f"${x:,.2f}" if x >= 1 else f"${x:,.4f}"


def format_text(est: Mapping[str, Any]) -> str:
    lines = [f"Cost estimate for stack '{est['stack']}' ({est['region']}, price table "
             f"{est['price_table']['date']})", ""]

    def section(title: str, scope: str) -> None:
        rows = [i for i in est["items"] if i["scope"] == scope]
        if not rows:
            return
        lines.append(title)
        for i in rows:
            lines.append(f"  {i['name']:<72} {_money(i['usd_per_hour']):>10}/h")
        lines.append("")

    section("Idle (no jobs, NodePools at zero):", "idle")
    lines.append(f"  {'idle total':<72} {_money(est['idle_usd_per_hour']):>10}/h  "
                 f"≈ {_money(est['idle_usd_per_month'])}/month")
    lines.append("")
    section("Always-on serving:", "serving")
    if est["serving_usd_per_hour"]:
        lines.append(f"  {'idle + serving':<72} {_money(est['idle_with_serving_usd_per_hour']):>10}/h  "
                     f"≈ {_money(est['idle_with_serving_usd_per_month'])}/month")
        lines.append("")
    section("Every NodePool at its limits (worst case):", "max")
    lines.append(f"  {'max, on-demand where allowed':<72} {_money(est['max_usd_per_hour']):>10}/h")
    lines.append(f"  {'max, spot where allowed':<72} {_money(est['max_spot_usd_per_hour']):>10}/h")
    lines.append("")
    lines.append("Excluded: " + "; ".join(est["excluded"]) + ".")
    for note in est["notes"]:
        lines.append(f"Note: {note}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m infra cost",
                                description="Idle and maximum $/hour of a stack from the shipped "
                                            "price table.")
    p.add_argument("--stack", default="dev")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--project-dir", type=Path, default=REPO, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    from infra.config import ConfigError, load_stack_config

    try:
        cfg = load_stack_config(args.stack, args.project_dir)
    except ConfigError as exc:
        print("invalid stack configuration:\n  " + "\n  ".join(exc.problems), file=sys.stderr)
        return 2
    try:
        est = estimate(cfg)
    except PriceTableError as exc:
        print(f"cost: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(est, indent=2, sort_keys=True))
    else:
        print(format_text(est), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
