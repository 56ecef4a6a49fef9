"""Safe teardown of an ephemeral (dev) stack, and the sweep of what Pulumi does not own.

``python -m infra teardown --stack dev --region R [--dry-run] [--yes] [--sweep-only]``

Order of a full run (see :func:`run_teardown`). With Rook-Ceph enabled in the stack's config
(``addons.rookCeph.enabled``) and present in its state:

1. **Release Ceph's data** (``components/storage.py`` ``teardown_steps``): set
   ``storage.destroyData: true`` in the stack's config through the Automation API
   (``Stack.set_config("eks-ml-platform:storage.destroyData", ConfigValue("true"), path=True)``,
   i.e. ``pulumi config set --path``, which stores a boolean) and run a ``pulumi up`` targeted at
   the Rook-Ceph component's resources: the CephCluster gets its ``cleanupPolicy``
   (``yes-really-destroy-data``) and the block pool Rook's force-deletion annotation. Nothing is
   destroyed if this fails.
2. Targeted ``pulumi destroy`` of the workloads (the components ``eks-ml-platform:workloads:*``,
   ``:sentiment:*`` and ``:training:*`` and their children) and of the Rook-Ceph component with
   its children, with ``target_dependents`` (the monitoring release, whose volumes are on
   ``ceph-block``, comes along). Pulumi deletes them in dependency order: consumers and their
   PVCs (the ``ml-workloads`` namespace, and with it every PVC Pulumi does not own), then the
   StorageClasses, pools, CephCluster, CSI drivers and operator, while the Ceph daemons still
   run on their Karpenter nodes.
3. Targeted ``pulumi destroy`` of every Karpenter ``NodePool``: Karpenter is still running, so it
   drains and terminates its nodes. Only now: Ceph's daemons run on those nodes with
   ``karpenter.sh/do-not-disrupt`` and Rook's PodDisruptionBudgets, so a NodePool deleted before
   the CephCluster either never drains or takes the mons and OSDs away while Rook still needs
   them to delete the pools.
4. Wait until no Karpenter instance of this cluster is left running (bounded by a timeout).
5. ``pulumi destroy`` of the whole stack. If it fails (an orphan blocks the VPC, a security group
   or an IAM role), run the sweep and try once more.
6. :func:`sweep`: delete, by this cluster's tags only, what Karpenter and the controllers left
   behind outside Pulumi's state.

After a successful destroy ``storage.destroyData`` is removed from the stack's config again (it
must never stay set: Rook stops reconciling a cluster that carries a cleanup policy). Without
Rook-Ceph, steps 1 and 2 are skipped (and said so) and the workloads go together with the
NodePools: (1) targeted destroy of workloads and NodePools, (2) wait for the nodes, (3) destroy,
(4) sweep. ``--dry-run`` prints every step and changes nothing.

Ownership: what proves that a cloud resource belongs to cluster ``C``
---------------------------------------------------------------------
The sweep never deletes by name pattern or by VPC alone; every resource needs a tag proof. A
resource that *also* carries another cluster's identity (``eks:eks-cluster-name=<other>``,
``kubernetes.io/cluster/<other>``, ``KubernetesCluster=<other>``, ``cluster.k8s.amazonaws.com/name
=<other>``) is never touched, whatever else it carries.

Cluster identity (``CLUSTER_IDENTITY``): ``eks:eks-cluster-name = C`` or
``kubernetes.io/cluster/C = owned``. ``kubernetes.io/cluster/C = shared`` means *not* owned.
``karpenter.sh/discovery = C`` is only a selector (it sits on Pulumi-owned, possibly shared
subnets and security groups) and is never a proof of ownership.

========================  ================================================================
EC2 instance              tag key ``karpenter.sh/nodepool`` present AND cluster identity
                          (Karpenter sets both itself: ``eks:eks-cluster-name``,
                          ``kubernetes.io/cluster/C=owned``, ``karpenter.sh/nodepool``),
                          state pending/running/stopping/stopped.
Launch template           ``karpenter.k8s.aws/cluster = C`` (set by Karpenter).
IAM instance profile      named ``C_<hash>`` AND ``karpenter.k8s.aws/ec2nodeclass`` present AND
                          cluster identity AND ``topology.kubernetes.io/region = <session
                          region>`` (Karpenter sets all of them; IAM is global, hence the
                          region check). Its role (Pulumi's) is detached, never deleted.
Network interface         status ``available`` (or attached, without delete-on-termination,
                          to an instance this sweep terminates) AND
                          (``cluster.k8s.amazonaws.com/name = C`` [VPC CNI] or cluster identity).
EBS volume                created for a PV: ``kubernetes.io/created-for/pvc/name`` present or
                          ``ebs.csi.aws.com/cluster = true`` AND (``kubernetes.io/cluster/C =
                          owned`` or ``KubernetesCluster = C``). The EBS CSI driver sets the
                          latter two only when started with ``k8sTagClusterId = C``, which the
                          storage add-on must set. Volume state ``available`` (or attached to an
                          instance this sweep terminates). Snapshots are never deleted.
ELBv2 load balancer,      ``elbv2.k8s.aws/cluster = C`` (set by the AWS Load Balancer Controller).
target group
Security group            ``elbv2.k8s.aws/cluster = C`` (the LBC's managed frontend/backend
                          groups). Rules in other groups that reference them are revoked first
                          (the rule ids ``sgr-...`` are part of the returned list).
SQS queue                 named exactly :func:`interruption_queue_name` (``C-karpenter-
                          interruption``), or tagged with cluster identity or with the
                          project tag ``eks-ml-platform/cluster = C``.
EventBridge rule          has the interruption queue above as a target.
========================  ================================================================

``sweep(..., dry_run=True)`` computes the same plan as a real run and deletes nothing: both
return the plan's ids in the order a real run deletes them.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Protocol

if TYPE_CHECKING:  # boto3 is imported lazily so that `python -m infra --help` stays fast
    import boto3

# --------------------------------------------------------------------------------------------
# Conventions shared with the components (the Karpenter component must use the same).
# --------------------------------------------------------------------------------------------

INTERRUPTION_QUEUE_SUFFIX = "-karpenter-interruption"


def interruption_queue_name(cluster_name: str) -> str:
    """The Karpenter interruption queue's name: ``<cluster>-karpenter-interruption``.

    Defined once here; ``components/karpenter.py`` names its SQS queue with this function and
    passes the same name to the chart (``settings.interruptionQueue``).
    """
    return f"{cluster_name}{INTERRUPTION_QUEUE_SUFFIX}"


TAG_EKS_CLUSTER_NAME = "eks:eks-cluster-name"
TAG_K8S_CLUSTER_PREFIX = "kubernetes.io/cluster/"
TAG_KARPENTER_NODEPOOL = "karpenter.sh/nodepool"
TAG_KARPENTER_LT_CLUSTER = "karpenter.k8s.aws/cluster"
TAG_KARPENTER_NODECLASS = "karpenter.k8s.aws/ec2nodeclass"
TAG_TOPOLOGY_REGION = "topology.kubernetes.io/region"
TAG_VPC_CNI_CLUSTER = "cluster.k8s.amazonaws.com/name"
TAG_VPC_CNI_NODE = "node.k8s.amazonaws.com/instance_id"
TAG_EBS_CSI_CLUSTER = "ebs.csi.aws.com/cluster"
TAG_PVC_NAME = "kubernetes.io/created-for/pvc/name"
TAG_LEGACY_CLUSTER = "KubernetesCluster"
TAG_LBC_CLUSTER = "elbv2.k8s.aws/cluster"
#: The project's own tag (``PlatformConfig.common_tags``) on every resource Pulumi creates.
TAG_PROJECT_CLUSTER = "eks-ml-platform/cluster"

#: Pulumi type tokens destroyed before the rest of the stack.
NODEPOOL_TYPE_RE = re.compile(r"^kubernetes:karpenter\.sh/v[0-9a-z]+:NodePool$")
#: The workload components: WorkloadStorage (workloads/shared.py), SentimentServing
#: (workloads/sentiment/component.py), TrainingWorkload (workloads/training/component.py).
WORKLOAD_TYPE_PREFIXES = ("eks-ml-platform:workloads:", "eks-ml-platform:sentiment:",
                          "eks-ml-platform:training:")
WORKLOAD_TYPE_PREFIX = WORKLOAD_TYPE_PREFIXES[0]
#: The Rook-Ceph component (components/storage.py).
STORAGE_TYPE = "eks-ml-platform:storage:RookCeph"
#: The config key (a path into the structured ``storage`` key) that sets the CephCluster's
#: cleanupPolicy (components/storage.py ``cleanup_policy``).
DESTROY_DATA_KEY = "eks-ml-platform:storage.destroyData"

#: Stack names that are never torn down, whatever their config says.
PROTECTED_STACK_RE = re.compile(r"^(prod|production|staging|stage)([-_.].*)?$", re.IGNORECASE)

_LIVE_INSTANCE_STATES = ["pending", "running", "stopping", "stopped"]

# Injected in tests so that retries and polling do not sleep.
_sleep: Callable[[float], None] = time.sleep
_monotonic: Callable[[], float] = time.monotonic


# --------------------------------------------------------------------------------------------
# Tag predicates (pure)
# --------------------------------------------------------------------------------------------


def tag_map(tags: Iterable[Mapping[str, str]] | Mapping[str, str] | None) -> dict[str, str]:
    """``[{"Key": k, "Value": v}]`` (EC2/ELB/IAM shape) or a plain dict -> ``{k: v}``."""
    if not tags:
        return {}
    if isinstance(tags, Mapping):
        return {str(k): str(v) for k, v in tags.items()}
    return {t["Key"]: t.get("Value", "") for t in tags}


def claims_other_cluster(tags: Mapping[str, str], cluster: str) -> bool:
    """True when the tags name a cluster other than ``cluster`` anywhere."""
    for key, value in tags.items():
        if key.startswith(TAG_K8S_CLUSTER_PREFIX) and key[len(TAG_K8S_CLUSTER_PREFIX):] != cluster:
            return True
    for key in (TAG_EKS_CLUSTER_NAME, TAG_LEGACY_CLUSTER, TAG_VPC_CNI_CLUSTER, TAG_LBC_CLUSTER,
                TAG_KARPENTER_LT_CLUSTER, TAG_PROJECT_CLUSTER):
        if key in tags and tags[key] != cluster:
            return True
    return False


def has_cluster_identity(tags: Mapping[str, str], cluster: str) -> bool:
    """``eks:eks-cluster-name=C`` or ``kubernetes.io/cluster/C=owned``, and no other cluster."""
    if claims_other_cluster(tags, cluster):
        return False
    return (tags.get(TAG_EKS_CLUSTER_NAME) == cluster
            or tags.get(TAG_K8S_CLUSTER_PREFIX + cluster) == "owned")


def is_karpenter_instance(tags: Mapping[str, str], cluster: str) -> bool:
    return TAG_KARPENTER_NODEPOOL in tags and has_cluster_identity(tags, cluster)


def is_karpenter_launch_template(tags: Mapping[str, str], cluster: str) -> bool:
    return tags.get(TAG_KARPENTER_LT_CLUSTER) == cluster and not claims_other_cluster(tags, cluster)


def is_karpenter_instance_profile(tags: Mapping[str, str], cluster: str, region: str) -> bool:
    return (TAG_KARPENTER_NODECLASS in tags and has_cluster_identity(tags, cluster)
            and tags.get(TAG_TOPOLOGY_REGION) == region)


def is_cluster_eni(tags: Mapping[str, str], cluster: str) -> bool:
    if claims_other_cluster(tags, cluster):
        return False
    return tags.get(TAG_VPC_CNI_CLUSTER) == cluster or has_cluster_identity(tags, cluster)


def is_cluster_pv_volume(tags: Mapping[str, str], cluster: str) -> bool:
    if claims_other_cluster(tags, cluster):
        return False
    made_for_pv = TAG_PVC_NAME in tags or tags.get(TAG_EBS_CSI_CLUSTER) == "true"
    owned = (tags.get(TAG_K8S_CLUSTER_PREFIX + cluster) == "owned"
             or tags.get(TAG_LEGACY_CLUSTER) == cluster)
    return made_for_pv and owned


def is_lbc_resource(tags: Mapping[str, str], cluster: str) -> bool:
    return tags.get(TAG_LBC_CLUSTER) == cluster and not claims_other_cluster(tags, cluster)


def is_cluster_queue(name: str, tags: Mapping[str, str], cluster: str) -> bool:
    if claims_other_cluster(tags, cluster):
        return False
    return (name == interruption_queue_name(cluster) or has_cluster_identity(tags, cluster)
            or tags.get(TAG_PROJECT_CLUSTER) == cluster)


# --------------------------------------------------------------------------------------------
# The sweep
# --------------------------------------------------------------------------------------------


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

    def lines(self) -> list[str]:
        """Human-readable plan, one line per resource."""
        out = [f"ec2 instance       {i}" for i in self.instances]
        out += [f"launch template    {i}" for i in self.launch_templates]
        out += [f"instance profile   {i}" for i in self.instance_profiles]
        out += [f"load balancer      {i}" for i in self.load_balancers]
        out += [f"target group       {i}" for i in self.target_groups]
        out += [f"network interface  {i}" for i in self.network_interfaces]
        out += [f"ebs volume         {i}" for i in self.volumes]
        out += [f"sg rule            {r} (in {g})" for g, r, _ in self.sg_rules]
        out += [f"security group     {i}" for i in self.security_groups]
        out += [f"eventbridge rule   {i}" for i in self.event_rules]
        out += [f"sqs queue          {self._queue_arns[u]}" for u in self.queues]
        return out


def _err_code(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def plan_sweep(session: "boto3.Session", cluster_name: str) -> SweepPlan:
    """Read-only: list everything :func:`sweep` would delete for ``cluster_name``."""
    if not cluster_name:
        raise ValueError("cluster_name is empty")
    c = cluster_name
    plan = SweepPlan()
    ec2 = session.client("ec2")

    # Instances: filter server-side on the nodepool tag key, then prove ownership client-side.
    attached_to_swept: dict[str, list[dict[str, Any]]] = {}
    for page in ec2.get_paginator("describe_instances").paginate(Filters=[
        {"Name": "tag-key", "Values": [TAG_KARPENTER_NODEPOOL]},
        {"Name": "instance-state-name", "Values": _LIVE_INSTANCE_STATES},
    ]):
        for res in page["Reservations"]:
            for inst in res["Instances"]:
                if is_karpenter_instance(tag_map(inst.get("Tags")), c):
                    plan.instances.append(inst["InstanceId"])
    plan.instances.sort()
    swept = set(plan.instances)

    for page in ec2.get_paginator("describe_launch_templates").paginate(
            Filters=[{"Name": f"tag:{TAG_KARPENTER_LT_CLUSTER}", "Values": [c]}]):
        for lt in page["LaunchTemplates"]:
            if is_karpenter_launch_template(tag_map(lt.get("Tags")), c):
                plan.launch_templates.append(lt["LaunchTemplateId"])
    plan.launch_templates.sort()

    region = session.region_name or ec2.meta.region_name
    iam = session.client("iam")
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

    elb = session.client("elbv2")
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

    sgs: dict[str, str] = {}  # group id -> vpc id
    for page in ec2.get_paginator("describe_security_groups").paginate(
            Filters=[{"Name": f"tag:{TAG_LBC_CLUSTER}", "Values": [c]}]):
        for sg in page["SecurityGroups"]:
            if is_lbc_resource(tag_map(sg.get("Tags")), c) and sg.get("GroupName") != "default":
                sgs[sg["GroupId"]] = sg.get("VpcId", "")
    plan.security_groups = sorted(sgs)
    if sgs:
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

    sqs = session.client("sqs")
    events = session.client("events")
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
    return plan


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


# --------------------------------------------------------------------------------------------
# Stack state (Automation API seam)
# --------------------------------------------------------------------------------------------


class StackOps(Protocol):
    """What the teardown needs from Pulumi; tests pass a fake."""

    def resources(self) -> list[dict[str, Any]]:
        """The stack's resources as in ``export_stack().deployment["resources"]``."""

    def destroy(self, targets: list[str] | None = None) -> None:
        """Destroy ``targets`` (with their dependents), or the whole stack when None."""

    def set_config(self, key: str, value: str, *, path: bool = False) -> None:
        """``pulumi config set [--path] key value`` on the stack."""

    def remove_config(self, key: str, *, path: bool = False) -> None:
        """``pulumi config rm [--path] key`` on the stack."""

    def up(self, targets: list[str] | None = None) -> None:
        """``pulumi up`` of ``targets`` only (no dependents), or of the whole stack when None."""


