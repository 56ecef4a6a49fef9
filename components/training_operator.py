"""The Kubeflow training operator v1 (``kubeflow.org/v1``: PyTorchJob and TFJob), from upstream's release manifests.

The operator has no Helm chart: upstream ships kustomize manifests. The files of
``manifests/base`` and ``manifests/overlays/standalone`` at the pinned tag are obtained through
``infra/upstream.py`` (pinned URL + sha256; nothing upstream is committed here), and the
standalone overlay is built in code exactly as ``kubectl kustomize`` builds it (namespace, image
tag, the webhook's patch and labels, the cert Secret generator). Pins: ``infra/versions.py``
(``MANIFESTS["training_operator"]``, ``IMAGES["training_operator"]``). This module creates every
object as an explicit Pulumi resource:

1. the ``kubeflow`` Namespace (Pod Security ``restricted``) and the CustomResourceDefinitions
   ``pytorchjobs.kubeflow.org`` and ``tfjobs.kubeflow.org``, first;
2. the operator's ServiceAccount, ClusterRole and ClusterRoleBinding, the webhook cert Secret
   (empty: the operator's cert rotator fills it), the Service, the NetworkPolicies (the namespace's
   default deny; the webhook port from the API server, metrics from Prometheus), the
   ValidatingWebhookConfiguration and the Deployment, patched to run on the system node group.

Jobs must ``depends_on`` :attr:`TrainingOperator.ready`, which holds the CRDs, the webhook
configuration and the Deployment. Pulumi waits for the Deployment to be ready, and the operator
reports ready only once its webhook serves. The webhooks use ``failurePolicy: Fail``, so a job
created before then would be rejected.

Kubeflow Trainer v2 (``trainer.kubeflow.org``, TrainJob) has no TFJob, which is why this stays on v1.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any, Optional

import pulumi
import pulumi_kubernetes as k8s

from components.netpol import (DNS_EGRESS, HTTPS_EGRESS, allow, api_server_cidrs, cidr_peers, default_deny,
                               prometheus_peer, tcp)
from components.netpol import network_policy as network_policy_doc
from infra import upstream
from infra.config import PlatformConfig, VpcConfig
from infra.conventions import (
    SYSTEM_NODE_SELECTOR,
    SYSTEM_TOLERATION,
    checkov_annotations,
)
from components.training_operator_rbac import narrow_cluster_role, secrets_role
from infra.jsonpatch import apply_patch
from infra.versions import IMAGES, MANIFESTS

NAME = "training-operator"
RUN_AS = 65532  # distroless "nonroot"; the upstream image (distroless/static) would run as root
KIND_PLURALS = {"PyTorchJob": "pytorchjobs", "TFJob": "tfjobs"}
KIND_SCHEMES = {"PyTorchJob": "pytorchjob", "TFJob": "tfjob"}
ORDER = ("Namespace", "CustomResourceDefinition", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role",
         "RoleBinding", "Secret", "Service", "NetworkPolicy", "ValidatingWebhookConfiguration", "Deployment")


# upstream artifacts (infra/upstream.py) of manifests/base and the standalone overlay, at the pinned tag
BASE_RESOURCES = ("training-operator/rbac/cluster-role-binding", "training-operator/rbac/role",
                  "training-operator/rbac/service-account", "training-operator/service",
                  "training-operator/deployment")
WEBHOOK_MANIFESTS = "training-operator/webhook/manifests"
WEBHOOK_PATCH = "training-operator/webhook/patch"
OVERLAY = "training-operator/overlay/kustomization"
OVERLAY_NAMESPACE = "training-operator/overlay/namespace"
CRD_ARTIFACTS = {"PyTorchJob": "training-operator/crd/pytorchjobs", "TFJob": "training-operator/crd/tfjobs"}
# manifests/base/webhook/kustomization.yaml: `labels: [{includeSelectors: true, pairs: {...}}]`
WEBHOOK_LABELS = {"control-plane": "kubeflow-training-operator"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "ValidatingWebhookConfiguration",
                  "CustomResourceDefinition"}


def _check_version(version: str) -> None:
    pin = MANIFESTS["training_operator"]
    if version != pin.tag:
        raise ValueError(f"training operator {version}: only the pinned release {pin.tag} has its upstream files "
                         f"pinned (infra/upstream.py); pin the new tag's files there to move")


def _docs(key: str) -> list[dict[str, Any]]:
    return [copy.deepcopy(d) for d in upstream.read_yaml_docs(key) if isinstance(d, dict)]


def _overlay_image(obj: dict[str, Any], images: list[dict[str, Any]]) -> None:
    """kustomize ``images:``: a container whose image name matches gets the new tag."""
    for c in obj["spec"]["template"]["spec"].get("containers", []):
        for img in images:
            if c["image"].split(":")[0] == img["name"]:
                c["image"] = f"{img.get('newName', img['name'])}:{img['newTag']}"


def standalone_overlay(version: str) -> list[dict[str, Any]]:
    """Pure: ``kubectl kustomize manifests/overlays/standalone`` at ``version``, without the CRDs.

    What kustomize does there, in code: base resources + the webhook (its JSON patch and its
    ``control-plane`` labels), the overlay's namespace on every namespaced object, on the
    ClusterRoleBinding's ServiceAccount subject and on the webhooks' service (the webhook's
    kustomizeconfig), the overlay's image tag, and its secretGenerator's empty cert Secret."""
    _check_version(version)
    (overlay,) = _docs(OVERLAY)
    namespace = overlay["namespace"]
    objs: list[dict[str, Any]] = []
    for key in BASE_RESOURCES:
        objs += _docs(key)
    (webhook,) = _docs(WEBHOOK_MANIFESTS)
    ops = copy.deepcopy(upstream.read_yaml_docs(WEBHOOK_PATCH)[0])
    apply_patch(webhook, ops)
    webhook["metadata"]["labels"] = {**(webhook["metadata"].get("labels") or {}), **WEBHOOK_LABELS}
    for hook in webhook["webhooks"]:
        hook["clientConfig"]["service"]["namespace"] = namespace
    objs.append(webhook)
    objs += _docs(OVERLAY_NAMESPACE)
    for gen in overlay.get("secretGenerator", []):
        objs.append({"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "data": {},
                     "metadata": {"name": gen["name"], "namespace": namespace}})
    for obj in objs:
        if obj["kind"] not in CLUSTER_SCOPED:
            obj["metadata"]["namespace"] = namespace
        if obj["kind"] == "ClusterRoleBinding":
            for subj in obj.get("subjects", []):
                if subj.get("kind") == "ServiceAccount":
                    subj["namespace"] = namespace
        if obj["kind"] == "Deployment":
            _overlay_image(obj, overlay.get("images", []))
    return objs


def load_upstream(version: str, kinds: tuple[str, ...] = ("PyTorchJob", "TFJob")) -> list[dict[str, Any]]:
    """Pure: the release's objects as upstream ships them (the standalone overlay), with only the CRDs of ``kinds``.

    Returns fresh copies: callers may change them."""
    objs = standalone_overlay(version)
    for kind in kinds:
        if kind not in KIND_PLURALS:
            raise ValueError(f"unknown job kind {kind!r}; the platform installs {', '.join(KIND_PLURALS)}")
        objs += _docs(CRD_ARTIFACTS[kind])
    return objs


@dataclass(frozen=True)
class OperatorSettings:
    """Pure settings of the operator (what the platform changes in upstream's manifests)."""

    version: str = MANIFESTS["training_operator"].tag
    image: str = IMAGES["training_operator"]
    namespace: str = MANIFESTS["training_operator"].namespace
    kinds: tuple[str, ...] = ("PyTorchJob", "TFJob")
    cpu: str = "200m"
    memory: str = "256Mi"
    cpu_limit: str = "1"
    memory_limit: str = "1Gi"  # the operator caches the cluster's pods: memory grows with cluster size
    extra_labels: dict[str, str] = field(default_factory=dict)
    #: Where the API server's webhook calls come from (components/netpol.py ``api_server_cidrs``).
    api_server_cidrs: tuple[str, ...] = (VpcConfig().cidr,)

    @classmethod
    def from_config(cls, cfg: "PlatformConfig") -> "OperatorSettings":
        """The operator for a stack: the pinned release (or ``addons.trainingOperator.version``), PyTorchJob + TFJob,
        webhook calls admitted from the stack's VPC."""
        return cls(version=cfg.addons.training_operator.version or MANIFESTS["training_operator"].tag,
                   api_server_cidrs=tuple(api_server_cidrs(cfg.vpc)))


def _labels(obj: dict[str, Any], extra: dict[str, str]) -> None:
    meta = obj.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), "app.kubernetes.io/name": NAME,
                      "app.kubernetes.io/part-of": "eks-ml-platform", "app.kubernetes.io/managed-by": "pulumi",
                      **extra}


