"""The AWS Load Balancer Controller: the ALBs and NLBs of the serving exposure.

``workloads/sentiment`` exposes the API through an Ingress of class ``alb`` (``serving.exposure:
ingress``) or a Service of type LoadBalancer annotated ``aws-load-balancer-type: external`` with
``ip`` targets (``serving.exposure: loadBalancer``). Both only get a load balancer from this
controller. What the component (``LoadBalancerController``) creates:

- **IAM**: a role assumed through **EKS Pod Identity** (``pods.eks.amazonaws.com``,
  ``sts:AssumeRole`` + ``sts:TagSession``) by ``kube-system/aws-load-balancer-controller``, with
  upstream's IAM policy for exactly the pinned app version: ``docs/install/iam_policy*.json`` of
  kubernetes-sigs/aws-load-balancer-controller at the app's tag, obtained through
  ``infra/upstream.py`` (pinned URL + sha256; never committed here). The file follows the region's
  partition (``aws``, ``aws-us-gov``, ``aws-cn``).
- **Helm**: the ``aws-load-balancer-controller`` chart from https://aws.github.io/eks-charts
  (``infra/versions.py``), after ``cluster_ready``, the Pod Identity association and the policy
  attachment (the pods get their credentials when they start). Values:
  - ``clusterName``, ``region`` and ``vpcId`` (so the controller never needs the node's IMDS);
  - two replicas on the system node group (``CriticalAddonsOnly`` toleration, ``eks-ml-platform/
    node-role: system``), requests and limits, a PodDisruptionBudget of ``maxUnavailable: 1``;
  - ``enableServiceMutatorWebhook: false``: the controller does not make itself the default for
    every new Service of type LoadBalancer; it handles the Services that ask for it
    (``aws-load-balancer-type: external``), the rest stay with the in-tree cloud provider;
  - ``defaultTags``: this stack's tags, ``eks-ml-platform/cluster: <cluster>`` among them, on every
    ALB, NLB, target group and security group the controller creates. The controller adds
    ``elbv2.k8s.aws/cluster: <cluster>`` itself on all of them (its tracking tag, which
    ``--default-tags`` may not set); ``infra.teardown``'s sweep finds leftovers by that tag;
  - ``ingressClass``: ``serving.ingress.className`` (default ``alb``); the chart creates that
    IngressClass (and its IngressClassParams) for the serving Ingress;
  - ``keepTLSSecret: true``: a chart upgrade reuses the webhook's TLS Secret instead of issuing a
    new self-signed certificate (no window where the webhook's caBundle and the pods' certificate
    disagree, which would fail every Ingress write: its validating webhook is ``Fail``).
- a metrics **Service** (port ``metrics-server`` 8080; the chart only creates one together with its
  own ServiceMonitor) and a **ServiceMonitor**, only when the monitoring add-on exists (after its
  release, which installs the CRD).

Ordering (``infra/platform.py``): the serving component depends on this one, so its Ingress and
Service are created once the controller (and its webhooks) run, and on ``pulumi destroy`` they are
deleted first, while the controller still runs to delete the ALB/NLB and lift its finalizers.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Optional

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra import upstream
from infra.config import PlatformConfig
from infra.conventions import (
    SYSTEM_NODE_SELECTOR,
    SYSTEM_TOLERATION,
    TAG_LBC_CLUSTER,
    TAG_PROJECT_CLUSTER,
    pod_identity_trust,
    std_labels,
)
from infra.versions import CHARTS, chart_version

if TYPE_CHECKING:  # pragma: no cover - typing only (infra.platform imports this module at run time)
    from infra.context import PlatformContext

CHART_KEY = "load_balancer_controller"
NAMESPACE = CHARTS[CHART_KEY].namespace  # kube-system
RELEASE_NAME = "aws-load-balancer-controller"  # contains the chart name, so the chart's fullname is the same
SERVICE_ACCOUNT = "aws-load-balancer-controller"  # the Pod Identity association names it
APP_NAME = "aws-load-balancer-controller"  # the chart's app.kubernetes.io/name (its .Chart.Name)
# The pods' selector labels (templates/_helpers.tpl "selectorLabels").
SELECTOR = {"app.kubernetes.io/name": APP_NAME, "app.kubernetes.io/instance": RELEASE_NAME}
METRICS_PORT_NAME = "metrics-server"  # templates/deployment.yaml containerPort (metricsBindAddr, default :8080)
METRICS_PORT = 8080
METRICS_SERVICE = f"{RELEASE_NAME}-metrics"
METRICS_COMPONENT = "metrics"  # app.kubernetes.io/component of the metrics Service (the webhook one says webhook)
# upstream artifact (infra/upstream.py) of the IAM policy, per partition
POLICY_ARTIFACTS = {p: f"aws-load-balancer-controller/iam-policy/{p}" for p in ("aws", "aws-us-gov", "aws-cn")}
# Tag keys the controller sets itself and refuses in --default-tags (pkg/config/controller_config.go
# trackingTagKeys at v3.5.0): passing one would crash the controller at start-up.
TRACKING_TAG_KEYS = frozenset({
    TAG_LBC_CLUSTER, "elbv2.k8s.aws/resource", "ingress.k8s.aws/stack", "ingress.k8s.aws/resource",
    "service.k8s.aws/stack", "service.k8s.aws/resource", "gateway.k8s.aws.nlb/resource",
    "gateway.k8s.aws.alb/resource", "gateway.k8s.aws.nlb/stack", "gateway.k8s.aws.alb/stack",
})


def dumps(doc: Any) -> str:
    return json.dumps(doc, sort_keys=True)


@dataclass(frozen=True)
class LoadBalancerSettings:
    """What the controller takes from the stack config (:meth:`from_config`)."""

    cluster_name: str
    region: str
    common_tags: Mapping[str, str]
    ingress_class: str = "alb"
    version: Optional[str] = None  # ``addons.loadBalancerController.version`` (None: the pinned chart)

    @classmethod
    def from_config(cls, cfg: PlatformConfig) -> "LoadBalancerSettings":
        return cls(cluster_name=cfg.cluster_name, region=cfg.region, common_tags=dict(cfg.common_tags),
                   ingress_class=cfg.serving.ingress.class_name,
                   version=cfg.addons.load_balancer_controller.version)


# ------------------------------------------------------------------------------------- IAM
def partition_for_region(region: str) -> str:
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    if region.startswith("cn-"):
        return "aws-cn"
    return "aws"


def iam_policy_artifact(region: str) -> str:
    """The pinned upstream policy file (an ``infra.upstream`` key) for the region's partition."""
    return POLICY_ARTIFACTS[partition_for_region(region)]


