"""Offline evaluation of CRD validation rules (``x-kubernetes-validations``) the way the apiserver
evaluates them when an object is created.

``validate(obj, schema)`` takes a custom resource (a plain dict, as rendered) and the CRD version's
``schema.openAPIV3Schema`` and returns a :class:`CelReport`:

1. The object is deep-copied, nulls of non-nullable fields are pruned and structural defaults are
   applied (``defaults.apply_defaults``).
2. The object is converted to CEL values as the apiserver types them: fields unknown to the schema
   are pruned (unless ``x-kubernetes-preserve-unknown-fields``), ``type: number`` is a double,
   ``integer`` an int, ``int-or-string`` either, strings with ``format`` ``date-time``/``date``
   become timestamps, ``duration`` durations and ``byte`` bytes; at the root (and at every
   ``x-kubernetes-embedded-resource``) ``metadata`` holds only ``name`` and ``generateName``.
   Absent fields stay absent, so ``has(self.x)`` works and ``self.x`` on an absent field is the
   apiserver's "no such key" evaluation error.
3. Schema and value are walked together (``properties``, array ``items``, map
   ``additionalProperties``). Every rule at a node whose value is present and not null is
   evaluated with ``self`` bound to that value.

Rule outcomes:

* passed / failed -> ``checked``; a failure carries the evaluated ``messageExpression`` (when it
  yields a non-blank single-line string), else ``message``, else ``"failed rule: <rule>"``; its
  ``path`` is the node's path plus the rule's ``fieldPath``. An evaluation error caused by the data
  (no such key, index out of bounds, invalid quantity, ...) is a failure worded like the
  apiserver's: ``"<error> evaluating rule: <message or rule>"``.
* transition rules (they reference ``oldSelf``) only run on update -> ``skipped``. A transition
  rule with ``optionalOldSelf: true`` does run on create, with ``oldSelf`` = ``optional.none()``,
  so it is evaluated here like any rule.
* a rule that does not compile, calls a function or uses syntax this evaluator does not support,
  or fails with a type error (no matching overload) -> ``unsupported``; never counted as passed.

Compiled programs are cached per rule text (:mod:`.cel_compile`), so each distinct rule is compiled
once per process; step 2 is :mod:`.cel_values`; :mod:`.cel_coverage` measures what a set of CRDs'
rules this evaluator supports.
Note that per-schema facts (which subtrees hold rules) are cached by the schema dict's identity:
do not mutate a schema dict after validating with it.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any, Iterator

import cel as _cel_lib

from . import cel_ext
from .cel_compile import compile_rule, first_line
from .cel_values import to_cel_value
from .defaults import apply_defaults

__all__ = [
    "RuleFailure",
    "UnsupportedRule",
    "CelReport",
    "validate",
    "count_rules",
    "iter_rules",
    "evaluate_expression",
    "CelEvaluationError",
]


# ---------------------------------------------------------------------------------------------
# Public result types
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleFailure:
    path: str  # field path like "spec.amiSelectorTerms[0]" ("" for root)
    message: str  # the rule's message, evaluated messageExpression, or "failed rule: <rule>"
    rule: str


@dataclass(frozen=True)
class UnsupportedRule:
    path: str
    rule: str
    reason: str


@dataclass
class CelReport:
    checked: int = 0  # rules evaluated (passed + failed), counting each (rule, node) evaluation
    skipped: int = 0  # transition rules (use oldSelf) -> apply only on update, not checked
    unsupported: list[UnsupportedRule] = field(default_factory=list)
    failures: list[RuleFailure] = field(default_factory=list)

    def merge(self, other: "CelReport") -> None:
        self.checked += other.checked
        self.skipped += other.skipped
        self.unsupported.extend(other.unsupported)
        self.failures.extend(other.failures)

    @property
    def ok(self) -> bool:
        """No failures and nothing unsupported."""
        return not self.failures and not self.unsupported


# ---------------------------------------------------------------------------------------------
# Schema helpers
# ---------------------------------------------------------------------------------------------


def _children(schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
    props = schema.get("properties")
    if isinstance(props, dict):
        for sub in props.values():
            if isinstance(sub, dict):
                yield sub
    for key in ("items", "additionalProperties"):
        sub = schema.get(key)
        if isinstance(sub, dict):
            yield sub


def iter_rules(schema: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (schema path, rule entry) for every x-kubernetes-validations entry in a schema.

    Paths use ``[*]`` for array items and map values, e.g. ``spec.amiSelectorTerms[*].alias``.
    """
    if not isinstance(schema, dict):
        return
    for rule in schema.get("x-kubernetes-validations") or []:
        if isinstance(rule, dict) and isinstance(rule.get("rule"), str):
            yield path, rule
    props = schema.get("properties")
    if isinstance(props, dict):
        for name, sub in props.items():
            yield from iter_rules(sub, f"{path}.{name}" if path else name)
    for key in ("items", "additionalProperties"):
        sub = schema.get(key)
        if isinstance(sub, dict):
            yield from iter_rules(sub, f"{path}[*]")


