"""The safe teardown: sweep by tags (moto), guards, and the order of the orchestration."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest

from components.storage.settings import StorageSettings
from infra.conventions import DESTROY_DATA_KEY, interruption_queue_name
from infra.teardown.cli import main as teardown_main
from infra.teardown.execute import Clock, sweep, wait_for_nodes_gone
from infra.teardown.stack import (
    AutomationStackOps,
    first_targets,
    nodepool_targets,
    storage_targets,
    workload_targets,
)
from infra.teardown.steps import run_teardown
from infra.teardown.tags import is_karpenter_instance

pytestmark = pytest.mark.tooling

REPO = Path(__file__).resolve().parents[3]
#: A clock whose sleeps return at once: a retry or poll of the sweep never waits in a test.
NO_WAIT = Clock(sleep=lambda seconds: None)

REGION = "us-west-2"
CLUSTER = "dev-ml"
OTHER = "other-ml"


AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


def _fake_aws(mp: pytest.MonkeyPatch) -> None:
    for key, value in AWS_ENV.items():
        mp.setenv(key, value)
    mp.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def aws_env(monkeypatch):
    _fake_aws(monkeypatch)


def _tags(d: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in d.items()]


def _spec(kind: str, d: dict[str, str]) -> list[dict]:
    return [{"ResourceType": kind, "Tags": _tags(d)}]


def karpenter_tags(cluster: str, pool: str = "cpu") -> dict[str, str]:
    """What Karpenter v1 itself puts on the instances it launches."""
    return {
        "karpenter.sh/nodepool": pool,
        "karpenter.k8s.aws/ec2nodeclass": "default",
        "eks:eks-cluster-name": cluster,
        f"kubernetes.io/cluster/{cluster}": "owned",
    }


def pv_volume_tags(cluster: str, pvc: str) -> dict[str, str]:
    """What the EBS CSI driver sets with k8sTagClusterId and --extra-create-metadata."""
    return {
        "CSIVolumeName": f"pvc-{pvc}",
        "ebs.csi.aws.com/cluster": "true",
        f"kubernetes.io/cluster/{cluster}": "owned",
        "KubernetesCluster": cluster,
        "kubernetes.io/created-for/pvc/name": pvc,
        "kubernetes.io/created-for/pvc/namespace": "default",
    }


@dataclass
class World:
    session: object
    expected: set[str] = field(default_factory=set)  # what the sweep of CLUSTER must delete
    kept: set[str] = field(default_factory=set)  # notable things it must not touch


def build_world():
    """Two clusters' worth of leftovers plus untagged look-alikes in one moto account."""
    import boto3

    s = boto3.Session(region_name=REGION)
    w = World(session=s)
    ec2, elb, iam = s.client("ec2"), s.client("elbv2"), s.client("iam")
    sqs, events = s.client("sqs"), s.client("events")
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
    subnet = subnets[0]["SubnetId"]
    az = subnets[0]["AvailabilityZone"]
    ami = "ami-12c6146b"

    def instance(tags: dict[str, str]) -> str:
        kw = {"TagSpecifications": _spec("instance", tags)} if tags else {}
        return ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, SubnetId=subnet,
                                 **kw)["Instances"][0]["InstanceId"]

    # --- instances
    i1 = instance(karpenter_tags(CLUSTER, "cpu"))
    i2 = instance({"karpenter.sh/nodepool": "gpu", f"kubernetes.io/cluster/{CLUSTER}": "owned"})
    i3 = instance({"karpenter.sh/nodepool": "inf1", "eks:eks-cluster-name": CLUSTER})
    w.expected |= {i1, i2, i3}
    w.kept |= {
        instance(karpenter_tags(OTHER)),
        # our name, but another cluster claims it too: never touched
        instance({**karpenter_tags(CLUSTER), f"kubernetes.io/cluster/{OTHER}": "owned"}),
        # discovery is a selector, not a proof of ownership
        instance({"karpenter.sh/nodepool": "cpu", "karpenter.sh/discovery": CLUSTER}),
        # shared is not owned
        instance({"karpenter.sh/nodepool": "cpu", f"kubernetes.io/cluster/{CLUSTER}": "shared"}),
        # a node of this cluster that Karpenter did not launch (e.g. managed node group)
        instance({"eks:eks-cluster-name": CLUSTER, f"kubernetes.io/cluster/{CLUSTER}": "owned"}),
        instance({}),
    }

    # --- launch templates
    def lt(name: str, tags: dict[str, str]) -> str:
        kw = {"TagSpecifications": _spec("launch-template", tags)} if tags else {}
        return ec2.create_launch_template(LaunchTemplateName=name,
                                          LaunchTemplateData={"ImageId": ami}, **kw)[
            "LaunchTemplate"]["LaunchTemplateId"]

    w.expected.add(lt("karpenter.k8s.aws/1", {"karpenter.k8s.aws/cluster": CLUSTER,
                                              "karpenter.k8s.aws/ec2nodeclass": "default"}))
    w.kept |= {lt("karpenter.k8s.aws/2", {"karpenter.k8s.aws/cluster": OTHER}), lt("plain", {})}

    # --- instance profiles (IAM is global: the region tag matters)
    iam.create_role(RoleName="node-role", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": []}))

    def profile(name: str, tags: dict[str, str]) -> str:
        arn = iam.create_instance_profile(InstanceProfileName=name, Tags=_tags(tags))[
            "InstanceProfile"]["Arn"]
        iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName="node-role")
        return arn

    prof_tags = {"karpenter.k8s.aws/ec2nodeclass": "default", "eks:eks-cluster-name": CLUSTER,
                 f"kubernetes.io/cluster/{CLUSTER}": "owned",
                 "topology.kubernetes.io/region": REGION}
    w.expected.add(profile(f"{CLUSTER}_123", prof_tags))
    w.kept |= {
        profile(f"{CLUSTER}_456", {**prof_tags, "topology.kubernetes.io/region": "eu-west-1"}),
        profile(f"{OTHER}_123", {**prof_tags, "eks:eks-cluster-name": OTHER,
                                 f"kubernetes.io/cluster/{CLUSTER}": "x"}),
        profile("pulumi-node-profile", {"eks:eks-cluster-name": CLUSTER}),
        profile("not-karpenters-name", prof_tags),  # right tags, not a Karpenter profile name
    }

    # --- network interfaces
    def eni(tags: dict[str, str]) -> str:
        kw = {"TagSpecifications": _spec("network-interface", tags)} if tags else {}
        return ec2.create_network_interface(SubnetId=subnet, **kw)["NetworkInterface"][
            "NetworkInterfaceId"]

    cni = {"cluster.k8s.amazonaws.com/name": CLUSTER, "node.k8s.amazonaws.com/instance_id": i1}
    e_free = eni(cni)
    e_attached = eni(cni)  # attached to a swept instance, no delete-on-termination
    ec2.attach_network_interface(NetworkInterfaceId=e_attached, InstanceId=i1, DeviceIndex=1)
    w.expected |= {e_free, e_attached}
    w.kept |= {eni({"cluster.k8s.amazonaws.com/name": OTHER}), eni({})}

    # --- EBS volumes from PVCs
    def vol(tags: dict[str, str]) -> str:
        kw = {"TagSpecifications": _spec("volume", tags)} if tags else {}
        return ec2.create_volume(AvailabilityZone=az, Size=10, VolumeType="gp3", **kw)["VolumeId"]

    v1 = vol(pv_volume_tags(CLUSTER, "data-prometheus-0"))
    v2 = vol({"ebs.csi.aws.com/cluster": "true", "KubernetesCluster": CLUSTER})
    v3 = vol(pv_volume_tags(CLUSTER, "ceph-osd-0"))
    ec2.attach_volume(VolumeId=v3, InstanceId=i2, Device="/dev/sdf")
    w.expected |= {v1, v2, v3}
    w.kept |= {
        vol(pv_volume_tags(OTHER, "data-prometheus-0")),
        vol({"kubernetes.io/created-for/pvc/name": "x"}),  # a PV volume of no known cluster
        vol({f"kubernetes.io/cluster/{CLUSTER}": "owned"}),  # cluster-owned but not a PV
        vol({}),
    }

    # --- security groups of the AWS Load Balancer Controller
    def sg(name: str, tags: dict[str, str]) -> str:
        kw = {"TagSpecifications": _spec("security-group", tags)} if tags else {}
        return ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc, **kw)[
            "GroupId"]

    lbc = {"elbv2.k8s.aws/cluster": CLUSTER, "elbv2.k8s.aws/resource": "ManagedLBSecurityGroup"}
    sg_ours = sg("k8s-default-sentiment", lbc)
    sg_other = sg("k8s-default-other", {"elbv2.k8s.aws/cluster": OTHER})
    sg_nodes = sg("nodes", {})  # Pulumi's node group: untagged by the LBC
    sg_plain = sg("plain", {})

    def allow_from(group: str, source: str) -> str:
        out = ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
            "UserIdGroupPairs": [{"GroupId": source}]}])
        return out["SecurityGroupRules"][0]["SecurityGroupRuleId"]

    rule_ours = allow_from(sg_nodes, sg_ours)
    w.expected |= {sg_ours, rule_ours}
    w.kept |= {sg_other, sg_nodes, sg_plain, allow_from(sg_plain, sg_other)}

    # --- load balancers and target groups
    def lb_and_tg(name: str, tags: dict[str, str], group: str) -> tuple[str, str]:
        lb_arn = elb.create_load_balancer(Name=name, Subnets=[s["SubnetId"] for s in subnets[:2]],
                                          SecurityGroups=[group], Scheme="internal",
                                          Tags=_tags(tags))["LoadBalancers"][0]["LoadBalancerArn"]
        tg_arn = elb.create_target_group(Name=f"{name}-tg", Protocol="HTTP", Port=8080, VpcId=vpc,
                                         TargetType="ip", Tags=_tags(tags))["TargetGroups"][0][
            "TargetGroupArn"]
        elb.create_listener(LoadBalancerArn=lb_arn, Protocol="HTTP", Port=80,
                            DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arn}])
        return lb_arn, tg_arn

    w.expected |= set(lb_and_tg("k8s-ours", {"elbv2.k8s.aws/cluster": CLUSTER,
                                             "service.k8s.aws/stack": "default/sentiment"}, sg_ours))
    w.kept |= set(lb_and_tg("k8s-other", {"elbv2.k8s.aws/cluster": OTHER}, sg_other))
    w.kept.add(elb.create_target_group(Name="plain-tg", Protocol="HTTP", Port=80, VpcId=vpc)[
        "TargetGroups"][0]["TargetGroupArn"])

    # --- interruption queues and their EventBridge rules
    def queue(name: str, tags: dict[str, str]) -> tuple[str, str]:
        url = sqs.create_queue(QueueName=name, tags=tags)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        rule = events.put_rule(Name=f"{name}-spot",
                               EventPattern=json.dumps({"source": ["aws.ec2"]}))["RuleArn"]
        events.put_targets(Rule=f"{name}-spot", Targets=[{"Id": "q", "Arn": arn}])
        return arn, rule

    w.expected |= set(queue(interruption_queue_name(CLUSTER), {}))
    w.expected |= set(queue("renamed-by-hand", {f"kubernetes.io/cluster/{CLUSTER}": "owned"}))
    w.expected |= set(queue("project-tagged", {"eks-ml-platform/cluster": CLUSTER}))
    w.kept |= set(queue(interruption_queue_name(OTHER), {}))
    w.kept |= set(queue("unrelated", {}))
    return w