def iam_policy_document(region: str) -> dict[str, Any]:
    """Upstream's IAM policy for the pinned app version (pinned URL + sha256, see infra/upstream.py)."""
    return json.loads(upstream.read_text(iam_policy_artifact(region)))


# ------------------------------------------------------------------------------------- Helm
def default_tags(s: LoadBalancerSettings) -> dict[str, str]:
    """AWS tags on everything the controller creates (besides its own tracking tags).

    This stack's tags, minus ``managed-by: pulumi`` (Pulumi does not manage these load balancers) and
    the controller's tracking keys. The chart joins them as ``k=v,k=v`` into one flag, so a key or
    value holding ``,`` or ``=`` is left out rather than corrupting the flag.
    """
    tags = {k: v for k, v in s.common_tags.items() if k != "managed-by"}
    tags[TAG_PROJECT_CLUSTER] = s.cluster_name
    return {k: v for k, v in sorted(tags.items())
            if k not in TRACKING_TAG_KEYS and not k.lower().startswith("aws:")
            and not any(ch in f"{k}{v}" for ch in ",=")}


def controller_values(s: LoadBalancerSettings, *, vpc_id: Any) -> dict[str, Any]:
    """Values for the aws-load-balancer-controller chart (3.5.0 values.yaml keys)."""
    return {
        "clusterName": s.cluster_name,
        "region": s.region,
        "vpcId": vpc_id,
        "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
        "replicaCount": 2,
        "nodeSelector": {"kubernetes.io/os": "linux", **SYSTEM_NODE_SELECTOR},
        "tolerations": [dict(SYSTEM_TOLERATION)],
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"},
                      "limits": {"cpu": "500m", "memory": "512Mi"}},
        "podDisruptionBudget": {"maxUnavailable": 1},
        "enableServiceMutatorWebhook": False,
        "defaultTags": default_tags(s),
        "ingressClass": s.ingress_class,
        "createIngressClassResource": True,
        "keepTLSSecret": True,
        "serviceMonitor": {"enabled": False},  # the metrics Service + ServiceMonitor come from this component
    }


# ------------------------------------------------------------------------------------- metrics
def metrics_service() -> dict[str, Any]:
    """A ClusterIP Service in front of the controller pods' metrics port (as the chart's own, which it
    only creates together with its ServiceMonitor)."""
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": METRICS_SERVICE, "namespace": NAMESPACE,
                     "labels": {**std_labels(APP_NAME), "app.kubernetes.io/component": METRICS_COMPONENT}},
        "spec": {"type": "ClusterIP", "selector": dict(SELECTOR),
                 "ports": [{"name": METRICS_PORT_NAME, "port": METRICS_PORT, "targetPort": METRICS_PORT_NAME,
                            "protocol": "TCP"}]},
    }


