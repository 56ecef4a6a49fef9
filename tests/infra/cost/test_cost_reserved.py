"""infra/cost/reserved.py: reserved capacity (ODCRs, Capacity Blocks) is paid whether used or not."""

from __future__ import annotations

import pytest

from infra.config import parse_config
from infra.cost.estimator import estimate

pytestmark = pytest.mark.unit

CPU = {"name": "cpu", "instanceFamilies": ["m6i"], "limits": {"cpu": 64, "memory": "256Gi"}}
P5_OD = 55.04  # infra/prices/us-west-2.json p5.48xlarge on_demand
G6E_12XL_OD = 10.49264


def _cfg(gpu_pool: dict, **over) -> object:
    raw = {"environment": "dev", "ephemeral": True, "region": "us-west-2", "cluster": {"name": "ml-x"},
           "training": {"device": "cpu"}, "serving": {"device": "gpu", "replicas": 2},
           "nodePools": [CPU, {"name": "gpu", "accelerator": "nvidia", **gpu_pool}]}
    raw.update(over)
    return parse_config(raw, stack="x")


def _items(est, prefix):
    return [i for i in est["items"] if i["name"].startswith(prefix)]


def _pool(est, name):
    return next(p for p in est["pools"] if p["name"] == name)


BLOCK = {"instanceFamilies": ["p5"], "capacityTypes": ["reserved"], "capacityReservationType": "capacity-block",
         "capacityReservations": [{"id": "cr-0a1b2c3d4e5f60718", "instanceType": "p5.48xlarge", "instanceCount": 2}],
         "limits": {"cpu": 384, "memory": "4096Gi", "gpu": 16}}


def test_a_capacity_block_is_idle_cost_counted_once_and_never_again_at_the_limits():
    est = estimate(_cfg(BLOCK))
    (item,) = _items(est, "reserved capacity of pool gpu")
    assert item["scope"] == "idle" and item["quantity"] == 2 and item["usd_per_hour"] == pytest.approx(2 * P5_OD)
    assert "Capacity Block" in item["name"] and "already paid" in item["note"]
    assert "whether Karpenter uses it or not" in item["note"]
    without = estimate(_cfg({**BLOCK, "capacityReservations": [{"id": "cr-0a1b2c3d4e5f60718"}]}))
    assert est["idle_usd_per_hour"] == pytest.approx(without["idle_usd_per_hour"] + 2 * P5_OD, abs=1e-3)
    pool = _pool(est, "gpu")
    assert pool["reserved_nodes"] == [{"type": "p5.48xlarge", "count": 2}]
    assert pool["max_on_demand"]["usd_per_hour"] == 0 and pool["max_spot"] is None  # reserved only: nothing more
    (limit,) = _items(est, "pool gpu at its limits")
    assert "beyond its 2 reserved nodes (already paid)" in limit["name"] and "reserved only" in limit["name"]
    # serving's 2 GPUs come out of the 16 the block holds: already paid
    assert est["serving"]["capacity_type"] == "reserved" and est["serving_usd_per_hour"] == 0
    (on_res,) = _items(est, "serving: 2 replicas on the reserved nodes")
    assert on_res["usd_per_hour"] == 0


def test_unpriced_reservations_are_said_so():
    est = estimate(_cfg({**BLOCK, "capacityReservations": [{"tags": {"team": "ml"}, "ownerId": "123456789012"}]}))
    assert not _items(est, "reserved capacity")
    assert any("pool gpu: Capacity Block tags team=ml is not priced (give instanceType and instanceCount)" in n
               for n in est["notes"])


ODCR = {"instanceFamilies": ["g6e"], "instanceSizes": ["12xlarge"], "capacityTypes": ["reserved", "on-demand"],
        "capacityReservations": [{"id": "cr-0123456789abcdef0", "instanceType": "g6e.12xlarge", "instanceCount": 1}],
        "limits": {"cpu": 192, "memory": "1536Gi", "gpu": 8}}


def test_an_odcr_with_on_demand_fallback_fills_only_the_room_it_leaves():
    est = estimate(_cfg(ODCR, serving={"device": "gpu", "replicas": 6, "maxReplicas": 8}))
    (item,) = _items(est, "reserved capacity of pool gpu")
    assert "reservation" in item["name"] and item["usd_per_hour"] == pytest.approx(G6E_12XL_OD, abs=1e-3)
    pool = _pool(est, "gpu")
    # 8 GPUs of limits, 4 reserved: one more g6e.12xlarge at on-demand, never the reserved one again
    assert pool["max_on_demand"]["instances"] == [{"type": "g6e.12xlarge", "count": 1, "unit_usd_per_hour": G6E_12XL_OD}]
    # 4 replicas on the reserved GPUs, the other 2 on one more node
    (on_res,) = _items(est, "serving: 4 replicas on the reserved nodes")
    (extra,) = _items(est, "serving: 2 replicas on 1 x g6e.12xlarge (on-demand)")
    assert est["serving_usd_per_hour"] > 0 and extra["quantity"] == 1


def test_replicas_beyond_a_reserved_only_pool_stay_pending():
    est = estimate(_cfg({**BLOCK, "capacityReservations": [
        {"id": "cr-0a1b2c3d4e5f60718", "instanceType": "p5.48xlarge", "instanceCount": 1}], "limits": {
            "cpu": 384, "memory": "4096Gi", "gpu": 16}}, serving={"device": "gpu", "replicas": 10, "maxReplicas": 12}))
    assert any("2 replicas find no reserved gpu in pool gpu (reserved only)" in n for n in est["notes"])
    assert est["serving"] is None


def test_a_reserved_type_the_table_lacks_is_an_unknown_price():
    est = estimate(_cfg({**BLOCK, "instanceFamilies": ["p5e"], "instanceSizes": [], "capacityReservations": [
        {"id": "cr-0a1b2c3d4e5f60718", "instanceType": "p5e.48xlarge", "instanceCount": 1}]}))
    (item,) = _items(est, "reserved capacity of pool gpu")
    assert item["usd_per_hour"] is None and "unknown price" in item["note"]
    assert _pool(est, "gpu")["reserved_nodes"] == []
