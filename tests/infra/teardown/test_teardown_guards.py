"""Teardown can only ever reach the stack's own cluster (the data-safety issue's spoofing cases).

Each case reproduces what an ephemeral stack file could do to production before, and shows the
refusal now; the moto scenario puts prod's Karpenter node and interruption queue in the same account
and checks that none of them is touched.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from infra.conventions import interruption_queue_name
from infra.config import ConfigError, parse_config
from infra.teardown.guards import Refused, check_cluster_tags, check_neighbours
from infra.teardown.steps import run_teardown

pytestmark = pytest.mark.tooling

REGION = "us-west-2"
PROD_ADMIN = [{"principalArn": "arn:aws:iam::123456789012:role/admin"}]


def write_project(root: Path, stacks: dict[str, dict]) -> Path:
    (root / "Pulumi.yaml").write_text("name: eks-ml-platform\nruntime: python\n")
    for name, cfg in stacks.items():
        flat = {f"eks-ml-platform:{k}": v for k, v in cfg.items()}
        flat.setdefault("aws:region", REGION)
        (root / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump({"config": flat}))
    return root


DEV = {"environment": "dev", "ephemeral": True}
PROD = {"environment": "prod", "protect": True, "cluster": {"admins": PROD_ADMIN}}


# ------------------------------------------------------------------ config: internal fields, ownership tags
def test_the_internal_stack_field_cannot_be_set_from_a_stack_file():
    with pytest.raises(ConfigError) as err:
        parse_config({"stack": "prod", "ephemeral": True}, stack="dev")
    assert err.value.problems == ["eks-ml-platform:stack: unknown key (the stack's name comes from "
                                  "Pulumi.<stack>.yaml, it cannot be set in config)"]


@pytest.mark.parametrize("key", ["eks-ml-platform/cluster", "eks-ml-platform/stack", "Eks-ML-Platform/ephemeral",
                                 "karpenter.sh/discovery", "kubernetes.io/cluster/ml-prod", "aws:cloudformation"])
def test_user_tags_may_not_set_ownership_or_discovery_keys(key):
    with pytest.raises(ConfigError) as err:
        parse_config({"tags": {key: "ml-dev"}}, stack="prod")
    (problem,) = err.value.problems
    assert problem.startswith("eks-ml-platform:tags: ") and repr(key) in problem


def test_platform_tags_win_and_user_tags_stay():
    cfg = parse_config({"tags": {"team": "ml"}, "ephemeral": True}, stack="dev")
    tags = cfg.common_tags
    assert tags["eks-ml-platform/cluster"] == "ml-dev" and tags["eks-ml-platform/stack"] == "dev"
    assert tags["team"] == "ml"
    assert list(tags)[:4] == ["eks-ml-platform/stack", "eks-ml-platform/environment", "eks-ml-platform/cluster",
                              "managed-by"]


# ------------------------------------------------------------------ neighbours: every stack file of the project
def test_a_dev_stack_naming_prods_cluster_is_refused(tmp_path):
    root = write_project(tmp_path, {"dev": {**DEV, "cluster": {"name": "ml-prod"}}, "prod": PROD})
    cfg = parse_config({**DEV, "cluster": {"name": "ml-prod"}}, stack="dev")
    with pytest.raises(Refused, match=r"cluster name 'ml-prod' is also claimed by stack 'prod' "
                                               r"\(a production or staging stack\)"):
        check_neighbours("dev", cfg, root)


def test_two_ephemeral_stacks_with_one_cluster_name_are_refused(tmp_path):
    root = write_project(tmp_path, {"dev": {**DEV, "cluster": {"name": "shared"}},
                                    "dev2": {**DEV, "cluster": {"name": "shared"}}})
    cfg = parse_config({**DEV, "cluster": {"name": "shared"}}, stack="dev")
    with pytest.raises(Refused, match="also claimed by stack 'dev2' \\(ephemeral too\\)"):
        check_neighbours("dev", cfg, root)


def test_an_unreadable_neighbour_is_refused_not_a_crash(tmp_path):
    root = write_project(tmp_path, {"dev": DEV})
    (root / "Pulumi.other.yaml").write_text("config:\n  eks-ml-platform:clustr: {}\n")
    with pytest.raises(Refused, match="stack 'other' of this project cannot be read .*clustr"):
        check_neighbours("dev", parse_config(DEV, stack="dev"), root)


def test_distinct_cluster_names_pass(tmp_path):
    root = write_project(tmp_path, {"dev": DEV, "prod": PROD, "staging": {"environment": "staging"}})
    check_neighbours("dev", parse_config(DEV, stack="dev"), root)


# ------------------------------------------------------------------ the cluster's own tags, and the moto scenario
@pytest.fixture
def aws(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    from moto import mock_aws

    with mock_aws():
        import boto3

        yield boto3.Session(region_name=REGION)


def _cluster(session, name: str, tags: dict[str, str]) -> None:
    session.client("eks").create_cluster(name=name, roleArn="arn:aws:iam::123456789012:role/eks",
                                         resourcesVpcConfig={"subnetIds": []}, tags=tags)


def test_cluster_tags_must_name_this_ephemeral_stack(aws):
    _cluster(aws, "ml-prod", {"eks-ml-platform/stack": "prod", "eks-ml-platform/environment": "prod"})
    with pytest.raises(Refused, match="tagged eks-ml-platform/stack='prod', not this stack"):
        check_cluster_tags("dev", "ml-prod", aws)
    _cluster(aws, "ml-dev", {"eks-ml-platform/stack": "dev", "eks-ml-platform/environment": "dev"})
    with pytest.raises(Refused, match="not an ephemeral cluster"):
        check_cluster_tags("dev", "ml-dev", aws)
    _cluster(aws, "ml-dev2", {"eks-ml-platform/stack": "dev2", "eks-ml-platform/environment": "dev",
                              "eks-ml-platform/ephemeral": "true"})
    check_cluster_tags("dev2", "ml-dev2", aws)
    check_cluster_tags("dev", "gone", aws)  # a cluster already destroyed: the sweep looks for leftovers


def _prod_world(session) -> dict[str, str]:
    """prod's cluster, Karpenter node and interruption queue in the account the dev teardown would sweep."""
    ec2, sqs = session.client("ec2"), session.client("sqs")
    _cluster(session, "ml-prod", {"eks-ml-platform/stack": "prod", "eks-ml-platform/environment": "prod"})
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    node = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=subnet, TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": "karpenter.sh/nodepool", "Value": "cpu"},
                                              {"Key": "kubernetes.io/cluster/ml-prod", "Value": "owned"},
                                              {"Key": "eks:eks-cluster-name", "Value": "ml-prod"}]}],
    )["Instances"][0]["InstanceId"]
    queue = sqs.create_queue(QueueName=interruption_queue_name("ml-prod"),
                             tags={"eks-ml-platform/cluster": "ml-prod"})["QueueUrl"]
    return {"node": node, "queue": queue}


