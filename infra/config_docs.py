"""The config reference, generated from ``PlatformConfig`` so docs and code cannot drift.

``python -m infra config-docs --pulumi-yaml`` prints the ``config:`` block of Pulumi.yaml and
``--markdown`` the README table; tests assert both files hold exactly what this prints.
Pulumi's project schema only types string/integer/boolean/array keys, so structured keys
(cluster, vpc, nodePools, ...) are declared there as commented entries, and validated by
``infra/config/`` at the start of every run.
"""
from __future__ import annotations

import json
import sys
import types
import typing
from typing import Any, Iterator, Literal

from pydantic import BaseModel

from infra.config import PlatformConfig

DESCRIPTIONS: dict[str, str] = {
    "environment": "dev, staging or prod; drives defaults (NAT per AZ, Ceph size 3 across zones, pool sizes in prod).",
    "ephemeral": "The dev marker: `python -m infra teardown` and the nightly workflow may destroy this stack.",
    "protect": "Protect stateful resources (VPC, cluster, KMS key) from `pulumi destroy`; turns on EKS deletion protection.",
    "region": "AWS region (falls back to `aws:region`).",
    "cluster": "The EKS cluster.",
    "cluster.name": "EKS cluster name; default `ml-<stack>`.",
    "cluster.version": "Kubernetes version, quoted (\"1.34\"); 1.30-1.36.",
    "cluster.endpoint": "API server endpoint access.",
    "cluster.endpoint.privateAccess": "Private endpoint inside the VPC.",
    "cluster.endpoint.publicAccess": "Public endpoint (needs publicAccessCidrs).",
    "cluster.endpoint.publicAccessCidrs": "CIDRs allowed to reach the public endpoint.",
    "cluster.logging": "Control-plane log types sent to CloudWatch.",
    "cluster.admins": "IAM principals given access entries; prod needs at least one.",
    "cluster.admins[].principalArn": "IAM role or user ARN.",
    "cluster.admins[].policy": "EKS access policy: cluster-admin, admin, edit or view.",
    "cluster.systemNodes": "The on-demand managed node group (taint CriticalAddonsOnly) for controllers.",
    "cluster.systemNodes.instanceTypes": "Instance types of the system nodes.",
    "cluster.systemNodes.desiredSize": "Desired node count.",
    "cluster.systemNodes.minSize": "Minimum node count.",
    "cluster.systemNodes.maxSize": "Maximum node count.",
    "cluster.systemNodes.diskSizeGib": "Encrypted gp3 root volume size.",
    "cluster.deletionProtection": "EKS deletion protection; default follows `protect`.",
    "vpc": "Create a VPC (cidr, azCount) or bring your own (id + subnet ids).",
    "vpc.cidr": "VPC CIDR, /16 to /20.",
    "vpc.azCount": "Availability zones, 2 or 3; default 3 in prod, 2 otherwise.",
    "vpc.natGateways": "single or perAz; default perAz in prod, single otherwise.",
    "vpc.id": "Bring-your-own VPC id.",
    "vpc.privateSubnetIds": "BYO private subnets (2+ AZs); tagged for Karpenter discovery.",
    "vpc.publicSubnetIds": "BYO public subnets (for internet-facing load balancers).",
    "addons": "Per add-on `enabled` and chart `version` override (defaults pinned in infra/versions.py).",
    "nodePools": "Karpenter NodePools; default cpu, gpu and inf1 (see Node pools).",
    "storage": "Rook-Ceph (OSDs on encrypted gp3 EBS PVCs; osdSizeGib 100, 200 in prod). The PVCs on Ceph must fit below 85% full.",
    "monitoring": "kube-prometheus-stack settings and alert thresholds.",
    "training": "The sample fine-tuning job.",
    "serving": "The sentiment-analysis Deployment.",
    "images": "The workload images: built into ECR by the stack (default), or prebuilt references.",
    "images.build": "Build the trainer/server images into ECR (`<cluster>/<image>`) and run them by digest.",
    "images.keepLast": "ECR lifecycle: keep the last N images per repository (1-1000).",
    "images.trainer": "With build false: the CPU trainer (also data prep), pinned by tag or digest.",
    "images.trainerGpu": "With build false: the GPU trainer (GPU training), pinned by tag or digest.",
    "images.server": "With build false: the sentiment server (CPU/CUDA serving), pinned by tag or digest.",
    "images.serverNeuron": "With build false: the inf1 sentiment server, pinned by tag or digest.",
    "images.serverNeuronx": "With build false: the inf2 sentiment server (torch-neuronx), pinned by tag or digest.",
    "allowPublicLoadBalancers": "Allow internet-facing load balancers (off: everything is internal).",
    "tags": "Extra AWS tags on every resource (AWS provider default tags).",
    "grafanaAdminPassword": "Secret. Grafana admin password; generated when unset. Set with `pulumi config set --secret`.",
}
# Keys documented one level deep only (their own models hold the details and are listed in README sections).
SHALLOW = {"addons", "nodePools", "storage", "monitoring", "training", "serving"}