def inventory(s) -> set[str]:
    """Every id/ARN of the kinds the sweep handles that exists (live) in the account."""
    ec2, elb, iam = s.client("ec2"), s.client("elbv2"), s.client("iam")
    sqs, events = s.client("sqs"), s.client("events")
    ids: set[str] = set()
    for r in ec2.describe_instances(Filters=[{"Name": "instance-state-name",
                                              "Values": ["pending", "running"]}])["Reservations"]:
        ids |= {i["InstanceId"] for i in r["Instances"]}
    ids |= {t["LaunchTemplateId"] for t in ec2.describe_launch_templates()["LaunchTemplates"]}
    ids |= {p["Arn"] for p in iam.list_instance_profiles()["InstanceProfiles"]}
    ids |= {e["NetworkInterfaceId"] for e in ec2.describe_network_interfaces()["NetworkInterfaces"]}
    ids |= {v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]}
    ids |= {g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]}
    ids |= {r["SecurityGroupRuleId"] for r in ec2.describe_security_group_rules()[
        "SecurityGroupRules"]}
    ids |= {lb["LoadBalancerArn"] for lb in elb.describe_load_balancers()["LoadBalancers"]}
    ids |= {tg["TargetGroupArn"] for tg in elb.describe_target_groups()["TargetGroups"]}
    for url in sqs.list_queues().get("QueueUrls", []):
        ids.add(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"])
    ids |= {r["Arn"] for r in events.list_rules()["Rules"]}
    return ids


@pytest.fixture
def world(aws_env):
    """A fresh account for the test that deletes."""
    from moto import mock_aws

    with mock_aws():
        yield build_world()


@pytest.fixture(scope="module")
def readonly_world():
    """One shared account for the tests that only read (moto set-up is the slow part)."""
    from moto import mock_aws

    with pytest.MonkeyPatch.context() as mp:
        _fake_aws(mp)
        with mock_aws():
            yield build_world()


def test_sweep_dry_run_then_real_run(world):
    s = world.session
    before = inventory(s)
    assert world.expected <= before and world.kept <= before

    ec2 = s.client("ec2")
    our_groups = [g for g in world.expected if g.startswith("sg-")]
    own_rules = {r["SecurityGroupRuleId"] for r in ec2.describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": our_groups}])["SecurityGroupRules"]}
    root_volumes = {b["Ebs"]["VolumeId"] for r in ec2.describe_instances(
        InstanceIds=[i for i in world.expected if i.startswith("i-")])["Reservations"]
        for i in r["Instances"] for b in i["BlockDeviceMappings"] if b["Ebs"]["DeleteOnTermination"]}

    planned = sweep(s, CLUSTER, dry_run=True)
    assert inventory(s) == before, "a dry run must not change anything"
    assert len(planned) == len(set(planned))
    assert set(planned) == world.expected

    deleted = sweep(s, CLUSTER, dry_run=False, clock=NO_WAIT)
    assert deleted == planned, "the real run deletes exactly what the dry run listed"
    after = inventory(s)
    assert not (after & world.expected), f"left behind: {sorted(after & world.expected)}"
    # Nothing else changed: the other cluster, untagged look-alikes and moto's defaults stay.
    # Only incidental things went: the root volumes of the terminated instances (EC2 deletes
    # them) and the rules that lived inside the deleted security groups.
    vanished = before - after - world.expected
    assert vanished <= own_rules | root_volumes, sorted(vanished - own_rules - root_volumes)
    assert world.kept <= after

    # The instances are terminated, the swept profiles' role is untouched.
    states = {i["InstanceId"]: i["State"]["Name"]
              for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]}
    assert {states[i] for i in world.expected if i.startswith("i-")} == {"terminated"}
    s.client("iam").get_role(RoleName="node-role")

    # A second sweep finds nothing.
    assert sweep(s, CLUSTER, dry_run=True) == []


def test_sweep_of_other_cluster_leaves_ours(readonly_world):
    w = readonly_world
    planned = set(sweep(w.session, OTHER, dry_run=True))
    assert not (planned & w.expected)
    # The other cluster's own leftovers (all among `kept`), one of each kind.
    assert planned <= w.kept
    kinds = {p.split("-")[0] if not p.startswith("arn:") else p.split(":")[2] for p in planned}
    assert kinds == {"i", "lt", "eni", "vol", "sgr", "sg", "elasticloadbalancing", "sqs", "events"}


def test_sweep_refuses_empty_cluster_name():
    with pytest.raises(ValueError):
        sweep(object(), "", dry_run=True)


def test_wait_for_nodes_gone_times_out_with_the_ids(readonly_world):
    world = readonly_world
    ticks = iter(range(0, 10_000, 100))
    slept: list[float] = []
    clock = Clock(sleep=slept.append, monotonic=lambda: next(ticks))
    left = wait_for_nodes_gone(world.session, CLUSTER, timeout=250, poll=1, clock=clock)
    assert slept == [1, 1], "polls every `poll` seconds until the injected clock passes the timeout"
    assert set(left) == {i for i in world.expected if i.startswith("i-")}


# --------------------------------------------------------------------------------------------
# Predicates
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tags,ours", [
    (karpenter_tags(CLUSTER), True),
    ({"karpenter.sh/nodepool": "a", "eks:eks-cluster-name": CLUSTER}, True),
    ({"karpenter.sh/nodepool": "a", f"kubernetes.io/cluster/{CLUSTER}": "owned"}, True),
    ({"karpenter.sh/nodepool": "a", f"kubernetes.io/cluster/{CLUSTER}": "shared"}, False),
    ({"karpenter.sh/nodepool": "a", "karpenter.sh/discovery": CLUSTER}, False),
    ({"eks:eks-cluster-name": CLUSTER}, False),
    ({**karpenter_tags(CLUSTER), "eks:eks-cluster-name": OTHER}, False),
    ({**karpenter_tags(CLUSTER), f"kubernetes.io/cluster/{CLUSTER}-2": "owned"}, False),
])
def test_instance_ownership(tags, ours):
    assert is_karpenter_instance(tags, CLUSTER) is ours


