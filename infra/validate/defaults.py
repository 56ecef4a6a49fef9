"""Structural-schema defaulting, as the apiserver does it before validating a custom resource.

Order and rules (apiextensions-apiserver semantics, re-implemented):

1. ``null`` values of fields whose schema is not ``nullable: true`` are pruned; if the field has a
   ``default``, the default is applied instead.
2. For every object that exists, each property that is absent and has a ``default`` is set to a
   deep copy of it. A defaulted object is then walked like any other, so defaults of its own
   properties apply too.
3. Defaulting recurses into ``properties``, array ``items`` and map values
   (``additionalProperties``); nothing is defaulted inside fields that have no schema
   (``x-kubernetes-preserve-unknown-fields`` without properties).

The functions mutate the value passed in; callers that must not change their input pass a copy.
"""
from __future__ import annotations

import copy
from typing import Any

__all__ = ["apply_defaults", "prune_nulls"]


def _is_nullable(schema: Any) -> bool:
    return isinstance(schema, dict) and bool(schema.get("nullable"))


def _fix_null_entry(container: dict[str, Any], key: str, schema: Any) -> None:
    """A null in a non-nullable field: replaced by the default, or dropped."""
    if _is_nullable(schema):
        return
    if isinstance(schema, dict) and "default" in schema:
        container[key] = copy.deepcopy(schema["default"])
    else:
        del container[key]


def prune_nulls(value: Any, schema: Any) -> Any:
    """Step 1 only (exposed for tests): recursively prune nulls of non-nullable fields."""
    _walk(value, schema, defaults=False)
    return value


def apply_defaults(value: Any, schema: Any) -> Any:
    """Prune non-nullable nulls and apply ``default`` values in place; returns ``value``."""
    _walk(value, schema, defaults=True)
    return value


def _walk(value: Any, schema: Any, defaults: bool) -> None:
    if not isinstance(schema, dict) or value is None:
        return
    if isinstance(value, dict):
        props = schema.get("properties")
        additional = schema.get("additionalProperties")
        if not isinstance(props, dict):
            props = {}
        if not isinstance(additional, dict):
            additional = None
        for key in [k for k, v in value.items() if v is None]:
            sub = props.get(key, additional)
            if sub is not None:
                if defaults:
                    _fix_null_entry(value, key, sub)
                elif not _is_nullable(sub):
                    del value[key]
        if defaults:
            for key, sub in props.items():
                if key not in value and isinstance(sub, dict) and "default" in sub:
                    value[key] = copy.deepcopy(sub["default"])
        for key, child in value.items():
            sub = props.get(key, additional)
            if sub is not None:
                _walk(child, sub, defaults)
        return
    if isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for child in value:
                _walk(child, items, defaults)
