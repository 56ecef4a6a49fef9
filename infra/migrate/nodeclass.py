"""The ``karpenter.k8s.aws/v1`` EC2NodeClass of an AWSNodeTemplate, a Provisioner's ``provider`` block
(both ``v1alpha1`` fields) or a ``v1beta1`` EC2NodeClass (pure).

The mappings follow Karpenter's upgrade guides (v1beta1-migration: "AWSNodeTemplate -> EC2NodeClass";
v1-migration: the changelog and "New MetadataOptions Defaults"). Where the guides and the conversion
webhook would float the AMI (``<family>@latest``), the migration pins the alias of
:data:`infra.versions.AMI_ALIAS` instead, as the platform's own pools do.
"""
from __future__ import annotations

import itertools
from typing import Any

from infra.conventions import TAG_EKS_CLUSTER_NAME, TAG_K8S_CLUSTER_PREFIX, TAG_KARPENTER_NODECLASS, \
    TAG_KARPENTER_NODEPOOL
from infra.migrate.common import Ctx
from infra.versions import AMI_ALIAS

API_VERSION = "karpenter.k8s.aws/v1"
KIND = "EC2NodeClass"
GROUP = "karpenter.k8s.aws"
V1_FAMILIES = ("AL2", "AL2023", "Bottlerocket", "Custom", "Windows2019", "Windows2022", "Windows2025")
# IMDSv2 only, not reachable from pods without hostNetwork: v1's defaults, written out
IMDS = {"httpEndpoint": "enabled", "httpProtocolIPv6": "disabled", "httpPutResponseHopLimit": 1, "httpTokens": "required"}
# Tags Karpenter v1 sets itself and the CRD rejects on spec.tags; karpenter.sh/managed-by was removed in v1.0.
RESTRICTED_TAG_PREFIXES = (TAG_K8S_CLUSTER_PREFIX.rstrip("/"),)
RESTRICTED_TAGS = (TAG_EKS_CLUSTER_NAME, TAG_KARPENTER_NODEPOOL, "karpenter.sh/nodeclaim", TAG_KARPENTER_NODECLASS,
                   "karpenter.sh/managed-by")
# v1alpha1 selector keys that are filters, not tags, and the v1 term field each becomes
SUBNET_KEYS = {"aws::ids": "id", "aws-ids": "id"}
AMI_KEYS = {**SUBNET_KEYS, "aws::name": "name", "aws::owners": "owner"}
# v1alpha1 fields copied as they are (their v1 shape is the same)
COPIED = ("userData", "context", "detailedMonitoring", "blockDeviceMappings")
V1ALPHA1_FIELDS = {"subnetSelector", "securityGroupSelector", "amiSelector", "amiFamily", "instanceProfile", "tags",
                   "metadataOptions", "launchTemplate", "apiVersion", "kind", *COPIED}
# What Karpenter's conversion gives an Ubuntu class without block devices (Ubuntu's root device).
UBUNTU_ROOT = {"deviceName": "/dev/sda1", "rootVolume": True,
               "ebs": {"encrypted": True, "volumeType": "gp3", "volumeSize": "20Gi"}}


def _split(value: str) -> list[str]:
    """A v1alpha1 selector value: a comma-delimited list."""
    return [v.strip() for v in value.split(",") if v.strip()]


def selector_terms(ctx: Ctx, selector: dict[str, str], path: str, keys: dict[str, str]) -> list[dict[str, Any]]:
    """A v1alpha1 selector (one map, ANDed, comma lists ORed) as v1 selector terms (a list, ORed).

    Ids select exactly: with ids the terms are the ids alone (v1 takes no other field beside an id).
    Each combination of the other values becomes one term, as Karpenter's v1beta1 conversion did."""
    fields: dict[str, list[str]] = {}
    tags: dict[str, list[str]] = {}
    for key, value in sorted(selector.items()):
        if key in keys:
            fields[keys[key]] = _split(value)
        elif key.startswith("aws::"):
            raise ctx.fail(f"{path}.{key}", f"not a v1alpha1 selector key (use one of {', '.join(sorted(keys))} "
                                            "or a tag key)")
        else:
            tags[key] = _split(value)
    if "id" in fields:
        dropped = sorted(set(fields) - {"id"}) + sorted(tags)
        if dropped:
            ctx.warn(f"{path}: selects by aws::ids, so v1 terms hold the ids alone ({', '.join(dropped)} left out: "
                     "v1 takes no other field beside an id)")
        return [{"id": i} for i in fields["id"]]
    tag_sets = [dict(zip(tags, combo)) for combo in itertools.product(*tags.values())] if tags else [{}]
    names = fields.get("name") or [""]
    owners = fields.get("owner") or [""]
    terms = []
    for owner, name, tag_set in itertools.product(owners, names, tag_sets):
        term: dict[str, Any] = {k: v for k, v in (("name", name), ("owner", owner)) if v}
        if tag_set:
            term["tags"] = tag_set
        terms.append(term)
    return [t for t in terms if t]


