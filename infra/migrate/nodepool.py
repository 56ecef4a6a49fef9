"""The ``karpenter.sh/v1`` NodePool of a ``v1alpha5`` Provisioner or a ``v1beta1`` NodePool (pure).

The mappings follow Karpenter's upgrade guides: v1beta1-migration ("Provisioner -> NodePool": the
template, ``ttlSecondsAfterEmpty``, ``consolidation``, ``ttlSecondsUntilExpired``, the dropped
requirement defaults, the renamed annotations) and v1-migration (``WhenUnderutilized`` renamed,
``consolidateAfter`` required, ``expireAfter`` moved into the template, ``nodeClassRef`` by group,
``kubelet`` moved to the EC2NodeClass: the caller places it, see :mod:`infra.migrate.karpenter`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infra.migrate import nodeclass
from infra.migrate.common import Ctx, duration

API_VERSION = "karpenter.sh/v1"
KIND = "NodePool"
V1ALPHA5_FIELDS = {"annotations", "consolidation", "kubeletConfiguration", "labels", "limits", "provider",
                   "providerRef", "requirements", "startupTaints", "taints", "ttlSecondsAfterEmpty",
                   "ttlSecondsUntilExpired", "weight"}
# node annotations v1 removed, and what replaces them (v1-migration: "Deprecated Annotations ... Removed")
RENAMED_ANNOTATIONS = {"karpenter.sh/do-not-consolidate": "karpenter.sh/do-not-disrupt",
                       "karpenter.sh/do-not-evict": "karpenter.sh/do-not-disrupt"}
DROPPED_LABELS = ("karpenter.k8s.aws/instance-pods",)  # v1beta1-migration: "Dropped"
# The requirements v1alpha5's webhook added when none named the key; v1beta1 and v1 add none.
OS_DEFAULT = {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}
ARCH_DEFAULT = {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}
CAPACITY_DEFAULT = {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]}
INSTANCE_DEFAULTS = ({"key": "karpenter.k8s.aws/instance-category", "operator": "In", "values": ["c", "m", "r"]},
                     {"key": "karpenter.k8s.aws/instance-generation", "operator": "Gt", "values": ["2"]})
INSTANCE_KEYS = ("node.kubernetes.io/instance-type", "karpenter.k8s.aws/instance-family",
                 "karpenter.k8s.aws/instance-category", "karpenter.k8s.aws/instance-generation")
FORCEFUL_EXPIRY = ("expiry is forceful in v1: an expired node is drained at once, without waiting for a "
                   "replacement and past PodDisruptionBudgets and do-not-disrupt pods")


@dataclass
class Pool:
    """A migrated NodePool, the kubelet settings v1 keeps on its EC2NodeClass, and the class a
    ``provider`` block became."""

    pool: dict[str, Any]
    kubelet: dict[str, Any] | None = None
    nodeclass: dict[str, Any] | None = None

    @property
    def class_ref(self) -> dict[str, Any]:
        return self.pool["spec"]["template"]["spec"]["nodeClassRef"]


def _items(ctx: Ctx, obj: dict[str, Any], key: str, path: str) -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(ctx.listing(obj, key, path)):
        if not isinstance(item, dict):
            raise ctx.fail(f"{path}.{key}[{i}]", f"expected a mapping, got {type(item).__name__}")
        out.append(dict(item))
    return out


def node_annotations(ctx: Ctx, given: dict[str, Any], path: str) -> dict[str, Any]:
    out = {}
    for key, value in given.items():
        if key in RENAMED_ANNOTATIONS:
            ctx.warn(f"{path}.{key}: removed in v1; written as {RENAMED_ANNOTATIONS[key]}")
            key = RENAMED_ANNOTATIONS[key]
        out[key] = value
    return out


def _requirements(ctx: Ctx, spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The Provisioner's requirements, with the defaults v1alpha5's webhook added written out."""
    reqs = []
    for req in _items(ctx, spec, "requirements", "spec"):
        if req.get("key") in DROPPED_LABELS:
            ctx.warn(f"spec.requirements: {req['key']} was dropped as a label in v1beta1; requirement left out")
            continue
        reqs.append(req)
    keys = {r.get("key") for r in reqs}
    added = [d for d in (OS_DEFAULT, ARCH_DEFAULT, CAPACITY_DEFAULT) if d["key"] not in keys]
    if not keys & set(INSTANCE_KEYS):
        added += INSTANCE_DEFAULTS
    for req in added:
        ctx.warn(f"spec.requirements: {req['key']} {req['operator']} {req['values']} added: v1alpha5 defaulted it "
                 "when no requirement named the key, v1 does not")
        reqs.append({**req, "values": list(req["values"])})
    return reqs


