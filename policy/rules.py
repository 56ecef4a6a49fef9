"""Platform policy rules as pure functions (no pulumi import, so tests and CI load them fast).

Two inputs, the same that ``make preview`` writes:

* rendered Kubernetes objects (``build/<stack>/manifests/*.yaml``, one dict per object), and
* Pulumi resources (``{"type": ..., "inputs": ...}``, as ``newState`` in ``preview.json``; a
  whole step ``{"newState": {...}}`` is accepted too).

:func:`evaluate` runs every rule: those over Kubernetes objects are in ``policy/manifest_rules.py``
(helpers and :class:`~policy.model.Finding` in ``policy/model.py``), those over Pulumi resources
here. ``policy/__main__.py`` wraps the same functions in a ``pulumi_policy`` PolicyPack (one mandatory ResourceValidationPolicy per rule), so
``pulumi preview --policy-pack policy`` enforces exactly what ``evaluate`` reports offline.

Rule ids (stable: CI output, suppressions and the PolicyPack use them):
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

from policy.manifest_rules import check_manifest
from policy.model import HELM_RELEASE_TYPE, HELM_V4_CHART_TYPE, Finding, is_secret_value

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
    if is_secret_value(values):
        return []
    node = values.get("grafana") if chart == "kube-prometheus-stack" else values
    if not isinstance(node, Mapping) or "adminPassword" not in node:
        return []
    pw = node["adminPassword"]
    if pw in (None, "") or is_secret_value(pw):
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