def alias_for(ctx: Ctx, family: str | None, path: str, *, user_data: bool = False) -> list[dict[str, str]]:
    """The pinned ``amiSelectorTerms`` alias for an AMI family that had Karpenter pick the AMI."""
    if family == "AL2023":
        return [{"alias": AMI_ALIAS}]
    if family in (None, "AL2"):
        was = "unset (Karpenter defaulted it to AL2)" if family is None else "AL2"
        script = "; AL2023 boots with nodeadm, so this userData (AL2's bootstrap.sh) must be rewritten as a " \
                 "NodeConfig" if user_data else ""
        ctx.warn(f"{path}.amiFamily: {was}, now the AL2023 alias {AMI_ALIAS} pinned in infra/versions.py: EKS "
                 f"stopped publishing AL2 AMIs on 2025-11-26 and has none for Kubernetes 1.33+{script}")
        return [{"alias": AMI_ALIAS}]
    where = f"{path}.amiFamily"
    if family in ("Bottlerocket", "Windows2019", "Windows2022", "Windows2025"):
        floating = " (and Windows aliases exist only as @latest, which the platform rejects)" \
            if family.startswith("Windows") else ""
        raise ctx.fail(where, f"{family} has no alias pinned in infra/versions.py (only {AMI_ALIAS}){floating}; "
                              "select the AMI with amiSelector (aws::ids or aws::name) or use AL2023")
    if family == "Ubuntu":
        raise ctx.fail(where, "Karpenter v1 dropped Ubuntu: select the AMI with amiSelector (aws::ids or "
                              "aws::name; amiFamily AL2 then writes its userData) or use AL2023")
    if family == "Custom":
        raise ctx.fail(where, "Custom needs amiSelector (or amiSelectorTerms) naming the AMI")
    raise ctx.fail(where, f"{family!r} is not an amiFamily (one of {', '.join(V1_FAMILIES)}, Ubuntu)")


def _selected_family(ctx: Ctx, family: str | None, path: str) -> str:
    """``amiFamily`` beside explicit AMI terms (v1 requires it there): Ubuntu becomes AL2, as upstream converts it."""
    if family is None:
        ctx.warn(f"{path}.amiFamily: unset, so Karpenter defaulted it to AL2; written out, since v1 needs it "
                 "beside AMI selector terms")
        return "AL2"
    if family == "Ubuntu":
        ctx.warn(f"{path}.amiFamily: Karpenter v1 dropped Ubuntu; AL2 writes the same userData format (Karpenter's "
                 "own conversion), but that is not guaranteed to last: consider Custom with your own userData")
        return "AL2"
    if family not in V1_FAMILIES:
        raise ctx.fail(f"{path}.amiFamily", f"{family!r} is not an amiFamily (one of {', '.join(V1_FAMILIES)})")
    return family


def ami(ctx: Ctx, family: str | None, terms: list[dict[str, Any]], path: str, spec: dict[str, Any]) -> None:
    """``amiSelectorTerms`` (and ``amiFamily`` where the terms are not an alias) on the v1 ``spec``."""
    if not terms:
        spec["amiSelectorTerms"] = alias_for(ctx, family, path, user_data=bool(spec.get("userData")))
        return
    spec["amiFamily"] = _selected_family(ctx, family, path)
    spec["amiSelectorTerms"] = terms
    if family == "Ubuntu" and not spec.get("blockDeviceMappings"):
        spec["blockDeviceMappings"] = [dict(UBUNTU_ROOT, ebs=dict(UBUNTU_ROOT["ebs"]))]
        ctx.warn(f"{path}.blockDeviceMappings: Ubuntu's root device /dev/sda1 (20Gi gp3, encrypted) written out, "
                 "since AL2's default root device differs")


