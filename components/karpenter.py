"""Karpenter: node autoscaling with cpu, GPU (NVIDIA) and Neuron (inf1) NodePools.

What this component creates (``Karpenter``), in dependency order:

- **IAM**
  - the controller role, assumed through **EKS Pod Identity** (``pods.eks.amazonaws.com``) by the
    ``kube-system/karpenter`` service account, with the six policies of upstream's CloudFormation
    reference (``website/content/en/v1.14/getting-started/getting-started-with-karpenter/
    cloudformation.yaml``): every write is scoped to this cluster's tags
    (``aws:RequestTag``/``aws:ResourceTag`` ``kubernetes.io/cluster/<cluster>: owned``,
    ``eks:eks-cluster-name``, ``karpenter.sh/nodepool``). ``iam:ListInstanceProfiles`` is in it:
    without it the EC2NodeClass finalizer hangs on destroy;
  - the node role (EKS worker, CNI, ECR pull-only, SSM policies) and its EKS access entry of type
    ``EC2_LINUX``, so nodes join without the aws-auth ConfigMap.
- **Interruption handling**: the SQS queue ``<cluster>-karpenter-interruption`` (SSE on, 5 min
  retention, TLS-only policy) and EventBridge rules for spot interruption, rebalance
  recommendation, instance state change, scheduled change (AWS Health) and capacity-reservation
  interruption; the queue name goes to the chart as ``settings.interruptionQueue``.
- **Helm**: ``karpenter-crd`` first (it owns the CRDs, so chart upgrades upgrade them), then
  ``karpenter`` with ``skip_crds`` (never two owners of one CRD: the karpenter-crd/karpenter
  ownership trap), both after ``cluster_ready``; the controller runs on the system node group.
- **EC2NodeClass** per pool: pinned AL2023 alias (resolves to the NVIDIA or Neuron AMI variant
  by instance type), discovery selectors, IMDSv2 only (hop limit 1 unless the pool says
  otherwise), an encrypted gp3 root volume sized for the pool, this platform's tags.
- **NodePool** per pool (``karpenter.sh/v1``): requirements, taints, limits, disruption; each
  depends on the release (its CRD) and on its EC2NodeClass.
- a **ServiceMonitor** for the controller's metrics, only when the monitoring add-on exists.

Pure helpers build every document (policies, event patterns, Helm values, specs) so the unit
tests check them without Pulumi.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.config import NodePoolConfig, PlatformConfig
from infra.conventions import (SYSTEM_NODE_SELECTOR, SYSTEM_TOLERATION, TAG_PROJECT_CLUSTER, assume_role_policy,
                               interruption_queue_name, pod_identity_trust)
from infra.versions import AMI_ALIAS, CHARTS, chart_version

if TYPE_CHECKING:  # pragma: no cover - typing only (infra.platform imports this module at run time)
    from infra.context import PlatformContext

NAMESPACE = "kube-system"
RELEASE_NAME = "karpenter"  # the chart's fullname, Service and ServiceAccount are all "karpenter"
CRD_RELEASE_NAME = "karpenter-crd"
SERVICE_ACCOUNT = "karpenter"
METRICS_PORT_NAME = "http-metrics"  # charts/karpenter/templates/service.yaml

POOL_LABEL = "eks-ml-platform/pool"  # nodeSelector: {"eks-ml-platform/pool": "inf1"}
ACCELERATOR_LABEL = "eks-ml-platform/accelerator"  # "nvidia" or "neuron" on accelerator pools
NVIDIA = "nvidia"
NEURON = "neuron"
GPU_TAINT = {"key": "nvidia.com/gpu", "effect": "NoSchedule"}
NEURON_TAINT = {"key": "aws.amazon.com/neuron", "effect": "NoSchedule"}
GPU_RESOURCE = "nvidia.com/gpu"
NEURON_RESOURCE = "aws.amazon.com/neuron"
DISCOVERY_TAG = "karpenter.sh/discovery"
CLUSTER_TAG = TAG_PROJECT_CLUSTER
ROOT_DEVICE = "/dev/xvda"  # AL2023
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryPullOnly",
                 "AmazonSSMManagedInstanceCore")
# EC2NodeClass spec.tags may not set these (Karpenter sets them itself; the CRD rejects them).
RESTRICTED_TAG_PREFIXES = ("kubernetes.io/cluster", "eks:eks-cluster-name", "karpenter.sh/nodepool",
                           "karpenter.sh/nodeclaim", "karpenter.k8s.aws/ec2nodeclass")

# Metric names Karpenter v1.14 exports (website/content/en/v1.14/reference/metrics.md), for the
# monitoring dashboards and alerts.
KARPENTER_METRICS = (
    "karpenter_nodeclaims_created_total",
    "karpenter_nodeclaims_terminated_total",
    "karpenter_nodeclaims_disrupted_total",
    "karpenter_nodes_allocatable",
    "karpenter_nodes_total_pod_requests",
    "karpenter_nodes_created_total",
    "karpenter_nodes_terminated_total",
    "karpenter_nodepools_usage",
    "karpenter_nodepools_limit",
    "karpenter_nodepools_allowed_disruptions",
    "karpenter_pods_state",
    "karpenter_pods_startup_duration_seconds",
    "karpenter_scheduler_queue_depth",
    "karpenter_scheduler_scheduling_duration_seconds",
    "karpenter_voluntary_disruption_decisions_total",
    "karpenter_interruption_received_messages_total",
    "karpenter_interruption_deleted_messages_total",
    "karpenter_cloudprovider_errors_total",
    "karpenter_cloudprovider_instance_launch_failures_total",
    "karpenter_cluster_state_synced",
    "karpenter_cluster_state_node_count",
)

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


def std_labels(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "eks-ml-platform",
            "app.kubernetes.io/managed-by": "pulumi"}


def dumps(doc: Any) -> str:
    return json.dumps(doc, sort_keys=True)


# ------------------------------------------------------------------------------------- IAM
def controller_policies(*, cluster: str, region: str, partition: str, account_id: str, node_role_arn: str,
                        queue_arn: str) -> dict[str, dict[str, Any]]:
    """The controller's IAM policy documents, keyed by a short name (upstream's six policies)."""
    arn = f"arn:{partition}"
    owned = {f"aws:RequestTag/kubernetes.io/cluster/{cluster}": "owned", "aws:RequestTag/eks:eks-cluster-name": cluster}
    ec2 = f"{arn}:ec2:{region}"
    created = [f"{ec2}:*:fleet/*", f"{ec2}:*:instance/*", f"{ec2}:*:volume/*", f"{ec2}:*:network-interface/*",
               f"{ec2}:*:launch-template/*", f"{ec2}:*:spot-instances-request/*"]
    profiles = f"{arn}:iam::{account_id}:instance-profile/*"
    cluster_arn = f"{arn}:eks:{region}:{account_id}:cluster/{cluster}"
    res_owned = {f"aws:ResourceTag/kubernetes.io/cluster/{cluster}": "owned"}
    return {
        "node-lifecycle": {"Version": "2012-10-17", "Statement": [
            {"Sid": "AllowScopedEC2InstanceAccessActions", "Effect": "Allow",
             "Resource": [f"{ec2}::image/*", f"{ec2}::snapshot/*", f"{ec2}:*:security-group/*", f"{ec2}:*:subnet/*",
                          f"{ec2}:*:capacity-reservation/*", f"{ec2}:*:placement-group/*"],
             "Action": ["ec2:RunInstances", "ec2:CreateFleet"]},
            {"Sid": "AllowScopedEC2LaunchTemplateAccessActions", "Effect": "Allow",
             "Resource": f"{ec2}:*:launch-template/*", "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
             "Condition": {"StringEquals": res_owned, "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"}}},
            {"Sid": "AllowScopedEC2InstanceActionsWithTags", "Effect": "Allow", "Resource": created,
             "Action": ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
             "Condition": {"StringEquals": owned, "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"}}},
            {"Sid": "AllowScopedResourceCreationTagging", "Effect": "Allow", "Resource": created,
             "Action": "ec2:CreateTags",
             "Condition": {"StringEquals": {**owned, "ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"]},
                           "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"}}},
            {"Sid": "AllowScopedResourceTagging", "Effect": "Allow", "Resource": f"{ec2}:*:instance/*",
             "Action": "ec2:CreateTags",
             "Condition": {"StringEquals": res_owned, "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
                           "StringEqualsIfExists": {"aws:RequestTag/eks:eks-cluster-name": cluster},
                           "ForAllValues:StringEquals": {"aws:TagKeys": ["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"]}}},
            {"Sid": "AllowScopedDeletion", "Effect": "Allow",
             "Resource": [f"{ec2}:*:instance/*", f"{ec2}:*:launch-template/*"],
             "Action": ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
             "Condition": {"StringEquals": res_owned, "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"}}},
        ]},
        "iam-integration": {"Version": "2012-10-17", "Statement": [
            {"Sid": "AllowPassingInstanceRole", "Effect": "Allow", "Resource": node_role_arn, "Action": "iam:PassRole",
             "Condition": {"StringEquals": {"iam:PassedToService": ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"]}}},
            {"Sid": "AllowScopedInstanceProfileCreationActions", "Effect": "Allow", "Resource": profiles,
             "Action": ["iam:CreateInstanceProfile"],
             "Condition": {"StringEquals": {**owned, "aws:RequestTag/topology.kubernetes.io/region": region},
                           "StringLike": {"aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"}}},
            {"Sid": "AllowScopedInstanceProfileTagActions", "Effect": "Allow", "Resource": profiles,
             "Action": ["iam:TagInstanceProfile"],
             "Condition": {"StringEquals": {**res_owned, "aws:ResourceTag/topology.kubernetes.io/region": region,
                                            **owned, "aws:RequestTag/topology.kubernetes.io/region": region},
                           "StringLike": {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*",
                                          "aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"}}},
            {"Sid": "AllowScopedInstanceProfileActions", "Effect": "Allow", "Resource": profiles,
             "Action": ["iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile", "iam:DeleteInstanceProfile"],
             "Condition": {"StringEquals": {**res_owned, "aws:ResourceTag/topology.kubernetes.io/region": region},
                           "StringLike": {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*"}}},
        ]},
        "eks-integration": {"Version": "2012-10-17", "Statement": [
            {"Sid": "AllowAPIServerEndpointDiscovery", "Effect": "Allow", "Resource": cluster_arn,
             "Action": "eks:DescribeCluster"},
        ]},
        "interruption": {"Version": "2012-10-17", "Statement": [
            {"Sid": "AllowInterruptionQueueActions", "Effect": "Allow", "Resource": queue_arn,
             "Action": ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"]},
        ]},
        "zonal-shift": {"Version": "2012-10-17", "Statement": [
            {"Sid": "AllowZonalShiftStatusReadOnly", "Effect": "Allow", "Resource": "*",
             "Action": ["arc-zonal-shift:GetManagedResource"],
             "Condition": {"StringEquals": {"arc-zonal-shift:ResourceIdentifier": cluster_arn}}},
        ]},
        "resource-discovery": {"Version": "2012-10-17", "Statement": [
            {"Sid": "AllowRegionalReadActions", "Effect": "Allow", "Resource": "*",
             "Action": ["ec2:DescribeCapacityReservations", "ec2:DescribeImages", "ec2:DescribeInstances",
                        "ec2:DescribeInstanceStatus", "ec2:DescribeInstanceTypeOfferings", "ec2:DescribeInstanceTypes",
                        "ec2:DescribeLaunchTemplates", "ec2:DescribePlacementGroups", "ec2:DescribeSecurityGroups",
                        "ec2:DescribeSpotPriceHistory", "ec2:DescribeSubnets"],
             "Condition": {"StringEquals": {"aws:RequestedRegion": region}}},
            {"Sid": "AllowSSMReadActions", "Effect": "Allow", "Resource": f"{arn}:ssm:{region}::parameter/aws/service/*",
             "Action": "ssm:GetParameter"},
            {"Sid": "AllowPricingReadActions", "Effect": "Allow", "Resource": "*", "Action": "pricing:GetProducts"},
            # Without it the EC2NodeClass finalizer cannot find its instance profile and hangs on destroy.
            {"Sid": "AllowUnscopedInstanceProfileListAction", "Effect": "Allow", "Resource": "*",
             "Action": "iam:ListInstanceProfiles"},
            {"Sid": "AllowInstanceProfileReadActions", "Effect": "Allow", "Resource": profiles,
             "Action": "iam:GetInstanceProfile"},
        ]},
    }


def queue_policy(queue_arn: str) -> dict[str, Any]:
    """EventBridge (and SQS) may send; nobody may use the queue without TLS."""
    return {"Version": "2012-10-17", "Id": "EC2InterruptionPolicy", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]},
         "Action": "sqs:SendMessage", "Resource": queue_arn},
        {"Sid": "DenyHTTP", "Effect": "Deny", "Principal": "*", "Action": "sqs:*", "Resource": queue_arn,
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    ]}


# ------------------------------------------------------------------------------------- Helm
def karpenter_values(cfg: PlatformConfig, *, queue_name: Any, cluster_endpoint: Any = None) -> dict[str, Any]:
    """Values for the karpenter chart (v1.14.1 values.yaml keys)."""
    settings: dict[str, Any] = {"clusterName": cfg.cluster_name, "interruptionQueue": queue_name}
    if cluster_endpoint is not None:
        settings["clusterEndpoint"] = cluster_endpoint
    return {
        "settings": settings,
        "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},  # the Pod Identity association names it
        "replicas": 2,
        "nodeSelector": {"kubernetes.io/os": "linux", **SYSTEM_NODE_SELECTOR},
        "tolerations": [dict(SYSTEM_TOLERATION)],
        "controller": {"resources": {"requests": {"cpu": "250m", "memory": "512Mi"},
                                     "limits": {"cpu": "1", "memory": "1Gi"}}},
        "logLevel": "info",
        "serviceMonitor": {"enabled": False},  # created by this component once monitoring exists
    }


# --------------------------------------------------------------------------------- node specs
def pool_kind(pool: NodePoolConfig) -> Optional[str]:
    """``nvidia``, ``neuron`` or None: which device stack the pool's nodes carry."""
    if pool.accelerator == "nvidia":
        return NVIDIA
    if pool.neuron:
        return NEURON
    return None


