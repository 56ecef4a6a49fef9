"""The teardown's less travelled paths, against moto with botocore event hooks standing in for
what moto does not do: a list call without tags, a transient DependencyViolation, an AccessDenied.

A ``before-call`` hook that returns ``(http, parsed)`` short-circuits the request, and botocore
itself turns a status >= 300 into the ClientError (with the real operation name), exactly as it
does for an answer from AWS.
"""

from __future__ import annotations

import io
import itertools
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from infra.teardown.cli import main as teardown_main
from infra.teardown.execute import Clock, sweep
from infra.teardown.steps import ABORTED, run_teardown

pytestmark = pytest.mark.tooling

REGION = "us-west-2"
CLUSTER = "ml-dev"  # the dev stack's default cluster name (parse_config)
OTHER = "ml-other"
PROMPT = "Type the stack name to confirm"


@pytest.fixture
def aws(monkeypatch):
    """A fresh moto account and a session on it (moto puts fake credentials in the environment
    while it mocks; every session here names its region)."""
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    import boto3
    from moto import mock_aws

    with mock_aws():
        yield boto3.Session(region_name=REGION)


@pytest.fixture
def project(tmp_path) -> Path:
    """A project with one ephemeral dev stack (and no neighbour claiming its cluster)."""
    (tmp_path / "Pulumi.yaml").write_text("name: eks-ml-platform\nruntime: python\n")
    config = {"aws:region": REGION, "eks-ml-platform:environment": "dev", "eks-ml-platform:ephemeral": True}
    (tmp_path / "Pulumi.dev.yaml").write_text(yaml.safe_dump({"config": config}))
    return tmp_path


def _kv(d: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in d.items()]


def lbc_group(session, name: str = "k8s-default-web", cluster: str = CLUSTER) -> str:
    """A security group the AWS Load Balancer Controller created for ``cluster``."""
    ec2 = session.client("ec2")
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    return ec2.create_security_group(
        GroupName=name, Description=name, VpcId=vpc,
        TagSpecifications=[{"ResourceType": "security-group",
                            "Tags": _kv({"elbv2.k8s.aws/cluster": cluster})}])["GroupId"]


def group_exists(session, group: str) -> bool:
    groups = session.client("ec2").describe_security_groups()["SecurityGroups"]
    return group in {g["GroupId"] for g in groups}


def fail_call(events, service: str, operation: str, code: str, *, times: int | None = None) -> list[str]:
    """Make ``service.operation`` answer ``code`` (the first ``times`` calls, or always).

    Returns the list the hook appends to on every call (``"error"`` or ``"sent"``)."""
    calls: list[str] = []

    def hook(**_):
        if times is not None and calls.count("error") >= times:
            calls.append("sent")
            return None
        calls.append("error")
        http = SimpleNamespace(status_code=400, headers={}, raw=None, content=b"")
        return http, {"Error": {"Code": code, "Message": f"injected {code}"}, "ResponseMetadata": {}}

    events.register(f"before-call.{service}.{operation}", hook)
    return calls


class FakeClock:
    """Sleeps return at once and are recorded; each reading of the time moves on a minute."""

    def __init__(self) -> None:
        self.slept: list[float] = []
        ticks = itertools.count(0, 60)
        self.clock = Clock(sleep=self.slept.append, monotonic=lambda: next(ticks))


# --------------------------------------------------------------------------------------------
# 1. ListInstanceProfiles without tags (as the real IAM answers): the per-profile Get decides
# --------------------------------------------------------------------------------------------


def test_instance_profiles_are_proven_by_the_per_profile_call(aws):
    iam = aws.client("iam")
    iam.create_role(RoleName="node-role", AssumeRolePolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": []}))
    ours_tags = {"karpenter.k8s.aws/ec2nodeclass": "default", "eks:eks-cluster-name": CLUSTER,
                 f"kubernetes.io/cluster/{CLUSTER}": "owned", "topology.kubernetes.io/region": REGION}
    arns = {}
    for name, tags in {f"{CLUSTER}_111": ours_tags,
                       # our name prefix, but the tags say it is another cluster's
                       f"{CLUSTER}_222": {**ours_tags, "eks:eks-cluster-name": OTHER}}.items():
        arns[name] = iam.create_instance_profile(InstanceProfileName=name, Tags=_kv(tags))[
            "InstanceProfile"]["Arn"]
        iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName="node-role")

    listed: list[list] = []
    got: list[str] = []

    def strip_tags(parsed, **_):
        for prof in parsed.get("InstanceProfiles", []):
            prof.pop("Tags", None)
        listed.append([p for p in parsed.get("InstanceProfiles", []) if "Tags" in p])

    aws.events.register("after-call.iam.ListInstanceProfiles", strip_tags)
    aws.events.register("before-call.iam.GetInstanceProfile",
                        lambda params, **_: got.append(params["body"]["InstanceProfileName"]))

    assert sweep(aws, CLUSTER, dry_run=True) == [arns[f"{CLUSTER}_111"]]
    assert listed and listed[0] == [], "the hook really took the tags out of the list answer"
    assert sorted(got) == [f"{CLUSTER}_111", f"{CLUSTER}_222"]

    clock = FakeClock()
    assert sweep(aws, CLUSTER, dry_run=False, clock=clock.clock) == [arns[f"{CLUSTER}_111"]]
    left = {p["InstanceProfileName"] for p in iam.list_instance_profiles()["InstanceProfiles"]}
    assert left == {f"{CLUSTER}_222"}, "ours deleted (its role removed first, from Get's Roles)"
    assert clock.slept == [], "no DeleteConflict: the role was removed before the delete"
    iam.get_role(RoleName="node-role")


