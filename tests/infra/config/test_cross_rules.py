"""Configs that validate field by field but would not work on a cluster are refused, each naming its key.

One case per finding of the hardening review: a device without its plugin, PVCs on Ceph without Rook
or beyond its capacity, workloads without Karpenter, Ceph mons without enough system nodes, serving
beyond its pool's limits, duplicate principals or subnets, an unknown region, and what the NodePool CRD
would refuse (budget schedules and durations, label keys and values).
"""
from __future__ import annotations

import pytest

from infra.config import ConfigError, parse_config

pytestmark = pytest.mark.unit

NO_WORKLOADS = {"training": {"enabled": False}, "serving": {"enabled": False}}
ARN = "arn:aws:iam::123456789012:role/admins"
BYO = {"id": "vpc-0123456789abcdef0", "cidr": "10.50.0.0/16"}
CPU_POOL = {"name": "cpu", "instanceFamilies": ["m6i"], "limits": {"cpu": 64, "memory": "256Gi"}}


def _pool(**over):
    return {**CPU_POOL, **over}


CASES = {
    "neuron plugin off, inf1 serving": (
        {"serving": {"device": "inf1"}, "addons": {"neuron": {"enabled": False}}},
        "addons.neuron.enabled: serving.device inf1 needs the Neuron device plugin"),
    "nvidia plugin off, gpu serving": (
        {"serving": {"device": "gpu"}, "addons": {"nvidiaDevicePlugin": {"enabled": False}}},
        "addons.nvidiaDevicePlugin.enabled: serving.device gpu needs the NVIDIA device plugin"),
    "nvidia plugin off, gpu training": (
        {"training": {"device": "gpu"}, "serving": {"enabled": False}, "addons": {"nvidiaDevicePlugin": {"enabled": False}}},
        "addons.nvidiaDevicePlugin.enabled: training.device gpu needs the NVIDIA device plugin"),
    "serving without Rook": (
        {"training": {"enabled": False}, "addons": {"rookCeph": {"enabled": False}}},
        "addons.rookCeph.enabled: serving reads the models volume, a ceph-filesystem PVC"),
    "workloads without Karpenter": (
        {"addons": {"karpenter": {"enabled": False}},
         "cluster": {"systemNodes": {"minSize": 3, "desiredSize": 3, "maxSize": 3}}},
        "addons.karpenter.enabled: training and serving run on Karpenter's node pools"),
    "Ceph mons without Karpenter on 2 system nodes": (
        {**NO_WORKLOADS, "addons": {"karpenter": {"enabled": False}}},
        "cluster.systemNodes.minSize: without Karpenter the 3 Ceph mons run on the system nodes"),
    "PVCs beyond Ceph's capacity": (
        {"storage": {"osdSizeGib": 20}},
        "storage.osdSizeGib: the PVCs on Ceph need 105 GiB"),
    "serving CPU beyond the pool's limit": (
        {"serving": {"device": "cpu", "replicas": 3, "maxReplicas": 3, "resources": {"cpu": "30", "cpuLimit": "30"}}},
        "serving.resources.cpu: 30 CPU x 3 replicas = 90 exceeds the cpu limit of pool 'cpu' (64)"),
    "serving memory beyond the pool's limit": (
        {"serving": {"device": "cpu", "replicas": 3, "maxReplicas": 3, "resources": {"memory": "100Gi"}}},
        "serving.resources.memory: 100Gi x 3 replicas exceeds the memory limit of pool 'cpu' (256Gi)"),
    "the same admin twice": (
        {"cluster": {"admins": [{"principalArn": ARN}, {"principalArn": ARN, "policy": "view"}]}},
        f"cluster.admins: {ARN} is listed more than once"),
    "a subnet listed twice": (
        {"vpc": {**BYO, "privateSubnetIds": ["subnet-01234567", "subnet-01234567"]}},
        "vpc.privateSubnetIds: subnet-01234567 listed more than once"),
    "a subnet both private and public": (
        {"vpc": {**BYO, "privateSubnetIds": ["subnet-01234567", "subnet-89abcdef"], "publicSubnetIds": ["subnet-89abcdef"]}},
        "subnet-89abcdef is both a private and a public subnet"),
    "a region AWS does not have": (
        {"region": "us-west-9"}, "region: 'us-west-9' is not an AWS region in infra/config/regions.py"),
    "a budget schedule that is not cron": (
        {"nodePools": [_pool(budgets=[{"nodes": "0", "schedule": "every day", "duration": "8h"}])]},
        "'every day' is not a cron schedule"),
    "a budget duration in seconds": (
        {"nodePools": [_pool(budgets=[{"nodes": "0", "schedule": "@daily", "duration": "30s"}])]},
        "'30s' is not a budget duration"),
    "a label key with a space": (
        {"nodePools": [_pool(labels={"bad key!": "x"})]}, "label key 'bad key!' is not valid"),
    "a label value over 63 characters": (
        {"nodePools": [_pool(labels={"team": "x" * 64})]}, "is not valid: at most 63 letters"),
    "a tag value with a comma": ({"tags": {"team": "a,b"}}, "tags: tag value 'a,b' holds ','"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_config_that_would_not_work_is_refused_naming_its_key(name):
    raw, expected = CASES[name]
    with pytest.raises(ConfigError) as exc:
        parse_config(raw, stack="dev")
    assert any(expected in line for line in exc.value.problems), exc.value.problems
    assert all(line.startswith("eks-ml-platform:") for line in exc.value.problems)


def test_the_fixed_versions_are_accepted():
    """Each refused case above has a working neighbour: the rule is about the mistake, not the feature."""
    parse_config({"serving": {"device": "inf1"}}, stack="dev")
    parse_config({**NO_WORKLOADS, "addons": {"karpenter": {"enabled": False}},
                  "cluster": {"systemNodes": {"minSize": 3, "desiredSize": 3, "maxSize": 3}}}, stack="dev")
    parse_config({"storage": {"osdSizeGib": 100}}, stack="dev")
    parse_config({"serving": {"device": "cpu", "replicas": 3, "maxReplicas": 3, "resources": {"cpu": "20", "cpuLimit": "20"}}},
                 stack="dev")
    parse_config({"region": "eu-west-1"}, stack="dev")
    parse_config({"nodePools": [_pool(budgets=[{"nodes": "0", "schedule": "0 9 * * mon-fri", "duration": "1h30m"}],
                                      labels={"example.com/team": "ml-platform"})],
                  **NO_WORKLOADS}, stack="dev")
