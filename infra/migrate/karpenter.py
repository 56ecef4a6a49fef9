"""Legacy Karpenter objects as ``karpenter.sh/v1`` NodePools and ``karpenter.k8s.aws/v1`` EC2NodeClasses:
objects in, objects and warnings out (pure; :mod:`infra.migrate.cli` reads, checks and writes them).

Karpenter v1 serves neither ``karpenter.sh/v1alpha5`` Provisioner nor ``karpenter.k8s.aws/v1alpha1``
AWSNodeTemplate, and since v1.1 not the ``v1beta1`` NodePool and EC2NodeClass either; upstream's
converter stopped at v1beta1. Each input object is mapped by :mod:`.nodepool` or :mod:`.nodeclass`;
then, as v1 keeps kubelet settings on the EC2NodeClass rather than the NodePool, each pool's kubelet
is moved to the class it refers to (a class shared by pools whose kubelet differs is copied per pool,
as the v1 migration guide does by hand). Objects of other kinds are left out, with a warning; objects
already at v1 pass through unchanged.
"""
from __future__ import annotations

import copy
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from infra.migrate import nodeclass, nodepool
from infra.migrate.common import PLACEHOLDER_RE, Ctx, MigrationError, Note, find_placeholders, \
    is_cluster_placeholder, metadata, resolve_placeholders

PROVISIONER = ("karpenter.sh/v1alpha5", "Provisioner")
AWS_NODE_TEMPLATE = ("karpenter.k8s.aws/v1alpha1", "AWSNodeTemplate")
NODEPOOL_V1BETA1 = ("karpenter.sh/v1beta1", "NodePool")
NODECLASS_V1BETA1 = ("karpenter.k8s.aws/v1beta1", "EC2NodeClass")
NAME_RE = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")  # a DNS subdomain, as the API server requires
V1 = {(nodepool.API_VERSION, nodepool.KIND), (nodeclass.API_VERSION, nodeclass.KIND)}


@dataclass
class Migration:
    """The v1 objects (in input order, each class after the pool whose provider it was), where each
    came from, and the warnings, each about one object."""

    objects: list[dict[str, Any]] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    sources: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, name) -> the document it came from

    def notes_for(self, obj: dict[str, Any]) -> list[str]:
        rid = f"{obj['kind']}/{obj['metadata']['name']}"
        return [n.message for n in self.notes if n.resource == rid]

    def add(self, obj: dict[str, Any], origin: str, source: str, after: dict[str, Any] | None = None) -> None:
        rid = (obj["kind"], obj["metadata"]["name"])
        if rid in self.sources:
            raise MigrationError(f"{source}: would be a second {rid[0]}/{rid[1]} (the first came from "
                                 f"{self.sources[rid]}); rename one of them")
        self.sources[rid] = source
        at = next(i for i, o in enumerate(self.objects) if o is after) + 1 if after is not None else len(self.objects)
        self.objects.insert(at, obj)
        self.origins.insert(at, origin)


def _provisioner(ctx: Ctx, obj: dict[str, Any], meta: dict[str, Any]) -> nodepool.Pool:
    return nodepool.from_v1alpha5(ctx, obj, meta)


