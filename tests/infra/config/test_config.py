"""PlatformConfig: every user mistake is one clear line naming the key; good stacks load."""
from __future__ import annotations

from pathlib import Path

import pytest

from infra.config import ConfigError, load_stack_config, parse_config

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
PROD_ADMIN = {"admins": [{"principalArn": "arn:aws:iam::123456789012:role/admins"}]}


def problems(raw: dict, stack: str = "dev") -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse_config(raw, stack=stack)
    assert exc.value.problems, "a ConfigError must carry at least one problem"
    return exc.value.problems


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_shipped_stacks_load(stack):
    cfg = load_stack_config(stack, REPO)
    assert cfg.stack == stack and cfg.environment == stack
    assert cfg.cluster_name == f"ml-{stack}"


def test_defaults_are_sane_for_dev():
    cfg = parse_config({}, stack="dev")
    assert cfg.cluster.version == "1.34"
    assert cfg.nat_mode == "single" and cfg.ceph_replicas == 2 and cfg.ceph_failure_domain == "host"
    assert [p.name for p in cfg.pools] == ["cpu", "gpu", "inf1"]
    assert cfg.common_tags["eks-ml-platform/cluster"] == "ml-dev"


def test_prod_derives_ha_settings():
    cfg = parse_config({"environment": "prod", "cluster": PROD_ADMIN}, stack="prod")
    assert cfg.nat_mode == "perAz" and cfg.ceph_replicas == 3 and cfg.ceph_failure_domain == "zone"
    assert cfg.vpc.az_count == 3  # Ceph size 3 across zones needs 3 AZs
    two = parse_config({"environment": "prod", "cluster": PROD_ADMIN, "vpc": {"azCount": 2},
                        "storage": {"failureDomain": "host"}}, stack="prod")
    assert two.vpc.az_count == 2


@pytest.mark.parametrize("raw, expected", [
    # unknown keys (typos) suggest the right one
    ({"clustr": {}}, "eks-ml-platform:clustr: unknown key; did you mean 'cluster'?"),
    ({"cluster": {"verison": "1.34"}}, "eks-ml-platform:cluster.verison: unknown key; did you mean 'version'?"),
    ({"vpc": {"azCount": 2, "natGateway": "single"}}, "eks-ml-platform:vpc.natGateway: unknown key; did you mean 'natGateways'?"),
    # wrong types
    ({"cluster": {"systemNodes": {"desiredSize": "two"}}}, "eks-ml-platform:cluster.systemNodes.desiredSize: 'two' has the wrong type"),
    ({"protect": "maybe"}, "eks-ml-platform:protect: 'maybe' has the wrong type"),
    ({"cluster": "big"}, "eks-ml-platform:cluster: 'big' has the wrong type"),
    # bad CIDR
    ({"vpc": {"cidr": "10.0.0.0/33"}}, "eks-ml-platform:vpc.cidr: '10.0.0.0/33' is not a valid CIDR"),
    ({"vpc": {"cidr": "10.0.0.1/16"}}, "eks-ml-platform:vpc.cidr: '10.0.0.1/16' is not a valid CIDR"),
    ({"vpc": {"cidr": "10.0.0.0/24"}}, "eks-ml-platform:vpc.cidr: 10.0.0.0/24 must be an IPv4 CIDR between /16 and /20"),
    ({"cluster": {"endpoint": {"publicAccess": True, "publicAccessCidrs": ["1.2.3.4/40"]}}},
     "eks-ml-platform:cluster.endpoint.publicAccessCidrs: '1.2.3.4/40' is not a valid CIDR"),
    # AZ count out of range
    ({"vpc": {"azCount": 1}}, "eks-ml-platform:vpc.azCount: 1 is out of range; use 2 or 3"),
    ({"vpc": {"azCount": 4}}, "eks-ml-platform:vpc.azCount: 4 is out of range; use 2 or 3"),
    # bring-your-own VPC without subnets
    ({"vpc": {"id": "vpc-0123456789abcdef0"}}, "eks-ml-platform:vpc: a bring-your-own VPC (vpc.id) needs privateSubnetIds in at least 2 AZs"),
    ({"vpc": {"privateSubnetIds": ["subnet-01234567"]}}, "eks-ml-platform:vpc: subnet ids were given without vpc.id"),
    # unsupported Kubernetes versions, including YAML's float trap
    ({"cluster": {"version": "1.19"}}, "eks-ml-platform:cluster.version: 1.19 is not supported; use 1.30-1.36"),
    ({"cluster": {"version": "1.37"}}, "eks-ml-platform:cluster.version: 1.37 is not supported; use 1.30-1.36"),
    ({"cluster": {"version": 1.3}}, 'eks-ml-platform:cluster.version: 1.3 was read as a number; quote it: "1.30"'),
    # endpoint
    ({"cluster": {"endpoint": {"publicAccess": True}}}, "eks-ml-platform:cluster.endpoint: publicAccess is true but publicAccessCidrs is empty"),
    ({"cluster": {"endpoint": {"privateAccess": False}}}, "eks-ml-platform:cluster.endpoint: privateAccess and publicAccess cannot both be false"),
    # admins
    ({"cluster": {"admins": [{"principalArn": "bob"}]}}, "eks-ml-platform:cluster.admins[0].principalArn: 'bob' is not an IAM role or user ARN"),
    ({"cluster": {"admins": [{"principalArn": "arn:aws:iam::123456789012:role/x", "policy": "root"}]}},
     "eks-ml-platform:cluster.admins[0].policy: 'root' is not allowed; use one of"),
    ({"environment": "qa"}, "eks-ml-platform:environment: 'qa' is not allowed; use one of 'dev', 'staging' or 'prod'"),
    ({"region": "mars-1"}, "eks-ml-platform:region: 'mars-1' is not an AWS region"),
    ({"tags": {"aws:team": "x"}}, "eks-ml-platform:tags: tag key 'aws:team' uses the reserved aws: prefix"),
])
def test_bad_config_names_the_key(raw, expected):
    found = problems(raw)
    assert any(p.startswith(expected) for p in found), found