# --------------------------------------------------------------------------------------------
# 2. A retryable error on a delete: retried through the injected clock, then gone
# --------------------------------------------------------------------------------------------


def test_dependency_violation_on_delete_is_retried(aws):
    group = lbc_group(aws)
    kept = lbc_group(aws, "k8s-default-other", cluster=OTHER)
    calls = fail_call(aws.events, "ec2", "DeleteSecurityGroup", "DependencyViolation", times=1)
    clock = FakeClock()

    assert sweep(aws, CLUSTER, dry_run=False, clock=clock.clock) == [group]
    assert calls == ["error", "sent"], "one DependencyViolation, then the delete went through"
    assert clock.slept == [10.0], "one retry after the sweep's delay, without really sleeping"
    assert not group_exists(aws, group) and group_exists(aws, kept)


# --------------------------------------------------------------------------------------------
# 3. --sweep-only asks first (the CLI, reading stdin); --yes does not
# --------------------------------------------------------------------------------------------


def _cli(project: Path, *flags: str) -> int:
    return teardown_main(["--stack", "dev", "--region", REGION, "--sweep-only",
                          "--project-dir", str(project), *flags])


@pytest.mark.parametrize("answer", ["no\n", "yes\n", "y\n", "ml-dev\n", ""])  # "" is an EOF
def test_sweep_only_aborts_unless_the_stack_name_is_typed(aws, project, monkeypatch, capsys, answer):
    group = lbc_group(aws)
    monkeypatch.setattr(sys, "stdin", io.StringIO(answer))
    assert _cli(project) == 1
    out = capsys.readouterr().out
    assert PROMPT in out and f"cluster '{CLUSTER}' in {REGION}" in out
    # input() writes the prompt without a newline: the abort line follows it
    assert out.splitlines()[-1].endswith(f"{PROMPT}: {ABORTED}")
    assert out.count(ABORTED) == 1
    assert group_exists(aws, group), "an aborted sweep deletes nothing"


def test_sweep_only_with_the_stack_name_sweeps(aws, project, monkeypatch, capsys):
    group = lbc_group(aws)
    monkeypatch.setattr(sys, "stdin", io.StringIO("dev\n"))
    assert _cli(project) == 0
    out = capsys.readouterr().out
    assert PROMPT in out and "sweep deleted 1 resource(s)" in out
    assert not group_exists(aws, group)


def test_sweep_only_yes_skips_the_prompt(aws, project, monkeypatch, capsys):
    group = lbc_group(aws)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # a prompt would read EOF and abort
    assert _cli(project, "--yes") == 0
    out = capsys.readouterr().out
    assert PROMPT not in out and ABORTED not in out
    assert f"  {group}" in out.splitlines()
    assert not group_exists(aws, group)


# --------------------------------------------------------------------------------------------
# 4. The stack's state cannot be read (the Automation API layer, faked as StackOps)
# --------------------------------------------------------------------------------------------


class BrokenStateOps:
    """A StackOps whose export fails (e.g. the backend is unreachable); nothing else may be called."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def resources(self):
        self.calls.append("resources")
        raise RuntimeError("error: failed to load checkpoint: backend unreachable")

    def __getattr__(self, name):
        def record(*args, **kwargs):
            self.calls.append(name)

        return record


@pytest.mark.parametrize("dry_run", [False, True])
def test_unreadable_state_is_one_line_and_sweeps_nothing(aws, project, dry_run):
    group = lbc_group(aws)
    ops = BrokenStateOps()
    out: list[str] = []
    rc = run_teardown("dev", region=REGION, project_dir=project, yes=True, dry_run=dry_run, ops=ops,
                      session=aws, out=out.append)
    assert rc == 1
    assert [line for line in out if line.startswith("teardown: cannot")] == [
        "teardown: cannot read the state of stack 'dev': error: failed to load checkpoint: backend unreachable"]
    assert ops.calls == ["resources"], "nothing destroyed, no config changed"
    assert group_exists(aws, group), "nothing swept"
    if dry_run:  # a dry run still shows the sweep list, and fails
        assert "step 4/4: sweep would delete 1 resource(s)" in out
    else:
        assert out[-1].startswith("teardown: cannot read the state")


# --------------------------------------------------------------------------------------------
# 5. A non-retryable AWS error on a describe call: one line naming the call, exit 1, no traceback
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("service,operation,code,prefix", [
    ("ec2", "DescribeSecurityGroups", "UnauthorizedOperation", "teardown: AWS error: "),
    ("iam", "ListInstanceProfiles", "AccessDenied", "teardown: AWS error: "),
    ("eks", "DescribeCluster", "AccessDeniedException", f"teardown: AWS error reading cluster '{CLUSTER}': "),
])
def test_access_denied_is_one_line_naming_the_call(aws, project, monkeypatch, capsys,
                                                   service, operation, code, prefix):
    import boto3

    group = lbc_group(aws)
    real_session = boto3.Session
    calls: list[list[str]] = []

    def hooked_session(*args, **kwargs):
        """The session the CLI creates, with the failing call hooked in."""
        session = real_session(*args, **kwargs)
        calls.append(fail_call(session.events, service, operation, code))
        return session

    monkeypatch.setattr(boto3, "Session", hooked_session)
    assert _cli(project, "--yes") == 1
    captured = capsys.readouterr()
    errors = [line for line in captured.out.splitlines() if "AWS error" in line]
    assert len(errors) == 1 and errors[0].startswith(prefix), captured.out
    assert f"({code}) when calling the {operation} operation" in errors[0]
    assert calls and calls[0] and set(calls[0]) == {"error"}, "the error came from the hooked call"
    assert "Traceback" not in captured.out + captured.err
    assert group_exists(aws, group), "the sweep plans before it deletes: nothing went"
