"""The estimate itself: :func:`estimate` (idle floor, always-on nodes, then serving (:mod:`.serving`)
and every pool at its limits (:mod:`.limits`)) and the note on Ceph's usable capacity."""

from __future__ import annotations

from typing import Any, Mapping, Optional

from .limits import pools_at_limits
from .packing import Packing, always_on
from .reserved import reserved_items
from .serving import serving_items
from .table import Ledger, PriceTableError, _eks_hourly, _instance, _r, known_instance, load_prices, quantity_gib


CEPH_NEARFULL_RATIO = 0.85  # Ceph's default mon_osd_nearfull_ratio: HEALTH_WARN above it
# Compressed size in ECR of each workload image (components/images.py), estimated from its contents: CPU torch
# wheels for the CPU trainer and the CPU server, CUDA torch with its nvidia-* wheels for the GPU trainer and
# the CUDA server, torch-neuron 1.13 for inf1.
ECR_IMAGE_GIB = {"trainer": 2.5, "trainerGpu": 8.0, "server": 1.2, "server_cuda": 8.0, "serverNeuron": 4.0,
                 "serverNeuronx": 6.0}  # torch-neuronx + neuronx-cc on PyTorch 2.x


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

    ds = storage.device_set(storage.StorageSettings.from_config(cfg))
    raw = ds["count"] * quantity_gib(ds["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"])
    usable = raw / cfg.ceph_replicas
    claims: list[tuple[str, float]] = []
    if cfg.addons.monitoring.enabled:
        v = monitoring.monitoring_values(monitoring.MonitoringSettings.from_config(cfg), storage_class=storage.BLOCK_STORAGE_CLASS)
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


def _idle_cluster(cfg: Any, led: Ledger) -> None:
    """The idle floor outside the pools: control plane, system nodes, NAT gateways, the serving load balancer."""
    svc = led.svc
    eks_rate, eks_note = _eks_hourly(cfg.cluster.version, led.prices)
    led.add("EKS control plane", "eks", 1, "cluster", eks_rate, scope="idle", note=eks_note)

    sn = cfg.cluster.system_nodes
    sys_type = sn.instance_types[0]
    spec = known_instance(led.prices, sys_type)
    led.add(f"system nodes ({sys_type}, on-demand)", "compute", sn.desired_size,
            "node", spec["on_demand"] if spec else None, scope="idle",
            note=f"managed node group desiredSize {sn.desired_size} (max {sn.max_size})")
    led.add("system node root volumes (gp3)", "storage",
            sn.desired_size * sn.disk_size_gib, "GiB", led.gp3_hour, scope="idle")

    if getattr(cfg.vpc, "byo", False):
        led.notes.append("bring-your-own VPC: its NAT gateways are not counted")
    else:
        nats = cfg.vpc.az_count if cfg.nat_mode == "perAz" else 1
        led.add(f"NAT gateways ({cfg.nat_mode})", "network", nats, "gateway",
                svc["nat_gateway_per_hour"], scope="idle",
                note=f"plus ${svc['nat_gateway_per_gb_processed']}/GB processed "
                     "(excluded)")
        led.add("public IPv4 (NAT gateway EIPs)", "network", nats, "address",
                svc["public_ipv4_per_hour"], scope="idle")

    serving = cfg.serving
    if serving.enabled and serving.exposure != "none":
        kind = "ALB" if serving.exposure == "ingress" else "NLB"
        rate = svc["alb_per_hour"] if kind == "ALB" else svc["nlb_per_hour"]
        lcu = "alb_per_lcu_hour" if kind == "ALB" else "nlb_per_nlcu_hour"
        led.add(f"{kind} for serving ({'internet-facing' if serving.public else 'internal'})",
                "network", 1, "load balancer", rate, scope="idle",
                note=f"plus ${svc[lcu]}/LCU-hour (excluded)")
        if serving.public:
            led.add(f"public IPv4 ({kind}, one per AZ)", "network", cfg.vpc.az_count,
                    "address", svc["public_ipv4_per_hour"], scope="idle")


def _idle_storage(cfg: Any, led: Ledger) -> None:
    """The idle floor's volumes and images: Ceph's OSD and mon volumes, ECR storage."""
    gp3_hour = led.gp3_hour
    if cfg.addons.rook_ceph.enabled:
        from components import storage

        st = storage.StorageSettings.from_config(cfg)
        ds = storage.device_set(st)
        osd_gib = quantity_gib(ds["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"])
        led.add(f"Ceph OSD volumes ({ds['count']} x {osd_gib:g} GiB gp3)", "storage",
                ds["count"] * osd_gib, "GiB", gp3_hour, scope="idle")
        mon = storage.ceph_cluster_spec(st)["mon"]
        mon_gib = quantity_gib(mon["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"])
        led.add(f"Ceph mon volumes ({mon['count']} x {mon_gib:g} GiB gp3)", "storage",
                mon["count"] * mon_gib, "GiB", gp3_hour, scope="idle",
                note="each mon keeps its store on a PVC of ebs-gp3-encrypted")
        ceph_note = ceph_capacity_note(cfg)
        if ceph_note:
            led.notes.append(ceph_note)

    images = ecr_image_gib(cfg)
    if images:
        gib = sum(images.values())
        keep = cfg.images.keep_last
        ecr_month = led.svc["ecr_per_gb_month"]
        led.add(f"ECR image storage ({', '.join(images)})", "storage", gib, "GB",
                ecr_month / led.hpm, scope="idle",
                note=f"one copy of each image ({' + '.join(f'{g:g}' for g in images.values())} GB): "
                     f"rebuilds share the base and dependency layers; at most {keep} images per "
                     f"repository (images.keepLast) if every one had layers of its own: "
                     f"${gib * keep * ecr_month:,.2f}/month")


