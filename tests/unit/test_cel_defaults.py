"""Tests for structural defaulting (infra/validate/defaults.py)."""
from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from infra.validate.defaults import apply_defaults, prune_nulls  # noqa: E402

SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "mode": {"type": "string", "default": "strict"},
                "replicas": {"type": "integer", "default": 1},
                "settings": {
                    "type": "object",
                    "default": {},
                    "properties": {
                        "level": {"type": "integer", "default": 3},
                        "name": {"type": "string"},
                    },
                },
                "optional": {
                    "type": "object",
                    "properties": {"inner": {"type": "string", "default": "x"}},
                },
                "items": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"weight": {"type": "integer", "default": 10}, "name": {"type": "string"}},
                    },
                },
                "labels": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "properties": {"policy": {"type": "string", "default": "mute"}},
                    },
                },
                "nullableField": {"type": "string", "nullable": True},
                "plain": {"type": "string"},
                "withDefault": {"type": "string", "default": "d"},
            },
        }
    },
}


def test_absent_fields_get_defaults_and_defaulted_objects_are_defaulted_too():
    obj = {"spec": {}}
    apply_defaults(obj, SCHEMA)
    assert obj == {"spec": {"mode": "strict", "replicas": 1, "settings": {"level": 3}, "withDefault": "d"}}


def test_present_fields_are_kept():
    obj = {"spec": {"mode": "loose", "settings": {"level": 1}}}
    apply_defaults(obj, SCHEMA)
    assert obj["spec"]["mode"] == "loose" and obj["spec"]["settings"] == {"level": 1}


def test_objects_without_default_are_not_created_but_defaulted_when_present():
    obj = {"spec": {}}
    apply_defaults(obj, SCHEMA)
    assert "optional" not in obj["spec"]
    obj = {"spec": {"optional": {}}}
    apply_defaults(obj, SCHEMA)
    assert obj["spec"]["optional"] == {"inner": "x"}


def test_defaults_apply_inside_array_items_and_map_values():
    obj = {"spec": {"items": [{"name": "a"}, {"name": "b", "weight": 2}], "labels": {"A": {}, "B": {"policy": "unmute"}}}}
    apply_defaults(obj, SCHEMA)
    assert obj["spec"]["items"] == [{"name": "a", "weight": 10}, {"name": "b", "weight": 2}]
    assert obj["spec"]["labels"] == {"A": {"policy": "mute"}, "B": {"policy": "unmute"}}


def test_nulls_are_pruned_unless_nullable_and_replaced_by_defaults():
    obj = {"spec": {"plain": None, "nullableField": None, "withDefault": None, "mode": None}}
    apply_defaults(obj, SCHEMA)
    spec = obj["spec"]
    assert "plain" not in spec
    assert spec["nullableField"] is None
    assert spec["withDefault"] == "d" and spec["mode"] == "strict"


def test_prune_nulls_alone_does_not_default():
    obj = {"spec": {"plain": None, "nullableField": None}}
    prune_nulls(obj, SCHEMA)
    assert obj == {"spec": {"nullableField": None}}


def test_defaults_are_deep_copies():
    obj1, obj2 = {"spec": {}}, {"spec": {}}
    apply_defaults(obj1, SCHEMA)
    apply_defaults(obj2, SCHEMA)
    obj1["spec"]["settings"]["level"] = 99
    assert obj2["spec"]["settings"]["level"] == 3
    assert SCHEMA["properties"]["spec"]["properties"]["settings"]["default"] == {}


def test_unknown_fields_and_non_objects_are_left_alone():
    obj = {"spec": {"unknown": {"x": None}}, "other": 1}
    apply_defaults(obj, SCHEMA)
    assert obj["spec"]["unknown"] == {"x": None} and obj["other"] == 1
    assert apply_defaults("text", SCHEMA) == "text"
    assert apply_defaults({"spec": "wrong type"}, SCHEMA) == {"spec": "wrong type"}
