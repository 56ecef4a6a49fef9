"""Structural-schema defaulting, as the apiserver does it before validating a custom resource.

Order and rules (apiextensions-apiserver semantics, re-implemented from
``pkg/apiserver/schema/defaulting``: ``PruneNonNullableNullsWithoutDefaults`` then ``Default``):

1. :func:`prune_nulls`: every ``null`` *map entry* (a property, or a value of an
   ``additionalProperties`` map) whose schema is neither ``nullable: true`` nor has a ``default``
   is removed. Nulls of nullable fields stay, and so do nulls of fields with a ``default``: step 2
   defaults them. Array elements are never removed (a ``null`` item is left for step 2 and, when
   it has no default, for schema validation to reject). Fields without a schema are left alone.
2. :func:`default_values`: for every object that exists, each property that is absent, or
   ``null`` while not ``nullable``, and has a ``default`` is set to a deep copy of it (a
   ``nullable`` field that is explicitly ``null`` keeps its ``null``); the same for a ``null``
   value of an ``additionalProperties`` map and a ``null`` array item whose (non-nullable) schema
   has a ``default``. Then every value is walked, defaulted ones included, so defaults of their
   own properties apply too. Defaulting recurses into ``properties``, array ``items`` and map
   values (``additionalProperties``); nothing is defaulted inside fields that have no schema
   (``x-kubernetes-preserve-unknown-fields`` without properties).

:func:`apply_defaults` runs 1 then 2 over the whole object, as the apiserver does on create (after
pruning unknown fields, which the checker reports as errors instead). :func:`as_stored` does the
same on a deep copy: what the apiserver would validate (schema, then CEL) and store.

The functions other than :func:`as_stored` mutate the value passed in.
"""
from __future__ import annotations

import copy
from typing import Any

__all__ = ["apply_defaults", "as_stored", "default_values", "prune_nulls"]


def _schema(s: Any) -> dict[str, Any] | None:
    return s if isinstance(s, dict) else None


def _nullable(s: dict[str, Any] | None) -> bool:
    return bool(s is not None and s.get("nullable"))


def _has_default(s: dict[str, Any] | None) -> bool:
    # a `default: null` is no default (the apiserver's Default.Object == nil)
    return s is not None and s.get("default") is not None


def _field_schema(key: str, s: dict[str, Any] | None) -> dict[str, Any] | None:
    """The schema of a map entry: its property's, else the additionalProperties schema."""
    if s is None:
        return None
    props = s.get("properties")
    if isinstance(props, dict) and key in props:
        return _schema(props[key])
    return _schema(s.get("additionalProperties"))


def prune_nulls(value: Any, schema: Any) -> Any:
    """Step 1: drop ``null`` map entries whose schema is neither nullable nor defaulted (in place)."""
    s = _schema(schema)
    if isinstance(value, dict):
        for key in list(value):
            sub = _field_schema(key, s)
            child = value[key]
            if child is None and sub is not None and not _nullable(sub) and not _has_default(sub):
                del value[key]
            else:
                prune_nulls(child, sub)
    elif isinstance(value, list):
        items = _schema(s.get("items")) if s is not None else None
        for child in value:
            prune_nulls(child, items)
    return value


def default_values(value: Any, schema: Any) -> Any:
    """Step 2: apply ``default`` values in place (absent fields and non-nullable nulls)."""
    s = _schema(schema)
    if s is None:
        return value
    if isinstance(value, dict):
        props = s.get("properties")
        props = props if isinstance(props, dict) else {}
        for key, sub in props.items():
            sub = _schema(sub)
            if not _has_default(sub):
                continue
            if key not in value or (value[key] is None and not _nullable(sub)):
                value[key] = copy.deepcopy(sub["default"])
        additional = _schema(s.get("additionalProperties"))
        for key in list(value):
            if key in props:
                default_values(value[key], props[key])
            elif additional is not None:
                if value[key] is None and not _nullable(additional) and _has_default(additional):
                    value[key] = copy.deepcopy(additional["default"])
                default_values(value[key], additional)
    elif isinstance(value, list):
        items = _schema(s.get("items"))
        if items is not None:
            for i, child in enumerate(value):
                if child is None and not _nullable(items) and _has_default(items):
                    value[i] = copy.deepcopy(items["default"])
                default_values(value[i], items)
    return value


def apply_defaults(value: Any, schema: Any) -> Any:
    """Steps 1 and 2, in place; returns ``value``."""
    prune_nulls(value, schema)
    default_values(value, schema)
    return value


def as_stored(obj: Any, schema: Any) -> Any:
    """A deep copy of ``obj`` with nulls pruned and defaults applied, as the apiserver validates it."""
    return apply_defaults(copy.deepcopy(obj), schema)