def test_queue_name_convention():
    assert interruption_queue_name("dev-ml") == "dev-ml-karpenter-interruption"


# --------------------------------------------------------------------------------------------
# Guards and orchestration (no AWS: a fake session and a fake Automation API)
# --------------------------------------------------------------------------------------------


def cfg(**over):
    base = dict(environment="dev", ephemeral=True, protect=False, region=REGION,
                cluster=SimpleNamespace(name=CLUSTER))
    base.update(over)
    return SimpleNamespace(**base)


class FakePaginator:
    def __init__(self, pages):
        self.pages = pages

    def paginate(self, **_):
        return iter(self.pages)


class FakeEC2:
    """describe_instances pages: live Karpenter nodes for the first `polls` calls, then none."""

    def __init__(self, log, polls=1):
        self.log, self.polls = log, polls

    def get_paginator(self, name):
        assert name == "describe_instances"
        self.log.append("ec2:describe_instances")
        if self.polls > 0:
            self.polls -= 1
            inst = {"InstanceId": "i-1", "Tags": _tags(karpenter_tags(CLUSTER))}
            return FakePaginator([{"Reservations": [{"Instances": [inst]}]}])
        return FakePaginator([{"Reservations": []}])


class FakeEKS:
    """The cluster is already gone (ResourceNotFoundException), or tagged as given."""

    def __init__(self, tags=None):
        self.tags = tags

    def describe_cluster(self, name):
        from botocore.exceptions import ClientError

        if self.tags is None:
            raise ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": name}}, "DescribeCluster")
        return {"cluster": {"name": name, "tags": dict(self.tags)}}