class AutomationStackOps:
    """:class:`StackOps` through ``pulumi.automation`` (needs the Pulumi CLI and a backend)."""

    def __init__(self, stack: str, project_dir: Path, *, out: Callable[[str], None] = print):
        self.stack_name = stack
        self.project_dir = Path(project_dir)
        self.out = out
        self._stack = None

    def _get(self):
        if self._stack is None:
            from pulumi import automation as auto  # lazy: importing pulumi is slow

            self._stack = auto.select_stack(stack_name=self.stack_name,
                                            work_dir=str(self.project_dir))
        return self._stack

    def resources(self) -> list[dict[str, Any]]:
        deployment = self._get().export_stack().deployment or {}
        return list(deployment.get("resources") or [])

    def destroy(self, targets: list[str] | None = None) -> None:
        stack = self._get()
        if targets is None:
            stack.destroy(on_output=self.out)
        else:
            stack.destroy(target=targets, target_dependents=True, on_output=self.out)

    def set_config(self, key: str, value: str, *, path: bool = False) -> None:
        from pulumi import automation as auto

        self._get().set_config(key, auto.ConfigValue(value=value), path=path)

    def remove_config(self, key: str, *, path: bool = False) -> None:
        self._get().remove_config(key, path=path)

    def up(self, targets: list[str] | None = None) -> None:
        stack = self._get()
        if targets is None:
            stack.up(on_output=self.out)
        else:
            stack.up(target=targets, on_output=self.out)


