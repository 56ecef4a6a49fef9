"""Reserved capacity (ODCRs and EC2 Capacity Blocks for ML) in the estimate: paid whether used or not.

A reservation is billed for every hour it exists, whether Karpenter has launched into it or not, so
its nodes are part of the idle floor, counted once, at the table's on-demand rate (what an ODCR
bills; a Capacity Block is paid upfront at its own price, so its line is an upper bound). Nodes
launched into it then cost nothing more: they count against the pool's limits (the pool is filled
only with the room they leave, like the always-on nodes) and serving replicas take their devices
first. A reservation selected by tags, or given without ``instanceType``/``instanceCount``, cannot
be priced: a note says so.
"""

from __future__ import annotations

from typing import Any, Mapping

from .table import Ledger, known_instance

#: pool name -> [(instance type, count)] of its priced reservations
Reserved = Mapping[str, list[tuple[str, int]]]


def _describe(r: Any) -> str:
    return r.id or "tags " + ", ".join(f"{k}={v}" for k, v in sorted((r.tags or {}).items()))


def reserved_items(led: Ledger, pools: list[Any]) -> dict[str, list[tuple[str, int]]]:
    """Add an idle line per priced reservation; returns each pool's reserved nodes."""
    out: dict[str, list[tuple[str, int]]] = {}
    for pool in pools:
        kind = "Capacity Block" if pool.capacity_reservation_type == "capacity-block" else "reservation"
        for r in pool.capacity_reservations:
            if r.instance_type is None or r.instance_count is None:
                led.notes.append(f"pool {pool.name}: {kind} {_describe(r)} is not priced (give instanceType and "
                                 "instanceCount); it is paid whether used or not")
                continue
            spec = known_instance(led.prices, r.instance_type)
            led.add(f"reserved capacity of pool {pool.name}: {_describe(r)} ({r.instance_count} x {r.instance_type}, "
                    f"{kind})", "compute", r.instance_count, "node", spec["on_demand"] if spec else None, scope="idle",
                    note="already paid: billed every hour whether Karpenter uses it or not, so counted once here and "
                         "not again at the pool's limits or for serving; on-demand rate (a Capacity Block's upfront "
                         "price differs)")
            if spec:
                out.setdefault(pool.name, []).append((r.instance_type, r.instance_count))
    return out


def reserved_amount(prices: Mapping[str, Any], nodes: list[tuple[str, int]], dim: str) -> float:
    """How much of ``dim`` (vcpu, memory_gib, gpu, neuron) the reserved nodes hold."""
    return float(sum(prices["instances"][t].get(dim, 0) * n for t, n in nodes))
