"""infra/cost/: the idle and maximum $/hour of a stack from the shipped price table."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from components import monitoring, storage
from components.storage import values as storage_values
from components.storage.settings import StorageSettings
from infra.cost.cli import main as cost_main
from infra.cost.estimator import estimate
from infra.cost.packing import node_allocatable
from infra.cost.pods import cpu_m, mem_mib
from infra.cost.table import PriceTableError, fill_to_limits, pool_limits, pool_types, quantity_gib
from infra.config import load_stack_config, parse_config

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
PRICES = json.loads((REPO / "infra" / "prices" / "us-west-2.json").read_text())


@pytest.fixture(scope="module")
def stacks():
    return {s: load_stack_config(s, REPO) for s in ("dev", "staging", "prod")}


def by_name(est, prefix):
    return [i for i in est["items"] if i["name"].startswith(prefix)]


# --- the price table ------------------------------------------------------------------------


def test_price_table_has_date_source_region_and_services():
    assert PRICES["region"] == "us-west-2" and PRICES["currency"] == "USD"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", PRICES["date"])
    assert "AWS" in PRICES["source"] and PRICES["spot_note"]
    svc = PRICES["services"]
    assert svc["eks_control_plane_per_hour"] == 0.10
    for key in ("nat_gateway_per_hour", "nat_gateway_per_gb_processed", "alb_per_hour",
                "nlb_per_hour", "gp3_per_gb_month", "public_ipv4_per_hour"):
        assert svc[key] > 0


SIZE_VCPU = {"large": 2, "xlarge": 4, "2xlarge": 8, "4xlarge": 16, "6xlarge": 24, "8xlarge": 32,
             "12xlarge": 48, "16xlarge": 64, "24xlarge": 96, "32xlarge": 128, "48xlarge": 192}


def test_price_table_rows_are_consistent():
    for name, spec in PRICES["instances"].items():
        fam, size = name.split(".")
        assert spec["vcpu"] == SIZE_VCPU[size], name
        assert 0 < spec["spot"] < spec["on_demand"], name
        assert spec["memory_gib"] > 0
        if fam in ("g5", "g6", "g6e", "p4d", "p5"):
            assert spec["gpu"] >= 1 and spec["neuron"] == 0, name
        elif fam in ("inf1", "inf2"):
            assert spec["neuron"] >= 1 and spec["gpu"] == 0, name
        else:
            assert spec["gpu"] == spec["neuron"] == 0, name
    for fam in ("m6i", "m7i", "c6i", "g5", "g6", "g6e", "p4d", "p5", "inf1", "inf2"):
        assert any(n.startswith(fam + ".") for n in PRICES["instances"]), fam


def test_every_default_instance_type_is_priced(stacks):
    for cfg in stacks.values():
        for itype in cfg.cluster.system_nodes.instance_types:
            assert itype in PRICES["instances"]
        for pool in cfg.pools:
            types, missing = pool_types(pool, PRICES)
            assert types and not missing, (cfg.stack, pool.name, missing)


# --- the estimate ------------------------------------------------------------------------------


def test_json_shape_and_totals(stacks):
    for name, cfg in stacks.items():
        est = estimate(cfg)
        json.loads(json.dumps(est))  # serialisable
        assert est["stack"] == name and est["region"] == "us-west-2"
        assert {"idle_usd_per_hour", "max_usd_per_hour", "items"} <= set(est)
        idle = sum(i["usd_per_hour"] for i in est["items"] if i["scope"] == "idle")
        assert est["idle_usd_per_hour"] == pytest.approx(idle, abs=1e-3)
        assert est["idle_usd_per_month"] == pytest.approx(idle * 730, rel=1e-3)
        pools = sum(i["usd_per_hour"] for i in est["items"] if i["scope"] == "max")
        assert est["max_usd_per_hour"] == pytest.approx(idle + pools, abs=1e-3)
        assert est["idle_usd_per_hour"] < est["max_spot_usd_per_hour"] <= est["max_usd_per_hour"]
        assert est["max_on_demand_usd_per_hour"] == est["max_usd_per_hour"]
        assert est["price_table"]["date"] == PRICES["date"]
        # Only the pool that hosts the always-on add-on pods keeps nodes when idle.
        ao = est["always_on"]
        assert {p["name"]: p["idle_nodes"] for p in est["pools"]} == {
            p.name: (ao["nodes"] if p.name == ao["pool"] else 0) for p in cfg.pools}


def test_idle_items(stacks):
    dev = estimate(stacks["dev"])
    assert by_name(dev, "EKS control plane")[0]["usd_per_hour"] == 0.10
    sysn = by_name(dev, "system nodes")[0]
    cfg = stacks["dev"]
    expected = cfg.cluster.system_nodes.desired_size * PRICES["instances"][
        cfg.cluster.system_nodes.instance_types[0]]["on_demand"]
    assert sysn["usd_per_hour"] == pytest.approx(expected)
    nat = by_name(dev, "NAT gateways")[0]
    assert nat["quantity"] == 1 and "processed" in nat["note"]
    osd = by_name(dev, "Ceph OSD volumes")[0]
    assert osd["quantity"] == cfg.storage.osd_count * cfg.storage.osd_size_gib
    assert osd["usd_per_month"] == pytest.approx(osd["quantity"] * 0.08, abs=0.01)
    mons = by_name(dev, "Ceph mon volumes")[0]
    mon_spec = storage.ceph_cluster_spec(StorageSettings.from_config(cfg))["mon"]
    assert mons["quantity"] == cfg.storage.mon_count * quantity_gib(
        mon_spec["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"]) == 30
    # Prometheus keeps its data on ceph-block (an RBD image inside the OSD volumes): no gp3 of its own.
    assert not by_name(dev, "Prometheus volume")
    assert any("Ceph-backed PVCs (Prometheus 20 GiB" in n for n in dev["notes"])
    assert by_name(dev, "ALB for serving")
    # Idle compute: the system node group and the cpu-pool nodes the add-ons keep up; no accelerator.
    idle_compute = [i for i in dev["items"] if i["scope"] == "idle" and i["category"] == "compute"]
    assert [i["name"].split(" (")[0] for i in idle_compute] == ["system nodes", "always-on cpu-pool nodes"]
    assert not [i for i in dev["items"] if i["scope"] == "idle" and re.search(r"inf1|g5|g6", i["name"])]


def test_prod_has_a_nat_per_az(stacks):
    prod = estimate(stacks["prod"])
    assert by_name(prod, "NAT gateways")[0]["quantity"] == stacks["prod"].vpc.az_count == 3
    assert by_name(prod, "public IPv4 (NAT")[0]["quantity"] == 3


def test_pools_stay_within_their_limits(stacks):
    for cfg in stacks.values():
        est = estimate(cfg)
        for pool_cfg, pool in zip(cfg.pools, est["pools"]):
            limits = pool_limits(pool_cfg)
            for side in ("max_on_demand", "max_spot"):
                if pool[side] is None:
                    continue
                assert pool[side]["nodes"] > 0, (cfg.stack, pool["name"])
                for dim, limit in limits.items():
                    used = sum(PRICES["instances"][i["type"]][dim] * i["count"]
                               for i in pool[side]["instances"])
                    # the always-on nodes count against their pool's limits
                    used += pool["idle_nodes"] * PRICES["instances"][est["always_on"]["instance_type"]].get(
                        dim, 0) if pool["idle_nodes"] else 0
                    assert used <= limit + 1e-9, (cfg.stack, pool["name"], dim, used, limit)


def test_spot_and_on_demand_are_separate(stacks):
    dev = estimate(stacks["dev"])
    for pool_cfg, pool in zip(stacks["dev"].pools, dev["pools"]):
        assert (pool["max_spot"] is not None) == ("spot" in pool_cfg.capacity_types)
        assert (pool["max_on_demand"] is not None) == ("on-demand" in pool_cfg.capacity_types)
        if pool["max_spot"] and pool["max_on_demand"]:
            assert pool["max_spot"]["usd_per_hour"] < pool["max_on_demand"]["usd_per_hour"]


def test_fill_to_limits_greedy():
    types = {
        "a.big": {"vcpu": 8, "memory_gib": 32, "gpu": 4, "on_demand": 10.0},
        "a.small": {"vcpu": 2, "memory_gib": 8, "gpu": 1, "on_demand": 2.0},
        "a.fat": {"vcpu": 16, "memory_gib": 64, "gpu": 1, "on_demand": 3.0},
    }
    # gpu binds: 2 big (8 GPUs) fill it; the cpu left cannot host anything with a GPU.
    assert fill_to_limits(types, {"vcpu": 32, "memory_gib": 512, "gpu": 8}, "on_demand") == [
        ("a.big", 2)]
    # cpu and gpu both bind: big costs 10.0 per half of the pool, fat 3.0 per whole pool.
    assert fill_to_limits(types, {"vcpu": 16, "memory_gib": 512, "gpu": 8}, "on_demand") == [
        ("a.big", 2)]
    assert fill_to_limits(types, {"vcpu": 1, "memory_gib": 512}, "on_demand") == []


def test_serving_is_separate_from_idle(stacks):
    dev = estimate(stacks["dev"])
    serving = dev["serving"]
    assert serving and serving["pool"] == "inf1"
    assert serving["count"] == stacks["dev"].serving.replicas  # one Inferentia device each
    assert dev["idle_with_serving_usd_per_hour"] == pytest.approx(
        dev["idle_usd_per_hour"] + dev["serving_usd_per_hour"], abs=1e-3)


WITHOUT_KARPENTER = {"training": {"enabled": False, "device": "cpu"}, "serving": {"enabled": False},
                     "cluster": {"name": "ml-x", "systemNodes": {"minSize": 3, "desiredSize": 3, "maxSize": 3}}}


def _cfg(**over):
    raw = {"environment": "dev", "ephemeral": True, "region": "us-west-2",
           "cluster": {"name": "ml-x"}, "training": {"device": "cpu"}}
    raw.update(over)
    return parse_config(raw, stack="x")


def test_serving_disabled_and_byo_vpc():
    cfg = _cfg(serving={"enabled": False},
               vpc={"id": "vpc-0123456789abcdef0", "cidr": "10.60.0.0/16",
                    "privateSubnetIds": ["subnet-01234567", "subnet-89abcdef"]})
    est = estimate(cfg)
    assert est["serving"] is None and est["serving_usd_per_hour"] == 0
    assert not by_name(est, "NAT gateways") and not by_name(est, "ALB")
    assert any("bring-your-own VPC" in n for n in est["notes"])


def test_public_nlb_adds_addresses():
    cfg = _cfg(serving={"exposure": "loadBalancer", "public": True},
               allowPublicLoadBalancers=True)
    est = estimate(cfg)
    assert by_name(est, "NLB for serving (internet-facing)")
    assert by_name(est, "public IPv4 (NLB")[0]["quantity"] == cfg.vpc.az_count


def test_extended_support_is_judged_at_the_table_date():
    cfg = _cfg(cluster={"name": "ml-x", "version": "1.30"})
    est = estimate(cfg)
    assert by_name(est, "EKS control plane")[0]["usd_per_hour"] == 0.60
    older = copy.deepcopy(PRICES)
    older["date"] = "2025-01-01"
    assert by_name(estimate(cfg, older), "EKS control plane")[0]["usd_per_hour"] == 0.10


def test_estimate_is_pure(stacks):
    table = copy.deepcopy(PRICES)
    a = estimate(stacks["prod"], table)
    b = estimate(stacks["prod"], table)
    assert a == b and table == PRICES


def test_unknown_region_is_a_clear_error():
    cfg = _cfg(region="eu-west-1")
    with pytest.raises(PriceTableError, match="no price table for region eu-west-1"):
        estimate(cfg)


def test_quantity_gib():
    assert quantity_gib("256Gi") == 256
    assert quantity_gib("1Ti") == 1024
    assert quantity_gib("512Mi") == 0.5
    with pytest.raises(ValueError):
        quantity_gib("lots")


def test_cli_json_and_text(capsys):
    assert cost_main(["--stack", "dev", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["stack"] == "dev" and data["items"]
    assert cost_main(["--stack", "prod"]) == 0
    text = capsys.readouterr().out
    assert "idle total" in text and "max, on-demand where allowed" in text
    assert cost_main(["--stack", "nosuchstack"]) == 2


# --- always-on add-on pods on the cpu pool (Rook-Ceph, monitoring) ---------------------------


def _idle_compute(est, prefix="always-on"):
    return [i for i in est["items"] if i["scope"] == "idle" and i["name"].startswith(prefix)
            and i["category"] == "compute"]


def test_ceph_keeps_on_demand_cpu_pool_nodes_up(stacks):
    for name, at_least in (("dev", 2), ("staging", 2), ("prod", 3)):
        cfg = stacks[name]
        est = estimate(cfg)
        ao = est["always_on"]
        assert ao["where"] == "karpenter" and ao["pool"] == "cpu"
        # Ceph's daemons require on-demand capacity: every node that holds one is on-demand.
        assert ao["on_demand_nodes"] >= max(at_least, cfg.storage.mon_count, cfg.ceph_replicas), name
        for node in ao["placement"]:
            if any(p.startswith("ceph ") for p in node["pods"]):
                assert node["capacity_type"] == "on-demand"
        # Priced at the pool's on-demand price, in the idle total, itemised.
        item = _idle_compute(est)[0]
        assert "on-demand" in item["name"] and item["quantity"] == ao["on_demand_nodes"]
        assert item["unit_usd_per_hour"] == pytest.approx(PRICES["instances"][ao["instance_type"]]["on_demand"],
                                                          abs=1e-4)
        assert ao["instance_type"].split(".")[0] in cfg.pools[0].instance_families
        roots = by_name(est, "always-on cpu-pool node root volumes")[0]
        assert roots["quantity"] == ao["nodes"] * cfg.pools[0].root_volume
        assert est["idle_usd_per_hour"] == pytest.approx(
            sum(i["usd_per_hour"] for i in est["items"] if i["scope"] == "idle"), abs=1e-3)


def test_ceph_daemons_are_spread_as_rook_places_them(stacks):
    for cfg in stacks.values():
        ao = estimate(cfg)["always_on"]
        for node in ao["placement"]:
            for kind in ("mon", "mgr", "mds"):
                assert sum(p.startswith(f"ceph {kind} ") for p in node["pods"]) <= 1, (cfg.stack, node)
        osd_hosts = [n for n in ao["placement"] if any(p.startswith("ceph osd ") for p in n["pods"])]
        assert len(osd_hosts) >= cfg.ceph_replicas
        mons = sum(p.startswith("ceph mon ") for n in ao["placement"] for p in n["pods"])
        assert mons == cfg.storage.mon_count


def test_packing_respects_each_nodes_allocatable(stacks):
    for cfg in stacks.values():
        ao = estimate(cfg)["always_on"]
        spec = PRICES["instances"][ao["instance_type"]]
        cpu, mem = node_allocatable(spec)
        cpu -= sum(d["cpu_m"] for d in ao["daemonsets"])
        mem -= sum(d["memory_mib"] for d in ao["daemonsets"])
        pods = {p["name"]: p for p in ao["pods"]}
        assert sorted(pods) == sorted(name for n in ao["placement"] for name in n["pods"])
        for node in ao["placement"]:
            assert sum(pods[n]["cpu_m"] for n in node["pods"]) <= cpu + 1e-6
            assert sum(pods[n]["memory_mib"] for n in node["pods"]) <= mem + 1e-6


def test_requests_are_read_from_the_components(stacks):
    cfg = stacks["dev"]
    ao = estimate(cfg)["always_on"]
    spec = storage.ceph_cluster_spec(StorageSettings.from_config(cfg))
    fs = storage.filesystem_spec(StorageSettings.from_config(cfg))
    values = monitoring.monitoring_values(monitoring.MonitoringSettings.from_config(cfg), storage_class=None)

    def req(res):
        return cpu_m(res["requests"]["cpu"]), mem_mib(res["requests"]["memory"])

    expected = [req(spec["resources"]["mon"])] * spec["mon"]["count"]
    expected += [req(spec["resources"]["mgr"])] * spec["mgr"]["count"]
    expected += [req(spec["storage"]["storageClassDeviceSets"][0]["resources"])] * cfg.storage.osd_count
    expected += [req(fs["metadataServer"]["resources"])] * 2  # activeCount 1 + activeStandby
    expected += [req(values["prometheus"]["prometheusSpec"]["resources"]),
                 req(values["alertmanager"]["alertmanagerSpec"]["resources"])]
    g, sc = req(values["grafana"]["resources"]), req(values["grafana"]["sidecar"]["resources"])
    expected.append((g[0] + sc[0], g[1] + sc[1]))
    assert sorted((p["cpu_m"], p["memory_mib"]) for p in ao["pods"]) == sorted(expected)
    assert ao["requests"]["cpu"] == pytest.approx(sum(c for c, _ in expected) / 1000, abs=1e-3)
    node_exporter = req(values["prometheus-node-exporter"]["resources"])
    assert {"name": "node-exporter", "cpu_m": node_exporter[0], "memory_mib": node_exporter[1]} in ao["daemonsets"]


def test_bigger_requests_in_the_component_change_the_bill(stacks, monkeypatch):
    cfg = stacks["dev"]
    before = estimate(cfg)
    real = storage_values.daemon_resources

    def hungrier(c):
        res = real(c)
        res["osd"] = {"requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"memory": "8Gi"}}
        return res

    monkeypatch.setattr(storage_values, "daemon_resources", hungrier)
    after = estimate(cfg)
    assert after["always_on"]["requests"]["memory_gib"] == pytest.approx(
        before["always_on"]["requests"]["memory_gib"] + cfg.storage.osd_count * 6, abs=1e-3)
    assert after["idle_usd_per_hour"] > before["idle_usd_per_hour"]


def test_idle_changes_with_mon_and_osd_count():
    by_mons = {m: estimate(_cfg(storage={"monCount": m})) for m in (1, 3, 5)}
    assert (by_mons[1]["idle_usd_per_hour"] < by_mons[3]["idle_usd_per_hour"]
            < by_mons[5]["idle_usd_per_hour"])
    # One host per mon (and at least the 2 hosts of replicas 2 across hosts).
    assert [by_mons[m]["always_on"]["on_demand_nodes"] for m in (1, 3, 5)] == [2, 3, 5]
    assert [by_name(by_mons[m], "Ceph mon volumes")[0]["quantity"] for m in (1, 3, 5)] == [10, 30, 50]
    by_osds = {o: estimate(_cfg(storage={"osdCount": o})) for o in (3, 6, 12)}
    assert (by_osds[3]["idle_usd_per_hour"] < by_osds[6]["idle_usd_per_hour"]
            < by_osds[12]["idle_usd_per_hour"])
    # 12 OSDs (2Gi each in dev) no longer fit three general-purpose large nodes.
    big, small = by_osds[12]["always_on"], by_osds[3]["always_on"]
    assert (PRICES["instances"][big["instance_type"]]["memory_gib"] * big["nodes"]
            > PRICES["instances"][small["instance_type"]]["memory_gib"] * small["nodes"])


def test_monitoring_alone_may_use_spot_outside_prod():
    dev = estimate(_cfg(addons={"rookCeph": {"enabled": False}}, training={"enabled": False}, serving={"enabled": False}))
    ao = dev["always_on"]
    assert ao["nodes"] >= 1 and ao["spot_nodes"] == ao["nodes"] and ao["on_demand_nodes"] == 0
    assert _idle_compute(dev)[0]["name"].endswith("for monitoring") and "spot" in _idle_compute(dev)[0]["name"]
    assert not by_name(dev, "Ceph")
    # prod pins Prometheus, Alertmanager and Grafana to on-demand.
    prod = estimate(parse_config({
        "environment": "prod", "region": "us-west-2", "cluster": {"name": "ml-p", "admins": [
            {"principalArn": "arn:aws:iam::123456789012:role/admin"}]},
        "addons": {"rookCeph": {"enabled": False}}, "training": {"enabled": False}, "serving": {"enabled": False}},
        stack="p"))
    assert prod["always_on"]["on_demand_nodes"] == prod["always_on"]["nodes"] >= 1


def test_nothing_always_on_without_the_add_ons():
    est = estimate(_cfg(addons={"rookCeph": {"enabled": False}, "monitoring": {"enabled": False}},
                             training={"enabled": False}, serving={"enabled": False}))
    assert est["always_on"]["nodes"] == 0 and not _idle_compute(est)
    assert all(p["idle_nodes"] == 0 for p in est["pools"])


def test_without_karpenter_the_add_ons_use_the_system_nodes():
    # without Karpenter the workloads have no pools (the config refuses them) and Ceph's mons need 3 system nodes
    est = estimate(_cfg(addons={"karpenter": {"enabled": False}}, **WITHOUT_KARPENTER))
    assert est["always_on"]["where"] == "system" and est["always_on"]["nodes"] == 0
    assert not _idle_compute(est)
    assert any("run on the system node group" in n for n in est["notes"])


def test_node_allocatable_follows_karpenters_formula():
    # m6i.large: 2 vCPU -> kube-reserved 60m + 10m; 8 GiB -> 7.5 % VM overhead, 11Mi x 29 pods + 255Mi, 100Mi.
    cpu, mem = node_allocatable(PRICES["instances"]["m6i.large"])
    assert cpu == pytest.approx(1930)
    assert mem == pytest.approx(8192 - 615 - (11 * 29 + 255) - 100)
    cpu, _ = node_allocatable(PRICES["instances"]["m6i.4xlarge"])
    assert cpu == pytest.approx(16000 - 60 - 10 - 10 - 12000 * 0.0025)


def test_serving_on_cpu_uses_the_deployments_requests():
    # 1 vCPU / 2Gi replicas (the defaults) first take the room the always-on nodes leave (one per node),
    # then new nodes of the cheapest fitting type; spot, since the cpu pool allows it.
    small = estimate(_cfg(serving={"device": "cpu"}))
    sv = small["serving"]
    assert sv["pool"] == "cpu" and sv["capacity_type"] == "spot"
    assert sv["on_always_on_nodes"] >= 1 and sv["on_always_on_nodes"] + sv["count"] == 3
    # 4 vCPU replicas fit on none of them: one new node each.
    big = estimate(_cfg(serving={"device": "cpu", "resources": {"cpu": "4", "cpuLimit": "4"}}))
    assert big["serving"]["on_always_on_nodes"] == 0 and big["serving"]["count"] == 3
    assert PRICES["instances"][big["serving"]["instance_type"]]["vcpu"] > 4
    assert big["serving_usd_per_hour"] > small["serving_usd_per_hour"] > 0
    # Serving never changes the idle figure.
    assert big["idle_usd_per_hour"] == small["idle_usd_per_hour"]


def test_ceph_capacity_note_warns_when_the_pvcs_outgrow_ceph(stacks):
    small = stacks["dev"].model_copy(update={"storage": stacks["dev"].storage.model_copy(update={"osd_size_gib": 50})})
    note = next(n for n in estimate(small)["notes"] if n.startswith("Ceph-backed PVCs"))
    assert "nearfull" in note  # 75 GiB of PVCs on 150 GiB raw / 2 replicas
    for name in ("dev", "prod"):  # the shipped stacks leave room
        est = estimate(stacks[name])
        assert "nearfull" not in next(n for n in est["notes"] if n.startswith("Ceph-backed PVCs")), name


def test_cpu_pool_max_only_fills_what_the_always_on_nodes_leave(stacks):
    for cfg in stacks.values():
        est = estimate(cfg)
        pool = next(p for p in est["pools"] if p["name"] == "cpu")
        spec = PRICES["instances"][est["always_on"]["instance_type"]]
        used = pool["idle_nodes"] * spec["vcpu"] + sum(
            PRICES["instances"][i["type"]]["vcpu"] * i["count"] for i in pool["max_on_demand"]["instances"])
        assert used <= cfg.pools[0].limits.cpu
        assert by_name(est, f"pool cpu at its limits beyond its {pool['idle_nodes']} always-on nodes")


def test_a_valid_instance_type_the_price_table_lacks_is_an_unknown_price_not_a_crash(tmp_path):
    """m5.large is a real system node type the us-west-2 table does not list: that item is marked, the
    totals leave it out, and the render's summary says so."""
    from infra.cost.report import format_text
    from infra.preview.render import render

    est = estimate(_cfg(cluster={"name": "ml-x", "systemNodes": {"instanceTypes": ["m5.large"]}}))
    unknown = [i for i in est["items"] if i["usd_per_hour"] is None]
    assert [i["name"] for i in unknown] == ["system nodes (m5.large, on-demand)"]
    assert "unknown price" in unknown[0]["note"]
    known = sum(i["usd_per_hour"] for i in est["items"] if i["scope"] == "idle" and i["usd_per_hour"] is not None)
    assert est["idle_usd_per_hour"] == pytest.approx(known, abs=0.001)
    assert "system nodes (m5.large, on-demand)" in format_text(est) and "unknown price" in format_text(est)

    (tmp_path / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
    stack = (REPO / "Pulumi.dev.yaml").read_text().replace('instanceTypes: ["m6i.large"]', 'instanceTypes: ["m5.large"]')
    assert "m5.large" in stack
    (tmp_path / "Pulumi.dev.yaml").write_text(stack)
    result = render("dev", tmp_path / "out", project_dir=tmp_path)
    assert "unknown price (not in the price table, left out): system nodes (m5.large, on-demand)" in result.summary