# Checkov findings that do not apply, with the reason, as per-object annotations.
DEPLOYMENT_CHECKOV_SKIPS = {
    "CKV_K8S_38": "the training operator is a controller: it needs its service account token to reconcile jobs",
    "CKV_K8S_43": "upstream publishes the operator by tag; infra/versions.py pins the tag the v1.9.4 release pins",
}
CLUSTERROLE_CHECKOV_SKIPS = {
    "CKV_K8S_155": "the operator's cert rotator writes the CA bundle into its own ValidatingWebhookConfiguration "
                   "(cluster-scoped, so it needs the ClusterRole; the rest is narrowed, components/training_operator_rbac.py)",
}
WEBHOOK_PORT = 9443
METRICS_PORT = 8080
PROBE_PORT = 8081  # health probes: the kubelet, from the node's IP, which the VPC CNI's policy agent admits


def network_policy(namespace: str, webhook_sources: tuple[str, ...]) -> dict[str, Any]:
    """Pure: the operator's pod accepts webhook calls from the API server and Prometheus scrapes, and talks
    only to the API server (HTTPS) and DNS.

    The EKS control plane calls the webhook from its ENIs in the cluster subnets, which no pod selector
    matches: ``webhook_sources`` (the VPC CIDR, components/netpol.py ``api_server_cidrs``), on the
    webhook port only. The health port needs no rule: the kubelet probes from the node's IP, which the
    VPC CNI's policy agent always admits."""
    return network_policy_doc(
        {"name": NAME, "namespace": namespace}, {"matchLabels": dict(WEBHOOK_LABELS)},
        [allow(cidr_peers(webhook_sources), tcp(WEBHOOK_PORT)), allow([prometheus_peer()], tcp(METRICS_PORT))],
        [HTTPS_EGRESS, DNS_EGRESS])


