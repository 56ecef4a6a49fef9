"""The sweep's deleting half: :func:`sweep` (plan, then delete in order, with retries), and the
polling of the cluster's live Karpenter instances (:func:`wait_for_nodes_gone`).

Retries and polls sleep through ``infra.teardown._sleep`` and read ``infra.teardown._monotonic``
(looked up on the package at call time, so that tests can replace them there)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Callable

from .plan import _LIVE_INSTANCE_STATES, SweepPlan, _chunks, _err_code, plan_sweep
from infra.conventions import TAG_KARPENTER_NODEPOOL
from .tags import is_karpenter_instance, tag_map

if TYPE_CHECKING:  # boto3 is imported lazily so that `python -m infra --help` stays fast
    import boto3


def _sleep(delay: float) -> None:
    sys.modules[__package__]._sleep(delay)


def _monotonic() -> float:
    return sys.modules[__package__]._monotonic()


def _retry(fn: Callable[[], Any], *, retry_codes: set[str], ok_codes: set[str] = frozenset(),
           timeout: float = 600.0, delay: float = 10.0) -> None:
    """Call ``fn`` until it succeeds; ``ok_codes`` (already gone) count as success."""
    deadline = _monotonic() + timeout
    while True:
        try:
            fn()
            return
        except Exception as exc:  # noqa: BLE001 - botocore ClientError
            code = _err_code(exc)
            if code in ok_codes:
                return
            if code not in retry_codes or _monotonic() >= deadline:
                raise
        _sleep(delay)


def _wait_until(pred: Callable[[], bool], *, timeout: float, delay: float) -> bool:
    deadline = _monotonic() + timeout
    while True:
        if pred():
            return True
        if _monotonic() >= deadline:
            return False
        _sleep(delay)


def _execute(session: "boto3.Session", plan: SweepPlan, *, log: Callable[[str], None],
             timeout: float) -> None:
    ec2 = session.client("ec2")

    if plan.instances:
        log(f"terminating {len(plan.instances)} Karpenter instance(s)")
        for chunk in _chunks(plan.instances, 500):
            ec2.terminate_instances(InstanceIds=chunk)
        ec2.get_waiter("instance_terminated").wait(
            InstanceIds=plan.instances,
            WaiterConfig={"Delay": 15, "MaxAttempts": max(1, int(timeout // 15))})

    for lt in plan.launch_templates:
        _retry(lambda lt=lt: ec2.delete_launch_template(LaunchTemplateId=lt), retry_codes=set(),
               ok_codes={"InvalidLaunchTemplateId.NotFound"})

    iam = session.client("iam")
    for arn in plan.instance_profiles:
        name = plan._profile_names[arn]
        for role in plan._profile_roles.get(arn, []):
            _retry(lambda role=role: iam.remove_role_from_instance_profile(
                InstanceProfileName=name, RoleName=role), retry_codes=set(), ok_codes={"NoSuchEntity"})
        _retry(lambda name=name: iam.delete_instance_profile(InstanceProfileName=name),
               retry_codes={"DeleteConflict"}, ok_codes={"NoSuchEntity"}, timeout=timeout)

    elb = session.client("elbv2")
    for arn in plan.load_balancers:
        _retry(lambda arn=arn: elb.delete_load_balancer(LoadBalancerArn=arn),
               retry_codes={"ResourceInUse"}, ok_codes={"LoadBalancerNotFound"}, timeout=timeout)
    if plan.load_balancers:
        elb.get_waiter("load_balancers_deleted").wait(
            LoadBalancerArns=plan.load_balancers,
            WaiterConfig={"Delay": 15, "MaxAttempts": max(1, int(timeout // 15))})
    for arn in plan.target_groups:
        _retry(lambda arn=arn: elb.delete_target_group(TargetGroupArn=arn),
               retry_codes={"ResourceInUse"}, ok_codes={"TargetGroupNotFound"}, timeout=timeout)

    for eni in plan.network_interfaces:
        def eni_free(eni: str = eni) -> bool:
            try:
                got = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"]
            except Exception as exc:  # noqa: BLE001
                if _err_code(exc) == "InvalidNetworkInterfaceID.NotFound":
                    return True
                raise
            if not got or got[0]["Status"] == "available":
                return True
            att = got[0].get("Attachment") or {}
            if att.get("InstanceId") in plan.instances and att.get("AttachmentId"):
                # Attached to an instance this sweep terminated: detach what is left over.
                try:
                    ec2.detach_network_interface(AttachmentId=att["AttachmentId"], Force=True)
                except Exception as exc:  # noqa: BLE001
                    if _err_code(exc) not in {"InvalidAttachmentID.NotFound", "IncorrectState"}:
                        raise
            return False
        _wait_until(eni_free, timeout=timeout, delay=5)
        _retry(lambda eni=eni: ec2.delete_network_interface(NetworkInterfaceId=eni),
               retry_codes={"InvalidNetworkInterface.InUse", "IncorrectState"},
               ok_codes={"InvalidNetworkInterfaceID.NotFound"}, timeout=timeout)

    for vol in plan.volumes:
        _retry(lambda vol=vol: ec2.delete_volume(VolumeId=vol),
               retry_codes={"VolumeInUse", "IncorrectState"},
               ok_codes={"InvalidVolume.NotFound"}, timeout=timeout)

    for group, rule, egress in plan.sg_rules:
        revoke = ec2.revoke_security_group_egress if egress else ec2.revoke_security_group_ingress
        _retry(lambda g=group, r=rule, f=revoke: f(GroupId=g, SecurityGroupRuleIds=[r]),
               retry_codes=set(),
               ok_codes={"InvalidGroup.NotFound", "InvalidSecurityGroupRuleId.NotFound",
                         "InvalidPermission.NotFound"})
    for sg in plan.security_groups:
        _retry(lambda sg=sg: ec2.delete_security_group(GroupId=sg),
               retry_codes={"DependencyViolation"}, ok_codes={"InvalidGroup.NotFound"},
               timeout=timeout)

    events = session.client("events")
    for arn in plan.event_rules:
        name = plan._rule_names[arn]
        try:
            targets = [t["Id"] for t in events.list_targets_by_rule(Rule=name).get("Targets", [])]
            if targets:
                events.remove_targets(Rule=name, Ids=targets, Force=True)
            events.delete_rule(Name=name, Force=True)
        except Exception as exc:  # noqa: BLE001
            if _err_code(exc) != "ResourceNotFoundException":
                raise

    sqs = session.client("sqs")
    for url in plan.queues:
        _retry(lambda url=url: sqs.delete_queue(QueueUrl=url), retry_codes=set(),
               ok_codes={"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})


def sweep(session: "boto3.Session", cluster_name: str, *, dry_run: bool) -> list[str]:
    """Delete what Karpenter and the controllers left behind for ``cluster_name``.

    Returns the ids/ARNs deleted (or, with ``dry_run=True``, that would be deleted: the same
    list, nothing is changed). See the module docstring for what proves ownership.
    """
    plan = plan_sweep(session, cluster_name)
    if not dry_run:
        _execute(session, plan, log=lambda m: print(f"sweep: {m}", file=sys.stderr), timeout=900.0)
    return plan.ids()


def karpenter_instances(session: "boto3.Session", cluster_name: str) -> list[str]:
    """Ids of this cluster's live Karpenter instances (same proof as the sweep)."""
    ec2 = session.client("ec2")
    found: list[str] = []
    for page in ec2.get_paginator("describe_instances").paginate(Filters=[
        {"Name": "tag-key", "Values": [TAG_KARPENTER_NODEPOOL]},
        {"Name": "instance-state-name", "Values": _LIVE_INSTANCE_STATES},
    ]):
        for res in page["Reservations"]:
            for inst in res["Instances"]:
                if is_karpenter_instance(tag_map(inst.get("Tags")), cluster_name):
                    found.append(inst["InstanceId"])
    return sorted(found)


def wait_for_nodes_gone(session: "boto3.Session", cluster_name: str, *, timeout: float,
                        poll: float = 15.0) -> list[str]:
    """Poll until no Karpenter instance of the cluster is live; return those left at timeout."""
    left: list[str] = []

    def gone() -> bool:
        nonlocal left
        left = karpenter_instances(session, cluster_name)
        return not left

    _wait_until(gone, timeout=timeout, delay=poll)
    return left
