"""Tests for structural defaulting (infra/check/defaults.py)."""
from __future__ import annotations

import sys
from pathlib import Path
import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from infra.check.defaults import apply_defaults, prune_nulls  # noqa: E402

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


# --- apiextensions order: (1) prune non-nullable nulls without default, (2) default ---------------

from infra.check.defaults import as_stored, default_values  # noqa: E402

ORDER = {
    "type": "object",
    "properties": {
        "list": {"type": "array", "items": {"type": "string", "default": "item-default"}},
        "objs": {"type": "array",
                 "items": {"type": "object", "properties": {"a": {"type": "string", "default": "A"},
                                                            "b": {"type": "string", "nullable": True},
                                                            "c": {"type": "string", "nullable": True,
                                                                  "default": "C"},
                                                            "d": {"type": "string"}}}},
        "plainList": {"type": "array", "items": {"type": "object", "properties": {"x": {"type": "string"}}}},
        "nullableWithDefault": {"type": "string", "nullable": True, "default": "nd"},
        "mapWithDefault": {"type": "object", "additionalProperties": {"type": "string", "default": "mv"}},
        "mapNullable": {"type": "object",
                        "additionalProperties": {"type": "string", "nullable": True, "default": "mv"}},
        "mapPlain": {"type": "object", "additionalProperties": {"type": "string"}},
        "mapOfObjects": {"type": "object", "additionalProperties": {
            "type": "object", "properties": {"policy": {"type": "string", "default": "p"},
                                             "extra": {"type": "string"}}}},
        "open": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
}


def test_prune_keeps_nulls_that_a_default_will_fill_and_nullable_ones():
    obj = {"objs": [{"a": None, "b": None, "c": None, "d": None, "e": None}],
           "nullableWithDefault": None, "mapWithDefault": {"k": None}, "mapPlain": {"k": None, "j": "v"}}
    prune_nulls(obj, ORDER)
    # a: defaulted later; b, c: nullable; d: neither -> dropped; e: no schema -> left alone
    assert obj["objs"] == [{"a": None, "b": None, "c": None, "e": None}]
    assert obj["nullableWithDefault"] is None and obj["mapWithDefault"] == {"k": None}
    assert obj["mapPlain"] == {"j": "v"}


def test_nulls_inside_arrays_are_never_removed_and_take_the_items_default():
    obj = {"list": ["x", None], "plainList": [None, {"x": None}]}
    apply_defaults(obj, ORDER)
    assert obj["list"] == ["x", "item-default"]
    # an item schema without default: the null stays (schema validation rejects it), its fields are pruned
    assert obj["plainList"] == [None, {}]


def test_nullable_with_default_keeps_an_explicit_null_and_defaults_when_absent():
    obj = {"nullableWithDefault": None, "objs": [{"c": None}, {}]}
    apply_defaults(obj, ORDER)
    assert obj["nullableWithDefault"] is None
    assert obj["objs"] == [{"a": "A", "c": None}, {"a": "A", "c": "C"}]
    obj = {}
    apply_defaults(obj, ORDER)
    assert obj == {"nullableWithDefault": "nd"}


def test_defaults_inside_additional_properties():
    obj = {"mapWithDefault": {"k": None, "j": "set"}, "mapNullable": {"k": None},
           "mapPlain": {"k": None}, "mapOfObjects": {"one": {}, "two": {"policy": "q", "extra": None}}}
    apply_defaults(obj, ORDER)
    assert obj["mapWithDefault"] == {"k": "mv", "j": "set"}  # a null map value takes the value default
    assert obj["mapNullable"] == {"k": None}                 # ... unless the value schema is nullable
    assert obj["mapPlain"] == {}                             # no default: pruned
    assert obj["mapOfObjects"] == {"one": {"policy": "p"}, "two": {"policy": "q"}}


def test_nothing_is_defaulted_or_pruned_inside_fields_without_a_schema():
    obj = {"open": {"x": None, "list": [None]}, "objs": [{"e": {"deep": None}}]}
    apply_defaults(obj, ORDER)
    assert obj["open"] == {"x": None, "list": [None]}
    assert obj["objs"] == [{"a": "A", "c": "C", "e": {"deep": None}}]


def test_default_values_alone_fills_non_nullable_nulls_prune_alone_never_defaults():
    obj = {"objs": [{"a": None, "d": None}]}
    default_values(obj, ORDER)
    assert obj["objs"] == [{"a": "A", "c": "C", "d": None}]  # d is step 1's job
    obj = {"objs": [{"a": None, "d": None}]}
    prune_nulls(obj, ORDER)
    assert obj["objs"] == [{"a": None}]


def test_as_stored_works_on_a_copy():
    obj = {"objs": [{"d": None}], "mapPlain": {"k": None}}
    stored = as_stored(obj, ORDER)
    assert obj == {"objs": [{"d": None}], "mapPlain": {"k": None}}
    assert stored == {"objs": [{"a": "A", "c": "C"}], "mapPlain": {}, "nullableWithDefault": "nd"}


# --- check: schema, CEL and policy all see the object as the API server defaults it ---------------

import copy as _copy  # noqa: E402

NODECLASS = {
    "apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass", "metadata": {"name": "default"},
    "spec": {"role": "node-role", "amiSelectorTerms": [{"alias": "al2023@v20251112"}],
             "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "dev"}}],
             "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "dev"}}]},
}
NODEPOOL = {
    "apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "gpu"},
    "spec": {"template": {"spec": {
        "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
        "requirements": [{"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": ["g5"]}]}},
        "limits": {"cpu": "64"}},
}


def _check(*objs):
    from infra.check.objects import validate_objects

    stored: list = []
    report = validate_objects(list(objs), k8s_version="1.34", crd_dir=None, stored=stored)
    return [str(f) for f in report.findings], stored


def test_check_drops_a_null_the_go_client_sends_before_the_schema_step():
    nc = _copy.deepcopy(NODECLASS)
    nc["spec"]["capacityReservationSelectorTerms"] = None  # a nil slice without omitempty
    found, stored = _check(nc)
    assert found == []
    assert "capacityReservationSelectorTerms" not in stored[0]["spec"]
    assert nc["spec"]["capacityReservationSelectorTerms"] is None  # the caller's object is untouched


def test_check_validates_the_schema_on_the_defaulted_object():
    np_ = _copy.deepcopy(NODEPOOL)
    np_["spec"]["disruption"] = {"consolidateAfter": "30s", "budgets": [{"schedule": "0 9 * * *",
                                                                           "duration": "8h"}]}
    found, stored = _check(np_)
    assert found == []  # `nodes` is required, but the server defaults it to 10% first
    assert stored[0]["spec"]["disruption"]["budgets"] == [{"schedule": "0 9 * * *", "duration": "8h",
                                                           "nodes": "10%"}]
    # a null takes the default too
    np_["spec"]["disruption"]["budgets"][0]["nodes"] = None
    assert _check(np_)[0] == []
    # and what the default cannot fix is still reported, once, by the schema step
    np_["spec"]["disruption"]["budgets"][0]["nodes"] = "-1"
    found, _ = _check(np_)
    assert len(found) == 1 and "[crd-schema]" in found[0] and "budgets[0].nodes" in found[0], found


def test_check_cel_sees_defaults_too():
    # disruption is absent: the server defaults it to {consolidateAfter: 0s, budgets: [{nodes: 10%}], ...}
    found, stored = _check(NODEPOOL)
    assert found == [] and stored[0]["spec"]["disruption"]["budgets"] == [{"nodes": "10%"}]
    assert stored[0]["spec"]["disruption"]["consolidationPolicy"] == "WhenEmptyOrUnderutilized"


def test_check_stored_keeps_order_and_core_objects_as_given():
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"},
          "data": {"k": "v"}}
    found, stored = _check(cm, NODECLASS)
    assert found == [] and stored[0] is cm and stored[1]["kind"] == "EC2NodeClass"
    assert stored[1]["spec"]["metadataOptions"]["httpTokens"] == "required"


def test_check_manifests_policy_judges_the_defaulted_nodeclass(tmp_path):
    import yaml as _yaml

    from infra.check.run import check_manifests

    def policy(obj):
        folder = tmp_path / obj["metadata"]["name"]
        folder.mkdir()
        (folder / "nc.yaml").write_text(_yaml.safe_dump(obj))
        report = check_manifests(folder, None, "1.34", with_checkov=False)
        assert [f for f in report.findings if f.check != "policy"] == []
        return [f.message for f in report.findings]

    omitted = _copy.deepcopy(NODECLASS)
    omitted["metadata"]["name"] = "omitted"
    assert policy(omitted) == []  # httpTokens left out: defaulted to required
    explicit = _copy.deepcopy(NODECLASS)
    explicit["metadata"]["name"] = "explicit"
    explicit["spec"]["metadataOptions"] = {"httpTokens": "optional"}
    found = policy(explicit)
    assert len(found) == 1 and found[0].startswith("imdsv2-required: ") and "'optional'" in found[0], found