def _patch_deployment(dep: dict[str, Any], s: OperatorSettings) -> None:
    spec = dep["spec"]["template"]["spec"]
    spec["nodeSelector"] = dict(SYSTEM_NODE_SELECTOR)
    spec["tolerations"] = [dict(SYSTEM_TOLERATION)]
    spec["securityContext"] = {"runAsNonRoot": True, "runAsUser": RUN_AS, "runAsGroup": RUN_AS, "fsGroup": RUN_AS,
                               "seccompProfile": {"type": "RuntimeDefault"}}
    spec["volumes"] = [*spec.get("volumes", []), {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}]
    (c,) = [c for c in spec["containers"] if c["name"] == NAME]
    c["image"] = s.image
    c["imagePullPolicy"] = "Always"
    c["args"] = [f"--enable-scheme={KIND_SCHEMES[k]}" for k in s.kinds]
    c["resources"] = {"requests": {"cpu": s.cpu, "memory": s.memory},
                      "limits": {"cpu": s.cpu_limit, "memory": s.memory_limit}}
    c["securityContext"] = {**c.get("securityContext", {}), "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True, "runAsNonRoot": True, "runAsUser": RUN_AS,
                            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}
    c["volumeMounts"] = [*c.get("volumeMounts", []), {"name": "tmp", "mountPath": "/tmp"}]
    dep["metadata"].setdefault("annotations", {}).update(checkov_annotations(DEPLOYMENT_CHECKOV_SKIPS))


