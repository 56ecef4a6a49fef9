"""infra/cost.py: the idle and maximum $/hour of a stack from the shipped price table."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from infra import cost
from infra.config import load_stack_config, parse_config

REPO = Path(__file__).resolve().parents[2]
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
            types, missing = cost.pool_types(pool, PRICES)
            assert types and not missing, (cfg.stack, pool.name, missing)


# --- the estimate ------------------------------------------------------------------------------


def test_json_shape_and_totals(stacks):
    for name, cfg in stacks.items():
        est = cost.estimate(cfg)
        json.dumps(est)  # serialisable
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
        assert all(p["idle_nodes"] == 0 for p in est["pools"])


def test_idle_items(stacks):
    dev = cost.estimate(stacks["dev"])
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
    assert by_name(dev, "Prometheus volume")[0]["quantity"] == cfg.monitoring.storage_gib
    assert by_name(dev, "ALB for serving")
    # No accelerator or cpu-pool nodes in the idle figure.
    idle_compute = [i for i in dev["items"] if i["scope"] == "idle" and i["category"] == "compute"]
    assert [i["name"].split(" (")[0] for i in idle_compute] == ["system nodes"]


def test_prod_has_a_nat_per_az(stacks):
    prod = cost.estimate(stacks["prod"])
    assert by_name(prod, "NAT gateways")[0]["quantity"] == stacks["prod"].vpc.az_count == 3
    assert by_name(prod, "public IPv4 (NAT")[0]["quantity"] == 3


def test_pools_stay_within_their_limits(stacks):
    for cfg in stacks.values():
        est = cost.estimate(cfg)
        for pool_cfg, pool in zip(cfg.pools, est["pools"]):
            limits = cost.pool_limits(pool_cfg)
            for side in ("max_on_demand", "max_spot"):
                if pool[side] is None:
                    continue
                assert pool[side]["nodes"] > 0, (cfg.stack, pool["name"])
                for dim, limit in limits.items():
                    used = sum(PRICES["instances"][i["type"]][dim] * i["count"]
                               for i in pool[side]["instances"])
                    assert used <= limit + 1e-9, (cfg.stack, pool["name"], dim, used, limit)


def test_spot_and_on_demand_are_separate(stacks):
    dev = cost.estimate(stacks["dev"])
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
    assert cost.fill_to_limits(types, {"vcpu": 32, "memory_gib": 512, "gpu": 8}, "on_demand") == [
        ("a.big", 2)]
    # cpu and gpu both bind: big costs 10.0 per half of the pool, fat 3.0 per whole pool.
    assert cost.fill_to_limits(types, {"vcpu": 16, "memory_gib": 512, "gpu": 8}, "on_demand") == [
        ("a.big", 2)]
    assert cost.fill_to_limits(types, {"vcpu": 1, "memory_gib": 512}, "on_demand") == []


def test_serving_is_separate_from_idle(stacks):
    dev = cost.estimate(stacks["dev"])
    serving = dev["serving"]
    assert serving and serving["pool"] == "inf1"
    assert serving["count"] == stacks["dev"].serving.replicas  # one Inferentia device each
    assert dev["idle_with_serving_usd_per_hour"] == pytest.approx(
        dev["idle_usd_per_hour"] + dev["serving_usd_per_hour"], abs=1e-3)


def _cfg(**over):
    raw = {"environment": "dev", "ephemeral": True, "region": "us-west-2",
           "cluster": {"name": "ml-x"}, "training": {"device": "cpu"}}
    raw.update(over)
    return parse_config(raw, stack="x")


def test_serving_disabled_and_byo_vpc():
    cfg = _cfg(serving={"enabled": False},
               vpc={"id": "vpc-0123456789abcdef0",
                    "privateSubnetIds": ["subnet-01234567", "subnet-89abcdef"]})
    est = cost.estimate(cfg)
    assert est["serving"] is None and est["serving_usd_per_hour"] == 0
    assert not by_name(est, "NAT gateways") and not by_name(est, "ALB")
    assert any("bring-your-own VPC" in n for n in est["notes"])


def test_public_nlb_adds_addresses():
    cfg = _cfg(serving={"exposure": "loadBalancer", "public": True},
               allowPublicLoadBalancers=True)
    est = cost.estimate(cfg)
    assert by_name(est, "NLB for serving (internet-facing)")
    assert by_name(est, "public IPv4 (NLB")[0]["quantity"] == cfg.vpc.az_count


def test_extended_support_is_judged_at_the_table_date():
    cfg = _cfg(cluster={"name": "ml-x", "version": "1.30"})
    est = cost.estimate(cfg)
    assert by_name(est, "EKS control plane")[0]["usd_per_hour"] == 0.60
    older = copy.deepcopy(PRICES)
    older["date"] = "2025-01-01"
    assert by_name(cost.estimate(cfg, older), "EKS control plane")[0]["usd_per_hour"] == 0.10


def test_estimate_is_pure(stacks):
    table = copy.deepcopy(PRICES)
    a = cost.estimate(stacks["prod"], table)
    b = cost.estimate(stacks["prod"], table)
    assert a == b and table == PRICES


def test_unknown_region_is_a_clear_error():
    cfg = _cfg(region="eu-west-1")
    with pytest.raises(cost.PriceTableError, match="no price table for region eu-west-1"):
        cost.estimate(cfg)


def test_quantity_gib():
    assert cost.quantity_gib("256Gi") == 256
    assert cost.quantity_gib("1Ti") == 1024
    assert cost.quantity_gib("512Mi") == 0.5
    with pytest.raises(ValueError):
        cost.quantity_gib("lots")


def test_cli_json_and_text(capsys):
    assert cost.main(["--stack", "dev", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["stack"] == "dev" and data["items"]
    assert cost.main(["--stack", "prod"]) == 0
    text = capsys.readouterr().out
    assert "idle total" in text and "max, on-demand where allowed" in text
    assert cost.main(["--stack", "nosuchstack"]) == 2