def _v1alpha5_disruption(ctx: Ctx, spec: dict[str, Any]) -> dict[str, Any]:
    """``ttlSecondsAfterEmpty`` and ``consolidation`` as v1's ``consolidationPolicy``/``consolidateAfter``."""
    empty = ctx.seconds(spec, "ttlSecondsAfterEmpty", "spec")
    enabled = ctx.mapping(spec, "consolidation", "spec").get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise ctx.fail("spec.consolidation.enabled", f"expected true or false, got {enabled!r}")
    if enabled and empty is not None:
        raise ctx.fail("spec", "ttlSecondsAfterEmpty and consolidation.enabled exclude each other (v1alpha5 "
                               "rejected both)")
    if enabled:
        ctx.warn("spec.consolidation.enabled: consolidationPolicy WhenEmptyOrUnderutilized with consolidateAfter 0s "
                 "(v1alpha5 consolidated without waiting too); v1 disrupts only within the disruption budgets (default: "
                 "10% of the pool's nodes at a time) and also replaces nodes that drifted from their NodePool or "
                 "EC2NodeClass")
        return {"consolidationPolicy": "WhenEmptyOrUnderutilized", "consolidateAfter": "0s"}
    if empty is not None:
        ctx.warn(f"spec.ttlSecondsAfterEmpty: consolidationPolicy WhenEmpty with consolidateAfter "
                 f"{duration(empty)}; v1alpha5 removed every empty node when its TTL passed, v1 at most the "
                 "disruption budget (default: 10% of the pool's nodes) at a time")
        return {"consolidationPolicy": "WhenEmpty", "consolidateAfter": duration(empty)}
    ctx.warn("spec: neither ttlSecondsAfterEmpty nor consolidation, so v1alpha5 never removed or replaced nodes "
             "for being empty or underused; consolidationPolicy WhenEmpty with consolidateAfter Never keeps that "
             "(v1's default would consolidate)")
    return {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "Never"}


def _v1alpha5_expiry(ctx: Ctx, spec: dict[str, Any]) -> str:
    ttl = ctx.seconds(spec, "ttlSecondsUntilExpired", "spec")
    if ttl is None:
        ctx.warn("spec: no ttlSecondsUntilExpired, so v1alpha5 never expired nodes; expireAfter Never keeps that "
                 "(v1's default is 720h)")
        return "Never"
    ctx.warn(f"spec.ttlSecondsUntilExpired: expireAfter {duration(ttl)} in spec.template.spec; {FORCEFUL_EXPIRY}")
    return duration(ttl)


def _v1alpha5_class(ctx: Ctx, spec: dict[str, Any], name: str) -> tuple[str, dict[str, Any] | None]:
    """The name of the EC2NodeClass the NodePool refers to, and the class its ``provider`` becomes."""
    provider = ctx.mapping(spec, "provider", "spec")
    ref = ctx.mapping(spec, "providerRef", "spec")
    if provider and ref:
        raise ctx.fail("spec", "provider and providerRef exclude each other (v1alpha5 rejected both)")
    if ref:
        if not ref.get("name"):
            raise ctx.fail("spec.providerRef.name", "missing")
        if ref.get("kind") not in (None, "AWSNodeTemplate"):
            ctx.warn(f"spec.providerRef.kind: {ref['kind']} is not AWSNodeTemplate; nodeClassRef names EC2NodeClass "
                     f"{ref['name']}")
        return str(ref["name"]), None
    if not provider:
        raise ctx.fail("spec", "neither provider nor providerRef: a v1 NodePool needs an EC2NodeClass to refer to")
    target, ctx.target = ctx.target, f"{nodeclass.KIND}/{name}"
    try:
        return name, nodeclass.from_v1alpha1(ctx, provider, {"name": name}, "spec.provider")
    finally:
        ctx.target = target


def _kubelet(ctx: Ctx, given: dict[str, Any], path: str) -> dict[str, Any] | None:
    kubelet = dict(given)
    if kubelet.pop("containerRuntime", None) is not None:
        ctx.warn(f"{path}.containerRuntime: dropped in v1beta1 (containerd is the only runtime); left out")
    return kubelet or None


