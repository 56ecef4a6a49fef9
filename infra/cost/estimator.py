"""The estimate itself: :func:`estimate` (idle floor, always-on nodes, serving, every pool at its
limits) and the note on Ceph's usable capacity."""

from __future__ import annotations

from typing import Any, Mapping, Optional

from .packing import Packing, always_on, best_packing, fill_existing
from .pods import serving_cpu_pods
from .table import (
    ACCEL_DIM,
    PriceTableError,
    _cheapest_hosting,
    _eks_hourly,
    _instance,
    _item,
    _r,
    fill_to_limits,
    load_prices,
    pool_limits,
    pool_types,
    quantity_gib,
)


CEPH_NEARFULL_RATIO = 0.85  # Ceph's default mon_osd_nearfull_ratio: HEALTH_WARN above it
# Compressed size in ECR of each workload image (components/images.py), estimated from its contents: CPU torch
# wheels for the CPU trainer and the CPU server, CUDA torch with its nvidia-* wheels for the GPU trainer and
# the CUDA server, torch-neuron 1.13 for inf1.
ECR_IMAGE_GIB = {"trainer": 2.5, "trainerGpu": 8.0, "server": 1.2, "server_cuda": 8.0, "serverNeuron": 4.0}


def ecr_image_gib(cfg: Any) -> dict[str, float]:
    """The images the stack builds into ECR (none with images.build false) and their estimated sizes."""
    from infra.config import needed_images

    if not cfg.images.build:
        return {}
    return {k: ECR_IMAGE_GIB["server_cuda" if k == "server" and cfg.serving.device == "gpu" else k]
            for k in needed_images(cfg)}


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

    images = ecr_image_gib(cfg)
    if images:
        gib = sum(images.values())
        keep = cfg.images.keep_last
        ecr_month = svc["ecr_per_gb_month"]
        items.append(_item(f"ECR image storage ({', '.join(images)})", "storage", gib, "GB",
                           ecr_month / hpm, hpm, scope="idle",
                           note=f"one copy of each image ({' + '.join(f'{g:g}' for g in images.values())} GB): "
                                f"rebuilds share the base and dependency layers; at most {keep} images per "
                                f"repository (images.keepLast) if every one had layers of its own: "
                                f"${gib * keep * ecr_month:,.2f}/month"))

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
        "EBS snapshots (VolumeSnapshotClasses)",
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
