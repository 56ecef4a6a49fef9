"""Semantics of validate() on synthetic schemas: binding, typing, paths, messages, skips, errors."""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from infra.check.cel import (  # noqa: E402
    CelReport,
    RuleFailure,
    UnsupportedRule,
    count_rules,
    iter_rules,
    validate,
)
from infra.check.cel_compile import compile_rule  # noqa: E402
from infra.check.cel_values import to_cel_value  # noqa: E402


def rules(*items):
    return {"x-kubernetes-validations": [r if isinstance(r, dict) else {"rule": r} for r in items]}


def crd(spec_schema: dict, **root_extra) -> dict:
    """A CR schema with the usual apiVersion/kind/metadata and the given spec schema."""
    return {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec_schema,
        },
        **root_extra,
    }


def obj(spec=None, **extra):
    out = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "labels": {"a": "b"}}}
    if spec is not None:
        out["spec"] = spec
    out.update(extra)
    return out


# --- interface --------------------------------------------------------------------------------

def test_result_types_match_the_published_interface():
    assert [f.name for f in dataclasses.fields(RuleFailure)] == ["path", "message", "rule"]
    assert [f.name for f in dataclasses.fields(UnsupportedRule)] == ["path", "rule", "reason"]
    assert [f.name for f in dataclasses.fields(CelReport)] == ["checked", "skipped", "unsupported", "failures"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        RuleFailure("a", "b", "c").path = "x"  # type: ignore[misc]
    report = CelReport()
    assert (report.checked, report.skipped, report.unsupported, report.failures) == (0, 0, [], [])


def test_merge():
    a = CelReport(checked=2, skipped=1, failures=[RuleFailure("spec", "m", "r")])
    b = CelReport(checked=3, unsupported=[UnsupportedRule("spec", "r2", "why")], failures=[RuleFailure("", "n", "r3")])
    a.merge(b)
    assert a.checked == 5 and a.skipped == 1
    assert [f.message for f in a.failures] == ["m", "n"] and len(a.unsupported) == 1
    assert not a.ok and CelReport(checked=1).ok


# --- binding and walking ----------------------------------------------------------------------

SPEC = {
    "type": "object",
    "properties": {
        "replicas": {"type": "integer", **rules({"rule": "self >= 0", "message": "replicas must be non-negative"})},
        "ratio": {"type": "number"},
        "name": {"type": "string"},
        "tags": {"type": "object", "additionalProperties": {"type": "string", **rules({"rule": "self != ''", "message": "empty tag value"})}},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"key": {"type": "string"}, "values": {"type": "array", "items": {"type": "string"}}},
                **rules({"rule": "has(self.key)", "message": "key required"}),
            },
        },
    },
    **rules(
        {"rule": "!has(self.name) || self.name.startsWith('w')", "message": "name must start with w"},
    ),
}


def test_valid_object_passes_and_counts_each_rule_node_evaluation():
    report = validate(obj({"replicas": 2, "name": "wide", "tags": {"a": "1", "b": "2"}, "items": [{"key": "k"}, {"key": "l"}]}), crd(SPEC))
    assert report.failures == [] and report.unsupported == []
    # spec rule + replicas + 2 tag values + 2 items
    assert report.checked == 6


def test_rules_on_absent_fields_are_not_evaluated():
    report = validate(obj({}), crd(SPEC))
    assert report.checked == 1  # only the spec-level rule
    assert validate(obj(), crd(SPEC)).checked == 0  # no spec at all


def test_paths_for_fields_list_items_and_map_values():
    report = validate(obj({"replicas": -1, "name": "x", "tags": {"team": ""}, "items": [{"key": "a"}, {}]}), crd(SPEC))
    got = sorted((f.path, f.message) for f in report.failures)
    assert got == [
        ("spec", "name must start with w"),
        ("spec.items[1]", "key required"),
        ("spec.replicas", "replicas must be non-negative"),
        ("spec.tags[team]", "empty tag value"),
    ]


def test_root_rules_have_empty_path_and_see_only_name_and_generate_name_in_metadata():
    schema = crd({"type": "object"}, **rules(
        {"rule": "self.metadata.name == 'w'", "message": "name"},
        {"rule": "!has(self.metadata.labels)", "message": "labels are not visible"},
        {"rule": "self.apiVersion == 'example.com/v1' && self.kind == 'Widget'", "message": "type meta"},
        {"rule": "self.metadata.name.size() > 5", "message": "too short"},
    ))
    report = validate(obj({}), schema)
    assert report.checked == 4
    assert report.failures == [RuleFailure("", "too short", "self.metadata.name.size() > 5")]