def pool_labels(pool: NodePoolConfig) -> dict[str, str]:
    labels = dict(pool.labels)
    labels[POOL_LABEL] = pool.name
    kind = pool_kind(pool)
    if kind:
        labels[ACCELERATOR_LABEL] = kind
    return labels


def pool_taints(pool: NodePoolConfig) -> list[dict[str, str]]:
    kind = pool_kind(pool)
    if kind == NVIDIA:
        return [dict(GPU_TAINT)]
    if kind == NEURON:
        return [dict(NEURON_TAINT)]
    return []


def pool_limits(pool: NodePoolConfig) -> dict[str, Any]:
    limits: dict[str, Any] = {"cpu": str(pool.limits.cpu), "memory": pool.limits.memory}
    if pool.limits.gpu is not None:
        limits[GPU_RESOURCE] = str(pool.limits.gpu)
    if pool.limits.neuron is not None:
        limits[NEURON_RESOURCE] = str(pool.limits.neuron)
    return limits


def pool_requirements(pool: NodePoolConfig) -> list[dict[str, Any]]:
    reqs = [
        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
        {"key": "kubernetes.io/arch", "operator": "In", "values": list(pool.architectures)},
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": list(pool.capacity_types)},
        {"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": list(pool.instance_families)},
    ]
    if pool.instance_sizes:
        reqs.append({"key": "karpenter.k8s.aws/instance-size", "operator": "In", "values": list(pool.instance_sizes)})
    return reqs


