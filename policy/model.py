"""What every policy rule shares: the :class:`Finding`, the constants the rules look for, and the
helpers that walk a Kubernetes object (its pod templates, containers, tolerations).

Pure: the standard library only (no pulumi), so tests, ``python -m infra check`` and the PolicyPack
load it fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from infra.conventions import PULUMI_SECRET_SIG, PULUMI_SIG_KEY

GPU = "nvidia.com/gpu"
NEURON = "aws.amazon.com/neuron"
NEURON_RESOURCES = ("aws.amazon.com/neuron", "aws.amazon.com/neuroncore",
                    "aws.amazon.com/neurondevice")
ACCELERATORS = {GPU: (GPU,), NEURON: NEURON_RESOURCES}  # taint key -> resources that need it

INTERNAL_SCHEME_ANNOTATION = "service.beta.kubernetes.io/aws-load-balancer-scheme"
LEGACY_INTERNAL_ANNOTATION = "service.beta.kubernetes.io/aws-load-balancer-internal"
INGRESS_SCHEME_ANNOTATION = "alb.ingress.kubernetes.io/scheme"

HELM_RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
HELM_V4_CHART_TYPE = "kubernetes:helm.sh/v4:Chart"
SECRET_PLACEHOLDER = "[secret]"


@dataclass(frozen=True)
class Finding:
    rule: str
    resource: str
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.resource}: {self.message}"


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def label(obj: Mapping[str, Any]) -> str:
    """``Kind/namespace/name``, or ``Kind/name`` for cluster-scoped objects."""
    meta = obj.get("metadata") or {}
    kind = obj.get("kind", "?")
    name = meta.get("name") or meta.get("generateName") or "?"
    ns = meta.get("namespace")
    return f"{kind}/{ns}/{name}" if ns else f"{kind}/{name}"


def api_group(obj: Mapping[str, Any]) -> str:
    api = str(obj.get("apiVersion", ""))
    return api.split("/", 1)[0] if "/" in api else ""


def pod_specs(obj: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Yield ``(path, podSpec)`` for every pod template in a workload object.

    Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob,
    and the Kubeflow jobs (any ``spec.<x>ReplicaSpecs.<role>.template``: PyTorchJob, TFJob, ...).
    """
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if not isinstance(spec, Mapping):
        return
    if kind == "Pod":
        yield "spec", spec
    elif kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController",
                  "Job"):
        tmpl = (spec.get("template") or {}).get("spec")
        if isinstance(tmpl, Mapping):
            yield "spec.template.spec", tmpl
    elif kind == "CronJob":
        tmpl = (((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get("spec")
        if isinstance(tmpl, Mapping):
            yield "spec.jobTemplate.spec.template.spec", tmpl
    else:
        for key, replicas in spec.items():
            if key.endswith("ReplicaSpecs") and isinstance(replicas, Mapping):
                for role, rspec in replicas.items():
                    tmpl = ((rspec or {}).get("template") or {}).get("spec")
                    if isinstance(tmpl, Mapping):
                        yield f"spec.{key}.{role}.template.spec", tmpl


def containers(pod: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for field in ("initContainers", "containers"):
        for c in pod.get(field) or []:
            if isinstance(c, Mapping):
                yield field, c


def requested_resources(pod: Mapping[str, Any]) -> set[str]:
    """Extended resources any container of the pod asks for (limits or requests, > 0)."""
    found: set[str] = set()
    for _, c in containers(pod):
        res = c.get("resources") or {}
        for part in ("limits", "requests"):
            for name, qty in (res.get(part) or {}).items():
                if str(qty).strip() not in ("0", ""):
                    found.add(name)
    return found


def tolerates(pod: Mapping[str, Any], key: str, *, explicit_only: bool) -> bool:
    for t in pod.get("tolerations") or []:
        if not isinstance(t, Mapping):
            continue
        effect = t.get("effect")
        if effect not in (None, "", "NoSchedule"):
            continue
        if t.get("key") == key:
            return True
        # An empty key with operator Exists tolerates every taint.
        if not explicit_only and not t.get("key") and t.get("operator") == "Exists":
            return True
    return False


def is_secret_value(value: Any) -> bool:
    if value == SECRET_PLACEHOLDER:
        return True
    return isinstance(value, Mapping) and value.get(PULUMI_SIG_KEY) == PULUMI_SECRET_SIG