def service_monitor() -> dict[str, Any]:
    """A monitoring.coreos.com/v1 ServiceMonitor (metadata + spec) for the metrics Service."""
    return {
        "metadata": {"name": RELEASE_NAME, "namespace": NAMESPACE, "labels": std_labels(APP_NAME)},
        "spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": APP_NAME,
                                              "app.kubernetes.io/component": METRICS_COMPONENT}},
                 "namespaceSelector": {"matchNames": [NAMESPACE]},
                 "endpoints": [{"port": METRICS_PORT_NAME, "path": "/metrics", "interval": "30s"}]},
    }


# ---------------------------------------------------------------------------------- component
@dataclass(frozen=True)
class LoadBalancerControllerArgs:
    """Inputs of the LoadBalancerController component."""

    settings: LoadBalancerSettings
    ctx: PlatformContext
    """Cluster outputs, ``vpc_id``, providers and the ``cluster_ready`` gate."""
    monitoring_release: Optional[pulumi.Resource] = None
    """The kube-prometheus-stack release (installs the ServiceMonitor CRD); None: no metrics Service/ServiceMonitor."""


class LoadBalancerController(pulumi.ComponentResource):
    """See the module docstring. Outputs: ``role_arn``, ``policy_arn``, ``ingress_class``, ``release``
    (the Helm release; the serving exposure depends on it), ``service_monitor`` (or None)."""

    def __init__(self, name: str, args: LoadBalancerControllerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("eks-ml-platform:load_balancer:LoadBalancerController", name, None, opts)
        ctx, st = args.ctx, args.settings
        cluster = st.cluster_name
        child = pulumi.ResourceOptions(parent=self)
        gated = pulumi.ResourceOptions(parent=self, depends_on=list(ctx.cluster_ready))

        # ---- IAM: Pod Identity role with upstream's policy for the pinned version
        self.role = aws.iam.Role(
            f"{name}-controller", assume_role_policy=pod_identity_trust(),
            description=f"AWS Load Balancer Controller of {cluster} (EKS Pod Identity, {NAMESPACE}/{SERVICE_ACCOUNT})",
            opts=child,
        )
        self.policy = aws.iam.Policy(
            # (a description change replaces an IAM policy, so it names no version)
            f"{name}-controller", description=f"AWS Load Balancer Controller of {cluster} (upstream IAM policy)",
            policy=dumps(iam_policy_document(st.region)), opts=child,
        )
        self.attachment = aws.iam.RolePolicyAttachment(
            f"{name}-controller", role=self.role.name, policy_arn=self.policy.arn, opts=child)
        self.pod_identity = aws.eks.PodIdentityAssociation(
            f"{name}-controller", cluster_name=cluster, namespace=NAMESPACE, service_account=SERVICE_ACCOUNT,
            role_arn=self.role.arn, opts=gated,
        )

        # ---- Helm
        chart = CHARTS[CHART_KEY]
        version = chart_version(CHART_KEY, st.version)
        self.release = k8s.helm.v3.Release(
            f"{name}-release", name=RELEASE_NAME, chart=chart.chart, version=version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repo),
            namespace=NAMESPACE, create_namespace=False, skip_await=False, atomic=True, cleanup_on_fail=True,
            timeout=600, values=controller_values(st, vpc_id=ctx.vpc_id),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[
                *ctx.cluster_ready, self.pod_identity, self.attachment]),
        )

        # ---- metrics, once the monitoring stack (and its ServiceMonitor CRD) exists
        self.metrics_service: Optional[k8s.core.v1.Service] = None
        self.service_monitor: Optional[k8s.apiextensions.CustomResource] = None
        if args.monitoring_release is not None:
            svc = metrics_service()
            self.metrics_service = k8s.core.v1.Service(
                f"{name}-metrics", metadata=svc["metadata"], spec=svc["spec"],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[*ctx.cluster_ready, self.release]),
            )
            sm = service_monitor()
            self.service_monitor = k8s.apiextensions.CustomResource(
                f"{name}-servicemonitor", api_version="monitoring.coreos.com/v1", kind="ServiceMonitor",
                metadata=sm["metadata"], spec=sm["spec"],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[
                    args.monitoring_release, self.release, self.metrics_service]),
            )

        self.role_arn = self.role.arn
        self.policy_arn = self.policy.arn
        self.ingress_class = st.ingress_class
        self.register_outputs({
            "role_arn": self.role.arn, "policy_arn": self.policy.arn, "ingress_class": self.ingress_class,
            "chart_version": version, "release": self.release.status,
            "service_monitor": RELEASE_NAME if self.service_monitor is not None else None,
        })