def _node_template(ctx: Ctx, obj: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    return nodeclass.from_v1alpha1(ctx, ctx.mapping(obj, "spec", ""), meta, "spec")


MAPPERS: dict[tuple[str, str], Callable[[Ctx, dict[str, Any], dict[str, Any]], Any]] = {
    PROVISIONER: _provisioner,
    AWS_NODE_TEMPLATE: _node_template,
    NODEPOOL_V1BETA1: nodepool.from_v1beta1,
    NODECLASS_V1BETA1: nodeclass.from_v1beta1,
}
#: the v1 kind each legacy kind becomes
TARGET_KIND = {PROVISIONER: nodepool.KIND, NODEPOOL_V1BETA1: nodepool.KIND,
               AWS_NODE_TEMPLATE: nodeclass.KIND, NODECLASS_V1BETA1: nodeclass.KIND}


def _name(obj: dict[str, Any], source: str, kind: str) -> str:
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if name is None or name == "":
        raise MigrationError(f"{source}: {kind}: metadata.name: missing")
    if not isinstance(name, str) or len(name) > 253 or not NAME_RE.fullmatch(name):
        raise MigrationError(f"{source}: {kind}: metadata.name: {name!r} is not a Kubernetes object name "
                             "(lower-case letters, digits, '-' and '.')")
    return name


def _migrate_one(obj: dict[str, Any], source: str, cluster: str | None, out: Migration,
                 pools: list[nodepool.Pool]) -> None:
    key = (obj.get("apiVersion"), obj.get("kind"))
    name = _name(obj, source, str(key[1]))
    origin = f"{key[0]} {key[1]}/{name} ({source})"
    if cluster:
        obj = resolve_placeholders(obj, cluster)
    if key in V1:
        out.add(copy.deepcopy(obj), origin, source)
        return
    ctx = Ctx(source, f"{key[1]}/{name}", cluster, target=f"{TARGET_KIND[key]}/{name}")  # type: ignore[index]
    result = MAPPERS[key](ctx, copy.deepcopy(obj), metadata(obj))  # type: ignore[index]
    if isinstance(result, nodepool.Pool):
        pools.append(result)
        out.add(result.pool, origin, source)
        if result.nodeclass is not None:
            out.add(result.nodeclass, f"spec.provider of {origin}", source)
    else:
        out.add(result, origin, source)
    out.notes += ctx.notes


def _notes(out: Migration, rid: str, message: str) -> None:
    out.notes.append(Note(rid, message))


def _place_kubelets(out: Migration, pools: list[nodepool.Pool]) -> None:
    """Each pool's kubelet settings onto the EC2NodeClass it refers to (v1 keeps them there)."""
    classes = {o["metadata"]["name"]: o for o in out.objects if o["kind"] == nodeclass.KIND}
    by_class: dict[str, list[nodepool.Pool]] = defaultdict(list)
    for p in pools:
        if p.class_ref["group"] == nodeclass.GROUP and p.class_ref["kind"] == nodeclass.KIND:
            by_class[p.class_ref["name"]].append(p)
    for name, members in by_class.items():
        carrying = [p for p in members if p.kubelet]
        cls = classes.get(name)
        for p in carrying if cls is None else ():
            _notes(out, f"NodePool/{p.pool['metadata']['name']}",
                   f"kubelet settings have no place on a v1 NodePool and EC2NodeClass/{name} is not in the input: "
                   f"set spec.kubelet on it to {json.dumps(p.kubelet, sort_keys=True)}")
        if cls is None or not carrying:
            continue
        base = cls["spec"].get("kubelet")
        if base is None and all(p.kubelet == carrying[0].kubelet for p in members):
            cls["spec"]["kubelet"] = carrying[0].kubelet
            for p in carrying:
                _notes(out, f"NodePool/{p.pool['metadata']['name']}",
                       f"kubelet settings moved to EC2NodeClass/{name} spec.kubelet (v1 keeps them on the class)")
            continue
        last = cls
        for p in carrying:
            if p.kubelet != base:
                last = _own_class(out, p, cls, after=last)


def _own_class(out: Migration, p: nodepool.Pool, cls: dict[str, Any], *, after: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``cls`` with the pool's own kubelet settings, for a pool whose kubelet differs from the
    other pools sharing the class."""
    pool_name = p.pool["metadata"]["name"]
    shared = cls["metadata"]["name"]
    own = copy.deepcopy(cls)
    own["metadata"]["name"] = f"{shared}-{pool_name}"
    own["spec"]["kubelet"] = p.kubelet
    p.class_ref["name"] = own["metadata"]["name"]
    out.add(own, f"copy of EC2NodeClass/{shared} for NodePool/{pool_name}'s kubelet settings",
            out.sources[(nodeclass.KIND, shared)], after=after)
    _notes(out, f"NodePool/{pool_name}",
           f"refers to EC2NodeClass/{own['metadata']['name']}, a copy of {shared} with this pool's kubelet "
           f"settings: the pools sharing {shared} differ in kubelet, which v1 keeps on the class "
           "(nodes drift once, to the new class)")
    _notes(out, f"EC2NodeClass/{own['metadata']['name']}",
           f"a copy of EC2NodeClass/{shared} carrying NodePool/{pool_name}'s kubelet settings")
    return own


def _check_refs(out: Migration) -> None:
    classes = {o["metadata"]["name"] for o in out.objects if o["kind"] == nodeclass.KIND}
    for obj in out.objects:
        ref = (((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("nodeClassRef") or {}
        if obj["kind"] == nodepool.KIND and ref.get("name") not in classes:
            _notes(out, f"NodePool/{obj['metadata']['name']}",
                   f"nodeClassRef names {ref.get('kind')}/{ref.get('name')}, which is not in the input: it must "
                   "exist on the cluster (as karpenter.k8s.aws/v1)")


def _placeholder_notes(out: Migration) -> None:
    for obj in out.objects:
        found: dict[str, list[str]] = defaultdict(list)
        for path, placeholder in find_placeholders(obj):
            if path not in found[placeholder]:
                found[placeholder].append(path)
        for placeholder, paths in found.items():
            how = "give --cluster NAME" if is_cluster_placeholder(placeholder) else "replace it"
            _notes(out, f"{obj['kind']}/{obj['metadata']['name']}",
                   f"placeholder {placeholder} left unresolved in {', '.join(paths)}: {how} before applying")


def migrate(objs: Sequence[Any], *, cluster: str | None = None, sources: Sequence[str] | None = None) -> Migration:
    """The v1 equivalent of ``objs`` (parsed YAML documents), with a warning for everything that has no v1
    equivalent or behaves differently in v1.

    ``cluster`` resolves cluster-name placeholders (``<cluster-name>``, ``${CLUSTER_NAME}``); ``sources``
    labels each document in errors ("seed.yaml, document 1"). Raises :class:`MigrationError` on input
    that cannot be migrated."""
    if cluster is not None and (not cluster or PLACEHOLDER_RE.search(cluster)):
        raise MigrationError(f"--cluster {cluster!r}: not a cluster name")
    out = Migration()
    pools: list[nodepool.Pool] = []
    for i, obj in enumerate(objs):
        source = sources[i] if sources else f"document {i + 1}"
        if not isinstance(obj, dict):
            raise MigrationError(f"{source}: expected a mapping (a Kubernetes object), got {type(obj).__name__}")
        if not obj.get("apiVersion") or not obj.get("kind"):
            raise MigrationError(f"{source}: a document without apiVersion/kind")
        key = (obj["apiVersion"], obj["kind"])
        if key not in MAPPERS and key not in V1:
            meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
            _notes(out, f"{obj['kind']}/{meta.get('name', '?')}",
                   f"{key[0]} {key[1]} ({source}) is not a Karpenter object this command migrates; left out")
            continue
        _migrate_one(obj, source, cluster, out, pools)
    _place_kubelets(out, pools)
    _check_refs(out)
    _placeholder_notes(out)
    return out