def _subtrees(resources: list[dict[str, Any]], pick: Callable[[str], bool]) -> list[str]:
    """URNs of the resources whose type ``pick`` accepts, each followed by all its descendants."""
    children: dict[str, list[str]] = {}
    for res in resources:
        if res.get("parent"):
            children.setdefault(res["parent"], []).append(res["urn"])
    picked: list[str] = []
    seen: set[str] = set()

    def add(urn: str) -> None:
        if urn in seen:
            return
        seen.add(urn)
        picked.append(urn)
        for child in children.get(urn, []):
            add(child)

    for res in resources:
        if pick(res.get("type", "")):
            add(res["urn"])
    return picked


def _is_workload(rtype: str) -> bool:
    return rtype.startswith(WORKLOAD_TYPE_PREFIXES)


def _is_nodepool(rtype: str) -> bool:
    return bool(NODEPOOL_TYPE_RE.match(rtype))


def first_targets(resources: list[dict[str, Any]]) -> list[str]:
    """URNs destroyed first without Rook-Ceph: workload components with all their descendants,
    and NodePools."""
    return _subtrees(resources, lambda t: _is_workload(t) or _is_nodepool(t))


def workload_targets(resources: list[dict[str, Any]]) -> list[str]:
    """The workload components with all their descendants."""
    return _subtrees(resources, _is_workload)