def count_rules(schema: dict[str, Any]) -> int:
    """Number of rule entries (x-kubernetes-validations items) in a structural schema."""
    return sum(1 for _ in iter_rules(schema))


_BELOW: dict[int, tuple[dict[str, Any], bool]] = {}
_BELOW_LIMIT = 500_000


def _rules_below(schema: dict[str, Any]) -> bool:
    """Whether any strict descendant of this schema node carries rules (cached by identity)."""
    hit = _BELOW.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    result = any(bool(sub.get("x-kubernetes-validations")) or _rules_below(sub) for sub in _children(schema))
    if len(_BELOW) > _BELOW_LIMIT:
        _BELOW.clear()
    _BELOW[id(schema)] = (schema, result)
    return result


def _has_rules(schema: Any) -> bool:
    return isinstance(schema, dict) and (bool(schema.get("x-kubernetes-validations")) or _rules_below(schema))


# ---------------------------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------------------------


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


_FIELD_PATH_RE = re.compile(
    r"""\.(?P<dot>[^.\[\]]+)|\[\s*'(?P<sq>(?:[^'\\]|\\.)*)'\s*\]|\[\s*"(?P<dq>(?:[^"\\]|\\.)*)"\s*\]|\[(?P<idx>\d+)\]"""
)


def _apply_field_path(path: str, schema: dict[str, Any], field_path: str) -> str:
    """Resolve a rule's relative fieldPath (`.a.b`, `['x.y']`, `.list[0]`) against the schema."""
    out = path
    cur: Any = schema
    pos = 0
    text = field_path.strip()
    while pos < len(text):
        m = _FIELD_PATH_RE.match(text, pos)
        if m is None:
            tail = text[pos:]
            return out + tail if out else tail.lstrip(".")
        pos = m.end()
        if m.group("idx") is not None:
            out += f"[{m.group('idx')}]"
            cur = cur.get("items") if isinstance(cur, dict) else None
            continue
        name = next(g for g in (m.group("dot"), m.group("sq"), m.group("dq")) if g is not None)
        props = cur.get("properties") if isinstance(cur, dict) else None
        additional = cur.get("additionalProperties") if isinstance(cur, dict) else None
        if isinstance(props, dict) and name in props:
            out, cur = _child(out, name), props[name]
        elif isinstance(additional, dict):
            out, cur = f"{out}[{name}]", additional
        else:
            out, cur = _child(out, name), None
    return out


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------

_OK, _ERROR, _UNSUPPORTED = "ok", "error", "unsupported"


def _rule_label(rule: dict[str, Any]) -> str:
    message = rule.get("message")
    if isinstance(message, str) and message.strip():
        return message.strip()
    return str(rule.get("rule", "")).strip()


def _default_message(rule: dict[str, Any]) -> str:
    message = rule.get("message")
    if isinstance(message, str) and message.strip():
        return message.strip()
    return f"failed rule: {str(rule.get('rule', '')).strip()}"


