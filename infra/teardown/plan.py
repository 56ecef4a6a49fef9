"""The sweep's read-only half: :class:`SweepPlan` and :func:`plan_sweep`, which lists through
boto3 everything of a cluster that Pulumi does not own, proving ownership by tags only."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from infra.conventions import TAG_KARPENTER_LT_CLUSTER, TAG_KARPENTER_NODEPOOL, TAG_LBC_CLUSTER
from .tags import (
    is_cluster_eni,
    is_cluster_pv_volume,
    is_cluster_queue,
    is_karpenter_instance,
    is_karpenter_instance_profile,
    is_karpenter_launch_template,
    is_lbc_resource,
    tag_map,
)

if TYPE_CHECKING:  # boto3 is imported lazily so that `python -m infra --help` stays fast
    import boto3


_LIVE_INSTANCE_STATES = ["pending", "running", "stopping", "stopped"]


@dataclass
class SweepPlan:
    """What the sweep deletes, in order. Every list holds ids or ARNs."""

    instances: list[str] = field(default_factory=list)
    launch_templates: list[str] = field(default_factory=list)
    instance_profiles: list[str] = field(default_factory=list)  # ARNs; names in _profile_names
    load_balancers: list[str] = field(default_factory=list)
    target_groups: list[str] = field(default_factory=list)
    network_interfaces: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    sg_rules: list[tuple[str, str, bool]] = field(default_factory=list)  # (group, rule, egress)
    security_groups: list[str] = field(default_factory=list)
    event_rules: list[str] = field(default_factory=list)  # ARNs; names in _rule_names
    queues: list[str] = field(default_factory=list)  # queue URLs; ARNs in _queue_arns
    _profile_names: dict[str, str] = field(default_factory=dict)
    _profile_roles: dict[str, list[str]] = field(default_factory=dict)
    _rule_names: dict[str, str] = field(default_factory=dict)
    _queue_arns: dict[str, str] = field(default_factory=dict)

    def ids(self) -> list[str]:
        """The plan's ids/ARNs, in deletion order."""
        return [
            *self.instances,
            *self.launch_templates,
            *self.instance_profiles,
            *self.load_balancers,
            *self.target_groups,
            *self.network_interfaces,
            *self.volumes,
            *(rule for _, rule, _ in self.sg_rules),
            *self.security_groups,
            *self.event_rules,
            *(self._queue_arns[u] for u in self.queues),
        ]