class FakeSession:
    def __init__(self, log, polls=1, cluster_tags=None):
        self.ec2 = FakeEC2(log, polls)
        self.eks = FakeEKS(cluster_tags)

    def client(self, name):
        assert name in ("ec2", "eks")
        return self.eks if name == "eks" else self.ec2


RESOURCES = [
    {"urn": "urn:pulumi:dev::p::pulumi:pulumi:Stack::p-dev", "type": "pulumi:pulumi:Stack"},
    {"urn": "urn:k8s-provider", "type": "pulumi:providers:kubernetes"},
    {"urn": "urn:vpc", "type": "aws:ec2/vpc:Vpc"},
    {"urn": "urn:karp", "type": "eks-ml-platform:karpenter:Karpenter"},
    {"urn": "urn:np-cpu", "type": "kubernetes:karpenter.sh/v1:NodePool", "parent": "urn:karp"},
    {"urn": "urn:np-gpu", "type": "kubernetes:karpenter.sh/v1:NodePool", "parent": "urn:karp"},
    {"urn": "urn:nodeclass", "type": "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass",
     "parent": "urn:karp"},
    {"urn": "urn:sent", "type": "eks-ml-platform:workloads:Sentiment"},
    {"urn": "urn:sent-deploy", "type": "kubernetes:apps/v1:Deployment", "parent": "urn:sent"},
    {"urn": "urn:sent-svc", "type": "kubernetes:core/v1:Service", "parent": "urn:sent"},
    {"urn": "urn:train", "type": "eks-ml-platform:workloads:Training"},
    {"urn": "urn:train-job", "type": "kubernetes:kubeflow.org/v1:PyTorchJob",
     "parent": "urn:train"},
]


