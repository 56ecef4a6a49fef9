"""Load upstream CRDs and validate custom resources against their ``openAPIV3Schema``.

The schema is applied as the API server's strict field validation would: unknown fields are
errors (the server would silently prune them, which hides typos), ``x-kubernetes-int-or-string``
admits both, ``nullable`` admits null, and ``x-kubernetes-preserve-unknown-fields`` keeps a
subtree open.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import yaml
from jsonschema import Draft4Validator

from infra import upstream
from infra.jsonpatch import apply_patch

# The CRDs of every custom-resource kind the platform creates (and Kueue's), as upstream publishes
# them at the pinned tags (infra/upstream.py). Rook ships all of its CRDs in one multi-document
# file; KEDA's ScaledObject CRD is its kubebuilder base file with config/crd's kustomize patch applied.
PINNED_CRDS: tuple[str, ...] = (
    "karpenter/crd/nodepools", "karpenter/crd/nodeclaims", "karpenter/crd/ec2nodeclasses",
    "rook/crds",
    "training-operator/crd/pytorchjobs", "training-operator/crd/tfjobs",
    "prometheus-operator/crd/servicemonitors", "prometheus-operator/crd/podmonitors",
    "prometheus-operator/crd/prometheusrules",
    "keda/crd/scaledobjects",
    "snapshot/crd/volumesnapshotclasses",
    *(k for k in upstream.ARTIFACTS if k.startswith("kueue/crd/")),
)
# kustomize patches applied to a pinned CRD file, as its upstream kustomization does
CRD_PATCHES: dict[str, str] = {"keda/crd/scaledobjects": "keda/crd/scaledobjects-patch"}


@dataclass(frozen=True)
class CrdVersion:
    group: str
    version: str
    kind: str
    scope: str
    schema: dict[str, Any]
    source: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"


def load_crds(crd_dir: Path) -> dict[tuple[str, str], CrdVersion]:
    """Every served version of every CRD under ``crd_dir``, keyed by (apiVersion, kind)."""
    return dict(_load(str(Path(crd_dir).resolve())))


def pinned_crd_documents() -> list[tuple[str, dict[str, Any]]]:
    """(source URL, CRD document) for every pinned CRD, with upstream's kustomize patches applied.

    Raises :class:`infra.upstream.ArtifactUnavailable` when a file cannot be had."""
    out = []
    for key in PINNED_CRDS:
        docs = copy.deepcopy(upstream.read_yaml_docs(key))
        if key in CRD_PATCHES:
            (ops,) = upstream.read_yaml_docs(CRD_PATCHES[key])
            for doc in docs:
                apply_patch(doc, ops)
        url = upstream.artifact(key).url
        out += [(url, d) for d in docs if isinstance(d, dict) and d.get("kind") == "CustomResourceDefinition"]
    return out


def load_pinned_crds() -> dict[tuple[str, str], CrdVersion]:
    """Every served version of every pinned CRD, keyed by (apiVersion, kind)."""
    return dict(_load_pinned(tuple(upstream.mirrors())))


@lru_cache(maxsize=4)
def _load_pinned(_mirrors: tuple[Path, ...]) -> tuple[tuple[tuple[str, str], CrdVersion], ...]:
    out: dict[tuple[str, str], CrdVersion] = {}
    for source, doc in pinned_crd_documents():
        out.update(_versions(doc, source))
    return tuple(out.items())


def _versions(doc: dict[str, Any], source: str) -> dict[tuple[str, str], CrdVersion]:
    out = {}
    spec = doc["spec"]
    for ver in spec.get("versions", []):
        if not ver.get("served", True):
            continue
        schema = (ver.get("schema") or {}).get("openAPIV3Schema") or {}
        crd = CrdVersion(spec["group"], ver["name"], spec["names"]["kind"], spec.get("scope", "Namespaced"),
                         schema, source)
        out[(crd.api_version, crd.kind)] = crd
    return out


@lru_cache(maxsize=8)
def _load(crd_dir: str) -> tuple[tuple[tuple[str, str], CrdVersion], ...]:
    out = {}
    for path in sorted(Path(crd_dir).rglob("*.yaml")):
        for doc in yaml.load_all(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                out.update(_versions(doc, str(path)))
    return tuple(out.items())


def to_json_schema(schema: dict[str, Any], *, root: bool = True) -> dict[str, Any]:
    """OpenAPI v3 structural schema -> a JSON Schema (draft 4 semantics) with strict unknown-field handling."""
    s = copy.deepcopy(schema)
    return _convert(s, root=root)


def _convert(s: dict[str, Any], *, root: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    preserve = s.get("x-kubernetes-preserve-unknown-fields", False)
    for key, value in s.items():
        if key.startswith("x-kubernetes-") or key in ("description", "example", "externalDocs", "nullable", "format",
                                                       "default"):
            continue
        if key == "properties":
            out["properties"] = {k: _convert(v) for k, v in value.items()}
        elif key == "items" and isinstance(value, dict):
            out["items"] = _convert(value)
        elif key == "additionalProperties" and isinstance(value, dict):
            out["additionalProperties"] = _convert(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [_convert(v) for v in value]
        elif key == "not":
            out[key] = _convert(value)
        else:
            out[key] = value
    if s.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["type"] = ["integer", "string"]
    if s.get("nullable") and "type" in out:
        out["type"] = [*([out["type"]] if isinstance(out["type"], str) else out["type"]), "null"]
    if out.get("type") == "object" and "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    if root:
        # metadata is validated by the API server's ObjectMeta, not the CRD: keep it open here
        props = out.setdefault("properties", {})
        props["metadata"] = {"type": "object"}
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
    return out


_VALIDATORS: dict[tuple[str, str, str], Draft4Validator] = {}


def schema_errors(obj: dict[str, Any], crd: CrdVersion) -> Iterator[str]:
    """Each violation as ``field.path: message``."""
    key = (crd.source, crd.api_version, crd.kind)
    validator = _VALIDATORS.get(key)
    if validator is None:
        validator = _VALIDATORS[key] = Draft4Validator(to_json_schema(crd.schema))
    for err in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path))):
        path = ""
        for part in err.absolute_path:
            path += f"[{part}]" if isinstance(part, int) else (("." if path else "") + str(part))
        msg = err.message
        if err.validator == "additionalProperties" and err.validator_value is False:
            msg = f"unknown field(s): {msg.split('(')[-1].rstrip(')')}" if "(" in msg else msg
        yield f"{path or '<root>'}: {msg}"