def storage_targets(resources: list[dict[str, Any]]) -> list[str]:
    """The Rook-Ceph component with all its descendants (CephCluster, pools, StorageClasses...)."""
    return _subtrees(resources, lambda t: t == STORAGE_TYPE)


def nodepool_targets(resources: list[dict[str, Any]]) -> list[str]:
    return _subtrees(resources, _is_nodepool)


def rook_enabled(cfg: Any) -> bool:
    """``addons.rookCeph.enabled`` of the stack's config (False when the config has no add-ons)."""
    return bool(getattr(getattr(getattr(cfg, "addons", None), "rook_ceph", None), "enabled", False))


def _managed(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in resources if not r.get("type", "").startswith("pulumi:pulumi:Stack")
            and not r.get("type", "").startswith("pulumi:providers:")]


# --------------------------------------------------------------------------------------------
# Guards and orchestration
# --------------------------------------------------------------------------------------------


class Refused(Exception):
    """The teardown is not allowed for this stack (exit code 2)."""


def short_stack_name(stack: str) -> str:
    """``org/project/dev`` -> ``dev``."""
    return stack.rsplit("/", 1)[-1]


def check_allowed(stack: str, cfg: Any, region: str | None) -> None:
    """Raise :class:`Refused` with a one-line reason unless ``stack`` may be torn down."""
    name = short_stack_name(stack)
    if PROTECTED_STACK_RE.match(name):
        raise Refused(f"refusing to tear down stack '{name}': production and staging stacks "
                      "are never torn down by this tool")
    env = getattr(cfg, "environment", None)
    if env in ("prod", "staging"):
        raise Refused(f"refusing to tear down stack '{name}': its environment is '{env}'")
    if getattr(cfg, "protect", False):
        raise Refused(f"refusing to tear down stack '{name}': its config sets protect: true")
    if getattr(cfg, "ephemeral", False) is not True:
        raise Refused(f"refusing to tear down stack '{name}': its config does not mark it "
                      "ephemeral (the dev marker, `ephemeral: true`)")
    cluster = cluster_name_of(cfg)
    if not cluster:
        raise Refused(f"refusing to tear down stack '{name}': no cluster name in its config")
    cfg_region = getattr(cfg, "region", None)
    if region and cfg_region and region != cfg_region:
        raise Refused(f"refusing to tear down stack '{name}': --region {region} does not match "
                      f"the stack's region {cfg_region}")


