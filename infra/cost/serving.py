"""The serving replicas' share of the estimate: always on, priced at spot where their pool allows it.

On cpu the Deployment's own requests are packed first into the room the always-on nodes leave, then
onto new nodes of the cheapest fitting type (one replica per node); on an accelerator, one device
per replica on the cheapest hosting instance type, except where a device holds several replicas
(``serving.replicas_per_device``): a GPU shared by ``gpuSharing``, or an inf2 device, whose two NeuronCores
take one replica each (``aws.amazon.com/neuroncore: 1``).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from .packing import Packing, best_packing, fill_existing
from .pods import serving_cpu_pods
from .reserved import Reserved, reserved_amount
from .table import ACCEL_DIM, Ledger, _cheapest_hosting, _r, pool_types


def _serving_cpu(cfg: Any, led: Ledger, pool: Any, ao: Mapping[str, Any], packing: Optional[Packing],
                 ao_pool: Any) -> tuple[float, dict[str, Any] | None]:
    serving = cfg.serving
    spot_ok = "spot" in pool.capacity_types
    root = pool.root_volume
    sv_pods = serving_cpu_pods(cfg)
    shared = ao_pool is not None and pool.name == ao_pool.name and packing is not None
    # The always-on nodes exist already (and Karpenter never replaces them: do-not-disrupt), so
    # replicas first take the room they leave, then new nodes of the cheapest fitting type.
    left = fill_existing(cfg, sv_pods, packing, ao["pod_objects"], led.prices) if shared else sv_pods
    new_nodes = best_packing(cfg, left, pool, led.prices) if left else None
    if left and new_nodes is None:
        led.notes.append(f"serving on cpu: a replica fits no instance type of pool {pool.name}, not priced")
        return 0.0, None
    count = len(new_nodes.nodes) if new_nodes else 0
    itype = new_nodes.instance_type if new_nodes else (packing.instance_type if shared else None)
    hour = new_nodes.usd_per_hour if new_nodes else 0.0
    on_shared = len(sv_pods) - len(left)
    led.add(f"serving: {serving.replicas} cpu replicas ({on_shared} on the always-on nodes, "
            f"{count} x {itype or '-'} {'spot' if spot_ok else 'on-demand'})", "compute", count,
            "node", hour / count if count else 0.0, scope="serving",
            note="the Deployment's own requests, one replica per node (required hostname "
                 "spread)")
    vol = led.add(f"serving node root volumes ({count} x {root} GiB gp3)", "storage", count * root,
                  "GiB", led.gp3_hour, scope="serving")
    serving_hour = hour + vol["usd_per_hour"]
    return serving_hour, {"pool": pool.name, "instance_type": itype, "count": count,
                          "on_always_on_nodes": on_shared,
                          "capacity_type": "spot" if spot_ok else "on-demand", "usd_per_hour": _r(serving_hour),
                          "on_demand_usd_per_hour": None}


def _serving_accelerated(cfg: Any, led: Ledger, pool: Any, reserved: Reserved) -> tuple[float, dict[str, Any] | None]:
    serving = cfg.serving
    types, _ = pool_types(pool, led.prices)
    dim = ACCEL_DIM.get(pool.accelerator, "vcpu")
    # With gpuSharing each GPU holds replicasPerGpu replicas, an inf2 device one per NeuronCore: the node price is
    # divided among them (the price table counts Neuron devices).
    per = serving.replicas_per_device if dim in ("gpu", "neuron") else 1
    # Devices of the pool's reservations are already paid (idle floor): replicas take them first.
    held = int(reserved_amount(led.prices, reserved.get(pool.name, []), dim)) * per
    need = max(0, serving.replicas - held)
    if held:
        led.add(f"serving: {serving.replicas - need} replicas on the reserved nodes of pool {pool.name}", "compute",
                serving.replicas - need, "replica", 0.0, scope="serving",
                note=f"one {dim} each of the {held} the reservations hold: already paid (idle floor)")
    if need == 0:
        return 0.0, {"pool": pool.name, "instance_type": None, "count": 0, "capacity_type": "reserved",
                     "usd_per_hour": 0.0, "on_demand_usd_per_hour": None}
    if pool.capacity_types == ["reserved"]:
        led.notes.append(f"serving: {need} replicas find no reserved {dim} in pool {pool.name} (reserved only): "
                         "they stay pending, not priced")
        return 0.0, None
    spot_ok = "spot" in pool.capacity_types
    key = "spot" if spot_ok else "on_demand"
    devices = -(-need // per)  # ceil: a partly used GPU or Neuron device costs a whole one
    if per > 1 and serving.zone_spread_for(cfg.environment) == "required":
        # replicas sharing a device spread over every zone first (required zone spread): a device per zone at least
        devices = max(devices, min(need, cfg.vpc.az_count))
    best = _cheapest_hosting(types, dim, devices, key)
    od = _cheapest_hosting(types, dim, devices, "on_demand")
    if not best:
        return 0.0, None
    name, count, _ = best
    serving_hour = count * types[name][key]
    led.add(f"serving: {need} replicas on {count} x {name} "
            f"({'spot' if spot_ok else 'on-demand'})", "compute", count,
            "node", types[name][key], scope="serving",
            note=(_per_device_note(serving, per, devices, dim) + f"on-demand: ${od[2]:.4f}/h") if od else "")
    root = pool.root_volume
    vol = led.add(f"serving node root volumes ({count} x {root} GiB gp3)", "storage",
                  count * root, "GiB", led.gp3_hour, scope="serving")
    serving_hour += vol["usd_per_hour"]
    return serving_hour, {"pool": pool.name, "instance_type": name, "count": count,
                          "capacity_type": "spot" if spot_ok else "on-demand",
                          "usd_per_hour": _r(serving_hour),
                          "on_demand_usd_per_hour": _r(od[2] + vol["usd_per_hour"]) if od else None}


def _per_device_note(serving: Any, per: int, devices: int, dim: str) -> str:
    """How the replicas map onto devices, for the line item's note."""
    if serving.gpu_sharing and per > 1:
        return f"{per} replicas per shared GPU ({serving.gpu_sharing.strategy}): {devices} GPUs; "
    if per > 1:
        return f"one NeuronCore per replica, {per} per {serving.device} device: {devices} devices; "
    return f"one {dim} per replica; "


def serving_items(cfg: Any, led: Ledger, pools: list[Any], ao: Mapping[str, Any], packing: Optional[Packing],
                  ao_pool: Any, reserved: Optional[Reserved] = None) -> tuple[float, dict[str, Any] | None]:
    """Add the serving line items; returns (serving $/hour, the estimate's ``serving`` field)."""
    serving = cfg.serving
    if not serving.enabled:
        return 0.0, None
    pool = serving.pool_for(pools)
    if pool is None:
        led.notes.append(f"serving on {serving.device}: no matching NodePool, not priced")
        return 0.0, None
    if serving.device == "cpu":
        return _serving_cpu(cfg, led, pool, ao, packing, ao_pool)
    return _serving_accelerated(cfg, led, pool, reserved or {})
