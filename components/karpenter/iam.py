"""Karpenter's IAM and interruption documents: pure data, so the unit tests read them without Pulumi.

The controller's six policies follow upstream's CloudFormation reference
(``website/content/en/v1.14/getting-started/getting-started-with-karpenter/cloudformation.yaml``):
every write is scoped to this cluster's tags. They are written once, as a table of statement
templates (``{cluster}``, ``{ec2}``, ... placeholders in keys and values), because a policy is data
and reads best as data; ``controller_policies`` only fills the placeholders in.
"""
from __future__ import annotations

import json
from typing import Any

from infra.conventions import (
    TAG_EKS_CLUSTER_NAME,
    TAG_K8S_CLUSTER_PREFIX,
    TAG_KARPENTER_NODECLASS,
    TAG_KARPENTER_NODEPOOL,
    TAG_TOPOLOGY_REGION,
)

NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryPullOnly",
                 "AmazonSSMManagedInstanceCore")

# EventBridge rules that feed the interruption queue (suffix -> event pattern), as upstream's
# CloudFormation reference.
INTERRUPTION_EVENTS: dict[str, dict[str, list[str]]] = {
    "scheduled-change": {"source": ["aws.health"], "detail-type": ["AWS Health Event"]},
    "spot-interruption": {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]},
    "rebalance": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"]},
    "instance-state-change": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]},
    "capacity-reservation-interruption": {
        "source": ["aws.ec2"], "detail-type": ["EC2 Capacity Reservation Instance Interruption Warning"]},
}


def dumps(doc: Any) -> str:
    """JSON with sorted keys: a policy document renders the same on every run (no spurious diffs)."""
    return json.dumps(doc, sort_keys=True)


def node_policy_arn(partition: str, policy: str) -> str:
    """The ARN of an AWS-managed policy attached to the node role."""
    return f"arn:{partition}:iam::aws:policy/{policy}"


# ------------------------------------------------------------------- controller policy table
def _allow(sid: str, resource: Any, action: Any, condition: dict[str, Any] | None = None) -> dict[str, Any]:
    statement: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Resource": resource, "Action": action}
    if condition is not None:
        statement["Condition"] = condition
    return statement


_CLUSTER_TAG = f"{TAG_K8S_CLUSTER_PREFIX}{{cluster}}"
_REQ_OWNED = {f"aws:RequestTag/{_CLUSTER_TAG}": "owned", f"aws:RequestTag/{TAG_EKS_CLUSTER_NAME}": "{cluster}"}
_RES_OWNED = {f"aws:ResourceTag/{_CLUSTER_TAG}": "owned"}
_REQ_REGION = {f"aws:RequestTag/{TAG_TOPOLOGY_REGION}": "{region}"}
_RES_REGION = {f"aws:ResourceTag/{TAG_TOPOLOGY_REGION}": "{region}"}
_REQ_NODEPOOL = {f"aws:RequestTag/{TAG_KARPENTER_NODEPOOL}": "*"}
_RES_NODEPOOL = {f"aws:ResourceTag/{TAG_KARPENTER_NODEPOOL}": "*"}
_REQ_NODECLASS = {f"aws:RequestTag/{TAG_KARPENTER_NODECLASS}": "*"}
_RES_NODECLASS = {f"aws:ResourceTag/{TAG_KARPENTER_NODECLASS}": "*"}
_RUN = ["ec2:RunInstances", "ec2:CreateFleet"]
_CREATED = ["{ec2}:*:fleet/*", "{ec2}:*:instance/*", "{ec2}:*:volume/*", "{ec2}:*:network-interface/*",
            "{ec2}:*:launch-template/*", "{ec2}:*:spot-instances-request/*"]
_READ_ACTIONS = ["ec2:DescribeCapacityReservations", "ec2:DescribeImages", "ec2:DescribeInstances",
                 "ec2:DescribeInstanceStatus", "ec2:DescribeInstanceTypeOfferings", "ec2:DescribeInstanceTypes",
                 "ec2:DescribeLaunchTemplates", "ec2:DescribePlacementGroups", "ec2:DescribeSecurityGroups",
                 "ec2:DescribeSpotPriceHistory", "ec2:DescribeSubnets"]

