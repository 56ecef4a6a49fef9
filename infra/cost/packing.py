"""Bin-packing the always-on pods onto nodes of the cpu pool: Karpenter's allocatable estimate,
:func:`pack`, the cheapest packing over a pool's types, and :func:`always_on`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from .pods import Pod, ceph_pods, monitoring_pods, node_daemonsets
from .table import _instance, _r, pool_limits, pool_types


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
        spec = prices["instances"].get(sn.instance_types[0])
        if spec is None:  # a valid type the price table lacks: no capacity figure to compare with
            notes.append(f"Karpenter is off: Rook-Ceph and monitoring run on the system node group; "
                         f"{sn.instance_types[0]} is not in the price table, so its capacity is not compared")
            return out
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
