"""Node pool config: bad pools are caught at config time with one clear line each, and the defaults are sane."""
from __future__ import annotations

import pytest

from infra.config import ConfigError, parse_config

pytestmark = pytest.mark.unit

PROD_ADMIN = {"admins": [{"principalArn": "arn:aws:iam::123456789012:role/platform-admins"}]}


def pool(**over):
    base = {"name": "extra", "instanceFamilies": ["m6i"], "limits": {"cpu": 16}}
    base.update(over)
    return base


def gpu_pool(**over):
    base = {"name": "gpu", "accelerator": "nvidia", "instanceFamilies": ["g5"], "limits": {"cpu": 32, "gpu": 2}}
    base.update(over)
    return base


def inf1_pool(**over):
    base = {"name": "inf1", "accelerator": "inf1", "instanceFamilies": ["inf1"], "instanceSizes": ["xlarge"],
            "limits": {"cpu": 16, "neuron": 2}}
    base.update(over)
    return base


def problems(pools, **extra):
    raw = {"nodePools": pools, "training": {"enabled": False}, "serving": {"enabled": False}, **extra}
    with pytest.raises(ConfigError) as exc:
        parse_config(raw, stack="dev")
    return exc.value.problems


def ok(pools, **extra):
    raw = {"nodePools": pools, "training": {"enabled": False}, "serving": {"enabled": False}, **extra}
    return parse_config(raw, stack="dev")


# ------------------------------------------------------------------ the bad-config cases of the issue
def test_gpu_pool_without_nvidia_family():
    found = problems([gpu_pool(instanceFamilies=["m6i", "c7i"])])
    assert len(found) == 1, found
    line = found[0]
    assert line.startswith("eks-ml-platform:nodePools[0]: ")
    assert "accelerator nvidia needs NVIDIA GPU families" in line and "m6i, c7i are not" in line


def test_gpu_pool_mixing_nvidia_and_other_families():
    (line,) = problems([gpu_pool(instanceFamilies=["g5", "inf1"])])
    assert "inf1 is not" in line


def test_inf1_pool_with_non_inf_families():
    (line,) = problems([inf1_pool(instanceFamilies=["inf1", "g5"])])
    assert line.startswith("eks-ml-platform:nodePools[0]: ")
    assert "accelerator inf1 allows instance families ['inf1'] only; got ['g5']" in line


@pytest.mark.parametrize("limits,field", [
    ({"cpu": 0}, "cpu"),
    ({"cpu": -4}, "cpu"),
    ({"cpu": 16, "gpu": 0}, "gpu"),
    ({"cpu": 16, "gpu": -1}, "gpu"),
    ({"cpu": 16, "neuron": 0}, "neuron"),
])
def test_limits_zero_or_negative(limits, field):
    accel = {"gpu": {"accelerator": "nvidia", "instanceFamilies": ["g5"]},
             "neuron": {"accelerator": "inf1", "instanceFamilies": ["inf1"]}}.get(field, {})
    found = problems([pool(limits=limits, **accel)])
    assert any(line.startswith(f"eks-ml-platform:nodePools[0].limits.{field}: ") and "must be a positive integer" in line
               for line in found), found


@pytest.mark.parametrize("memory", ["0Gi", "-8Gi", "lots"])
def test_memory_limit_must_be_positive_quantity(memory):
    found = problems([pool(limits={"cpu": 8, "memory": memory})])
    assert any(line.startswith("eks-ml-platform:nodePools[0].limits.memory: ") for line in found), found


def test_duplicate_pool_names():
    found = problems([pool(name="cpu"), pool(name="cpu"), gpu_pool(name="gpu")])
    assert found == ["eks-ml-platform:nodePools: duplicate pool names: cpu"]


# ------------------------------------------------------------------ more checks that fail early
def test_gpu_pool_needs_gpu_limit_and_neuron_pool_neuron_limit():
    (line,) = problems([gpu_pool(limits={"cpu": 8})])
    assert "a GPU pool needs limits.gpu" in line
    (line,) = problems([inf1_pool(limits={"cpu": 8})])
    assert "a inf1 pool needs limits.neuron" in line


def test_accelerated_families_need_the_accelerator_set():
    (line,) = problems([pool(instanceFamilies=["g5"])])
    assert "families ['g5'] are accelerated; set accelerator" in line


def test_device_limits_only_on_accelerator_pools():
    (line,) = problems([pool(limits={"cpu": 8, "gpu": 2})])
    assert "limits.gpu/limits.neuron only make sense on an accelerator pool" in line


def test_inf1_sizes_must_exist():
    (line,) = problems([inf1_pool(instanceSizes=["xlarge", "4xlarge"])])
    assert "inf1 comes in sizes" in line and "'4xlarge'" in line


def test_inf1_is_x86_only():
    (line,) = problems([inf1_pool(architectures=["amd64", "arm64"])])
    assert "inf1 instances are x86_64 only" in line


def test_graviton_gpu_family_needs_arm64():
    (line,) = problems([gpu_pool(instanceFamilies=["g5g"])])
    assert "arm64 (Graviton) only" in line
    arm = ok([gpu_pool(instanceFamilies=["g5g"], architectures=["arm64"])], addons={"rookCeph": {"enabled": False}})
    assert arm.pools[0].architectures == ["arm64"]


