"""What every mapping shares: the warnings it leaves, the one-line errors of bad input, typed field
reads, Go-style durations and the placeholders guides leave in their manifests (pure)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterator

# `<cluster-name>`, `${CLUSTER_NAME}`, `$CLUSTER_NAME`: what the guides this platform grew from use
PLACEHOLDER_RE = re.compile(r"<[A-Za-z][A-Za-z0-9_.-]*>|\$\{[A-Za-z_][A-Za-z0-9_]*\}|\$[A-Z_][A-Z0-9_]*")
# Scripts hold shell variables ($HOME, ${VAR}) that are no placeholders: userData is neither resolved nor scanned.
SCRIPT_KEYS = ("userData",)
# Metadata kept on the migrated object; the rest (uid, resourceVersion, managedFields, status, ...)
# belongs to the old object on its cluster, and last-applied-configuration names the old API.
KEPT_METADATA = ("name", "labels", "annotations")
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


class MigrationError(ValueError):
    """Input that cannot be migrated; the message is one line naming the document and the field."""


@dataclass(frozen=True)
class Note:
    """A warning about one migrated object: a field with no v1 equivalent, or a change of behaviour."""

    resource: str  # Kind/name of the object it is about (the output's, or the input's when left out)
    message: str

    def __str__(self) -> str:
        return f"{self.resource}: {self.message}"


@dataclass
class Ctx:
    """One input object being migrated: where it came from (for errors) and the notes it leaves."""

    source: str         # "seed.yaml, document 1"
    resource: str       # the input's Kind/name (errors name it)
    cluster: str | None
    target: str = ""    # the output's Kind/name the next warnings are about (default: the input's)
    notes: list[Note] = field(default_factory=list)

    def warn(self, message: str, resource: str | None = None) -> None:
        self.notes.append(Note(resource or self.target or self.resource, message))

    def fail(self, path: str, message: str) -> MigrationError:
        return MigrationError(f"{self.source}: {self.resource}: {path}: {message}")

    def mapping(self, obj: dict[str, Any], key: str, path: str) -> dict[str, Any]:
        value = obj.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(f"{path}.{key}" if path else key, f"expected a mapping, got {type(value).__name__}")
        return value

    def str_map(self, obj: dict[str, Any], key: str, path: str) -> dict[str, str]:
        """A string-to-string map (selectors, tags); YAML numbers and booleans become their text."""
        out = {}
        for k, v in self.mapping(obj, key, path).items():
            if isinstance(v, (dict, list)) or v is None:
                raise self.fail(f"{path}.{key}.{k}", f"expected a string, got {type(v).__name__}")
            out[str(k)] = str(v).lower() if isinstance(v, bool) else str(v)
        return out

    def seconds(self, obj: dict[str, Any], key: str, path: str) -> int | None:
        value = obj.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(f"{path}.{key}", f"expected a whole number of seconds, got {value!r}")
        return value

    def listing(self, obj: dict[str, Any], key: str, path: str) -> list[Any]:
        value = obj.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(f"{path}.{key}", f"expected a list, got {type(value).__name__}")
        return value


def duration(seconds: int) -> str:
    """Seconds as the Go duration string Karpenter v1 takes (``30s``, ``2m``, ``720h``, ``1h30m``)."""
    if seconds == 0:
        return "0s"
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return "".join(f"{n}{unit}" for n, unit in ((h, "h"), (m, "m"), (s, "s")) if n)


def metadata(obj: dict[str, Any]) -> dict[str, Any]:
    """The input's name, labels and annotations, for the migrated object."""
    meta = obj.get("metadata") or {}
    out = {k: meta[k] for k in KEPT_METADATA if meta.get(k) not in (None, {})}
    annotations = {k: v for k, v in (out.get("annotations") or {}).items() if k != LAST_APPLIED}
    if annotations:
        out["annotations"] = annotations
    else:
        out.pop("annotations", None)
    return out


def is_cluster_placeholder(text: str) -> bool:
    return "cluster" in text.lower()


def resolve_placeholders(value: Any, cluster: str) -> Any:
    """A copy of ``value`` with every cluster-name placeholder (in keys and values) replaced by ``cluster``."""
    def sub(text: str) -> str:
        return PLACEHOLDER_RE.sub(lambda m: cluster if is_cluster_placeholder(m[0]) else m[0], text)

    if isinstance(value, dict):
        return {sub(k) if isinstance(k, str) else k: v if k in SCRIPT_KEYS else resolve_placeholders(v, cluster)
                for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_placeholders(v, cluster) for v in value]
    return sub(value) if isinstance(value, str) else value


def find_placeholders(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(field path, placeholder) for every placeholder left in a key or a value."""
    if isinstance(value, dict):
        for k, v in value.items():
            plain = re.fullmatch(r"[A-Za-z0-9_-]+", str(k))
            sub = (f"{path}.{k}" if path else str(k)) if plain else f'{path}["{k}"]'
            for m in PLACEHOLDER_RE.finditer(str(k)):
                yield sub, m[0]
            if k not in SCRIPT_KEYS:
                yield from find_placeholders(v, sub)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from find_placeholders(v, f"{path}[{i}]")
    elif isinstance(value, str):
        for m in PLACEHOLDER_RE.finditer(value):
            yield path, m[0]