class FakeOps:
    def __init__(self, log, fail_full_destroy=0, resources=None, fail_up=False):
        self.log = log
        self.fail_full_destroy = fail_full_destroy
        self._resources = RESOURCES if resources is None else resources
        self.fail_up = fail_up

    def resources(self):
        self.log.append("resources")
        return self._resources

    def destroy(self, targets=None):
        self.log.append(("destroy", tuple(targets) if targets is not None else None))
        if targets is None and self.fail_full_destroy:
            self.fail_full_destroy -= 1
            raise RuntimeError("DependencyViolation: vpc has dependencies")

    def set_config(self, key, value, *, path=False):
        self.log.append(("set_config", key, value, path))

    def remove_config(self, key, *, path=False):
        self.log.append(("remove_config", key, path))

    def up(self, targets=None):
        self.log.append(("up", tuple(targets) if targets is not None else None))
        if self.fail_up:
            raise RuntimeError("CephCluster update failed")


def run(log, *, config=None, stack="dev", fail=0, polls=1, resources=None, fail_up=False, **kw):
    out: list[str] = []

    def fake_sweep(session, cluster, *, dry_run):
        log.append(("sweep", cluster, dry_run))
        return ["i-1", "sg-1"]

    rc = run_teardown(
        stack, region=kw.pop("region", REGION), ops=FakeOps(log, fail, resources, fail_up),
        session=FakeSession(log, polls), load_config=lambda st, d: config or cfg(),
        sweep_fn=fake_sweep, out=out.append, node_poll=0, **kw)
    return rc, out


def test_first_targets_are_workloads_with_children_and_nodepools():
    assert first_targets(RESOURCES) == [
        "urn:np-cpu", "urn:np-gpu", "urn:sent", "urn:sent-deploy", "urn:sent-svc",
        "urn:train", "urn:train-job"]


def test_orchestration_order(aws_env):
    log: list = []
    rc, out = run(log, yes=True)
    assert rc == 0, out
    calls = [c for c in log if c != "ec2:describe_instances"]
    assert calls == [
        "resources",
        ("destroy", tuple(first_targets(RESOURCES))),
        ("destroy", None),
        ("sweep", CLUSTER, False),
    ]
    # step 2 polled EC2 between the targeted and the full destroy, until no node was left
    i_target = log.index(("destroy", tuple(first_targets(RESOURCES))))
    i_full = log.index(("destroy", None))
    assert log[i_target + 1:i_full] == ["ec2:describe_instances"] * 2


def test_failed_destroy_sweeps_and_retries_once(aws_env):
    log: list = []
    rc, _ = run(log, yes=True, fail=1)
    assert rc == 0
    calls = [c for c in log if c not in ("ec2:describe_instances", "resources")]
    assert calls == [
        ("destroy", tuple(first_targets(RESOURCES))),
        ("destroy", None), ("sweep", CLUSTER, False), ("destroy", None), ("sweep", CLUSTER, False),
    ]
    log2: list = []
    rc2, out2 = run(log2, yes=True, fail=2)
    assert rc2 == 1 and any("failed again" in line for line in out2)