@pytest.mark.parametrize("alias", ["al2023@latest", "al2023", "bottlerocket@v1.20.0", "al2023@20260714"])
def test_ami_alias_must_be_a_pinned_al2023_release(alias):
    found = problems([pool(amiAlias=alias)])
    assert any(line.startswith("eks-ml-platform:nodePools[0].amiAlias: ") and "never @latest" in line for line in found), found


def test_duplicate_capacity_types_and_bad_capacity_type():
    found = problems([pool(capacityTypes=["spot", "spot"])])
    assert any("nodePools[0].capacityTypes: spot listed more than once" in line for line in found), found
    found = problems([pool(capacityTypes=["preemptible"])])
    assert any(line.startswith("eks-ml-platform:nodePools[0].capacityTypes[0]: 'preemptible' is not allowed") for line in found), found


def test_imds_hop_limit_range():
    found = problems([pool(imdsHopLimit=0)])
    assert any(line.startswith("eks-ml-platform:nodePools[0].imdsHopLimit: ") for line in found), found
    assert ok([pool(imdsHopLimit=2)]).pools[0].imds_hop_limit == 2


def test_unknown_pool_key_suggests_the_right_one():
    found = problems([pool(consolidateAftr="1m")])
    assert found == ["eks-ml-platform:nodePools[0].consolidateAftr: unknown key; did you mean 'consolidateAfter'?"]


def test_several_mistakes_are_reported_together():
    found = problems([gpu_pool(instanceFamilies=["m6i"]), inf1_pool(limits={"cpu": 0, "neuron": 2})])
    assert any(line.startswith("eks-ml-platform:nodePools[0]: ") for line in found)
    assert any(line.startswith("eks-ml-platform:nodePools[1].limits.cpu: ") for line in found)


# ------------------------------------------------------------------ good config and defaults
def test_custom_pools_replace_the_defaults():
    cfg = ok([pool(name="batch"), gpu_pool(name="a100", instanceFamilies=["p4d"], rootVolumeGib=500,
                                           amiAlias="al2023@v20260625")])
    assert [p.name for p in cfg.pools] == ["batch", "a100"]
    assert cfg.pools[1].root_volume == 500 and cfg.pools[1].ami_alias == "al2023@v20260625"
    assert cfg.pools[0].root_volume == 50  # plain pools default to 50 GiB


def test_default_pools_per_environment():
    dev = parse_config({}, stack="dev")
    prod = parse_config({"environment": "prod", "cluster": PROD_ADMIN}, stack="prod")
    for cfg in (dev, prod):
        pools = {p.name: p for p in cfg.pools}
        # inf2 beside inf1 in staging and prod (their stack files serve on it); dev keeps the seed's inf1 only
        assert list(pools) == (["cpu", "gpu", "inf1"] if cfg is dev else ["cpu", "gpu", "inf1", "inf2"])
        assert pools["cpu"].accelerator == "none" and pools["cpu"].consolidation_policy == "WhenEmptyOrUnderutilized"
        gpu, inf1 = pools["gpu"], pools["inf1"]
        assert gpu.accelerator == "nvidia" and set(gpu.instance_families) >= {"g5", "g6", "g6e"}
        assert inf1.accelerator == "inf1" and inf1.instance_families == ["inf1"]
        for p in (gpu, inf1):  # idle accelerator nodes go away quickly
            assert p.consolidation_policy == "WhenEmpty" and p.consolidate_after == "5m" and p.budgets
            assert p.limits.cpu > 0
        assert gpu.limits.gpu > 0 and inf1.limits.neuron > 0
        assert gpu.root_volume > pools["cpu"].root_volume and inf1.root_volume > pools["cpu"].root_volume
    dev_pools = {p.name: p for p in dev.pools}
    prod_pools = {p.name: p for p in prod.pools}
    # dev: spot inf1.xlarge as in the seed; prod: spot with on-demand fallback, and p4d/p5 for GPUs
    assert dev_pools["inf1"].capacity_types == ["spot"] and dev_pools["inf1"].instance_sizes == ["xlarge"]
    assert prod_pools["inf1"].capacity_types == ["spot", "on-demand"]
    assert prod_pools["gpu"].capacity_types == ["spot", "on-demand"]
    assert {"p4d", "p5"} <= set(prod_pools["gpu"].instance_families)
    assert prod_pools["gpu"].limits.gpu > dev_pools["gpu"].limits.gpu
    staging = {p.name: p for p in parse_config({"environment": "staging"}, stack="staging").pools}
    for inf2 in (staging["inf2"], prod_pools["inf2"]):
        assert inf2.accelerator == "inf2" and inf2.instance_families == ["inf2"] and "xlarge" in inf2.instance_sizes
        assert inf2.capacity_types == ["spot", "on-demand"] and inf2.consolidation_policy == "WhenEmpty"
        assert inf2.limits.neuron and inf2.root_volume == 150
    assert prod_pools["inf2"].limits.neuron > staging["inf2"].limits.neuron
    # the code default of serving.device stays inf1 everywhere (a new default would move existing stacks' serving)
    assert dev.serving.device == prod.serving.device == "inf1"
