"""Warnings, not failures: what ``check`` accepts but a user should plan away from.

**Inf1.** AWS's Neuron documentation calls Inf1 legacy hardware: torch-neuron (the Inf1 SDK) is no
longer officially supported, and Neuron driver 2.24 is the last one for Inf1. The Neuron AMI loads
that legacy driver at boot, which is why the EC2NodeClass's AMI alias must stay pinned
(``infra/versions.py`` ``AMI_ALIAS``): an unpinned alias can move the fleet to an AMI whose driver
no longer drives Inf1. Every NodePool that may launch Inf1 (an ``instance-family`` or
``instance-type`` requirement naming inf1) and an ``inf1`` serving device get one warning each.
"""
from __future__ import annotations

from typing import Any, Iterable

from infra.check.report import Finding, resource_id

INF1_WARNING = ("Inf1 is legacy hardware: torch-neuron is no longer supported upstream and Neuron driver 2.24 is "
                "the last for Inf1; keep the AMI alias pinned (the Neuron AMI loads that driver at boot) and plan "
                "the move to inf2/trn (README: \"Inf1 is legacy\")")
_FAMILY, _TYPE = "karpenter.k8s.aws/instance-family", "node.kubernetes.io/instance-type"


def _launches_inf1(requirement: dict[str, Any]) -> bool:
    values = [str(v) for v in requirement.get("values") or []]
    if requirement.get("operator") != "In":
        return False
    if requirement.get("key") == _FAMILY:
        return "inf1" in values
    return requirement.get("key") == _TYPE and any(v.startswith("inf1.") for v in values)


def inf1_node_pools(objs: Iterable[dict[str, Any]]) -> list[Finding]:
    """One warning per karpenter.sh NodePool whose requirements let it launch Inf1 instances."""
    out = []
    for obj in objs:
        if obj.get("kind") != "NodePool" or not str(obj.get("apiVersion", "")).startswith("karpenter.sh/"):
            continue
        reqs = (((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("requirements") or []
        if any(_launches_inf1(r) for r in reqs if isinstance(r, dict)):
            out.append(Finding("legacy", resource_id(obj), INF1_WARNING))
    return out


def inf1_serving(device: str) -> list[Finding]:
    """The serving device from the stack config (``serving.device``)."""
    return [Finding("legacy", "config/serving.device", INF1_WARNING)] if device == "inf1" else []