def node_pool_spec(pool: NodePoolConfig) -> dict[str, Any]:
    """``spec`` of the karpenter.sh/v1 NodePool for one configured pool."""
    budgets = []
    for b in pool.budgets:
        budget: dict[str, Any] = {"nodes": b.nodes}
        if b.reasons:
            budget["reasons"] = list(b.reasons)
        if b.schedule is not None:
            budget.update(schedule=b.schedule, duration=b.duration)
        budgets.append(budget)
    template_spec: dict[str, Any] = {
        "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": pool.name},
        "requirements": pool_requirements(pool),
        "expireAfter": pool.expire_after,
    }
    taints = pool_taints(pool)
    if taints:
        template_spec["taints"] = taints
    spec: dict[str, Any] = {
        "template": {"metadata": {"labels": pool_labels(pool)}, "spec": template_spec},
        "limits": pool_limits(pool),
        "disruption": {"consolidationPolicy": pool.consolidation_policy, "consolidateAfter": pool.consolidate_after,
                       "budgets": budgets},
    }
    if pool.weight is not None:
        spec["weight"] = pool.weight
    return spec


def node_class_tags(cfg: PlatformConfig, pool: NodePoolConfig) -> dict[str, str]:
    """Tags on everything Karpenter launches for the pool, besides Karpenter's own."""
    tags = {k: v for k, v in cfg.common_tags.items() if not k.startswith(RESTRICTED_TAG_PREFIXES)}
    tags[CLUSTER_TAG] = cfg.cluster_name
    tags["eks-ml-platform/pool"] = pool.name
    return tags