def test_empty_admin_list_in_prod_is_refused():
    found = problems({"environment": "prod", "cluster": {"admins": []}}, stack="prod")
    assert found == ["eks-ml-platform:cluster.admins: prod needs at least one admin principal (an access entry), "
                     "or nobody can reach the cluster"]


def test_prod_cannot_be_ephemeral():
    found = problems({"environment": "prod", "ephemeral": True, "cluster": PROD_ADMIN}, stack="prod")
    assert any(p.startswith("eks-ml-platform:ephemeral: prod cannot be ephemeral") for p in found)


def test_several_mistakes_give_one_line_each():
    found = problems({"vpc": {"azCount": 9}, "cluster": {"version": "1.2"}, "typo": 1})
    assert len(found) == 3
    assert {p.split(":")[1] for p in found} == {"vpc.azCount", "cluster.version", "typo"}


def test_missing_stack_file_is_a_clear_error(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text("name: eks-ml-platform\nruntime: python\n")
    (tmp_path / "Pulumi.dev.yaml").write_text("config: {}\n")
    with pytest.raises(ConfigError) as exc:
        load_stack_config("qa", tmp_path)
    assert exc.value.problems == ["stack 'qa' does not exist: no Pulumi.qa.yaml (known stacks: dev)"]


def test_plaintext_grafana_password_is_refused(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text("name: eks-ml-platform\nruntime: python\n")
    (tmp_path / "Pulumi.dev.yaml").write_text("config:\n  eks-ml-platform:grafanaAdminPassword: hunter2\n")
    with pytest.raises(ConfigError) as exc:
        load_stack_config("dev", tmp_path)
    assert exc.value.problems == ["eks-ml-platform:grafanaAdminPassword: must be a secret; set it with "
                                  "`pulumi config set --secret grafanaAdminPassword`"]


def test_stack_file_overrides_project_defaults(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text(
        "name: eks-ml-platform\nruntime: python\nconfig:\n  region:\n    type: string\n    default: eu-west-1\n"
        "  protect:\n    type: boolean\n    default: true\n")
    (tmp_path / "Pulumi.dev.yaml").write_text("config:\n  eks-ml-platform:protect: false\n")
    cfg = load_stack_config("dev", tmp_path)
    assert cfg.region == "eu-west-1" and cfg.protect is False


@pytest.mark.parametrize("raw, expected", [
    ({"storage": {"osdCount": 1}}, "eks-ml-platform:storage.osdCount: 1 OSDs cannot hold 2 replicas"),
    ({"storage": {"failureDomain": "zone", "replicas": 3}, "vpc": {"azCount": 2}},
     "eks-ml-platform:storage.failureDomain: zone needs at least 3 AZs for 3 replicas; vpc.azCount is 2"),
    ({"nodePools": [{"name": "cpu", "instanceFamilies": ["m6i"], "capacityTypes": ["spot"], "limits": {"cpu": 8}}],
      "training": {"enabled": False}, "serving": {"enabled": False}},
     "eks-ml-platform:nodePools: Rook-Ceph runs on on-demand nodes of an untainted pool"),
])
def test_ceph_layouts_that_never_get_healthy_are_refused(raw, expected):
    found = problems(raw)
    assert any(p.startswith(expected) for p in found), found


def test_region_follows_aws_region_and_a_mismatch_is_refused():
    from infra.config import from_flat

    # only aws:region set: the stack is described (and priced, and deployed) in that region
    cfg = from_flat({"aws:region": "eu-west-1", "eks-ml-platform:ephemeral": True}, stack="dev")
    assert cfg.region == "eu-west-1"
    # neither: the documented default
    assert from_flat({}, stack="dev").region == "us-west-2"
    # both, alike: fine; different: one line naming the key
    assert from_flat({"aws:region": "eu-west-1", "eks-ml-platform:region": "eu-west-1"}, stack="dev").region == "eu-west-1"
    with pytest.raises(ConfigError) as err:
        from_flat({"aws:region": "eu-west-1", "eks-ml-platform:region": "us-west-2"}, stack="dev")
    assert err.value.problems == ["eks-ml-platform:region: 'us-west-2' differs from aws:region 'eu-west-1'; the stack "
                                  "would be deployed in one and described in the other: set one of them, or both alike"]


def test_pulumi_yaml_gives_region_no_default():
    """A project default would always count as set, and region could never follow aws:region."""
    from infra.config import merged_stack_config

    from tests.conftest import REPO

    assert "eks-ml-platform:region" not in merged_stack_config("dev", REPO)
