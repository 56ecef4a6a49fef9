"""nodePools[]: reserved capacity (capacityReservations, capacityReservationType), as config errors
naming the key and what is allowed, and as the NodePool/EC2NodeClass fields they render."""
from __future__ import annotations

import pytest

from components.karpenter.node_pools import node_class_spec, node_pool_spec
from components.karpenter.settings import KarpenterSettings
from infra.config import ConfigError, parse_config

pytestmark = pytest.mark.unit

CPU = {"name": "cpu", "instanceFamilies": ["m6i"], "limits": {"cpu": 64}}


def cfg_with(**gpu):
    pool = {"name": "gpu", "accelerator": "nvidia", "instanceFamilies": ["p5"], "limits": {"cpu": 192, "gpu": 8}, **gpu}
    return parse_config({"nodePools": [CPU, pool], "serving": {"device": "cpu"}}, stack="dev")


def error(**gpu) -> str:
    with pytest.raises(ConfigError) as exc:
        cfg_with(**gpu)
    lines = [line for line in str(exc.value).splitlines() if "nodePools[1]" in line]
    assert len(lines) == 1, str(exc.value)
    return lines[0]


@pytest.mark.parametrize("gpu, key, needle", [
    ({"capacityTypes": ["reserved", "on-demand"]}, "nodePools[1]:",
     "capacityTypes has reserved but capacityReservations is empty: name the reservations, [{id: cr-...}] or "
     "[{tags: {...}, ownerId: <12-digit account>}]"),
    ({"capacityReservations": [{"id": "cr-0abc"}]}, "nodePools[1].capacityReservations:", "capacityTypes has no reserved"),
    ({"capacityTypes": ["reserved"], "capacityReservations": [{"id": "cr-1", "tags": {"a": "b"}}]},
     "nodePools[1].capacityReservations[0]:", "id is mutually exclusive with tags and ownerId"),
    ({"capacityTypes": ["reserved"], "capacityReservations": [{"id": "CR-1"}]},
     "nodePools[1].capacityReservations[0].id:", "is not a capacity reservation id"),
    ({"capacityTypes": ["reserved"], "capacityReservations": [{"ownerId": "123456789012"}]},
     "nodePools[1].capacityReservations[0]:", "name the reservation"),
    ({"capacityTypes": ["reserved"], "capacityReservations": [{"tags": {"a": "b"}, "ownerId": "12"}]},
     "nodePools[1].capacityReservations[0].ownerId:", "is not a 12-digit AWS account id"),
    ({"capacityTypes": ["reserved"], "capacityReservations": [{"tags": {"a": ""}}]},
     "nodePools[1].capacityReservations[0].tags:", "empty value; use '*' for any"),
    ({"capacityTypes": ["reserved"], "capacityReservations": [{"tags": {}}]},
     "nodePools[1].capacityReservations[0].tags:", "1 to 20 tags"),
    ({"capacityTypes": ["reserved"], "capacityReservations": [{"tags": {f"k{i}": "v" for i in range(21)}}]},
     "nodePools[1].capacityReservations[0].tags:", "1 to 20 tags"),
    ({"capacityTypes": ["reserved"], "capacityReservations": [{"ownerId": "123456789012", "id": "cr-1"}]},
     "nodePools[1].capacityReservations[0]:", "mutually exclusive"),
    ({"capacityTypes": ["reserved"], "capacityReservations": [{"id": "cr-1", "instanceType": "p5.48xlarge"}]},
     "nodePools[1].capacityReservations[0]:", "instanceType and instanceCount go together"),
    ({"capacityTypes": ["reserved"], "capacityReservations": [{"id": "cr-1", "instanceType": "p5.huge", "instanceCount": 1}]},
     "nodePools[1].capacityReservations[0].instanceType:", "not an EC2 instance size"),
    ({"capacityTypes": ["reserved"], "capacityReservations": [{"id": "cr-1"}, {"id": "cr-1"}]},
     "nodePools[1].capacityReservations:", "cr-1 listed more than once"),
    ({"capacityTypes": ["reserved", "on-demand"], "capacityReservations": [{"id": "cr-1"}],
      "capacityReservationType": "capacity-block"},
     "nodePools[1].capacityReservationType:", "set capacityTypes: [reserved]"),
    ({"capacityTypes": ["reserved"], "capacityReservations": [{"id": "cr-1"}], "capacityReservationType": "block"},
     "nodePools[1].capacityReservationType:", "use one of 'default' or 'capacity-block'"),
])
def test_bad_combinations_are_one_line_naming_the_key(gpu, key, needle):
    line = error(**gpu)
    assert f"eks-ml-platform:{key}" in line and needle in line, line


def test_reserved_pool_renders_its_terms_and_keeps_reserved_first():
    cfg = cfg_with(capacityTypes=["spot", "on-demand", "reserved"], capacityReservations=[
        {"id": "cr-0a1b2c3d4e5f60718"}, {"tags": {"team": "ml"}, "ownerId": "123456789012"}, {"tags": {"team": "*"}}])
    pool = cfg.pools[1]
    nc = node_class_spec(KarpenterSettings.from_config(cfg), pool, role="node-role")
    assert nc["capacityReservationSelectorTerms"] == [
        {"id": "cr-0a1b2c3d4e5f60718"}, {"tags": {"team": "ml"}, "ownerID": "123456789012"}, {"tags": {"team": "*"}}]
    reqs = {r["key"]: r["values"] for r in node_pool_spec(pool)["template"]["spec"]["requirements"]}
    assert reqs["karpenter.sh/capacity-type"] == ["reserved", "spot", "on-demand"]
    assert "karpenter.k8s.aws/capacity-reservation-type" not in reqs


def test_a_capacity_block_pool_requires_the_reservation_type():
    cfg = cfg_with(capacityTypes=["reserved"], capacityReservationType="capacity-block",
                   capacityReservations=[{"id": "cr-1", "instanceType": "p5.48xlarge", "instanceCount": 2}])
    pool = cfg.pools[1]
    reqs = {r["key"]: r["values"] for r in node_pool_spec(pool)["template"]["spec"]["requirements"]}
    assert reqs["karpenter.k8s.aws/capacity-reservation-type"] == ["capacity-block"]
    assert pool.capacity_reservations[0].instance_count == 2


def test_plain_pools_are_unchanged():
    cfg = parse_config({}, stack="dev")
    for pool in cfg.pools:
        assert "capacityReservationSelectorTerms" not in node_class_spec(KarpenterSettings.from_config(cfg), pool, role="r")
        assert pool.capacity_reservations == [] and pool.capacity_reservation_type is None


def test_node_monitoring_agent_takes_enabled_only():
    with pytest.raises(ConfigError) as exc:
        parse_config({"addons": {"nodeMonitoringAgent": {"version": "1.4.0"}}}, stack="dev")
    assert "eks-ml-platform:addons.nodeMonitoringAgent.version: the EKS node monitoring agent is an EKS add-on" in str(exc.value)
    off = parse_config({"addons": {"nodeMonitoringAgent": {"enabled": False}}}, stack="dev")
    from components.karpenter.values import karpenter_values
    from infra.cluster import addons_after_nodes

    assert "eks-node-monitoring-agent" not in addons_after_nodes(off)
    assert "eks-node-monitoring-agent" in addons_after_nodes(parse_config({}, stack="dev"))
    values = karpenter_values(KarpenterSettings.from_config(off), queue_name="q")
    assert values["settings"]["featureGates"] == {"nodeRepair": False, "reservedCapacity": True}
