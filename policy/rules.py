"""Platform policy rules as pure functions (no pulumi import, so tests and CI load them fast).

Two inputs, the same that ``make preview`` writes:

* rendered Kubernetes objects (``build/<stack>/manifests/*.yaml``, one dict per object), and
* Pulumi resources (``{"type": ..., "inputs": ...}``, as ``newState`` in ``preview.json``; a
  whole step ``{"newState": {...}}`` is accepted too).

:func:`evaluate` runs every rule. ``policy/__main__.py`` wraps the same functions in a
``pulumi_policy`` PolicyPack (one mandatory ResourceValidationPolicy per rule), so
``pulumi preview --policy-pack policy`` enforces exactly what ``evaluate`` reports offline.

Rule ids (stable: CI output, suppressions and the PolicyPack use them):
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping

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
PULUMI_SIG_KEY = "4dabf18193072939515e22adb298388d"
PULUMI_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"

RULES: dict[str, str] = {
    "accelerator-tolerations":
        "Pods that request nvidia.com/gpu or aws.amazon.com/neuron tolerate the matching taint, "
        "and pods that tolerate those taints request the device (DaemonSets excepted).",
    "container-resources":
        "Every container and initContainer sets cpu and memory limits (requests default to them).",
    "no-public-load-balancer":
        "No internet-facing Service of type LoadBalancer or ALB Ingress unless allowed by config.",
    "imdsv2-required":
        "EC2NodeClass (and EC2 launch templates) require IMDSv2: metadataOptions.httpTokens "
        "== required.",
    "ami-alias-pinned":
        "EC2NodeClass AMI aliases name a version (family@vYYYYMMDD), never @latest.",
    "nodepool-limits":
        "Every Karpenter NodePool sets spec.limits with at least cpu.",
    "workload-image-pinned":
        "The sample workloads' containers (namespace ml-workloads) run an image pinned by digest "
        "(@sha256:...), as the stack's own builds are, never a movable tag.",
    "grafana-password-not-plaintext":
        "No plaintext Grafana admin password in Helm values, and no Secret manifest holds a "
        "literal password.",
}
__doc__ += "\n".join(f"* ``{k}``: {v}" for k, v in RULES.items()) + "\n"


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


def _api_group(obj: Mapping[str, Any]) -> str:
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


def _containers(pod: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for field in ("initContainers", "containers"):
        for c in pod.get(field) or []:
            if isinstance(c, Mapping):
                yield field, c


def _requested(pod: Mapping[str, Any]) -> set[str]:
    """Extended resources any container of the pod asks for (limits or requests, > 0)."""
    found: set[str] = set()
    for _, c in _containers(pod):
        res = c.get("resources") or {}
        for part in ("limits", "requests"):
            for name, qty in (res.get(part) or {}).items():
                if str(qty).strip() not in ("0", ""):
                    found.add(name)
    return found


def _tolerates(pod: Mapping[str, Any], key: str, *, explicit_only: bool) -> bool:
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


def _is_secret_value(value: Any) -> bool:
    if value == SECRET_PLACEHOLDER:
        return True
    return isinstance(value, Mapping) and value.get(PULUMI_SIG_KEY) == PULUMI_SECRET_SIG


# --------------------------------------------------------------------------------------------
# Rules over Kubernetes objects
# --------------------------------------------------------------------------------------------


def check_accelerator_tolerations(obj: Mapping[str, Any]) -> list[Finding]:
    out: list[Finding] = []
    for path, pod in pod_specs(obj):
        requested = _requested(pod)
        for taint, resources in ACCELERATORS.items():
            asks = sorted(r for r in resources if r in requested)
            if asks and not _tolerates(pod, taint, explicit_only=False):
                out.append(Finding("accelerator-tolerations", label(obj),
                                   f"{path} requests {', '.join(asks)} but does not tolerate the "
                                   f"{taint}:NoSchedule taint, so it can never schedule"))
            if (not asks and obj.get("kind") != "DaemonSet"
                    and _tolerates(pod, taint, explicit_only=True)):
                out.append(Finding("accelerator-tolerations", label(obj),
                                   f"{path} tolerates {taint} but requests none of "
                                   f"{', '.join(resources)}: it would occupy accelerator nodes"))
    return out


def check_container_resources(obj: Mapping[str, Any]) -> list[Finding]:
    out: list[Finding] = []
    for path, pod in pod_specs(obj):
        for field, c in _containers(pod):
            limits = ((c.get("resources") or {}).get("limits")) or {}
            missing = [r for r in ("cpu", "memory") if r not in limits]
            if missing:
                out.append(Finding("container-resources", label(obj),
                                   f"{path}.{field}[{c.get('name', '?')}] has no "
                                   f"{' or '.join(missing)} limit"))
    return out


def check_public_load_balancer(obj: Mapping[str, Any], *, allow_public: bool = False) -> list[Finding]:
    if allow_public:
        return []
    kind = obj.get("kind")
    ann = (obj.get("metadata") or {}).get("annotations") or {}
    if kind == "Service" and (obj.get("spec") or {}).get("type") == "LoadBalancer":
        internal = (str(ann.get(INTERNAL_SCHEME_ANNOTATION, "")).lower() == "internal"
                    or str(ann.get(LEGACY_INTERNAL_ANNOTATION, "")).lower() == "true")
        if not internal:
            return [Finding("no-public-load-balancer", label(obj),
                            "Service of type LoadBalancer without the annotation "
                            f"{INTERNAL_SCHEME_ANNOTATION}: internal (public load balancers "
                            "need allow_public_lb)")]
    if kind == "Ingress":
        if str(ann.get(INGRESS_SCHEME_ANNOTATION, "")).lower() == "internet-facing":
            return [Finding("no-public-load-balancer", label(obj),
                            f"Ingress with {INGRESS_SCHEME_ANNOTATION}: internet-facing "
                            "(public load balancers need allow_public_lb)")]
    return []


def _is_nodeclass(obj: Mapping[str, Any]) -> bool:
    return obj.get("kind") == "EC2NodeClass" and _api_group(obj) == "karpenter.k8s.aws"


def _is_nodepool(obj: Mapping[str, Any]) -> bool:
    return obj.get("kind") == "NodePool" and _api_group(obj) == "karpenter.sh"


def check_imdsv2(obj: Mapping[str, Any]) -> list[Finding]:
    """Judges the object as given. ``python -m infra check`` gives custom resources as the API server
    stores them, with the CRD's defaults applied: there a class that leaves ``httpTokens`` out has
    the CRD default ``required`` and passes, while an explicit ``optional`` fails. On a raw object
    (the PolicyPack's inputs, a hand-built dict) a missing value is reported, to be safe."""
    if not _is_nodeclass(obj):
        return []
    tokens = ((obj.get("spec") or {}).get("metadataOptions") or {}).get("httpTokens")
    if tokens != "required":
        return [Finding("imdsv2-required", label(obj),
                        f"spec.metadataOptions.httpTokens is {tokens!r}, must be 'required' "
                        "(IMDSv2 only)")]
    return []


ALIAS_RE = re.compile(r"^(?P<family>[a-z0-9]+)@(?P<version>.+)$")


def check_ami_pinned(obj: Mapping[str, Any]) -> list[Finding]:
    if not _is_nodeclass(obj):
        return []
    terms = (obj.get("spec") or {}).get("amiSelectorTerms") or []
    if not terms:
        return [Finding("ami-alias-pinned", label(obj), "spec.amiSelectorTerms is empty")]
    out: list[Finding] = []
    for i, term in enumerate(terms):
        alias = (term or {}).get("alias")
        if alias is None:
            continue
        m = ALIAS_RE.match(str(alias))
        if not m:
            out.append(Finding("ami-alias-pinned", label(obj),
                               f"spec.amiSelectorTerms[{i}].alias {alias!r} has no version "
                               "(use family@vYYYYMMDD)"))
        elif m["version"].lower() == "latest":
            out.append(Finding("ami-alias-pinned", label(obj),
                               f"spec.amiSelectorTerms[{i}].alias {alias!r} floats on @latest, "
                               "which has shipped regressed AMIs; pin a version"))
    return out


def check_nodepool_limits(obj: Mapping[str, Any]) -> list[Finding]:
    if not _is_nodepool(obj):
        return []
    limits = (obj.get("spec") or {}).get("limits") or {}
    if "cpu" not in limits:
        return [Finding("nodepool-limits", label(obj),
                        "spec.limits has no cpu limit: the pool could scale without bound")]
    return []


PASSWORD_KEY_RE = re.compile(r"(pass(word|wd)?|pwd)", re.IGNORECASE)


def check_secret_manifest(obj: Mapping[str, Any]) -> list[Finding]:
    if obj.get("kind") != "Secret" or _api_group(obj):
        return []
    out: list[Finding] = []
    for field in ("stringData", "data"):
        values = obj.get(field)
        if _is_secret_value(values):
            continue  # the whole map is a Pulumi secret: nothing is in plain text
        for key, value in (values or {}).items():
            if PASSWORD_KEY_RE.search(str(key)) and value not in (None, "") \
                    and not _is_secret_value(value):
                out.append(Finding("grafana-password-not-plaintext", label(obj),
                                   f"{field}.{key} holds a literal password; generate it as a "
                                   "Pulumi secret (it renders as [secret])"))
    return out


WORKLOAD_NAMESPACE = "ml-workloads"  # workloads/shared.py NAMESPACE (policy imports no product module)
_DIGEST_RE = re.compile(r"@sha256:[0-9a-f]{64}$")


def check_workload_image_pinned(obj: Mapping[str, Any]) -> list[Finding]:
    """A workload container's image must be digest-pinned: the stack's own builds always are
    (``<repo>@sha256:...``), and a prebuilt ``images.*`` or ``training.image``/``serving.image``
    reference pinned only by tag can move under a running job."""
    meta = obj.get("metadata") or {}
    if not isinstance(meta, Mapping) or meta.get("namespace") != WORKLOAD_NAMESPACE:
        return []
    out = []
    for where, pod in pod_specs(obj):
        for field, c in _containers(pod):
            image = c.get("image")
            if not isinstance(image, str) or not image or _DIGEST_RE.search(image):
                continue  # unknown at preview time (a build not yet run) or pinned
            out.append(Finding("workload-image-pinned", label(obj),
                               f"{where}.{field}[{c.get('name', '?')}].image {image!r} is not pinned by digest; "
                               "let the stack build it (images.build: true) or pin it as <image>@sha256:<digest>"))
    return out


MANIFEST_RULES = (
    check_accelerator_tolerations,
    check_workload_image_pinned,
    check_container_resources,
    check_imdsv2,
    check_ami_pinned,
    check_nodepool_limits,
    check_secret_manifest,
)


def check_manifest(obj: Mapping[str, Any], *, allow_public_lb: bool = False) -> list[Finding]:
    """Every Kubernetes-object rule on one object."""
    out: list[Finding] = []
    for rule in MANIFEST_RULES:
        out += rule(obj)
    out += check_public_load_balancer(obj, allow_public=allow_public_lb)
    return out


# --------------------------------------------------------------------------------------------
# Rules over Pulumi resources
# --------------------------------------------------------------------------------------------

GRAFANA_CHARTS = ("kube-prometheus-stack", "grafana")


def _chart_name(inputs: Mapping[str, Any]) -> str:
    chart = str(inputs.get("chart") or "")
    return chart.rstrip("/").rsplit("/", 1)[-1]


def resource_label(resource: Mapping[str, Any]) -> str:
    rtype = resource.get("type", "?")
    urn = resource.get("urn") or ""
    name = urn.rsplit("::", 1)[-1] if urn else (resource.get("name")
                                                 or (resource.get("inputs") or {}).get("name") or "?")
    return f"{rtype}/{name}"


def check_grafana_password(resource: Mapping[str, Any]) -> list[Finding]:
    if resource.get("type") not in (HELM_RELEASE_TYPE, HELM_V4_CHART_TYPE):
        return []
    inputs = resource.get("inputs") or {}
    chart = _chart_name(inputs)
    if chart not in GRAFANA_CHARTS:
        return []
    values = inputs.get("values") or {}
    if _is_secret_value(values):
        return []
    node = values.get("grafana") if chart == "kube-prometheus-stack" else values
    if not isinstance(node, Mapping) or "adminPassword" not in node:
        return []
    pw = node["adminPassword"]
    if pw in (None, "") or _is_secret_value(pw):
        return []
    where = "values.grafana.adminPassword" if chart == "kube-prometheus-stack" else "values.adminPassword"
    return [Finding("grafana-password-not-plaintext", resource_label(resource),
                    f"{where} is plaintext; use admin.existingSecret or a Pulumi secret")]


def check_launch_template_imdsv2(resource: Mapping[str, Any]) -> list[Finding]:
    if resource.get("type") != "aws:ec2/launchTemplate:LaunchTemplate":
        return []
    tokens = ((resource.get("inputs") or {}).get("metadataOptions") or {}).get("httpTokens")
    if tokens != "required":
        return [Finding("imdsv2-required", resource_label(resource),
                        f"metadataOptions.httpTokens is {tokens!r}, must be 'required'")]
    return []


RESOURCE_RULES = (check_grafana_password, check_launch_template_imdsv2)


def check_resource(resource: Mapping[str, Any]) -> list[Finding]:
    """Every Pulumi-resource rule on one resource."""
    out: list[Finding] = []
    for rule in RESOURCE_RULES:
        out += rule(resource)
    return out


def _unwrap(resource: Mapping[str, Any]) -> Mapping[str, Any]:
    """A preview.json step -> its newState; a resource dict stays as it is."""
    state = resource.get("newState")
    return state if isinstance(state, Mapping) else resource


def evaluate(manifests: Iterable[Mapping[str, Any]], resources: Iterable[Mapping[str, Any]], *,
             allow_public_lb: bool = False) -> list[Finding]:
    """Run every rule; findings sorted by rule, resource and message."""
    findings: list[Finding] = []
    for obj in manifests:
        if isinstance(obj, Mapping):
            findings += check_manifest(obj, allow_public_lb=allow_public_lb)
    for res in resources:
        if isinstance(res, Mapping):
            findings += check_resource(_unwrap(res))
    return sorted(set(findings), key=lambda f: (f.rule, f.resource, f.message))


# --------------------------------------------------------------------------------------------
# Used by the PolicyPack: one rule at a time over what the analyzer sees.
# --------------------------------------------------------------------------------------------

_K8S_TYPE_RE = re.compile(r"^kubernetes:(?P<group>[^:]+):(?P<kind>[A-Za-z0-9]+)$")


def analyzer_findings(rule: str, resource_type: str, props: Mapping[str, Any], name: str, *,
                      allow_public_lb: bool = False) -> list[Finding]:
    """Findings of ``rule`` for one resource as the Pulumi analyzer passes it.

    Kubernetes resources (``kubernetes:<group>/<version>:<Kind>``) are checked as manifests
    (their inputs are the object), everything else as a Pulumi resource.
    """
    if rule not in RULES:
        raise KeyError(rule)
    props = dict(props or {})
    m = _K8S_TYPE_RE.match(resource_type)
    if m and resource_type not in (HELM_RELEASE_TYPE, HELM_V4_CHART_TYPE):
        obj = dict(props)
        group_version = m["group"]
        if "kind" not in obj:
            obj["kind"] = m["kind"]
        if "apiVersion" not in obj:
            obj["apiVersion"] = group_version[len("core/"):] if group_version.startswith("core/") \
                else group_version
        obj.setdefault("metadata", {"name": name})
        found = check_manifest(obj, allow_public_lb=allow_public_lb)
    else:
        found = check_resource({"type": resource_type, "inputs": props, "name": name})
    return [f for f in found if f.rule == rule]
