"""Every NodePool filled to its ``limits`` (Karpenter never launches past them): the estimate's maximum.

The always-on nodes of a pool count against its limits, so the pool is filled only with the room
they leave. The worst case is on-demand wherever the pool allows on-demand; the typical one is
spot where it allows spot.
"""

from __future__ import annotations

from typing import Any, Optional

from .packing import Packing
from .reserved import Reserved, reserved_amount
from .table import Ledger, _instance, _r, fill_to_limits, pool_limits, pool_types


def _pool_at_limits(led: Ledger, pool: Any, packing: Optional[Packing], ao_pool: Any,
                    reserved: Reserved) -> tuple[dict[str, Any], float, float]:
    """One pool at its limits: (its ``pools`` entry, worst $/hour, typical $/hour); adds its line item.

    Reserved nodes (already paid, in the idle floor) and always-on nodes count against the limits."""
    types, missing = pool_types(pool, led.prices)
    if missing:
        led.notes.append(f"pool {pool.name}: no prices for {', '.join(missing)} (not counted)")
    limits = pool_limits(pool)
    idle_nodes = 0
    room = dict(limits)
    if packing is not None and ao_pool is not None and pool.name == ao_pool.name:
        idle_nodes = len(packing.nodes)
        spec = _instance(led.prices, packing.instance_type)
        for d in room:
            room[d] = max(0.0, room[d] - idle_nodes * spec.get(d, 0))
    held = reserved.get(pool.name, [])
    for d in room:
        room[d] = max(0.0, room[d] - reserved_amount(led.prices, held, d))
    root = pool.root_volume
    allows_od = "on-demand" in pool.capacity_types
    allows_spot = "spot" in pool.capacity_types
    if not allows_od and not allows_spot:  # reserved only: Karpenter launches nothing beyond the reservations
        room = {d: 0.0 for d in room}
    per: dict[str, Any] = {}
    for label, key in (("on_demand", "on_demand"), ("spot", "spot")):
        chosen = fill_to_limits(types, room, key) if all(room[d] > 0 for d in room) else []
        nodes = sum(c for _, c in chosen)
        compute = sum(types[n][key] * c for n, c in chosen)
        volumes = nodes * root * led.gp3_hour
        per[label] = {"usd_per_hour": _r(compute + volumes), "nodes": nodes,
                      "instances": [{"type": n, "count": c, "unit_usd_per_hour": types[n][key]}
                                    for n, c in chosen]}
    worst = per["on_demand"] if allows_od else per["spot"]
    typical = per["spot"] if allows_spot else per["on_demand"]
    mix = ", ".join(f"{i['count']} x {i['type']}" for i in worst["instances"]) or (
        "nothing fits" if allows_od or allows_spot else "reserved only: nothing beyond the reservations")
    beyond = f" beyond its {idle_nodes} always-on nodes" if idle_nodes else ""
    if held:
        beyond += f" beyond its {sum(n for _, n in held)} reserved nodes (already paid)"
    led.add(f"pool {pool.name} at its limits{beyond} ({mix})",
            "compute", 1, "pool", worst["usd_per_hour"], scope="max",
            note=("on-demand" if allows_od or not allows_spot else "spot") + " prices, incl. root volumes")
    entry = {
        "name": pool.name, "accelerator": pool.accelerator,
        "capacity_types": list(pool.capacity_types),
        "limits": {k: (int(v) if float(v).is_integer() else v) for k, v in limits.items()},
        "idle_nodes": idle_nodes,
        "reserved_nodes": [{"type": t, "count": n} for t, n in held],
        "max_on_demand": per["on_demand"] if allows_od or not allows_spot else None,
        "max_spot": per["spot"] if allows_spot else None,
    }
    return entry, worst["usd_per_hour"], typical["usd_per_hour"]


def pools_at_limits(led: Ledger, pools: list[Any], packing: Optional[Packing],
                    ao_pool: Any, reserved: Optional[Reserved] = None) -> tuple[list[dict[str, Any]], float, float]:
    """Every pool at its limits: (the ``pools`` field, worst-case $/hour, typical $/hour) beyond idle."""
    pool_out = []
    max_od = max_spot = 0.0
    for pool in pools:
        entry, worst, typical = _pool_at_limits(led, pool, packing, ao_pool, reserved or {})
        max_od += worst
        max_spot += typical
        pool_out.append(entry)
    return pool_out, max_od, max_spot
