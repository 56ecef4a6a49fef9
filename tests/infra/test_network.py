"""Pure network planning: subnets that fit, never overlap, and carry the tags controllers look for."""
from __future__ import annotations

import ipaddress

import pytest

from infra.network import nat_count, plan_subnets, subnet_tags

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("cidr, azs", [("10.42.0.0/16", 2), ("10.42.0.0/16", 3), ("172.20.0.0/20", 3)])
def test_subnets_fit_and_never_overlap(cidr, azs):
    vpc = ipaddress.ip_network(cidr)
    plan = plan_subnets(cidr, azs)
    nets = [ipaddress.ip_network(c) for p in plan for c in (p.private_cidr, p.public_cidr)]
    assert len(plan) == azs
    assert all(n.subnet_of(vpc) for n in nets)
    assert all(not a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1:])
    # private subnets hold the pods (VPC CNI): each is a quarter of the VPC
    assert all(ipaddress.ip_network(p.private_cidr).prefixlen == vpc.prefixlen + 2 for p in plan)


def test_slash16_sizes():
    plan = plan_subnets("10.42.0.0/16", 3)
    assert [p.private_cidr for p in plan] == ["10.42.0.0/18", "10.42.64.0/18", "10.42.128.0/18"]
    assert [p.public_cidr for p in plan] == ["10.42.192.0/22", "10.42.196.0/22", "10.42.200.0/22"]


def test_subnet_tags():
    private = subnet_tags("ml-dev", public=False)
    public = subnet_tags("ml-dev", public=True)
    assert private["karpenter.sh/discovery"] == "ml-dev"
    assert private["kubernetes.io/role/internal-elb"] == "1"
    assert public["kubernetes.io/role/elb"] == "1"
    assert "karpenter.sh/discovery" not in public
    assert private["kubernetes.io/cluster/ml-dev"] == public["kubernetes.io/cluster/ml-dev"] == "shared"


def test_nat_count():
    assert nat_count("single", 3) == 1
    assert nat_count("perAz", 3) == 3