def cluster_name_of(cfg: Any) -> str:
    """``cfg.cluster_name`` (the name or its ``ml-<stack>`` default), else ``cfg.cluster.name``."""
    name = getattr(cfg, "cluster_name", None)
    if isinstance(name, str) and name:
        return name
    return getattr(getattr(cfg, "cluster", None), "name", None) or ""


def _default_load_config(stack: str, project_dir: Path) -> Any:
    from infra.config import load_stack_config  # lazy: config.py is owned by the lead

    return load_stack_config(short_stack_name(stack), project_dir)


def _config_error_problems(exc: Exception) -> list[str] | None:
    problems = getattr(exc, "problems", None)
    if type(exc).__name__ == "ConfigError" or problems is not None:
        return list(problems or [str(exc)])
    return None


def run_teardown(
    stack: str,
    *,
    region: str | None = None,
    project_dir: Path | None = None,
    dry_run: bool = False,
    yes: bool = False,
    sweep_only: bool = False,
    ops: StackOps | None = None,
    session: "boto3.Session | None" = None,
    load_config: Callable[[str, Path], Any] | None = None,
    confirm: Callable[[str], str] = input,
    out: Callable[[str], None] = print,
    node_timeout: float = 900.0,
    node_poll: float = 15.0,
    sweep_fn: Callable[..., list[str]] | None = None,
) -> int:
    """Tear down ``stack``. Returns the process exit code (0 ok, 1 failed/aborted, 2 refused)."""
    project_dir = Path(project_dir) if project_dir else Path(__file__).resolve().parent.parent
    load_config = load_config or _default_load_config
    sweep_fn = sweep_fn or sweep

    try:
        # The name guard runs before reading anything.
        if PROTECTED_STACK_RE.match(short_stack_name(stack)):
            check_allowed(stack, None, region)
        try:
            cfg = load_config(stack, project_dir)
        except Exception as exc:  # noqa: BLE001
            problems = _config_error_problems(exc)
            if problems is None:
                raise
            raise Refused(f"refusing to tear down stack '{short_stack_name(stack)}': invalid "
                          f"config: {'; '.join(problems)}") from exc
        check_allowed(stack, cfg, region)
    except Refused as exc:
        out(f"teardown: {exc}")
        return 2

    cluster = cluster_name_of(cfg)
    region = region or cfg.region
    if session is None:
        import boto3

        session = boto3.Session(region_name=region)
    mode = "DRY RUN: " if dry_run else ""
    out(f"teardown: {mode}stack '{stack}', cluster '{cluster}', region {region}")
    try:
        return _run_steps(stack, cluster, region, cfg=cfg, session=session, project_dir=project_dir,
                          dry_run=dry_run, yes=yes, sweep_only=sweep_only, ops=ops,
                          confirm=confirm, out=out, node_timeout=node_timeout,
                          node_poll=node_poll, sweep_fn=sweep_fn)
    except Exception as exc:  # noqa: BLE001 - AWS errors become one line, not a traceback
        from botocore.exceptions import BotoCoreError, ClientError

        if not isinstance(exc, (BotoCoreError, ClientError)):
            raise
        out(f"teardown: AWS error: {exc}")
        return 1


