"""How much of a set of CRDs' validation rules the offline evaluator (:mod:`infra.check.cel`) supports.

:func:`coverage` compiles every rule (and its ``messageExpression``) of every CRD and says which
ones are unsupported and why: the README's and the tests' measure of what ``check`` really checks.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Iterator

from .cel import UnsupportedRule, iter_rules
from .cel_compile import compile_rule


def _load_crds(crd_dir: Path) -> Iterator[dict[str, Any]]:
    import yaml  # local import: only coverage() reads files

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    files = sorted(p for p in crd_dir.rglob("*") if p.suffix in (".yaml", ".yml", ".json") and p.is_file())
    for path in files:
        with path.open(encoding="utf-8") as fh:
            for doc in yaml.load_all(fh, Loader=loader):
                if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                    yield doc


def coverage(crds: str | Path | Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Compile every rule of every CRD under a folder (or of the given CRD documents).

    Returns ``{kind: {"total": n, "compiled": n, "transition": n, "unsupported": [UnsupportedRule]}}``
    where ``total == compiled + len(unsupported)``; a rule counts as compiled only when its
    ``messageExpression`` (if any) compiles too. ``transition`` counts rules that reference
    ``oldSelf`` (compiled or not). Kinds whose CRD has no rules are present with ``total == 0``.
    """
    result: dict[str, dict[str, Any]] = {}
    docs = _load_crds(Path(crds)) if isinstance(crds, (str, Path)) else crds
    for crd in docs:
        spec = crd.get("spec") or {}
        kind = (spec.get("names") or {}).get("kind") or (crd.get("metadata") or {}).get("name", "?")
        entry = result.setdefault(kind, {"total": 0, "compiled": 0, "transition": 0, "unsupported": []})
        versions = spec.get("versions") or []
        for version in versions:
            schema = (version.get("schema") or {}).get("openAPIV3Schema")
            prefix = f"{version.get('name')}:" if len(versions) > 1 else ""
            for path, rule in iter_rules(schema):
                entry["total"] += 1
                compiled = compile_rule(rule["rule"])
                entry["transition"] += int(compiled.transition)
                reason = compiled.reason
                expression = rule.get("messageExpression")
                if reason is None and isinstance(expression, str) and expression.strip():
                    message_compiled = compile_rule(expression)
                    if message_compiled.reason is not None:
                        reason = f"messageExpression: {message_compiled.reason}"
                if reason is None:
                    entry["compiled"] += 1
                else:
                    entry["unsupported"].append(UnsupportedRule(prefix + path, rule["rule"], reason))
    return result