def _always_on_basis(ao: Mapping[str, Any]) -> str:
    """What the always-on nodes hold and why that many (the note of their line item)."""
    ceph_count: dict[str, int] = {}
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
    return (f"{reqs['cpu']:g} vCPU / {reqs['memory_gib']:.1f} GiB requested ({detail}); {hosts}"
            f"per-node DaemonSets {', '.join(d['name'] for d in ao['daemonsets'])}")


def _always_on_items(led: Ledger, ao: Mapping[str, Any], packing: Packing, ao_pool: Any) -> dict[str, Any]:
    """The always-on nodes of the cpu pool (and their root volumes); returns the fields of ``always_on``."""
    spec = _instance(led.prices, packing.instance_type)
    owners = sorted({p["owner"] for p in ao["pods"]})
    basis = _always_on_basis(ao)
    for od, count in (("on-demand", packing.on_demand_nodes), ("spot", packing.spot_nodes)):
        if count:
            key = "on_demand" if od == "on-demand" else "spot"
            led.add(f"always-on {ao_pool.name}-pool nodes ({count} x {packing.instance_type}, {od}) "
                    f"for {' and '.join(owners)}", "compute", count, "node", spec[key],
                    scope="idle", note=basis if od == "on-demand" or not packing.on_demand_nodes
                    else "pods that may run on spot and did not fit on the on-demand nodes")
    root = ao_pool.root_volume
    led.add(f"always-on {ao_pool.name}-pool node root volumes ({len(packing.nodes)} x {root} GiB gp3)",
            "storage", len(packing.nodes) * root, "GiB", led.gp3_hour, scope="idle")
    led.notes.append(
        f"always-on nodes: the add-on pods' requests are bin-packed onto one instance type of pool "
        f"{ao_pool.name} (the cheapest packing of every type it allows wins: {len(packing.nodes)} x "
        f"{packing.instance_type}); allocatable is Karpenter's estimate (kube-reserved, 7.5% VM overhead, "
        f"eviction threshold) less the DaemonSets' requests. Containers without declared requests (Rook's "
        f"crash collector and ceph-exporter, the Ceph CSI node plugins, the Prometheus config reloader) "
        f"and transient pods (OSD prepare jobs) are not counted")
    return dict(
        nodes=len(packing.nodes), instance_type=packing.instance_type, min_nodes=ao["min_nodes"],
        on_demand_nodes=packing.on_demand_nodes, spot_nodes=packing.spot_nodes,
        usd_per_hour=_r(packing.usd_per_hour + len(packing.nodes) * root * led.gp3_hour),
        placement=[{"capacity_type": "on-demand" if od else "spot", "pods": list(names)}
                   for od, names in packing.nodes],
        daemonsets=ao["daemonsets"])


EXCLUDED = [
    "NAT gateway data processing ($/GB) and data transfer",
    "load balancer LCUs",
    "CloudWatch logs of the control plane",
    "EBS snapshots (VolumeSnapshotClasses)",
    "transient pods (OSD prepare jobs, data-prep and training jobs) and the nodes they start",
]


def estimate(cfg: Any, prices: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The cost estimate of a validated ``PlatformConfig`` (pure; no AWS calls)."""
    prices = prices if prices is not None else load_prices(cfg.region)
    if prices.get("region") != cfg.region:
        raise PriceTableError(f"price table is for {prices.get('region')}, stack is in {cfg.region}")
    led = Ledger(prices)
    hpm = led.hpm
    # --- idle floor
    _idle_cluster(cfg, led)
    _idle_storage(cfg, led)
    pools = list(cfg.pools)
    reserved = reserved_items(led, pools)  # paid whether used or not: idle, counted once

    # --- always-on add-on pods (Rook-Ceph, monitoring) and the cpu-pool nodes they keep up
    ao = always_on(cfg, prices)
    led.notes.extend(ao["notes"])
    packing: Optional[Packing] = ao["packing"]
    ao_pool = next((p for p in pools if p.name == ao["pool"]), None)
    always_on_info: dict[str, Any] = {
        "where": ao["where"], "pool": ao["pool"], "requests": ao["requests"], "pods": ao["pods"],
        "nodes": 0, "instance_type": None, "on_demand_nodes": 0, "spot_nodes": 0, "usd_per_hour": 0.0,
    }
    if packing is not None and ao_pool is not None:
        always_on_info.update(_always_on_items(led, ao, packing, ao_pool))
    idle = sum(i["usd_per_hour"] for i in led.items if i["scope"] == "idle" and i["usd_per_hour"] is not None)

    # --- serving replicas (always on), then every NodePool at its limits
    serving_hour, serving_info = serving_items(cfg, led, pools, ao, packing, ao_pool, reserved)
    pool_out, max_od, max_spot = pools_at_limits(led, pools, packing, ao_pool, reserved)
    return {
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
        "items": led.items,
        "excluded": list(EXCLUDED),
        "notes": led.notes,
    }
