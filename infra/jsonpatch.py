"""RFC 6902 JSON Patch (``add``, ``replace``, ``remove``), as kustomize applies upstream's patch files.

Pure and small: the platform builds upstream's kustomize output in code (the KEDA CRD patch, the
training operator's webhook patch), so no kustomize binary is needed.
"""
from __future__ import annotations

from typing import Any

__all__ = ["PatchError", "apply_patch"]


class PatchError(ValueError):
    pass


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _walk(doc: Any, tokens: list[str], path: str) -> Any:
    node = doc
    for tok in tokens:
        if isinstance(node, list):
            try:
                node = node[int(tok)]
            except (ValueError, IndexError):
                raise PatchError(f"{path}: no list index {tok!r}") from None
        elif isinstance(node, dict):
            if tok not in node:
                raise PatchError(f"{path}: no key {tok!r}")
            node = node[tok]
        else:
            raise PatchError(f"{path}: {tok!r} is inside a scalar")
    return node


def apply_patch(doc: Any, ops: list[dict[str, Any]]) -> Any:
    """Apply ``ops`` to ``doc`` in place (and return it)."""
    for op in ops:
        kind, path = op.get("op"), op.get("path", "")
        if kind not in ("add", "replace", "remove") or not path.startswith("/"):
            raise PatchError(f"unsupported patch operation {op!r}")
        tokens = [_unescape(t) for t in path[1:].split("/")]
        parent = _walk(doc, tokens[:-1], path)
        last = tokens[-1]
        if isinstance(parent, list):
            idx = len(parent) if last == "-" else int(last)
            if kind == "add":
                parent.insert(idx, op["value"])
            elif idx >= len(parent):
                raise PatchError(f"{path}: no list index {idx}")
            elif kind == "replace":
                parent[idx] = op["value"]
            else:
                del parent[idx]
        elif isinstance(parent, dict):
            if kind != "add" and last not in parent:
                raise PatchError(f"{path}: no key {last!r} to {kind}")
            if kind == "remove":
                del parent[last]
            else:
                parent[last] = op["value"]
        else:
            raise PatchError(f"{path}: parent is a scalar")
    return doc