def test_dry_run_changes_nothing_and_prints_each_step(aws_env):
    log: list = []
    rc, out = run(log, dry_run=True)
    assert rc == 0
    assert not [c for c in log if isinstance(c, tuple) and c[0] == "destroy"]
    assert ("sweep", CLUSTER, True) in log and ("sweep", CLUSTER, False) not in log
    text = "\n".join(out)
    for step in ("step 1/4", "step 2/4", "step 3/4", "step 4/4"):
        assert step in text
    assert "urn:np-gpu" in text and "  i-1" in text and "  sg-1" in text


def test_confirmation_required_without_yes(aws_env):
    log: list = []
    rc, out = run(log, confirm=lambda prompt: "nope")
    assert rc == 1 and not [c for c in log if isinstance(c, tuple)]
    log2: list = []
    rc2, _ = run(log2, confirm=lambda prompt: "dev")
    assert rc2 == 0 and ("destroy", None) in log2

    def eof(prompt):
        raise EOFError

    assert run([], confirm=eof)[0] == 1


def test_sweep_only_skips_the_automation_api(aws_env):
    log: list = []
    rc, _ = run(log, yes=True, sweep_only=True)
    assert rc == 0 and log == [("sweep", CLUSTER, False)]


@pytest.mark.parametrize("stack,config,needle", [
    ("prod", cfg(environment="prod", ephemeral=False, protect=True), "production and staging"),
    ("staging", cfg(environment="staging", ephemeral=False), "production and staging"),
    ("acme/eks-ml-platform/prod", cfg(), "production and staging"),
    ("dev2", cfg(environment="prod"), "environment is 'prod'"),
    ("dev", cfg(protect=True), "protect: true"),
    ("dev", cfg(ephemeral=False), "ephemeral"),
    ("dev", cfg(cluster=SimpleNamespace(name="")), "no cluster name"),
])
def test_guards_refuse(aws_env, stack, config, needle):
    log: list = []
    rc, out = run(log, stack=stack, config=config, yes=True)
    assert rc == 2
    assert len(out) == 1 and needle in out[0], out
    assert log == [], "a refused teardown touches nothing"


def test_region_must_match(aws_env):
    log: list = []
    rc, out = run(log, region="eu-west-1", yes=True)
    assert rc == 2 and "does not match" in out[0] and log == []


def test_config_error_is_refused(aws_env):
    class ConfigError(Exception):
        def __init__(self, problems):
            super().__init__("bad config")
            self.problems = problems

    def bad(stack, project_dir):
        raise ConfigError(["cluster.name: required"])

    out: list[str] = []
    rc = run_teardown("dev", region=REGION, ops=FakeOps([]), session=FakeSession([]),
                      load_config=bad, out=out.append, yes=True)
    assert rc == 2 and "cluster.name: required" in out[0]


def test_main_refuses_prod_before_reading_config(capsys):
    assert teardown_main(["--stack", "prod", "--region", REGION, "--yes"]) == 2
    assert "refusing" in capsys.readouterr().out


# --------------------------------------------------------------------------------------------
# The real stack files (infra/config.py)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_real_prod_and_staging_are_refused(aws_env, stack):
    out: list[str] = []
    rc = run_teardown(stack, region=REGION, ops=FakeOps([]), session=FakeSession([]),
                      out=out.append, yes=True)
    assert rc == 2 and out[0].startswith(f"teardown: refusing to tear down stack '{stack}'")


def test_real_dev_dry_run_uses_its_cluster_name(aws_env):
    from infra.config import load_stack_config

    cfg_dev = load_stack_config("dev", REPO)
    assert cfg_dev.ephemeral and not cfg_dev.protect and cfg_dev.environment == "dev"
    log: list = []
    out: list[str] = []

    def fake_sweep(session, cluster, *, dry_run):
        log.append(("sweep", cluster, dry_run))
        return []

    rc = run_teardown("dev", region=cfg_dev.region, dry_run=True, ops=FakeOps(log),
                      session=FakeSession(log, polls=0), sweep_fn=fake_sweep,
                      out=out.append)
    assert rc == 0, out
    assert ("sweep", cfg_dev.cluster_name, True) in log
    assert f"cluster '{cfg_dev.cluster_name}'" in out[0]


def test_real_missing_stack_is_a_config_refusal(aws_env):
    out: list[str] = []
    rc = run_teardown("nosuchstack", region=REGION, ops=FakeOps([]),
                      session=FakeSession([]), out=out.append, yes=True)
    assert rc == 2 and "does not exist" in out[0]


# --------------------------------------------------------------------------------------------
# Rook-Ceph: release the data (storage.destroyData) before anything is destroyed
# --------------------------------------------------------------------------------------------