def security_group_terms(cluster: str) -> list[dict[str, Any]]:
    """Security groups for Karpenter nodes (ORed terms).

    - anything tagged ``karpenter.sh/discovery: <cluster>`` (the upstream convention; tag an extra
      group with it to add it to every node);
    - the cluster security group EKS itself creates (tagged ``aws:eks:cluster-name`` by EKS, and
      re-tagged on every cluster update): the one the control plane and the managed system node
      group use, so Karpenter nodes reach both exactly as the system nodes do.
    """
    return [{"tags": {DISCOVERY_TAG: cluster}}, {"tags": {"aws:eks:cluster-name": cluster}}]


def node_class_spec(cfg: PlatformConfig, pool: NodePoolConfig, *, role: Any) -> dict[str, Any]:
    """``spec`` of the karpenter.k8s.aws/v1 EC2NodeClass for one pool."""
    return {
        "role": role,
        "amiSelectorTerms": [{"alias": pool.ami_alias or AMI_ALIAS}],
        "subnetSelectorTerms": [{"tags": {DISCOVERY_TAG: cfg.cluster_name}}],
        "securityGroupSelectorTerms": security_group_terms(cfg.cluster_name),
        "metadataOptions": {"httpEndpoint": "enabled", "httpProtocolIPv6": "disabled",
                            "httpPutResponseHopLimit": pool.imds_hop_limit, "httpTokens": "required"},
        "blockDeviceMappings": [{
            "deviceName": ROOT_DEVICE, "rootVolume": True,
            "ebs": {"volumeSize": f"{pool.root_volume}Gi", "volumeType": "gp3", "encrypted": True,
                    "deleteOnTermination": True},
        }],
        "tags": node_class_tags(cfg, pool),
    }


