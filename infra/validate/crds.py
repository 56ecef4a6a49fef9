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

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CRDS = REPO.parent / "shared" / "crds"
# CRDs the platform needs that ../shared/crds does not hold (copied from upstream tags; see SOURCES.md there).
EXTRA_CRDS = Path(__file__).resolve().parent / "extra_crds"


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


@lru_cache(maxsize=8)
def _load(crd_dir: str) -> tuple[tuple[tuple[str, str], CrdVersion], ...]:
    out = {}
    for path in sorted(Path(crd_dir).rglob("*.yaml")):
        for doc in yaml.load_all(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
            if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for ver in spec.get("versions", []):
                if not ver.get("served", True):
                    continue
                schema = (ver.get("schema") or {}).get("openAPIV3Schema") or {}
                crd = CrdVersion(spec["group"], ver["name"], spec["names"]["kind"], spec.get("scope", "Namespaced"),
                                 schema, str(path))
                out[(crd.api_version, crd.kind)] = crd
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