CEPH = [
    {"urn": "urn:storage", "type": "eks-ml-platform:storage:RookCeph"},
    {"urn": "urn:ceph-operator", "type": "kubernetes:helm.sh/v3:Release", "parent": "urn:storage"},
    {"urn": "urn:ceph-cluster", "type": "kubernetes:ceph.rook.io/v1:CephCluster", "parent": "urn:storage"},
    {"urn": "urn:ceph-pool", "type": "kubernetes:ceph.rook.io/v1:CephBlockPool", "parent": "urn:storage"},
    {"urn": "urn:ceph-sc", "type": "kubernetes:storage.k8s.io/v1:StorageClass", "parent": "urn:storage"},
    {"urn": "urn:mon", "type": "eks-ml-platform:monitoring:Monitoring"},
    {"urn": "urn:mon-release", "type": "kubernetes:helm.sh/v3:Release", "parent": "urn:mon"},
]
RESOURCES_CEPH = RESOURCES + CEPH
CEPH_URNS = ("urn:storage", "urn:ceph-operator", "urn:ceph-cluster", "urn:ceph-pool", "urn:ceph-sc")
WORKLOAD_URNS = ("urn:sent", "urn:sent-deploy", "urn:sent-svc", "urn:train", "urn:train-job")
NODEPOOL_URNS = ("urn:np-cpu", "urn:np-gpu")
KEY = "eks-ml-platform:storage.destroyData"


def rook_cfg(enabled=True, **over):
    return cfg(stack="dev", addons=SimpleNamespace(rook_ceph=SimpleNamespace(enabled=enabled)), **over)


def test_rook_release_data_then_workloads_then_nodepools(aws_env):
    log: list = []
    rc, out = run(log, config=rook_cfg(), resources=RESOURCES_CEPH, yes=True)
    assert rc == 0, out
    calls = [c for c in log if c != "ec2:describe_instances"]
    assert calls == [
        "resources",
        ("set_config", KEY, "true", True),          # pulumi config set --path ... true
        ("up", CEPH_URNS),                           # applies cleanupPolicy + force deletion, Ceph only
        ("destroy", WORKLOAD_URNS + CEPH_URNS),      # consumers, PVCs, pools, CephCluster, operator
        ("destroy", NODEPOOL_URNS),                  # only now do Karpenter's nodes go
        ("destroy", None),
        ("sweep", CLUSTER, False),
        ("remove_config", KEY, True),                # never left set for the next `pulumi up`
    ]
    # the nodes are awaited between the NodePools' destroy and the full destroy
    i_pools, i_full = log.index(("destroy", NODEPOOL_URNS)), log.index(("destroy", None))
    assert log[i_pools + 1:i_full] == ["ec2:describe_instances"] * 2
    text = "\n".join(out)
    for i in range(1, 7):
        assert f"step {i}/6" in text
    assert "removed eks-ml-platform:storage.destroyData" in text


def test_rook_disabled_skips_the_data_step_and_says_so(aws_env):
    log: list = []
    rc, out = run(log, config=rook_cfg(enabled=False), resources=RESOURCES_CEPH, yes=True)
    assert rc == 0
    assert not [c for c in log if isinstance(c, tuple) and c[0] in ("set_config", "up", "remove_config")]
    assert [c for c in log if isinstance(c, tuple) and c[0] == "destroy"][0] == (
        "destroy", tuple(first_targets(RESOURCES_CEPH)))
    assert any("Rook-Ceph is not enabled" in line and "destroyData" in line for line in out)
    assert "step 4/4" in "\n".join(out)


def test_rook_enabled_but_absent_from_the_state_skips_it(aws_env):
    log: list = []
    rc, out = run(log, config=rook_cfg(), yes=True)  # RESOURCES: no RookCeph component
    assert rc == 0
    assert not [c for c in log if isinstance(c, tuple) and c[0] in ("set_config", "up")]
    assert any("none of its resources are in the stack's state" in line for line in out)


def test_rook_dry_run_prints_every_step_and_changes_nothing(aws_env):
    log: list = []
    rc, out = run(log, config=rook_cfg(), resources=RESOURCES_CEPH, dry_run=True)
    assert rc == 0
    assert not [c for c in log if isinstance(c, tuple) and c[0] in ("set_config", "up", "remove_config", "destroy")]
    assert ("sweep", CLUSTER, True) in log
    text = "\n".join(out)
    order = [text.index(f"step {i}/6") for i in range(1, 7)]
    assert order == sorted(order)
    step1 = text[order[0]:order[1]]
    assert KEY in step1 and "path=True" in step1 and "5 Rook-Ceph resource(s)" in step1
    # components/storage.py's own teardown_steps(cfg), printed as the reference
    assert "pulumi config set --path storage.destroyData true --stack dev" in step1
    assert "urn:ceph-cluster" in text[order[1]:order[2]] and "urn:sent-deploy" in text[order[1]:order[2]]
    assert "urn:np-cpu" in text[order[2]:order[3]] and "urn:ceph-cluster" not in text[order[2]:order[3]]