def service_monitor(*, name: str, namespace: str, selector: dict[str, str], port: str, interval: str = "30s",
                    labels: Optional[dict[str, str]] = None) -> dict[str, Any]:
    """A monitoring.coreos.com/v1 ServiceMonitor (metadata + spec) for one metrics port."""
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": labels or std_labels(name)},
        "spec": {"selector": {"matchLabels": dict(selector)}, "namespaceSelector": {"matchNames": [namespace]},
                 "endpoints": [{"port": port, "path": "/metrics", "interval": interval}]},
    }


def karpenter_service_monitor() -> dict[str, Any]:
    return service_monitor(name="karpenter", namespace=NAMESPACE, port=METRICS_PORT_NAME,
                           selector={"app.kubernetes.io/name": "karpenter", "app.kubernetes.io/instance": RELEASE_NAME})


# ---------------------------------------------------------------------------------- component
@dataclass(frozen=True)
class KarpenterArgs:
    """Inputs of the Karpenter component."""

    ctx: PlatformContext
    """Config, cluster outputs, providers and the ``cluster_ready`` gate."""
    monitoring_release: Optional[pulumi.Resource] = None
    """The kube-prometheus-stack release (installs the ServiceMonitor CRD); None: no ServiceMonitor."""


class Karpenter(pulumi.ComponentResource):
    """See the module docstring. Outputs: ``queue_name``, ``queue_arn``, ``controller_role_arn``,
    ``node_role_name``, ``node_role_arn``, ``node_pools`` (names), ``release`` (the controller release)."""

    def __init__(self, name: str, args: KarpenterArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("eks-ml-platform:karpenter:Karpenter", name, None, opts)
        ctx, cfg = args.ctx, args.ctx.cfg
        cluster = cfg.cluster_name
        child = pulumi.ResourceOptions(parent=self)
        gated = pulumi.ResourceOptions(parent=self, depends_on=list(ctx.cluster_ready))
        invoke = pulumi.InvokeOptions(parent=self)
        partition = aws.get_partition_output(opts=invoke).partition
        account_id = aws.get_caller_identity_output(opts=invoke).account_id

        # ---- interruption queue and its EventBridge rules
        self.queue = aws.sqs.Queue(
            f"{name}-interruption", name=interruption_queue_name(cluster), message_retention_seconds=300,
            sqs_managed_sse_enabled=True, opts=child,
        )
        aws.sqs.QueuePolicy(f"{name}-interruption", queue_url=self.queue.url,
                            policy=self.queue.arn.apply(lambda a: dumps(queue_policy(a))), opts=child)
        self.rules: dict[str, aws.cloudwatch.EventRule] = {}
        for suffix, pattern in INTERRUPTION_EVENTS.items():
            rule = aws.cloudwatch.EventRule(
                f"{name}-{suffix}", description=f"Karpenter interruption handling for {cluster}: {suffix}",
                event_pattern=dumps(pattern), opts=child,
            )
            aws.cloudwatch.EventTarget(f"{name}-{suffix}", rule=rule.name, arn=self.queue.arn,
                                       target_id="KarpenterInterruptionQueueTarget", opts=child)
            self.rules[suffix] = rule

        # ---- node role, its access entry
        self.node_role = aws.iam.Role(
            f"{name}-node", assume_role_policy=assume_role_policy("ec2.amazonaws.com"),
            description=f"Nodes Karpenter launches for {cluster}", opts=child,
        )
        for policy in NODE_POLICIES:
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{policy}", role=self.node_role.name,
                policy_arn=partition.apply(lambda p, pol=policy: f"arn:{p}:iam::aws:policy/{pol}"), opts=child,
            )
        self.node_access = aws.eks.AccessEntry(
            f"{name}-node", cluster_name=cluster, principal_arn=self.node_role.arn, type="EC2_LINUX", opts=gated,
        )

        # ---- controller role (EKS Pod Identity) and its scoped policies
        self.controller_role = aws.iam.Role(
            f"{name}-controller", assume_role_policy=pod_identity_trust(),
            description=f"Karpenter controller of {cluster} (EKS Pod Identity, {NAMESPACE}/{SERVICE_ACCOUNT})", opts=child,
        )
        docs = pulumi.Output.all(partition, account_id, self.node_role.arn, self.queue.arn).apply(
            lambda a: controller_policies(cluster=cluster, region=cfg.region, partition=a[0], account_id=a[1],
                                          node_role_arn=a[2], queue_arn=a[3]))
        attachments = []
        for key in ("node-lifecycle", "iam-integration", "eks-integration", "interruption", "zonal-shift",
                    "resource-discovery"):
            policy = aws.iam.Policy(
                f"{name}-controller-{key}", description=f"Karpenter controller of {cluster}: {key}",
                policy=docs.apply(lambda d, k=key: dumps(d[k])), opts=child,
            )
            attachments.append(aws.iam.RolePolicyAttachment(
                f"{name}-controller-{key}", role=self.controller_role.name, policy_arn=policy.arn, opts=child))
        self.pod_identity = aws.eks.PodIdentityAssociation(
            f"{name}-controller", cluster_name=cluster, namespace=NAMESPACE, service_account=SERVICE_ACCOUNT,
            role_arn=self.controller_role.arn, opts=gated,
        )

        # ---- Helm: CRDs first (their own release owns them), then the controller
        version = chart_version("karpenter", cfg.addons.karpenter.version)
        self.crd_release = k8s.helm.v3.Release(
            f"{name}-crd", name=CRD_RELEASE_NAME, chart=CHARTS["karpenter_crd"].chart, version=version,
            namespace=NAMESPACE, create_namespace=False, skip_await=False, atomic=True, cleanup_on_fail=True,
            timeout=300, opts=gated,
        )
        self.release = k8s.helm.v3.Release(
            f"{name}-release", name=RELEASE_NAME, chart=CHARTS["karpenter"].chart, version=version,
            namespace=NAMESPACE, create_namespace=False, skip_crds=True, skip_await=False, atomic=True,
            cleanup_on_fail=True, timeout=600,
            values=karpenter_values(cfg, queue_name=self.queue.name, cluster_endpoint=ctx.cluster.endpoint),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[
                *ctx.cluster_ready, self.crd_release, self.pod_identity, self.queue, *attachments]),
        )

        # ---- EC2NodeClass and NodePool per pool
        self.node_classes: dict[str, k8s.apiextensions.CustomResource] = {}
        self.node_pools: dict[str, k8s.apiextensions.CustomResource] = {}
        for pool in cfg.pools:
            node_class = k8s.apiextensions.CustomResource(
                f"{name}-nodeclass-{pool.name}", api_version="karpenter.k8s.aws/v1", kind="EC2NodeClass",
                metadata={"name": pool.name, "labels": std_labels("karpenter")},
                spec=node_class_spec(cfg, pool, role=self.node_role.name),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release, self.crd_release]),
            )
            self.node_classes[pool.name] = node_class
            self.node_pools[pool.name] = k8s.apiextensions.CustomResource(
                f"{name}-nodepool-{pool.name}", api_version="karpenter.sh/v1", kind="NodePool",
                metadata={"name": pool.name, "labels": std_labels("karpenter")},
                spec=node_pool_spec(pool),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[
                    self.release, self.crd_release, node_class, self.node_access]),
            )

        # ---- metrics, once the monitoring stack (and its ServiceMonitor CRD) exists
        self.service_monitor = None
        if args.monitoring_release is not None:
            sm = karpenter_service_monitor()
            self.service_monitor = k8s.apiextensions.CustomResource(
                f"{name}-servicemonitor", api_version="monitoring.coreos.com/v1", kind="ServiceMonitor",
                metadata=sm["metadata"], spec=sm["spec"],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[args.monitoring_release, self.release]),
            )

        self.queue_name = self.queue.name
        self.queue_arn = self.queue.arn
        self.register_outputs({
            "queue_name": self.queue.name, "queue_arn": self.queue.arn,
            "controller_role_arn": self.controller_role.arn, "node_role_name": self.node_role.name,
            "node_role_arn": self.node_role.arn, "node_pools": sorted(self.node_pools),
            "release": self.release.status,
        })