def _untouched(session, world) -> None:
    (res,) = session.client("ec2").describe_instances(InstanceIds=[world["node"]])["Reservations"]
    assert res["Instances"][0]["State"]["Name"] == "running"
    assert world["queue"] in session.client("sqs").list_queues().get("QueueUrls", [])


@pytest.mark.parametrize("dev_cfg, why", [
    ({**DEV, "cluster": {"name": "ml-prod"}}, "also claimed by stack 'prod'"),   # (b) a borrowed cluster name
    ({**DEV, "stack": "prod"}, "eks-ml-platform:stack: unknown key"),              # (a) the internal field
])
def test_an_ephemeral_stack_file_cannot_sweep_production(aws, tmp_path, dev_cfg, why):
    world = _prod_world(aws)
    root = write_project(tmp_path, {"dev": dev_cfg, "prod": PROD})
    out: list[str] = []
    rc = run_teardown("dev", region=REGION, project_dir=root, yes=True, sweep_only=True, session=aws,
                      out=out.append)
    assert rc == 2 and why in out[0], out
    _untouched(aws, world)


def test_a_dev_stack_whose_cluster_is_tagged_as_prods_is_refused(aws, tmp_path):
    """Config alone agrees (no neighbour claims the name), but AWS says the cluster is prod's."""
    world = _prod_world(aws)
    root = write_project(tmp_path, {"dev": {**DEV, "cluster": {"name": "ml-prod"}}})
    out: list[str] = []
    rc = run_teardown("dev", region=REGION, project_dir=root, yes=True, sweep_only=True, session=aws,
                      out=out.append)
    assert rc == 2 and "tagged eks-ml-platform/stack='prod'" in out[0], out
    _untouched(aws, world)
