"""The Kubeflow training operator v1 (``kubeflow.org/v1``: PyTorchJob and TFJob), from vendored release manifests.

The operator has no Helm chart: upstream ships kustomize manifests. The release's manifests live
in ``components/manifests/training-operator/<tag>/`` (see its SOURCES.md), pinned in
``infra/versions.py`` (``MANIFESTS["training_operator"]``, ``IMAGES["training_operator"]``). This
module reads them and creates every object as an explicit Pulumi resource:

1. the ``kubeflow`` Namespace (Pod Security ``restricted``) and the CustomResourceDefinitions
   ``pytorchjobs.kubeflow.org`` and ``tfjobs.kubeflow.org``, first;
2. the operator's ServiceAccount, ClusterRole and ClusterRoleBinding, the webhook cert Secret
   (empty: the operator's cert rotator fills it), the Service, the
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
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

import pulumi
import pulumi_kubernetes as k8s
import yaml

from infra.cluster import SYSTEM_LABEL, SYSTEM_TOLERATION
from infra.config import PlatformConfig
from infra.versions import IMAGES, MANIFESTS

REPO = Path(__file__).resolve().parents[1]
NAME = "training-operator"
RUN_AS = 65532  # distroless "nonroot"; the upstream image (distroless/static) would run as root
KIND_PLURALS = {"PyTorchJob": "pytorchjobs", "TFJob": "tfjobs"}
KIND_SCHEMES = {"PyTorchJob": "pytorchjob", "TFJob": "tfjob"}
ORDER = ("Namespace", "CustomResourceDefinition", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Secret",
         "Service", "NetworkPolicy", "ValidatingWebhookConfiguration", "Deployment")


def manifest_dir(version: str) -> Path:
    """The folder of vendored manifests for an operator release tag."""
    pin = MANIFESTS["training_operator"]
    path = REPO / pin.path.replace(pin.tag, version)
    if not path.is_dir():
        known = sorted(p.name for p in path.parent.iterdir() if p.is_dir())
        raise ValueError(f"training operator {version}: no vendored manifests in {path.relative_to(REPO)} "
                         f"(vendored: {', '.join(known)})")
    return path


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: the CRDs are 600 kB each


@lru_cache(maxsize=16)
def _read_yaml(path: Path) -> tuple[dict[str, Any], ...]:
    return tuple(d for d in yaml.load_all(path.read_text(), Loader=_LOADER) if d)


def load_upstream(version: str, kinds: tuple[str, ...] = ("PyTorchJob", "TFJob")) -> list[dict[str, Any]]:
    """Pure: the release's objects as upstream ships them (the standalone overlay), with only the CRDs of ``kinds``.

    Returns fresh copies: callers may change them."""
    folder = manifest_dir(version)
    objs = list(_read_yaml(folder / "operator.yaml"))
    for kind in kinds:
        if kind not in KIND_PLURALS:
            raise ValueError(f"unknown job kind {kind!r}; the platform installs {', '.join(KIND_PLURALS)}")
        objs += _read_yaml(folder / "crds" / f"kubeflow.org_{KIND_PLURALS[kind]}.yaml")
    return copy.deepcopy(objs)


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

    @classmethod
    def from_config(cls, cfg: "PlatformConfig") -> "OperatorSettings":
        """The operator for a stack: the pinned release (or ``addons.trainingOperator.version``), PyTorchJob + TFJob."""
        return cls(version=cfg.addons.training_operator.version or MANIFESTS["training_operator"].tag)


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
                   "(upstream RBAC, kept as released)",
}
WEBHOOK_PORT = 9443
METRICS_PORT = 8080
PROBE_PORT = 8081


def checkov_annotations(skips: dict[str, str]) -> dict[str, str]:
    """``checkov.io/skipN: CKV_ID=reason`` for each skip (checkov reads them from the object's metadata)."""
    return {f"checkov.io/skip{i}": f"{cid}={reason}" for i, (cid, reason) in enumerate(sorted(skips.items()), 1)}


def network_policy(namespace: str) -> dict[str, Any]:
    """Pure: the operator's pod accepts webhook calls (from the API server), probes and Prometheus scrapes,
    and talks only to the API server (HTTPS) and DNS."""
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": NAME, "namespace": namespace},
        "spec": {
            "podSelector": {"matchLabels": {"control-plane": "kubeflow-training-operator"}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                # The EKS control plane calls the webhook from its ENIs in the VPC; the kubelet probes from the node.
                {"ports": [{"port": WEBHOOK_PORT, "protocol": "TCP"}, {"port": PROBE_PORT, "protocol": "TCP"}]},
                {"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                           "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}],
                 "ports": [{"port": METRICS_PORT, "protocol": "TCP"}]},
            ],
            "egress": [
                {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 443, "protocol": "TCP"}]},
                {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                         "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                 "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
            ],
        },
    }


def _patch_deployment(dep: dict[str, Any], s: OperatorSettings) -> None:
    spec = dep["spec"]["template"]["spec"]
    spec["nodeSelector"] = {SYSTEM_LABEL[0]: SYSTEM_LABEL[1]}
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
            meta.setdefault("annotations", {}).update(checkov_annotations(CLUSTERROLE_CHECKOV_SKIPS))
        elif kind == "Secret" and not obj.get("data"):
            obj.pop("data", None)  # the rotator fills it; an empty map would only render as "[secret]"
        elif kind == "CustomResourceDefinition" and obj["spec"]["names"]["plural"] not in plurals:
            continue
        _labels(obj, s.extra_labels)
        out.append(obj)
    netpol = network_policy(s.namespace)
    _labels(netpol, s.extra_labels)
    out.append(netpol)
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
    "Secret": k8s.core.v1.Secret,
    "Service": k8s.core.v1.Service,
    "NetworkPolicy": k8s.networking.v1.NetworkPolicy,
    "ValidatingWebhookConfiguration": k8s.admissionregistration.v1.ValidatingWebhookConfiguration,
    "Deployment": k8s.apps.v1.Deployment,
}
_SUFFIX = {"Namespace": "namespace", "ServiceAccount": "sa", "ClusterRole": "clusterrole",
           "ClusterRoleBinding": "clusterrolebinding", "Secret": "webhook-cert", "Service": "service",
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
            res = _TYPES[kind](f"{name}-{_SUFFIX[kind]}", **_body(obj),
                               opts=pulumi.ResourceOptions(parent=self, depends_on=deps or None, **opts_kw))
            self.resources[_SUFFIX[kind]] = res
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