def from_v1alpha5(ctx: Ctx, obj: dict[str, Any], meta: dict[str, Any]) -> Pool:
    """A Provisioner as a NodePool (and, from its ``provider`` block, an EC2NodeClass)."""
    spec = ctx.mapping(obj, "spec", "")
    for key in sorted(set(spec) - V1ALPHA5_FIELDS):
        ctx.warn(f"spec.{key}: not a karpenter.sh/v1alpha5 Provisioner field; left out")
    class_name, generated = _v1alpha5_class(ctx, spec, meta["name"])
    template_meta = {}
    if spec.get("labels"):
        template_meta["labels"] = dict(ctx.mapping(spec, "labels", "spec"))
    if spec.get("annotations"):
        template_meta["annotations"] = node_annotations(ctx, ctx.mapping(spec, "annotations", "spec"),
                                                        "spec.annotations")
    template_spec: dict[str, Any] = {
        "nodeClassRef": {"group": nodeclass.GROUP, "kind": nodeclass.KIND, "name": class_name},
        "requirements": _requirements(ctx, spec),
        "expireAfter": _v1alpha5_expiry(ctx, spec),
    }
    for key in ("taints", "startupTaints"):
        if spec.get(key):
            template_spec[key] = _items(ctx, spec, key, "spec")
    template: dict[str, Any] = {"spec": template_spec}
    if template_meta:
        template["metadata"] = template_meta
    out_spec: dict[str, Any] = {"template": template, "disruption": _v1alpha5_disruption(ctx, spec)}
    limits = ctx.mapping(ctx.mapping(spec, "limits", "spec"), "resources", "spec.limits")
    if limits:
        out_spec["limits"] = dict(limits)
    if spec.get("weight") is not None:
        out_spec["weight"] = spec["weight"]
    pool = {"apiVersion": API_VERSION, "kind": KIND, "metadata": meta, "spec": out_spec}
    kubelet = _kubelet(ctx, ctx.mapping(spec, "kubeletConfiguration", "spec"), "spec.kubeletConfiguration")
    return Pool(pool, kubelet, generated)


def _v1beta1_disruption(ctx: Ctx, spec: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """v1's ``disruption`` and the ``expireAfter`` that moved out of it."""
    disruption = dict(ctx.mapping(spec, "disruption", "spec"))
    expire = disruption.pop("expireAfter", None)
    if disruption.get("consolidationPolicy", "WhenUnderutilized") == "WhenUnderutilized":
        disruption["consolidationPolicy"] = "WhenEmptyOrUnderutilized"
        disruption.setdefault("consolidateAfter", "0s")  # v1-migration: 0 behaves as v1beta1 did
    if expire != "Never":
        ctx.warn(f"spec.disruption.expireAfter: {expire or '720h (the default)'}, now in spec.template.spec; "
                 f"{FORCEFUL_EXPIRY}")
    return disruption, expire


def from_v1beta1(ctx: Ctx, obj: dict[str, Any], meta: dict[str, Any]) -> Pool:
    """A v1beta1 NodePool as v1: the same fields, moved and renamed as v1 has them."""
    spec = ctx.mapping(obj, "spec", "")
    template = ctx.mapping(spec, "template", "spec")
    given = ctx.mapping(template, "spec", "spec.template")
    ref = ctx.mapping(given, "nodeClassRef", "spec.template.spec")
    if not ref.get("name"):
        raise ctx.fail("spec.template.spec.nodeClassRef.name", "missing")
    template_spec = {k: v for k, v in given.items() if k not in ("kubelet", "resources", "nodeClassRef")}
    if "resources" in given:
        ctx.warn("spec.template.spec.resources: not in v1 (Karpenter never used it); left out")
    template_spec["nodeClassRef"] = {"group": str(ref.get("apiVersion") or nodeclass.GROUP).split("/")[0],
                                     "kind": ref.get("kind") or nodeclass.KIND, "name": ref["name"]}
    disruption, expire = _v1beta1_disruption(ctx, spec)
    if expire is not None:
        template_spec["expireAfter"] = expire
    new_template: dict[str, Any] = {**template, "spec": template_spec}
    template_meta = ctx.mapping(template, "metadata", "spec.template")
    if template_meta.get("annotations"):
        new_template["metadata"] = {**template_meta, "annotations": node_annotations(
            ctx, ctx.mapping(template_meta, "annotations", "spec.template.metadata"),
            "spec.template.metadata.annotations")}
    out_spec = {**spec, "template": new_template, "disruption": disruption}
    pool = {"apiVersion": API_VERSION, "kind": KIND, "metadata": meta, "spec": out_spec}
    return Pool(pool, _kubelet(ctx, ctx.mapping(given, "kubelet", "spec.template.spec"),
                               "spec.template.spec.kubelet"))
