"""The sweep's deleting half: :func:`sweep` (plan, then delete in order, with retries), and the
polling of the cluster's live Karpenter instances (:func:`wait_for_nodes_gone`).

Retries and polls sleep and read the time through a :class:`Clock` passed in (the real one by
default), so that a test hands in a fake clock instead of patching module globals."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from infra.conventions import TAG_KARPENTER_NODEPOOL

from .plan import _LIVE_INSTANCE_STATES, SweepPlan, _chunks, _err_code, plan_sweep
from .tags import is_karpenter_instance, tag_map

if TYPE_CHECKING:  # boto3 is imported lazily so that `python -m infra --help` stays fast
    import boto3


@dataclass(frozen=True)
class Clock:
    """How retries and polls wait: ``sleep(seconds)`` and a ``monotonic()`` time."""

    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic


SYSTEM_CLOCK = Clock()


def _retry(fn: Callable[[], Any], *, retry_codes: set[str], ok_codes: set[str] = frozenset(),
           timeout: float = 600.0, delay: float = 10.0, clock: Clock = SYSTEM_CLOCK) -> None:
    """Call ``fn`` until it succeeds; ``ok_codes`` (already gone) count as success."""
    deadline = clock.monotonic() + timeout
    while True:
        try:
            fn()
            return
        except Exception as exc:  # noqa: BLE001 - botocore ClientError
            code = _err_code(exc)
            if code in ok_codes:
                return
            if code not in retry_codes or clock.monotonic() >= deadline:
                raise
        clock.sleep(delay)


def _wait_until(pred: Callable[[], bool], *, timeout: float, delay: float, clock: Clock = SYSTEM_CLOCK) -> bool:
    deadline = clock.monotonic() + timeout
    while True:
        if pred():
            return True
        if clock.monotonic() >= deadline:
            return False
        clock.sleep(delay)


@dataclass
class _Deleter:
    """Deletes one :class:`SweepPlan`, service by service, in the plan's order."""

    session: "boto3.Session"
    plan: SweepPlan
    log: Callable[[str], None]
    timeout: float
    clock: Clock

    def retry(self, fn: Callable[[], Any], *, retry_codes: set[str], ok_codes: set[str] = frozenset(),
              timed: bool = True) -> None:
        """``_retry`` with this sweep's clock (and its timeout, unless ``timed`` is False)."""
        extra = {"timeout": self.timeout} if timed else {}
        _retry(fn, retry_codes=retry_codes, ok_codes=ok_codes, clock=self.clock, **extra)

    def instances_and_templates(self, ec2: Any) -> None:
        plan = self.plan
        if plan.instances:
            self.log(f"terminating {len(plan.instances)} Karpenter instance(s)")
            for chunk in _chunks(plan.instances, 500):
                ec2.terminate_instances(InstanceIds=chunk)
            ec2.get_waiter("instance_terminated").wait(
                InstanceIds=plan.instances,
                WaiterConfig={"Delay": 15, "MaxAttempts": max(1, int(self.timeout // 15))})
        for lt in plan.launch_templates:
            self.retry(lambda lt=lt: ec2.delete_launch_template(LaunchTemplateId=lt), retry_codes=set(),
                       ok_codes={"InvalidLaunchTemplateId.NotFound"}, timed=False)

    def instance_profiles(self, iam: Any) -> None:
        for arn in self.plan.instance_profiles:
            name = self.plan._profile_names[arn]
            for role in self.plan._profile_roles.get(arn, []):
                self.retry(lambda role=role: iam.remove_role_from_instance_profile(
                    InstanceProfileName=name, RoleName=role), retry_codes=set(), ok_codes={"NoSuchEntity"},
                    timed=False)
            self.retry(lambda name=name: iam.delete_instance_profile(InstanceProfileName=name),
                       retry_codes={"DeleteConflict"}, ok_codes={"NoSuchEntity"})

    def load_balancers(self, elb: Any) -> None:
        plan = self.plan
        for arn in plan.load_balancers:
            self.retry(lambda arn=arn: elb.delete_load_balancer(LoadBalancerArn=arn),
                       retry_codes={"ResourceInUse"}, ok_codes={"LoadBalancerNotFound"})
        if plan.load_balancers:
            elb.get_waiter("load_balancers_deleted").wait(
                LoadBalancerArns=plan.load_balancers,
                WaiterConfig={"Delay": 15, "MaxAttempts": max(1, int(self.timeout // 15))})
        for arn in plan.target_groups:
            self.retry(lambda arn=arn: elb.delete_target_group(TargetGroupArn=arn),
                       retry_codes={"ResourceInUse"}, ok_codes={"TargetGroupNotFound"})

    def _eni_free(self, ec2: Any, eni: str) -> bool:
        """Gone or available; one attached to an instance this sweep terminated is detached."""
        try:
            got = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"]
        except Exception as exc:  # noqa: BLE001
            if _err_code(exc) == "InvalidNetworkInterfaceID.NotFound":
                return True
            raise
        if not got or got[0]["Status"] == "available":
            return True
        att = got[0].get("Attachment") or {}
        if att.get("InstanceId") in self.plan.instances and att.get("AttachmentId"):
            try:
                ec2.detach_network_interface(AttachmentId=att["AttachmentId"], Force=True)
            except Exception as exc:  # noqa: BLE001
                if _err_code(exc) not in {"InvalidAttachmentID.NotFound", "IncorrectState"}:
                    raise
        return False

    def network_interfaces_and_volumes(self, ec2: Any) -> None:
        for eni in self.plan.network_interfaces:
            _wait_until(lambda eni=eni: self._eni_free(ec2, eni), timeout=self.timeout, delay=5, clock=self.clock)
            self.retry(lambda eni=eni: ec2.delete_network_interface(NetworkInterfaceId=eni),
                       retry_codes={"InvalidNetworkInterface.InUse", "IncorrectState"},
                       ok_codes={"InvalidNetworkInterfaceID.NotFound"})
        for vol in self.plan.volumes:
            self.retry(lambda vol=vol: ec2.delete_volume(VolumeId=vol),
                       retry_codes={"VolumeInUse", "IncorrectState"}, ok_codes={"InvalidVolume.NotFound"})

    def security_groups(self, ec2: Any) -> None:
        for group, rule, egress in self.plan.sg_rules:
            revoke = ec2.revoke_security_group_egress if egress else ec2.revoke_security_group_ingress
            self.retry(lambda g=group, r=rule, f=revoke: f(GroupId=g, SecurityGroupRuleIds=[r]),
                       retry_codes=set(), timed=False,
                       ok_codes={"InvalidGroup.NotFound", "InvalidSecurityGroupRuleId.NotFound",
                                 "InvalidPermission.NotFound"})
        for sg in self.plan.security_groups:
            self.retry(lambda sg=sg: ec2.delete_security_group(GroupId=sg),
                       retry_codes={"DependencyViolation"}, ok_codes={"InvalidGroup.NotFound"})

    def event_rules_and_queues(self, events: Any, sqs: Any) -> None:
        for arn in self.plan.event_rules:
            name = self.plan._rule_names[arn]
            try:
                targets = [t["Id"] for t in events.list_targets_by_rule(Rule=name).get("Targets", [])]
                if targets:
                    events.remove_targets(Rule=name, Ids=targets, Force=True)
                events.delete_rule(Name=name, Force=True)
            except Exception as exc:  # noqa: BLE001
                if _err_code(exc) != "ResourceNotFoundException":
                    raise
        for url in self.plan.queues:
            self.retry(lambda url=url: sqs.delete_queue(QueueUrl=url), retry_codes=set(), timed=False,
                       ok_codes={"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})


def _execute(session: "boto3.Session", plan: SweepPlan, *, log: Callable[[str], None],
             timeout: float, clock: Clock = SYSTEM_CLOCK) -> None:
    """Delete what ``plan`` lists, in its order (clients created in the same order as before)."""
    d = _Deleter(session, plan, log, timeout, clock)
    ec2 = session.client("ec2")
    d.instances_and_templates(ec2)
    d.instance_profiles(session.client("iam"))
    d.load_balancers(session.client("elbv2"))
    d.network_interfaces_and_volumes(ec2)
    d.security_groups(ec2)
    events = session.client("events")
    d.event_rules_and_queues(events, session.client("sqs"))


def sweep(session: "boto3.Session", cluster_name: str, *, dry_run: bool, clock: Clock = SYSTEM_CLOCK) -> list[str]:
    """Delete what Karpenter and the controllers left behind for ``cluster_name``.

    Returns the ids/ARNs deleted (or, with ``dry_run=True``, that would be deleted: the same
    list, nothing is changed). See the package docstring for what proves ownership.
    """
    plan = plan_sweep(session, cluster_name)
    if not dry_run:
        _execute(session, plan, log=lambda m: print(f"sweep: {m}", file=sys.stderr), timeout=900.0, clock=clock)
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
                        poll: float = 15.0, clock: Clock = SYSTEM_CLOCK) -> list[str]:
    """Poll until no Karpenter instance of the cluster is live; return those left at timeout."""
    left: list[str] = []

    def gone() -> bool:
        nonlocal left
        left = karpenter_instances(session, cluster_name)
        return not left

    _wait_until(gone, timeout=timeout, delay=poll, clock=clock)
    return left