def test_generate_name_visible_and_missing_name_is_an_evaluation_error():
    schema = crd({"type": "object"}, **rules({"rule": "self.metadata.name.startsWith('w')", "message": "prefix"}))
    o = obj({})
    o["metadata"] = {"generateName": "w-"}
    report = validate(o, schema)
    assert report.failures == [RuleFailure("", "no such key: name evaluating rule: prefix", "self.metadata.name.startsWith('w')")]
    schema2 = crd({"type": "object"}, **rules("self.metadata.generateName == 'w-'"))
    assert validate(o, schema2).failures == []


def test_unknown_fields_are_pruned_but_preserved_where_the_schema_says_so():
    spec = {
        "type": "object",
        "properties": {
            "known": {"type": "string"},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, **rules("has(self.anything) && self.anything.deep == 1")},
        },
        **rules({"rule": "!has(self.unknown)", "message": "unknown fields are pruned by the apiserver"}),
    }
    report = validate(obj({"known": "k", "unknown": 1, "free": {"anything": {"deep": 1}}}), crd(spec))
    assert report.failures == [] and report.checked == 2


def test_nullable_null_is_not_evaluated_and_non_nullable_null_is_pruned():
    spec = {
        "type": "object",
        "properties": {
            "a": {"type": "object", "nullable": True, **rules("false")},
            "b": {"type": "string", **rules("false")},
        },
        **rules({"rule": "has(self.a) && !has(self.b)", "message": "a kept as null, b pruned"}),
    }
    report = validate(obj({"a": None, "b": None}), crd(spec))
    assert report.checked == 1 and report.failures == []


def test_input_object_is_not_modified():
    spec = {"type": "object", "properties": {"mode": {"type": "string", "default": "x"}, "n": {"type": "string"}}, **rules("true")}
    o = obj({"n": None})
    validate(o, crd(spec))
    assert o["spec"] == {"n": None}


# --- typing -----------------------------------------------------------------------------------

def test_numbers_are_doubles_integers_are_ints_int_or_string_is_either():
    spec = {
        "type": "object",
        "properties": {
            "ratio": {"type": "number"},
            "count": {"type": "integer"},
            "ios": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
            "ios2": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
        },
        **rules(
            "type(self.ratio) == double && self.ratio == 1.0",
            "type(self.count) == int && self.count + 1 == 4",
            "type(self.ios) == int && self.ios == 5",
            "type(self.ios2) == string && self.ios2.endsWith('%')",
        ),
    }
    report = validate(obj({"ratio": 1, "count": 3.0, "ios": 5, "ios2": "50%"}), crd(spec))
    assert report.checked == 4 and report.failures == [] and report.unsupported == []


def test_string_formats_become_timestamps_durations_and_bytes():
    spec = {
        "type": "object",
        "properties": {
            "at": {"type": "string", "format": "date-time"},
            "day": {"type": "string", "format": "date"},
            "timeout": {"type": "string", "format": "duration"},
            "blob": {"type": "string", "format": "byte"},
            "plain": {"type": "string"},
        },
        **rules(
            "self.at < timestamp('2030-01-01T00:00:00Z') && self.at.getFullYear() == 2025",
            "self.day == timestamp('2025-02-03T00:00:00Z')",
            "self.timeout == duration('1h30m')",
            "self.blob == b'hello'",
            "type(self.plain) == string",
        ),
    }
    report = validate(obj({"at": "2025-06-01T12:00:00Z", "day": "2025-02-03", "timeout": "1h30m",
                           "blob": "aGVsbG8=", "plain": "2025-06-01T12:00:00Z"}), crd(spec))
    assert report.failures == [] and report.unsupported == [] and report.checked == 5


def test_to_cel_value_handles_yaml_datetime_objects():
    import datetime as dt

    schema = {"type": "object", "properties": {"at": {"type": "string", "format": "date-time"}, "s": {"type": "string"}}}
    value = to_cel_value({"at": dt.datetime(2025, 1, 1), "s": dt.date(2025, 1, 2)}, schema)
    assert value["at"].tzinfo is not None and value["s"] == "2025-01-02"


def test_string_size_counts_code_points():
    spec = {"type": "object", "properties": {"name": {"type": "string", **rules("size(self) <= 3", "self.size() == 3")}}}
    report = validate(obj({"name": "héé"}), crd(spec))
    assert report.checked == 2 and report.failures == []