def test_a_failed_destroy_data_step_destroys_nothing(aws_env):
    log: list = []
    rc, out = run(log, config=rook_cfg(), resources=RESOURCES_CEPH, fail_up=True, yes=True)
    assert rc == 1
    assert not [c for c in log if isinstance(c, tuple) and c[0] in ("destroy", "sweep")]
    assert any("nothing was destroyed" in line for line in out)


def test_a_failed_destroy_keeps_destroy_data_for_the_rerun(aws_env):
    log: list = []
    rc, out = run(log, config=rook_cfg(), resources=RESOURCES_CEPH, fail=2, yes=True)
    assert rc == 1
    assert not [c for c in log if isinstance(c, tuple) and c[0] == "remove_config"]
    assert any("stays true" in line for line in out)


def test_automation_stack_ops_sets_the_structured_key_by_path():
    import inspect

    from pulumi import automation as auto

    # The pinned SDK takes path= on set_config/remove_config, and target= on up.
    assert "path" in inspect.signature(auto.Stack.set_config).parameters
    assert "path" in inspect.signature(auto.Stack.remove_config).parameters
    assert "target" in inspect.signature(auto.Stack.up).parameters

    calls = []

    class FakeStack:
        def set_config(self, key, value, *, path=False):
            calls.append(("set_config", key, value, path))

        def remove_config(self, key, *, path=False):
            calls.append(("remove_config", key, path))

        def up(self, **kw):
            calls.append(("up", kw.get("target")))

    ops = AutomationStackOps("dev", Path("."), out=lambda m: None)
    ops._stack = FakeStack()
    ops.set_config(KEY, "true", path=True)
    ops.up(["urn:ceph-cluster"])
    ops.remove_config(KEY, path=True)
    assert calls[0][0] == "set_config" and calls[0][1] == KEY and calls[0][3] is True
    assert isinstance(calls[0][2], auto.ConfigValue) and calls[0][2].value == "true" and not calls[0][2].secret
    assert calls[1:] == [("up", ["urn:ceph-cluster"]), ("remove_config", KEY, True)]


def test_destroy_data_key_is_the_storage_config_field():
    """What `pulumi config set --path eks-ml-platform:storage.destroyData true` writes (a boolean
    inside the structured key) turns on the CephCluster's cleanupPolicy."""
    from components import storage
    from infra.config import from_flat, merged_stack_config

    project = REPO
    flat = merged_stack_config("dev", project)
    ns, _, path = KEY.partition(":")
    top, _, field = path.partition(".")
    assert DESTROY_DATA_KEY == KEY and field == "destroyData"
    flat[f"{ns}:{top}"] = {**(flat.get(f"{ns}:{top}") or {}), field: True}
    cfg_dev = from_flat(flat, stack="dev")
    assert cfg_dev.storage.destroy_data is True
    spec = storage.ceph_cluster_spec(StorageSettings.from_config(cfg_dev))
    assert spec["cleanupPolicy"]["confirmation"] == "yes-really-destroy-data"
    assert storage.pool_metadata(StorageSettings.from_config(cfg_dev))["annotations"][storage.FORCE_DELETION_ANNOTATION] == "true"
    assert any("storage.destroyData true" in line for line in storage.teardown_steps(cfg_dev.stack))


def test_targets_match_the_rendered_stack(dev):
    """The type tokens the teardown looks for are the ones the program registers."""
    resources = [{"urn": s["newState"]["urn"], "type": s["newState"]["type"],
                  "parent": s["newState"].get("parent")} for s in dev.preview["steps"]]
    types = {r["urn"]: r["type"] for r in resources}

    def kinds(urns):
        return {types[u] for u in urns}

    workloads = workload_targets(resources)
    assert {"eks-ml-platform:workloads:WorkloadStorage", "eks-ml-platform:sentiment:SentimentServing",
            "eks-ml-platform:training:TrainingWorkload", "kubernetes:apps/v1:Deployment",
            "kubernetes:kubeflow.org/v1:PyTorchJob", "kubernetes:core/v1:PersistentVolumeClaim",
            "kubernetes:core/v1:Namespace"} <= kinds(workloads)
    assert "eks-ml-platform:training_operator:TrainingOperator" not in kinds(workloads)
    ceph = storage_targets(resources)
    assert {"kubernetes:ceph.rook.io/v1:CephCluster", "kubernetes:ceph.rook.io/v1:CephBlockPool",
            "kubernetes:ceph.rook.io/v1:CephFilesystem", "kubernetes:helm.sh/v3:Release"} <= kinds(ceph)
    pools = nodepool_targets(resources)
    assert kinds(pools) == {"kubernetes:karpenter.sh/v1:NodePool"} and len(pools) == 3
    assert not set(pools) & set(ceph) and not set(workloads) & set(ceph)
    assert set(first_targets(resources)) == set(workloads) | set(pools)