#: The controller's policies (short name -> statement templates), in attachment order.
CONTROLLER_POLICY_STATEMENTS: dict[str, list[dict[str, Any]]] = {
    "node-lifecycle": [
        _allow("AllowScopedEC2InstanceAccessActions",
               ["{ec2}::image/*", "{ec2}::snapshot/*", "{ec2}:*:security-group/*", "{ec2}:*:subnet/*",
                "{ec2}:*:capacity-reservation/*", "{ec2}:*:placement-group/*"], _RUN),
        _allow("AllowScopedEC2LaunchTemplateAccessActions", "{ec2}:*:launch-template/*", _RUN,
               {"StringEquals": _RES_OWNED, "StringLike": _RES_NODEPOOL}),
        _allow("AllowScopedEC2InstanceActionsWithTags", _CREATED, [*_RUN, "ec2:CreateLaunchTemplate"],
               {"StringEquals": _REQ_OWNED, "StringLike": _REQ_NODEPOOL}),
        _allow("AllowScopedResourceCreationTagging", _CREATED, "ec2:CreateTags",
               {"StringEquals": {**_REQ_OWNED, "ec2:CreateAction": ["RunInstances", "CreateFleet",
                                                                     "CreateLaunchTemplate"]},
                "StringLike": _REQ_NODEPOOL}),
        _allow("AllowScopedResourceTagging", "{ec2}:*:instance/*", "ec2:CreateTags",
               {"StringEquals": _RES_OWNED, "StringLike": _RES_NODEPOOL,
                "StringEqualsIfExists": {f"aws:RequestTag/{TAG_EKS_CLUSTER_NAME}": "{cluster}"},
                "ForAllValues:StringEquals": {"aws:TagKeys": [TAG_EKS_CLUSTER_NAME, "karpenter.sh/nodeclaim", "Name"]}}),
        _allow("AllowScopedDeletion", ["{ec2}:*:instance/*", "{ec2}:*:launch-template/*"],
               ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
               {"StringEquals": _RES_OWNED, "StringLike": _RES_NODEPOOL}),
    ],
    "iam-integration": [
        _allow("AllowPassingInstanceRole", "{node_role_arn}", "iam:PassRole",
               {"StringEquals": {"iam:PassedToService": ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"]}}),
        _allow("AllowScopedInstanceProfileCreationActions", "{profiles}", ["iam:CreateInstanceProfile"],
               {"StringEquals": {**_REQ_OWNED, **_REQ_REGION}, "StringLike": _REQ_NODECLASS}),
        _allow("AllowScopedInstanceProfileTagActions", "{profiles}", ["iam:TagInstanceProfile"],
               {"StringEquals": {**_RES_OWNED, **_RES_REGION, **_REQ_OWNED, **_REQ_REGION},
                "StringLike": {**_RES_NODECLASS, **_REQ_NODECLASS}}),
        _allow("AllowScopedInstanceProfileActions", "{profiles}",
               ["iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile", "iam:DeleteInstanceProfile"],
               {"StringEquals": {**_RES_OWNED, **_RES_REGION}, "StringLike": _RES_NODECLASS}),
    ],
    "eks-integration": [
        _allow("AllowAPIServerEndpointDiscovery", "{cluster_arn}", "eks:DescribeCluster"),
    ],
    "interruption": [
        _allow("AllowInterruptionQueueActions", "{queue_arn}",
               ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"]),
    ],
    "zonal-shift": [
        _allow("AllowZonalShiftStatusReadOnly", "*", ["arc-zonal-shift:GetManagedResource"],
               {"StringEquals": {"arc-zonal-shift:ResourceIdentifier": "{cluster_arn}"}}),
    ],
    "resource-discovery": [
        _allow("AllowRegionalReadActions", "*", _READ_ACTIONS,
               {"StringEquals": {"aws:RequestedRegion": "{region}"}}),
        _allow("AllowSSMReadActions", "{arn}:ssm:{region}::parameter/aws/service/*", "ssm:GetParameter"),
        _allow("AllowPricingReadActions", "*", "pricing:GetProducts"),
        # Without it the EC2NodeClass finalizer cannot find its instance profile and hangs on destroy.
        _allow("AllowUnscopedInstanceProfileListAction", "*", "iam:ListInstanceProfiles"),
        _allow("AllowInstanceProfileReadActions", "{profiles}", "iam:GetInstanceProfile"),
    ],
}


def _fill(template: Any, fields: dict[str, str]) -> Any:
    """The template with every ``{placeholder}`` (in dict keys, values and list items) filled in."""
    if isinstance(template, str):
        return template.format(**fields)
    if isinstance(template, dict):
        return {_fill(k, fields): _fill(v, fields) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, fields) for v in template]
    return template


def controller_policies(*, cluster: str, region: str, partition: str, account_id: str, node_role_arn: str,
                        queue_arn: str) -> dict[str, dict[str, Any]]:
    """The controller's IAM policy documents, keyed by a short name (upstream's six policies)."""
    arn = f"arn:{partition}"
    cluster_arn = f"{arn}:eks:{region}:{account_id}:cluster/{cluster}"
    fields = {"arn": arn, "cluster": cluster, "region": region, "ec2": f"{arn}:ec2:{region}",
              "profiles": f"{arn}:iam::{account_id}:instance-profile/*", "cluster_arn": cluster_arn,
              "node_role_arn": node_role_arn, "queue_arn": queue_arn}
    return {key: {"Version": "2012-10-17", "Statement": _fill(statements, fields)}
            for key, statements in CONTROLLER_POLICY_STATEMENTS.items()}


def queue_policy(queue_arn: str) -> dict[str, Any]:
    """EventBridge (and SQS) may send; nobody may use the queue without TLS."""
    return {"Version": "2012-10-17", "Id": "EC2InterruptionPolicy", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]},
         "Action": "sqs:SendMessage", "Resource": queue_arn},
        {"Sid": "DenyHTTP", "Effect": "Deny", "Principal": "*", "Action": "sqs:*", "Resource": queue_arn,
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    ]}