def operator_objects(s: OperatorSettings = OperatorSettings()) -> list[dict[str, Any]]:
    """Pure: every object the platform installs for the operator, in apply order, with the platform's changes.

    Upstream's standalone overlay, restricted to ``s.kinds``: their CRDs, ``--enable-scheme`` for
    each (the operator would otherwise wait for the CRDs it lacks), and their webhooks only.
    """
    unknown = [k for k in s.kinds if k not in KIND_PLURALS]
    if unknown or not s.kinds:
        raise ValueError(f"unknown job kind(s) {unknown}; the platform installs {', '.join(KIND_PLURALS)}")
    objs = load_upstream(s.version, s.kinds)
    plurals = {KIND_PLURALS[k] for k in s.kinds}
    out = []
    for obj in objs:
        kind = obj["kind"]
        meta = obj.setdefault("metadata", {})
        if kind == "Namespace":
            meta["name"] = s.namespace
            meta["labels"] = {**(meta.get("labels") or {}), "pod-security.kubernetes.io/enforce": "restricted",
                              "pod-security.kubernetes.io/enforce-version": "latest",
                              "pod-security.kubernetes.io/audit": "restricted",
                              "pod-security.kubernetes.io/warn": "restricted"}
        elif "namespace" in meta:
            meta["namespace"] = s.namespace
        if kind == "ClusterRoleBinding":
            for subj in obj.get("subjects", []):
                subj["namespace"] = s.namespace
        elif kind == "ValidatingWebhookConfiguration":
            obj["webhooks"] = [w for w in obj["webhooks"] if set(w["rules"][0]["resources"]) <= plurals]
            for w in obj["webhooks"]:
                w["clientConfig"]["service"]["namespace"] = s.namespace
        elif kind == "Deployment":
            _patch_deployment(obj, s)
        elif kind == "ClusterRole":
            obj = narrow_cluster_role(obj, s.kinds, plurals)
            meta = obj["metadata"]
            meta.setdefault("annotations", {}).update(checkov_annotations(CLUSTERROLE_CHECKOV_SKIPS))
        elif kind == "Secret" and not obj.get("data"):
            obj.pop("data", None)  # the rotator fills it; an empty map would only render as "[secret]"
        elif kind == "CustomResourceDefinition" and obj["spec"]["names"]["plural"] not in plurals:
            continue
        _labels(obj, s.extra_labels)
        out.append(obj)
    extra = [network_policy(s.namespace, s.api_server_cidrs), default_deny(s.namespace),
             *secrets_role(s.namespace, NAME, f"{NAME}-webhook-cert")]
    for obj in extra:
        _labels(obj, s.extra_labels)
        out.append(obj)
    out.sort(key=lambda o: (ORDER.index(o["kind"]), o["metadata"]["name"]))
    return out


def _body(obj: dict[str, Any]) -> dict[str, Any]:
    """The typed resource's keyword arguments: every top-level field except apiVersion/kind, in snake_case
    (``roleRef`` -> ``role_ref``); nested values stay in the API's camelCase."""
    return {re.sub(r"(?<!^)(?=[A-Z])", "_", k).lower(): v for k, v in obj.items() if k not in ("apiVersion", "kind")}