def _err_code(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _plan_instances(ec2: Any, plan: SweepPlan, c: str) -> None:
    """Instances: filter server-side on the nodepool tag key, then prove ownership client-side."""
    for page in ec2.get_paginator("describe_instances").paginate(Filters=[
        {"Name": "tag-key", "Values": [TAG_KARPENTER_NODEPOOL]},
        {"Name": "instance-state-name", "Values": _LIVE_INSTANCE_STATES},
    ]):
        for res in page["Reservations"]:
            for inst in res["Instances"]:
                if is_karpenter_instance(tag_map(inst.get("Tags")), c):
                    plan.instances.append(inst["InstanceId"])
    plan.instances.sort()


def _plan_launch_templates(ec2: Any, plan: SweepPlan, c: str) -> None:
    for page in ec2.get_paginator("describe_launch_templates").paginate(
            Filters=[{"Name": f"tag:{TAG_KARPENTER_LT_CLUSTER}", "Values": [c]}]):
        for lt in page["LaunchTemplates"]:
            if is_karpenter_launch_template(tag_map(lt.get("Tags")), c):
                plan.launch_templates.append(lt["LaunchTemplateId"])
    plan.launch_templates.sort()


def _plan_instance_profiles(iam: Any, plan: SweepPlan, c: str, region: str) -> None:
    for page in iam.get_paginator("list_instance_profiles").paginate():
        for prof in page["InstanceProfiles"]:
            # Karpenter names its profiles `<cluster>_<hash>`; check the tags of those only.
            if not prof["InstanceProfileName"].startswith(f"{c}_"):
                continue
            tags = prof.get("Tags")
            if tags is None:  # the real ListInstanceProfiles omits tags; Get returns them
                try:
                    full = iam.get_instance_profile(InstanceProfileName=prof["InstanceProfileName"])
                except Exception as exc:  # noqa: BLE001 - vanished between list and get
                    if _err_code(exc) == "NoSuchEntity":
                        continue
                    raise
                tags = full["InstanceProfile"].get("Tags")
                prof = full["InstanceProfile"]
            if is_karpenter_instance_profile(tag_map(tags), c, region):
                arn = prof["Arn"]
                plan.instance_profiles.append(arn)
                plan._profile_names[arn] = prof["InstanceProfileName"]
                plan._profile_roles[arn] = [r["RoleName"] for r in prof.get("Roles", [])]
    plan.instance_profiles.sort()


def _plan_load_balancers(elb: Any, plan: SweepPlan, c: str) -> None:
    lbs = [lb["LoadBalancerArn"] for page in elb.get_paginator("describe_load_balancers").paginate()
           for lb in page["LoadBalancers"]]
    tgs = [tg["TargetGroupArn"] for page in elb.get_paginator("describe_target_groups").paginate()
           for tg in page["TargetGroups"]]
    for arns, bucket in ((lbs, plan.load_balancers), (tgs, plan.target_groups)):
        for chunk in _chunks(arns, 20):
            for desc in elb.describe_tags(ResourceArns=chunk)["TagDescriptions"]:
                if is_lbc_resource(tag_map(desc.get("Tags")), c):
                    bucket.append(desc["ResourceArn"])
        bucket.sort()


def _plan_enis_and_volumes(ec2: Any, plan: SweepPlan, c: str) -> None:
    """Free ENIs and PV volumes, or those attached (without delete-on-termination) to swept instances."""
    swept = set(plan.instances)
    for page in ec2.get_paginator("describe_network_interfaces").paginate():
        for eni in page["NetworkInterfaces"]:
            if not is_cluster_eni(tag_map(eni.get("TagSet")), c):
                continue
            att = eni.get("Attachment") or {}
            if eni["Status"] == "available" or (
                    att.get("InstanceId") in swept and not att.get("DeleteOnTermination", False)):
                plan.network_interfaces.append(eni["NetworkInterfaceId"])
    plan.network_interfaces.sort()

    for page in ec2.get_paginator("describe_volumes").paginate():
        for vol in page["Volumes"]:
            if not is_cluster_pv_volume(tag_map(vol.get("Tags")), c):
                continue
            atts = vol.get("Attachments") or []
            if vol["State"] == "available" or (
                    vol["State"] == "in-use" and atts
                    and all(a.get("InstanceId") in swept and not a.get("DeleteOnTermination", False)
                            for a in atts)):
                plan.volumes.append(vol["VolumeId"])
    plan.volumes.sort()


def _plan_security_groups(ec2: Any, plan: SweepPlan, c: str) -> None:
    """The LBC's groups, and the rules of other groups in their VPCs that reference them."""
    sgs: dict[str, str] = {}  # group id -> vpc id
    for page in ec2.get_paginator("describe_security_groups").paginate(
            Filters=[{"Name": f"tag:{TAG_LBC_CLUSTER}", "Values": [c]}]):
        for sg in page["SecurityGroups"]:
            if is_lbc_resource(tag_map(sg.get("Tags")), c) and sg.get("GroupName") != "default":
                sgs[sg["GroupId"]] = sg.get("VpcId", "")
    plan.security_groups = sorted(sgs)
    if not sgs:
        return
    ours = set(sgs)
    vpcs = sorted({v for v in sgs.values() if v})
    groups_in_vpcs: list[str] = []
    for page in ec2.get_paginator("describe_security_groups").paginate(
            Filters=[{"Name": "vpc-id", "Values": vpcs}]):
        groups_in_vpcs += [g["GroupId"] for g in page["SecurityGroups"]]
    rules: list[tuple[str, str, bool]] = []
    for chunk in _chunks(sorted(groups_in_vpcs), 100):
        for page in ec2.get_paginator("describe_security_group_rules").paginate(
                Filters=[{"Name": "group-id", "Values": chunk}]):
            for rule in page["SecurityGroupRules"]:
                ref = (rule.get("ReferencedGroupInfo") or {}).get("GroupId")
                owner = rule["GroupId"]
                # A rule blocks deletion when it references one of our groups from another
                # group (self-references go with the group itself).
                if ref in ours and ref != owner:
                    rules.append((owner, rule["SecurityGroupRuleId"], bool(rule["IsEgress"])))
    plan.sg_rules = sorted(rules)


def _plan_queues(sqs: Any, events: Any, plan: SweepPlan, c: str) -> None:
    """The interruption queue (by name or tags) and the EventBridge rules that target it."""
    queue_urls: list[str] = []
    for page in sqs.get_paginator("list_queues").paginate():
        queue_urls += page.get("QueueUrls", [])
    for url in sorted(queue_urls):
        name = url.rstrip("/").rsplit("/", 1)[-1]
        tags = sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
        if is_cluster_queue(name, tag_map(tags), c):
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
                "Attributes"]["QueueArn"]
            plan.queues.append(url)
            plan._queue_arns[url] = arn
            for page in events.get_paginator("list_rule_names_by_target").paginate(TargetArn=arn):
                for rule_name in page.get("RuleNames", []):
                    rule_arn = events.describe_rule(Name=rule_name)["Arn"]
                    if rule_arn not in plan._rule_names:
                        plan.event_rules.append(rule_arn)
                        plan._rule_names[rule_arn] = rule_name
    plan.event_rules.sort()


def plan_sweep(session: "boto3.Session", cluster_name: str) -> SweepPlan:
    """Read-only: list everything :func:`sweep` would delete for ``cluster_name``."""
    if not cluster_name:
        raise ValueError("cluster_name is empty")
    c = cluster_name
    plan = SweepPlan()
    ec2 = session.client("ec2")
    _plan_instances(ec2, plan, c)
    _plan_launch_templates(ec2, plan, c)
    region = session.region_name or ec2.meta.region_name
    _plan_instance_profiles(session.client("iam"), plan, c, region)
    _plan_load_balancers(session.client("elbv2"), plan, c)
    _plan_enis_and_volumes(ec2, plan, c)
    _plan_security_groups(ec2, plan, c)
    _plan_queues(session.client("sqs"), session.client("events"), plan, c)
    return plan