def _storage_teardown_reference(cfg: Any) -> list[str]:
    """components/storage.py's own description of a safe storage teardown (for --dry-run)."""
    try:
        from components.storage import teardown_steps
    except ImportError:  # pragma: no cover - the component ships with this repository
        return []
    return teardown_steps(cfg)


def _run_steps(stack: str, cluster: str, region: str, *, cfg: Any, session: Any, project_dir: Path,
               dry_run: bool, yes: bool, sweep_only: bool, ops: StackOps | None,
               confirm: Callable[[str], str], out: Callable[[str], None], node_timeout: float,
               node_poll: float, sweep_fn: Callable[..., list[str]]) -> int:

    failed = False
    release_data = False  # whether this run set storage.destroyData (and must remove it again)
    total = 4
    if not sweep_only:
        if ops is None:
            ops = AutomationStackOps(stack, project_dir, out=out)
        try:
            resources = ops.resources()
        except Exception as exc:  # noqa: BLE001
            out(f"teardown: cannot read the state of stack '{stack}': {exc}")
            if not dry_run:
                return 1
            resources, failed = [], True
        managed = _managed(resources)
        ceph = storage_targets(resources) if rook_enabled(cfg) else []
        if not rook_enabled(cfg):
            out("storage: Rook-Ceph is not enabled in this stack's config: no storage.destroyData step")
        elif not ceph:
            out("storage: Rook-Ceph is enabled but none of its resources are in the stack's state: "
                "no storage.destroyData step")
        total = 6 if ceph else 4
        n = iter(range(1, total + 1))

        def step() -> str:
            return f"step {next(n)}/{total}"

        if ceph:
            plan: list[tuple[str, list[str]]] = [
                ("workload and Rook-Ceph", _unique(workload_targets(resources) + ceph)),
                ("NodePool", nodepool_targets(resources))]
        else:
            plan = [("workload/NodePool", first_targets(resources))]

        if dry_run:
            if ceph:
                out(f"{step()}: would set {DESTROY_DATA_KEY}=true (Automation API set_config, path=True) "
                    f"and run `pulumi up` on the {len(ceph)} Rook-Ceph resource(s): CephCluster cleanupPolicy, "
                    "force-deletion of the block pool (as components/storage.py teardown_steps):")
                for line in _storage_teardown_reference(cfg):
                    out(f"    {line}")
            for what, urns in plan:
                out(f"{step()}: would destroy {len(urns)} {what} resource(s) (with dependents):")
                for urn in urns:
                    out(f"  {urn}")
            live = karpenter_instances(session, cluster)
            out(f"{step()}: would wait up to {node_timeout:.0f}s for {len(live)} Karpenter "
                f"instance(s) to terminate{': ' + ', '.join(live) if live else ''}")
            out(f"{step()}: would destroy the remaining {len(managed)} resource(s) of the stack"
                + (f", then remove {DESTROY_DATA_KEY} from the stack's config" if ceph else ""))
        else:
            if not yes:
                try:
                    answer = confirm(f"Destroy stack '{stack}' (cluster '{cluster}', "
                                     f"{len(managed)} resources{', Ceph data included' if ceph else ''}) "
                                     f"and sweep its orphans? Type the stack name to confirm: ")
                except EOFError:
                    answer = ""
                if answer.strip() != short_stack_name(stack):
                    out("teardown: aborted (confirmation did not match)")
                    return 1
            if ceph:
                label = step()
                out(f"{label}: releasing Ceph's data: {DESTROY_DATA_KEY}=true and `pulumi up` of "
                    f"{len(ceph)} Rook-Ceph resource(s)")
                try:
                    ops.set_config(DESTROY_DATA_KEY, "true", path=True)
                    release_data = True
                    ops.up(ceph)
                except Exception as exc:  # noqa: BLE001 - destroying now would hang on Rook's finalizers
                    out(f"{label}: failed ({exc}); nothing was destroyed. Fix it and run the teardown "
                        f"again, or undo with `pulumi config rm --path storage.destroyData`")
                    return 1
            for what, urns in plan:
                label = step()
                if urns:
                    out(f"{label}: destroying {len(urns)} {what} resource(s)")
                    try:
                        ops.destroy(urns)
                    except Exception as exc:  # noqa: BLE001 - the full destroy and sweep follow
                        out(f"{label}: targeted destroy failed, continuing: {exc}")
                else:
                    out(f"{label}: no {what} resources in the stack")
            label = step()
            out(f"{label}: waiting up to {node_timeout:.0f}s for Karpenter instances to go")
            left = wait_for_nodes_gone(session, cluster, timeout=node_timeout, poll=node_poll)
            if left:
                out(f"{label}: {len(left)} instance(s) still live, the sweep will terminate "
                    f"them: {', '.join(left)}")
            label = step()
            out(f"{label}: destroying the stack")
            try:
                ops.destroy(None)
            except Exception as exc:  # noqa: BLE001
                out(f"{label}: destroy failed ({exc}); sweeping orphans and retrying once")
                swept = sweep_fn(session, cluster, dry_run=False)
                for item in swept:
                    out(f"  deleted {item}")
                try:
                    ops.destroy(None)
                except Exception as exc2:  # noqa: BLE001
                    out(f"{label}: destroy failed again: {exc2}")
                    failed = True
    elif not dry_run and not yes:
        try:
            answer = confirm(f"Sweep orphans of cluster '{cluster}' in {region}? "
                             "Type the stack name to confirm: ")
        except EOFError:
            answer = ""
        if answer.strip() != short_stack_name(stack):
            out("teardown: aborted (confirmation did not match)")
            return 1

    verb = "would delete" if dry_run else "deleted"
    items = sweep_fn(session, cluster, dry_run=dry_run)
    out(f"step {total}/{total}: sweep {verb} {len(items)} resource(s)")
    for item in items:
        out(f"  {item}")
    if release_data:
        if failed:
            out(f"storage: {DESTROY_DATA_KEY} stays true while the stack still has resources; run the "
                "teardown again (or `pulumi config rm --path storage.destroyData` before a `pulumi up`)")
        else:
            try:
                ops.remove_config(DESTROY_DATA_KEY, path=True)
                out(f"storage: removed {DESTROY_DATA_KEY} from the stack's config again")
            except Exception as exc:  # noqa: BLE001 - the stack is gone; say what is left to do
                out(f"storage: could not remove {DESTROY_DATA_KEY} ({exc}); run "
                    "`pulumi config rm --path storage.destroyData` before the next `pulumi up`")
    return 1 if failed else 0


def _unique(urns: list[str]) -> list[str]:
    return list(dict.fromkeys(urns))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m infra teardown",
        description="Safely tear down an ephemeral (dev) stack and sweep what Karpenter and "
                    "the controllers left outside Pulumi's state.")
    p.add_argument("--stack", required=True, help="stack name, e.g. dev")
    p.add_argument("--region", help="AWS region; must match the stack's (default: the stack's)")
    p.add_argument("--dry-run", action="store_true",
                   help="print what each step would do and the exact sweep list; change nothing")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--sweep-only", action="store_true", help="run only the sweep (step 4)")
    p.add_argument("--node-timeout", type=float, default=900.0,
                   help="seconds to wait for Karpenter nodes to go (step 2, default 900)")
    p.add_argument("--project-dir", type=Path, default=None, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_teardown(args.stack, region=args.region, project_dir=args.project_dir,
                        dry_run=args.dry_run, yes=args.yes, sweep_only=args.sweep_only,
                        node_timeout=args.node_timeout)


if __name__ == "__main__":
    sys.exit(main())