def metadata_options(ctx: Ctx, given: dict[str, Any], path: str) -> dict[str, Any]:
    """IMDSv2 with hop limit 1 unless the input says otherwise; either way it is reported."""
    hop = given.get("httpPutResponseHopLimit")
    if hop is None:
        ctx.warn(f"{path}.metadataOptions: IMDSv2 only, httpPutResponseHopLimit 1 (v1's default; v1alpha5 and "
                 "v1beta1 defaulted it to 2): pods without hostNetwork can no longer reach IMDS; set "
                 "httpPutResponseHopLimit: 2 in the input to keep their access")
    elif hop != 1:
        ctx.warn(f"{path}.metadataOptions.httpPutResponseHopLimit: {hop} kept from the input (v1's default is 1: "
                 "pods without hostNetwork reach IMDS only with 2 or more)")
    return {**IMDS, **given}


def tags(ctx: Ctx, given: dict[str, str], path: str) -> dict[str, str]:
    """``spec.tags`` without the tags Karpenter v1 sets itself (the CRD rejects them)."""
    dropped = sorted(k for k in given if k in RESTRICTED_TAGS or k.startswith(RESTRICTED_TAG_PREFIXES))
    if dropped:
        ctx.warn(f"{path}.tags: {', '.join(dropped)} left out: Karpenter v1 sets its own cluster, nodepool and "
                 "nodeclass tags and the CRD rejects them here (karpenter.sh/managed-by was removed in v1.0; "
                 "eks:eks-cluster-name replaces it)")
    return {k: v for k, v in given.items() if k not in dropped}


def _identity(ctx: Ctx, given: dict[str, Any], path: str) -> dict[str, str]:
    profile = given.get("instanceProfile")
    if profile:
        ctx.warn(f"{path}.instanceProfile: kept as spec.instanceProfile, which v1 uses as it is and does not "
                 "manage; with spec.role instead (for KarpenterNodeInstanceProfile-X usually KarpenterNodeRole-X) "
                 "Karpenter creates the profile itself")
        return {"instanceProfile": str(profile)}
    role = f"KarpenterNodeRole-{ctx.cluster or '<cluster-name>'}"
    ctx.warn(f"{path}.instanceProfile: unset, so Karpenter used settings.aws.defaultInstanceProfile, which v1 "
             f"removed; spec.role is {role} (the getting-started node role): make it your nodes' role")
    return {"role": role}


def from_v1alpha1(ctx: Ctx, given: dict[str, Any], meta: dict[str, Any], path: str) -> dict[str, Any]:
    """The EC2NodeClass of an AWSNodeTemplate's ``spec`` or a Provisioner's ``provider`` (``path`` names it)."""
    for key in sorted(set(given) - V1ALPHA1_FIELDS):
        ctx.warn(f"{path}.{key}: not a karpenter.k8s.aws/v1alpha1 field; left out")
    if given.get("launchTemplate"):
        ctx.warn(f"{path}.launchTemplate: no v1 equivalent (Karpenter v1beta1 removed unmanaged launch templates); "
                 "left out: put its AMI, security groups, userData and volumes on this EC2NodeClass")
    spec: dict[str, Any] = _identity(ctx, given, path)
    spec.update({k: given[k] for k in COPIED if given.get(k) is not None})
    subnets = ctx.str_map(given, "subnetSelector", path)
    if subnets:
        spec["subnetSelectorTerms"] = selector_terms(ctx, subnets, f"{path}.subnetSelector", SUBNET_KEYS)
    groups = ctx.str_map(given, "securityGroupSelector", path)
    if groups:
        spec["securityGroupSelectorTerms"] = selector_terms(ctx, groups, f"{path}.securityGroupSelector",
                                                            SUBNET_KEYS)
    amis = selector_terms(ctx, ctx.str_map(given, "amiSelector", path), f"{path}.amiSelector", AMI_KEYS)
    ami(ctx, given.get("amiFamily"), amis, path, spec)
    spec["metadataOptions"] = metadata_options(ctx, ctx.mapping(given, "metadataOptions", path), path)
    tag_map = tags(ctx, ctx.str_map(given, "tags", path), path)
    if tag_map:
        spec["tags"] = tag_map
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": meta, "spec": spec}


def from_v1beta1(ctx: Ctx, obj: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """A v1beta1 EC2NodeClass as v1: the same fields, with the AMI, IMDS and tag changes of v1."""
    given = ctx.mapping(obj, "spec", "")
    spec = {k: v for k, v in given.items() if k not in ("amiFamily", "amiSelectorTerms", "metadataOptions", "tags")}
    ami(ctx, given.get("amiFamily"), ctx.listing(given, "amiSelectorTerms", "spec"), "spec", spec)
    spec["metadataOptions"] = metadata_options(ctx, ctx.mapping(given, "metadataOptions", "spec"), "spec")
    if "tags" in given:
        spec["tags"] = tags(ctx, ctx.str_map(given, "tags", "spec"), "spec")
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": meta, "spec": spec}