def test_embedded_resource_metadata_is_reduced_like_the_root():
    spec = {
        "type": "object",
        "properties": {
            "template": {
                "type": "object",
                "x-kubernetes-embedded-resource": True,
                "x-kubernetes-preserve-unknown-fields": True,
                **rules("self.kind == 'Pod' && self.metadata.name == 'p' && !has(self.metadata.labels) && has(self.spec)"),
            }
        },
    }
    o = obj({"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"x": "y"}}, "spec": {}}})
    report = validate(o, crd(spec))
    assert report.checked == 1 and report.failures == []


# --- transition rules -------------------------------------------------------------------------

def test_transition_rules_are_skipped_not_checked():
    spec = {
        "type": "object",
        "properties": {"queue": {"type": "string", **rules({"rule": "self == oldSelf", "message": "immutable"}, "self != ''")}},
        **rules({"rule": "!has(oldSelf.x) || has(self.x)", "message": "x cannot be removed"}),
    }
    report = validate(obj({"queue": "gpu"}), crd(spec))
    assert report.skipped == 2 and report.checked == 1 and report.failures == [] and report.unsupported == []


def test_a_string_mentioning_old_self_is_not_a_transition_rule():
    spec = {"type": "object", "properties": {"s": {"type": "string", **rules("self != 'oldSelf'")}}}
    report = validate(obj({"s": "x"}), crd(spec))
    assert report.checked == 1 and report.skipped == 0


def test_optional_old_self_rules_run_on_create_with_no_old_value():
    spec = {
        "type": "object",
        "properties": {
            "gen": {"type": "integer", **rules(
                {"rule": "!oldSelf.hasValue() || self >= oldSelf.value()", "optionalOldSelf": True, "message": "cannot decrease"},
                {"rule": "oldSelf.hasValue() || self < 10", "optionalOldSelf": True, "message": "must start below 10"},
            )},
        },
    }
    report = validate(obj({"gen": 12}), crd(spec))
    assert report.skipped == 0 and report.checked == 2
    assert report.failures == [RuleFailure("spec.gen", "must start below 10", "oldSelf.hasValue() || self < 10")]


# --- unsupported rules ------------------------------------------------------------------------

def test_unknown_function_is_unsupported_and_not_counted():
    spec = {"type": "object", "properties": {"s": {"type": "string", **rules("self.frobnicate() == 1", "self != ''")}}}
    report = validate(obj({"s": "x"}), crd(spec))
    assert report.checked == 1 and report.failures == []
    assert len(report.unsupported) == 1
    u = report.unsupported[0]
    assert u.path == "spec.s" and u.rule == "self.frobnicate() == 1" and "frobnicate" in u.reason


def test_rule_that_does_not_compile_is_unsupported():
    spec = {"type": "object", **rules("self.a +", "has(self.a) ||")}
    report = validate(obj({}), crd(spec))
    assert report.checked == 0 and len(report.unsupported) == 2
    assert all(u.reason.startswith("compile error") for u in report.unsupported)


@pytest.mark.parametrize("rule, fragment", [
    ("self.?a.orValue(1) == 1", "'.?'"),
    ("self.all(k, v, v != '')", "two-variable"),
    ("undeclaredThing == 1", "undeclaredThing"),
])
def test_other_unsupported_constructs(rule, fragment):
    spec = {"type": "object", "additionalProperties": {"type": "string"}, **rules(rule)}
    report = validate(obj({"a": "b"}), crd(spec))
    assert report.checked == 0 and len(report.unsupported) == 1 and fragment in report.unsupported[0].reason


def test_runtime_type_mismatch_is_unsupported_and_non_bool_result_too():
    spec = {
        "type": "object",
        "properties": {"v": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}},
        **rules("self.v + 1 > 0", "self.v"),
    }
    report = validate(obj({"v": "10%"}), crd(spec))
    assert report.checked == 0 and len(report.unsupported) == 2
    assert "overload" in report.unsupported[0].reason and "not bool" in report.unsupported[1].reason


def test_compiled_rules_are_cached():
    assert compile_rule("self.x == 1") is compile_rule("self.x == 1")


# --- evaluation errors ------------------------------------------------------------------------

def test_evaluation_errors_are_failures_worded_like_the_apiserver():
    spec = {
        "type": "object",
        "properties": {"l": {"type": "array", "items": {"type": "string"}}, "q": {"type": "string"}},
        **rules(
            {"rule": "self.missing == 1", "message": "needs missing"},
            "self.l[5] == 'x'",
            {"rule": "quantity(self.q).isInteger()", "message": "q must be an integer quantity"},
            {"rule": "int(self.q) > 0", "message": "q must be an int"},
        ),
    }
    report = validate(obj({"l": ["a"], "q": "1.5x"}), crd(spec))
    assert report.checked == 4 and report.unsupported == []
    messages = [f.message for f in report.failures]
    assert messages[0] == "no such key: missing evaluating rule: needs missing"
    assert messages[1].startswith("index out of bounds") and messages[1].endswith("evaluating rule: self.l[5] == 'x'")
    assert "parse quantity" in messages[2] and messages[2].endswith("evaluating rule: q must be an integer quantity")
    assert messages[3].endswith("evaluating rule: q must be an int")


# --- messages ---------------------------------------------------------------------------------

def test_default_message_is_failed_rule():
    spec = {"type": "object", **rules("  self.size() > 1  ")}
    report = validate(obj({}), crd(spec))
    assert report.failures[0].message == "failed rule: self.size() > 1"


def test_message_expression_is_evaluated_and_falls_back():
    spec = {
        "type": "object",
        "properties": {"max": {"type": "integer"}, "n": {"type": "integer"}},
        **rules(
            {"rule": "self.n <= self.max", "message": "static", "messageExpression": "'n must be at most ' + string(self.max) + ', got ' + string(self.n)"},
            {"rule": "self.n <= self.max", "message": "static fallback", "messageExpression": "self.nothing + 'x'"},
            {"rule": "self.n <= self.max", "message": "blank fallback", "messageExpression": "'  '"},
            {"rule": "self.n <= self.max", "message": "multiline fallback", "messageExpression": "'a\\nb'"},
            {"rule": "self.n <= self.max", "messageExpression": "self.n"},  # not a string -> default
        ),
    }
    report = validate(obj({"max": 3, "n": 5}), crd(spec))
    assert [f.message for f in report.failures] == [
        "n must be at most 3, got 5",
        "static fallback",
        "blank fallback",
        "multiline fallback",
        "failed rule: self.n <= self.max",
    ]


def test_field_path_is_appended_to_the_node_path():
    spec = {
        "type": "object",
        "properties": {
            "limits": {"type": "object", "properties": {"max": {"type": "integer"}}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "list": {"type": "array", "items": {"type": "object", "properties": {"a": {"type": "string"}}}},
        },
        **rules(
            {"rule": "false", "message": "m1", "fieldPath": ".limits.max"},
            {"rule": "false", "message": "m2", "fieldPath": ".labels['app.kubernetes.io/name']"},
            {"rule": "false", "message": "m3", "fieldPath": ".list"},
            {"rule": "false", "message": "m4", "fieldPath": "['limits'].max", "reason": "FieldValueForbidden"},
        ),
    }
    report = validate(obj({"limits": {"max": 1}, "labels": {}, "list": []}), crd(spec))
    assert [f.path for f in report.failures] == [
        "spec.limits.max", "spec.labels[app.kubernetes.io/name]", "spec.list", "spec.limits.max",
    ]
    root = crd(spec, **rules({"rule": "false", "fieldPath": ".spec.limits"}))
    assert validate(obj({}), root).failures[0].path == "spec.limits"


# --- defaults ---------------------------------------------------------------------------------

DEFAULTED = {
    "type": "object",
    "properties": {
        "mode": {"type": "string", "default": "strict"},
        "limit": {"type": "integer"},
        "settings": {
            "type": "object",
            "default": {},
            "properties": {"level": {"type": "integer", "default": 3}},
            **rules({"rule": "self.level <= 2", "message": "level too high"}),
        },
    },
    **rules({"rule": "self.mode != 'strict' || has(self.limit)", "message": "strict mode needs a limit"}),
}


def test_defaulted_field_makes_a_rule_fail_as_on_the_apiserver():
    report = validate(obj({"settings": {"level": 1}}), crd(DEFAULTED))
    # `mode` is absent but defaults to "strict", so the rule fails although the object never says so
    assert [f.message for f in report.failures] == ["strict mode needs a limit"]


def test_defaulted_field_makes_a_rule_pass():
    report = validate(obj({"mode": "loose", "settings": {"level": 1}}), crd(DEFAULTED))
    assert report.failures == []


def test_defaulted_object_is_created_and_its_rules_run():
    report = validate(obj({"limit": 1}), crd(DEFAULTED))
    # settings: {} defaulted, then level: 3 defaulted inside it -> its rule runs and fails
    assert report.failures == [RuleFailure("spec.settings", "level too high", "self.level <= 2")]
    assert report.checked == 2


# --- counting ---------------------------------------------------------------------------------

def test_count_and_iter_rules():
    assert count_rules(crd(SPEC)) == 4
    paths = [p for p, _ in iter_rules(crd(SPEC))]
    assert paths == ["spec", "spec.replicas", "spec.tags[*]", "spec.items[*]"]
    assert count_rules({}) == 0


def test_non_dict_inputs_give_an_empty_report():
    assert validate([], crd(SPEC)) == CelReport()  # type: ignore[arg-type]
    assert validate(obj({}), {"type": "object"}) == CelReport()
