"""Cost estimate of a stack from the price table shipped in ``infra/prices/<region>.json``.

``python -m infra cost --stack dev [--json]``

* **idle** $/hour: what the platform costs with no jobs and every Karpenter NodePool at zero:
  EKS control plane, the system node group (and its root volumes), NAT gateways (and their
  public IPv4 addresses), the serving load balancer, and the gp3 volumes of the Ceph OSDs and
  Prometheus. GPU/Neuron/cpu-pool nodes: none.
* **serving**: the sample sentiment Deployment keeps ``serving.replicas`` pods on its device
  (one device each) all the time; ``idle_with_serving_usd_per_hour`` adds that, priced at spot
  where the pool allows spot (Karpenter launches spot first), at on-demand otherwise.
* **max** $/hour: idle plus every NodePool filled to its ``limits`` (Karpenter never launches
  past them) with the instance types the pool allows, chosen greedily for the highest cost.
  ``max_usd_per_hour`` is the worst case: on-demand wherever the pool allows on-demand.
  ``max_spot_usd_per_hour`` is the same capacity at typical spot prices where spot is allowed.

Excluded (usage-based): NAT data processing ($/GB), load balancer LCUs, data transfer,
CloudWatch logs, EBS snapshots, ECR storage. ``estimate(cfg)`` is pure: the same config and
table give the same numbers (time-dependent prices, like EKS extended support, are judged at
the table's date).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from datetime import date
from pathlib import Path
from typing import Any, Iterable, Mapping

PRICES_DIR = Path(__file__).resolve().parent / "prices"
REPO = Path(__file__).resolve().parents[1]
DEFAULT_NODE_ROOT_GIB = 20  # Karpenter's AL2023 default root volume
SERVING_CPU_PER_REPLICA = 1  # vCPU assumed per replica when serving runs on the cpu pool

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
        items.append(_item(f"Ceph OSD volumes ({cfg.storage.osd_count} x "
                           f"{cfg.storage.osd_size_gib} GiB gp3)", "storage",
                           cfg.storage.osd_count * cfg.storage.osd_size_gib, "GiB", gp3_hour, hpm,
                           scope="idle"))
    if cfg.addons.monitoring.enabled:
        items.append(_item(f"Prometheus volume ({cfg.monitoring.storage_gib} GiB gp3)", "storage",
                           cfg.monitoring.storage_gib, "GiB", gp3_hour, hpm, scope="idle"))

    idle = sum(i["usd_per_hour"] for i in items if i["scope"] == "idle")

    # --- serving replicas (always on)
    pools = list(cfg.pools)
    serving_hour = 0.0
    serving_info: dict[str, Any] | None = None
    if serving.enabled:
        want = SERVING_POOL[serving.device]
        pool = next((p for p in pools if p.accelerator == want), None)
        if pool is None:
            notes.append(f"serving on {serving.device}: no matching NodePool, not priced")
        else:
            types, _ = pool_types(pool, prices)
            dim = ACCEL_DIM.get(pool.accelerator, "vcpu")
            need = serving.replicas * (1 if dim != "vcpu" else SERVING_CPU_PER_REPLICA)
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
                root = pool.root_volume_gib or DEFAULT_NODE_ROOT_GIB
                vol = _item(f"serving node root volumes ({count} x {root} GiB gp3)", "storage",
                            count * root, "GiB", gp3_hour, hpm, scope="serving")
                items.append(vol)
                serving_hour += vol["usd_per_hour"]
                serving_info = {"pool": pool.name, "instance_type": name, "count": count,
                                "capacity_type": "spot" if spot_ok else "on-demand",
                                "usd_per_hour": _r(serving_hour),
                                "on_demand_usd_per_hour": _r(od[2] + vol["usd_per_hour"]) if od else None}

    # --- every NodePool at its limits
    pool_out = []
    max_od = max_spot = 0.0
    for pool in pools:
        types, missing = pool_types(pool, prices)
        if missing:
            notes.append(f"pool {pool.name}: no prices for {', '.join(missing)} (not counted)")
        limits = pool_limits(pool)
        root = pool.root_volume_gib or DEFAULT_NODE_ROOT_GIB
        allows_od = any(c in pool.capacity_types for c in ("on-demand", "reserved"))
        allows_spot = "spot" in pool.capacity_types
        per: dict[str, Any] = {}
        for label, key in (("on_demand", "on_demand"), ("spot", "spot")):
            chosen = fill_to_limits(types, limits, key)
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
        items.append(_item(f"pool {pool.name} at its limits ({mix})",
                           "compute", 1, "pool", worst["usd_per_hour"], hpm, scope="max",
                           note=("on-demand" if allows_od else "spot") + " prices, incl. root volumes"))
        pool_out.append({
            "name": pool.name, "accelerator": pool.accelerator,
            "capacity_types": list(pool.capacity_types),
            "limits": {k: (int(v) if float(v).is_integer() else v) for k, v in limits.items()},
            "idle_nodes": 0,
            "max_on_demand": per["on_demand"] if allows_od else None,
            "max_spot": per["spot"] if allows_spot else None,
        })

    excluded = [
        "NAT gateway data processing ($/GB) and data transfer",
        "load balancer LCUs",
        "CloudWatch logs of the control plane",
        "EBS snapshots (VolumeSnapshotClasses), ECR storage",
        "PVCs of Grafana/Alertmanager and Ceph-backed PVCs (inside the OSD volumes)",
        "add-on pods (Rook-Ceph, Prometheus, controllers) that do not fit on the system nodes "
        "and start cpu-pool nodes",
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