def _type_name(ann: Any) -> str:
    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
    if ann is type(None):
        return "null"
    if origin is Literal:
        return " \\| ".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_name(a) for a in args if a is not type(None)) + (" (optional)" if type(None) in args else "")
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return "map"
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return "object"
    return {bool: "boolean", str: "string", int: "integer", float: "number"}.get(ann, getattr(ann, "__name__", str(ann)))


def _pulumi_type(ann: Any) -> str | None:
    if ann is bool:
        return "boolean"
    if ann is int:
        return "integer"
    if ann is str or typing.get_origin(ann) is Literal:
        return "string"
    return None


REQUIRED = "(required)"


def _default(model: type[BaseModel], name: str) -> Any:
    if model.model_fields[name].is_required():
        return REQUIRED
    value = model.model_fields[name].get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return value.model_dump(by_alias=True, mode="json", exclude_none=True)
    if isinstance(value, list):
        return [v.model_dump(by_alias=True, mode="json", exclude_none=True) if isinstance(v, BaseModel) else v for v in value]
    return value


def rows(model: type[BaseModel] = PlatformConfig, prefix: str = "") -> Iterator[tuple[str, str, Any]]:
    """(dotted key, type, default) for every documented key."""
    for name, f in model.model_fields.items():
        key = f.alias or name
        if not prefix and key == "stack":
            continue
        path = f"{prefix}{key}"
        yield path, _type_name(f.annotation), _default(model, name)
        if path in SHALLOW:
            continue
        inner = _inner_model(f.annotation)
        if inner is not None:
            list_field = typing.get_origin(f.annotation) is list
            yield from rows(inner, f"{path}[]." if list_field else f"{path}.")


def _inner_model(ann: Any) -> type[BaseModel] | None:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in typing.get_args(ann):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def markdown() -> str:
    out = ["| key (`eks-ml-platform:`) | type | default | description |", "|---|---|---|---|"]
    for path, typ, default in rows():
        desc = DESCRIPTIONS.get(path, "")
        if default == REQUIRED:
            shown = REQUIRED
        elif default in (None, [], {}):
            shown = ""
        else:
            shown = f"`{json.dumps(default, sort_keys=True)}`"
        if len(shown) > 60:
            shown = "see below" if path in SHALLOW else "(object)"
        out.append(f"| `{path}` | {typ} | {shown} | {desc} |")
    out.append(f"| `grafanaAdminPassword` | secret string | generated | {DESCRIPTIONS['grafanaAdminPassword']} |")
    return "\n".join(out) + "\n"


# Keys whose default must not be written into Pulumi.yaml: a project default would always be "set", so
# `region` could never follow the stack's `aws:region` (infra/config/loading.py from_flat).
NO_PROJECT_DEFAULT = frozenset({"region"})


def pulumi_yaml_config() -> str:
    """The `config:` block of Pulumi.yaml."""
    lines = ["config:"]
    structured = []
    for name, f in PlatformConfig.model_fields.items():
        key = f.alias or name
        if key == "stack":
            continue
        ptype = _pulumi_type(f.annotation)
        desc = DESCRIPTIONS[key]
        if ptype:
            lines += [f"  {key}:", f"    type: {ptype}", f"    description: {json.dumps(desc)}"]
            if key not in NO_PROJECT_DEFAULT:
                lines.append(f"    default: {json.dumps(_default(PlatformConfig, name))}")
        else:
            structured.append((key, desc))
    lines += ["  grafanaAdminPassword:", "    type: string", "    secret: true",
              f"    description: {json.dumps(DESCRIPTIONS['grafanaAdminPassword'])}"]
    lines.append("# Structured keys (objects and lists of objects). Pulumi's project schema cannot type them,")
    lines.append("# so infra/config/ validates them on every run; README.md has the full reference.")
    for key, desc in structured:
        lines.append(f"#   {key}: {desc}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m infra config-docs")
    ap.add_argument("--pulumi-yaml", action="store_true", help="print the Pulumi.yaml config block")
    ap.add_argument("--markdown", action="store_true", help="print the README config table")
    args = ap.parse_args(argv)
    sys.stdout.write(pulumi_yaml_config() if args.pulumi_yaml else markdown())
    return 0