_TYPES = {
    "Namespace": k8s.core.v1.Namespace,
    "CustomResourceDefinition": k8s.apiextensions.v1.CustomResourceDefinition,
    "ServiceAccount": k8s.core.v1.ServiceAccount,
    "ClusterRole": k8s.rbac.v1.ClusterRole,
    "ClusterRoleBinding": k8s.rbac.v1.ClusterRoleBinding,
    "Role": k8s.rbac.v1.Role,
    "RoleBinding": k8s.rbac.v1.RoleBinding,
    "Secret": k8s.core.v1.Secret,
    "Service": k8s.core.v1.Service,
    "NetworkPolicy": k8s.networking.v1.NetworkPolicy,
    "ValidatingWebhookConfiguration": k8s.admissionregistration.v1.ValidatingWebhookConfiguration,
    "Deployment": k8s.apps.v1.Deployment,
}
_SUFFIX = {"Namespace": "namespace", "ServiceAccount": "sa", "ClusterRole": "clusterrole",
           "ClusterRoleBinding": "clusterrolebinding", "Role": "role-webhook-cert",
           "RoleBinding": "rolebinding-webhook-cert", "Secret": "webhook-cert", "Service": "service",
           "NetworkPolicy": "netpol",
           "ValidatingWebhookConfiguration": "webhook", "Deployment": "deployment"}


@dataclass(frozen=True)
class TrainingOperatorArgs:
    settings: OperatorSettings = OperatorSettings()
    """What the platform sets on the operator: version, image, namespace, kinds, resources."""
    protect_crds: bool = False
    """Protect the CRDs (prod): deleting a CRD deletes every PyTorchJob/TFJob in the cluster."""


class TrainingOperator(pulumi.ComponentResource):
    """The training operator: CRDs first, then RBAC, webhook, Service and the Deployment on the system nodes."""

    crds: dict[str, k8s.apiextensions.v1.CustomResourceDefinition]
    deployment: k8s.apps.v1.Deployment
    ready: list[pulumi.Resource]
    namespace: pulumi.Output[str]

    def __init__(self, name: str, args: TrainingOperatorArgs = TrainingOperatorArgs(),
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("eks-ml-platform:training_operator:TrainingOperator", name, None, opts)
        objs = operator_objects(args.settings)
        self.resources: dict[str, pulumi.Resource] = {}
        self.crds = {}
        ns_res: Optional[pulumi.Resource] = None
        for obj in objs:
            kind = obj["kind"]
            if kind == "CustomResourceDefinition":
                kind_name = obj["spec"]["names"]["kind"]
                res = _TYPES[kind](f"{name}-crd-{kind_name.lower()}", **_body(obj),
                                   opts=pulumi.ResourceOptions(parent=self, protect=args.protect_crds))
                self.crds[kind_name] = res
                self.resources[f"crd-{kind_name.lower()}"] = res
                continue
            deps: list[pulumi.Resource] = []
            if kind != "Namespace" and ns_res is not None:
                deps.append(ns_res)
            opts_kw: dict[str, Any] = {}
            if kind == "Secret":
                # The operator's cert rotator writes the CA and serving cert into it; keep them.
                opts_kw["ignore_changes"] = ["data", "stringData"]
            elif kind == "ValidatingWebhookConfiguration":
                # The rotator injects caBundle into every webhook.
                opts_kw["ignore_changes"] = [f"webhooks[{i}].clientConfig.caBundle" for i in range(len(obj["webhooks"]))]
            elif kind == "Deployment":
                deps += [r for k, r in self.resources.items() if k != "namespace"]
            suffix = _SUFFIX[kind]
            if kind == "NetworkPolicy" and obj["metadata"]["name"] != NAME:  # the namespace's default deny
                suffix = f"{suffix}-{obj['metadata']['name']}"
            res = _TYPES[kind](f"{name}-{suffix}", **_body(obj),
                               opts=pulumi.ResourceOptions(parent=self, depends_on=deps or None, **opts_kw))
            self.resources[suffix] = res
            if kind == "Namespace":
                ns_res = res
        self.deployment = self.resources["deployment"]  # type: ignore[assignment]
        self.ready = [*self.crds.values(), self.resources["webhook"], self.deployment]
        self.namespace = pulumi.Output.from_input(args.settings.namespace)
        self.register_outputs({
            "namespace": self.namespace,
            "version": args.settings.version,
            "image": args.settings.image,
            "crds": sorted(f"{KIND_PLURALS[k]}.kubeflow.org" for k in self.crds),
            "deployment": self.deployment.metadata.apply(lambda m: m["name"] if isinstance(m, dict) else m.name),
        })
