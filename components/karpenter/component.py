"""The ``Karpenter`` ComponentResource: it only wires the pure builders of this package into resources.

Each private method creates one group of resources (interruption handling, node role, controller
role, Helm releases, pools, metrics) in the dependency order the package docstring lists; names,
parents and dependencies are those of the single-module component this replaced, so no URN moved.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.karpenter.iam import (
    INTERRUPTION_EVENTS,
    NODE_POLICIES,
    controller_policies,
    dumps,
    node_policy_arn,
    queue_policy,
)
from components.karpenter.node_pools import node_class_spec, node_pool_spec
from components.karpenter.values import (
    CRD_RELEASE_NAME,
    NAMESPACE,
    RELEASE_NAME,
    SERVICE_ACCOUNT,
    karpenter_service_monitor,
    karpenter_values,
    std_labels,
)
from components.karpenter.settings import KarpenterSettings
from infra.conventions import (
    assume_role_policy,
    interruption_queue_name,
    pod_identity_trust,
)
from infra.versions import CHARTS, chart_version

if TYPE_CHECKING:  # pragma: no cover - typing only (infra.platform imports this module at run time)
    from infra.context import PlatformContext

TYPE = "eks-ml-platform:karpenter:Karpenter"


@dataclass(frozen=True)
class KarpenterArgs:
    """Inputs of the Karpenter component."""

    settings: KarpenterSettings
    ctx: PlatformContext
    """Cluster outputs, providers and the ``cluster_ready`` gate."""
    monitoring_release: Optional[pulumi.Resource] = None
    """The kube-prometheus-stack release (installs the ServiceMonitor CRD); None: no ServiceMonitor."""


class Karpenter(pulumi.ComponentResource):
    """See the ``components.karpenter`` docstring. Outputs: ``queue_name``, ``queue_arn``,
    ``controller_role_arn``, ``node_role_name``, ``node_role_arn``, ``node_pools`` (names), ``release``
    (the controller release)."""

    def __init__(self, name: str, args: KarpenterArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(TYPE, name, None, opts)
        ctx, st = args.ctx, args.settings
        self._prefix = name
        self._child = pulumi.ResourceOptions(parent=self)
        self._gated = pulumi.ResourceOptions(parent=self, depends_on=list(ctx.cluster_ready))
        invoke = pulumi.InvokeOptions(parent=self)
        partition = aws.get_partition_output(opts=invoke).partition
        account_id = aws.get_caller_identity_output(opts=invoke).account_id

        self._interruption_queue(st.cluster_name)
        self._node_role(st.cluster_name, partition)
        attachments = self._controller_role(st, partition, account_id)
        self._helm_releases(ctx, st, attachments)
        self._pools(st)
        self._service_monitor(args.monitoring_release)

        self.queue_name = self.queue.name
        self.queue_arn = self.queue.arn
        self.register_outputs({
            "queue_name": self.queue.name, "queue_arn": self.queue.arn,
            "controller_role_arn": self.controller_role.arn, "node_role_name": self.node_role.name,
            "node_role_arn": self.node_role.arn, "node_pools": sorted(self.node_pools),
            "release": self.release.status,
        })

    def _interruption_queue(self, cluster: str) -> None:
        """The SQS queue (SSE on, 5 min retention, TLS-only policy) and the EventBridge rules feeding it."""
        name, child = self._prefix, self._child
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

    def _node_role(self, cluster: str, partition: pulumi.Output[str]) -> None:
        """The role of the nodes Karpenter launches, and its EC2_LINUX access entry (no aws-auth)."""
        name, child = self._prefix, self._child
        self.node_role = aws.iam.Role(
            f"{name}-node", assume_role_policy=assume_role_policy("ec2.amazonaws.com"),
            description=f"Nodes Karpenter launches for {cluster}", opts=child,
        )
        for policy in NODE_POLICIES:
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{policy}", role=self.node_role.name,
                policy_arn=partition.apply(lambda p, pol=policy: node_policy_arn(p, pol)), opts=child,
            )
        self.node_access = aws.eks.AccessEntry(
            f"{name}-node", cluster_name=cluster, principal_arn=self.node_role.arn, type="EC2_LINUX",
            opts=self._gated,
        )

    def _controller_role(self, st: KarpenterSettings, partition: pulumi.Output[str],
                         account_id: pulumi.Output[str]) -> list[aws.iam.RolePolicyAttachment]:
        """The controller role (EKS Pod Identity), its scoped policies and the association.

        Returns the policy attachments: the controller release waits for them.
        """
        name, child, cluster = self._prefix, self._child, st.cluster_name
        self.controller_role = aws.iam.Role(
            f"{name}-controller", assume_role_policy=pod_identity_trust(),
            description=f"Karpenter controller of {cluster} (EKS Pod Identity, {NAMESPACE}/{SERVICE_ACCOUNT})",
            opts=child,
        )
        docs = pulumi.Output.all(partition, account_id, self.node_role.arn, self.queue.arn).apply(
            lambda a: controller_policies(cluster=cluster, region=st.region, partition=a[0], account_id=a[1],
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
            role_arn=self.controller_role.arn, opts=self._gated,
        )
        return attachments

    def _helm_releases(self, ctx: PlatformContext, st: KarpenterSettings,
                       attachments: list[aws.iam.RolePolicyAttachment]) -> None:
        """``karpenter-crd`` first (it alone owns the CRDs), then ``karpenter`` with ``skip_crds``."""
        name = self._prefix
        version = chart_version("karpenter", st.version)
        self.crd_release = k8s.helm.v3.Release(
            f"{name}-crd", name=CRD_RELEASE_NAME, chart=CHARTS["karpenter_crd"].chart, version=version,
            namespace=NAMESPACE, create_namespace=False, skip_await=False, atomic=True, cleanup_on_fail=True,
            timeout=300, opts=self._gated,
        )
        self.release = k8s.helm.v3.Release(
            f"{name}-release", name=RELEASE_NAME, chart=CHARTS["karpenter"].chart, version=version,
            namespace=NAMESPACE, create_namespace=False, skip_crds=True, skip_await=False, atomic=True,
            cleanup_on_fail=True, timeout=600,
            values=karpenter_values(st, queue_name=self.queue.name, cluster_endpoint=ctx.cluster.endpoint),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[
                *ctx.cluster_ready, self.crd_release, self.pod_identity, self.queue, *attachments]),
        )

    def _pools(self, st: KarpenterSettings) -> None:
        """An EC2NodeClass and a NodePool per configured pool, after the release (their CRDs)."""
        name = self._prefix
        self.node_classes: dict[str, k8s.apiextensions.CustomResource] = {}
        self.node_pools: dict[str, k8s.apiextensions.CustomResource] = {}
        for pool in st.pools:
            node_class = k8s.apiextensions.CustomResource(
                f"{name}-nodeclass-{pool.name}", api_version="karpenter.k8s.aws/v1", kind="EC2NodeClass",
                metadata={"name": pool.name, "labels": std_labels("karpenter")},
                spec=node_class_spec(st, pool, role=self.node_role.name),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release, self.crd_release]),
            )
            self.node_classes[pool.name] = node_class
            self.node_pools[pool.name] = k8s.apiextensions.CustomResource(
                f"{name}-nodepool-{pool.name}", api_version="karpenter.sh/v1", kind="NodePool",
                metadata={"name": pool.name, "labels": std_labels("karpenter")},
                spec=node_pool_spec(pool, st.node_labels.get(pool.name)),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[
                    self.release, self.crd_release, node_class, self.node_access]),
            )

    def _service_monitor(self, monitoring_release: Optional[pulumi.Resource]) -> None:
        """The controller's ServiceMonitor, once the monitoring stack (and its CRD) exists."""
        self.service_monitor = None
        if monitoring_release is not None:
            sm = karpenter_service_monitor()
            self.service_monitor = k8s.apiextensions.CustomResource(
                f"{self._prefix}-servicemonitor", api_version="monitoring.coreos.com/v1", kind="ServiceMonitor",
                metadata=sm["metadata"], spec=sm["spec"],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[monitoring_release, self.release]),
            )