class _Walker:
    def __init__(self, report: CelReport) -> None:
        self.report = report
        self.ctx = _cel_lib.Context(variables={}, functions=cel_ext.FUNCTIONS)

    def execute(self, program: Any) -> tuple[str, Any]:
        cel_ext.reset_error()
        try:
            result = program.execute(self.ctx)
        except Exception as exc:  # classify like the apiserver does
            return self._classify(exc)
        return _OK, result

    @staticmethod
    def _classify(exc: Exception) -> tuple[str, str]:
        text = first_line(exc)
        ext_err = cel_ext.take_error()
        if ext_err is not None and cel_ext.ERROR_MARKER_TYPE in str(exc):
            return (_UNSUPPORTED if ext_err.overload else _ERROR), ext_err.message
        if isinstance(exc, KeyError):
            key = exc.args[0] if exc.args else text
            return _ERROR, f"no such key: {key}"
        if isinstance(exc, IndexError):
            return _ERROR, text
        if isinstance(exc, ZeroDivisionError):
            return _ERROR, "division by zero"
        if isinstance(exc, OverflowError):
            return _ERROR, text
        if isinstance(exc, TypeError) or "No such overload" in text:
            return _UNSUPPORTED, f"no matching overload at runtime: {text.split('. ', 1)[0]}"
        if "Undefined variable or function" in text:
            return _UNSUPPORTED, text
        return _ERROR, text

    def walk(self, value: Any, schema: Any, path: str) -> None:
        if value is None or not isinstance(schema, dict):
            return
        rules = schema.get("x-kubernetes-validations")
        if rules:
            self.evaluate_node(value, schema, path, rules)
        if not _rules_below(schema):
            return
        if isinstance(value, dict):
            props = schema.get("properties")
            props = props if isinstance(props, dict) else {}
            additional = schema.get("additionalProperties")
            additional = additional if isinstance(additional, dict) else None
            for key, child in value.items():
                sub = props.get(key)
                if sub is not None:
                    self.walk(child, sub, _child(path, key))
                elif additional is not None:
                    self.walk(child, additional, f"{path}[{key}]")
        elif isinstance(value, list):
            items = schema.get("items")
            if isinstance(items, dict):
                for i, child in enumerate(value):
                    self.walk(child, items, f"{path}[{i}]")

    def evaluate_node(self, value: Any, schema: dict[str, Any], path: str, rules: list[Any]) -> None:
        report = self.report
        bound: bool | str = False
        for rule in rules:
            if not isinstance(rule, dict) or not isinstance(rule.get("rule"), str):
                continue
            text = rule["rule"]
            compiled = compile_rule(text)
            optional_old_self = bool(rule.get("optionalOldSelf"))
            if compiled.transition and not optional_old_self:
                report.skipped += 1
                continue
            if compiled.program is None:
                report.unsupported.append(UnsupportedRule(path, text, compiled.reason or "unsupported"))
                continue
            if bound is False:
                try:
                    self.ctx.add_variable("self", value)
                    bound = True
                except Exception as exc:  # a value the library cannot represent
                    bound = f"value at this node cannot be converted to CEL: {first_line(exc)}"
            if bound is not True:
                report.unsupported.append(UnsupportedRule(path, text, str(bound)))
                continue
            if compiled.transition:
                # optionalOldSelf: on create there is no old object, oldSelf is optional.none().
                self.ctx.add_variable("oldSelf", _cel_lib.OptionalValue.none())
            status, result = self.execute(compiled.program)
            if status == _UNSUPPORTED:
                report.unsupported.append(UnsupportedRule(path, text, str(result)))
                continue
            if status == _OK and not isinstance(result, bool):
                report.unsupported.append(
                    UnsupportedRule(path, text, f"rule evaluated to {cel_ext.cel_type_name(result)}, not bool"))
                continue
            report.checked += 1
            if status == _OK and result:
                continue
            if status == _ERROR:
                # Evaluation errors are reported at the rule's node, like the apiserver does.
                report.failures.append(RuleFailure(path, f"{result} evaluating rule: {_rule_label(rule)}", text))
                continue
            field_path = rule.get("fieldPath")
            where = _apply_field_path(path, schema, field_path) if isinstance(field_path, str) and field_path.strip() else path
            report.failures.append(RuleFailure(where, self.message_for(rule), text))

    def message_for(self, rule: dict[str, Any]) -> str:
        expression = rule.get("messageExpression")
        if isinstance(expression, str) and expression.strip():
            compiled = compile_rule(expression)
            if compiled.program is not None:
                status, result = self.execute(compiled.program)
                if status == _OK and isinstance(result, str) and result.strip() and "\n" not in result and "\r" not in result:
                    return result
        return _default_message(rule)


class CelEvaluationError(Exception):
    """Raised by :func:`evaluate_expression`; ``unsupported`` separates evaluator limits from
    evaluation errors the apiserver would report too."""

    def __init__(self, message: str, unsupported: bool) -> None:
        super().__init__(message)
        self.message = message
        self.unsupported = unsupported


def evaluate_expression(expression: str, variables: dict[str, Any] | None = None) -> Any:
    """Evaluate one CEL expression with the Kubernetes extensions (for tests and ad-hoc checks).

    Variables are bound as given (no schema conversion). Raises :class:`CelEvaluationError`.
    """
    compiled = compile_rule(expression, frozenset(variables or ()))
    if compiled.program is None:
        raise CelEvaluationError(compiled.reason or "unsupported", unsupported=True)
    walker = _Walker(CelReport())
    for name, value in (variables or {}).items():
        walker.ctx.add_variable(name, value)
    status, result = walker.execute(compiled.program)
    if status != _OK:
        raise CelEvaluationError(str(result), unsupported=status == _UNSUPPORTED)
    return result


def validate(obj: dict, schema: dict) -> CelReport:
    """schema = the CRD version's `schema.openAPIV3Schema`. Applies structural defaults first (on a
    deep copy), then walks."""
    report = CelReport()
    if not isinstance(obj, dict) or not isinstance(schema, dict) or not _has_rules(schema):
        return report
    data = copy.deepcopy(obj)
    apply_defaults(data, schema)
    value = to_cel_value(data, schema, embedded=True)
    _Walker(report).walk(value, schema, "")
    return report
