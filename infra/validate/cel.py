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

Compiled programs are cached per rule text, so each distinct rule is compiled once per process.
Note that per-schema facts (which subtrees hold rules) are cached by the schema dict's identity:
do not mutate a schema dict after validating with it.
"""
from __future__ import annotations

import base64
import binascii
import copy
import re
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

import cel as _cel_lib

from . import cel_ext
from .cel_rewrite import RewriteError, macro_binders, rewrite, tokenize
from .defaults import apply_defaults

__all__ = [
    "RuleFailure",
    "UnsupportedRule",
    "CelReport",
    "CompiledRule",
    "validate",
    "count_rules",
    "iter_rules",
    "compile_rule",
    "coverage",
    "to_cel_value",
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
# Compilation (cached per rule text)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompiledRule:
    source: str  # the rule text as written in the CRD
    program: Any  # cel.Program, or None when unsupported
    reason: str | None  # why it is unsupported
    transition: bool  # references oldSelf


_CACHE: dict[tuple[str, frozenset[str]], CompiledRule] = {}
_CACHE_LOCK = threading.Lock()
_ALWAYS_DECLARED = frozenset({"self", "oldSelf"})
# Reported as plain functions by the library when called with three arguments (`l.all(i, v, p)`).
_TWO_VARIABLE_MACROS = frozenset({"all", "exists", "exists_one", "existsOne", "transformList",
                                  "transformMap", "transformMapEntry"})


def _is_operator(name: str) -> bool:
    return name.startswith(("_", "@", "!", "-")) and name not in cel_ext.FUNCTIONS


def _references_old_self(src: str) -> bool:
    try:
        return any(t.kind == "ident" and t.text == "oldSelf" for t in tokenize(src))
    except RewriteError:
        return re.search(r"\boldSelf\b", src) is not None


def _first_line(text: str) -> str:
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return " ".join(lines[:3]) if lines else str(text)


def compile_rule(rule: str, extra_variables: frozenset[str] = frozenset()) -> CompiledRule:
    """Compile one rule (or messageExpression) for this evaluator; cached by text.

    Rules may reference ``self`` and ``oldSelf``; ``extra_variables`` declares more names (used by
    :func:`evaluate_expression`).
    """
    key = (rule, extra_variables)
    hit = _CACHE.get(key)
    if hit is not None:
        return hit
    compiled = _compile_uncached(rule, extra_variables)
    with _CACHE_LOCK:
        _CACHE[key] = compiled
    return compiled


def _compile_uncached(rule: str, extra_variables: frozenset[str]) -> CompiledRule:
    transition = _references_old_self(rule)
    rewritten = rewrite(rule)
    if rewritten.unsupported:
        return CompiledRule(rule, None, rewritten.unsupported, transition)
    try:
        program = _cel_lib.compile(rewritten.source)
    except Exception as exc:  # the library raises ValueError on syntax errors
        return CompiledRule(rule, None, f"compile error: {_first_line(exc)}", transition)
    refs = program.references()
    known = cel_ext.known_function_names()
    unknown_fns = sorted(f for f in refs.get("functions", []) if not _is_operator(f) and f not in known)
    if unknown_fns:
        macros = sorted(set(unknown_fns) & _TWO_VARIABLE_MACROS)
        if macros:
            reason = f"two-variable comprehension(s) not supported by the CEL library: {', '.join(macros)}"
        else:
            reason = f"unsupported function(s): {', '.join(unknown_fns)}"
        return CompiledRule(rule, None, reason, transition)
    declared = (_ALWAYS_DECLARED | extra_variables | macro_binders(rewritten.source)
                | cel_ext.NAMESPACES | cel_ext.TYPE_IDENTIFIERS)
    undeclared = sorted(v for v in refs.get("variables", []) if v not in declared)
    if undeclared:
        return CompiledRule(
            rule, None,
            f"undeclared reference(s): {', '.join(undeclared)} (unknown variable, or an unsupported "
            f"macro such as a two-variable comprehension)",
            transition,
        )
    return CompiledRule(rule, program, None, transition)


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
# Object -> CEL values
# ---------------------------------------------------------------------------------------------

_DURATION_RE = re.compile(r"^([-+]?)((?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h|d|w))+)$")
_DURATION_PART_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d|w)")
_DURATION_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
                  "h": 3600.0, "d": 86400.0, "w": 604800.0}


def _parse_duration(text: str) -> timedelta | None:
    if text in ("0", "+0", "-0"):
        return timedelta(0)
    m = _DURATION_RE.match(text)
    if not m:
        return None
    seconds = sum(float(n) * _DURATION_UNIT[u] for n, u in _DURATION_PART_RE.findall(m.group(2)))
    return timedelta(seconds=-seconds if m.group(1) == "-" else seconds)


def _parse_datetime(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None
    if "T" not in text.upper() and " " not in text:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _aware(value: datetime | date) -> datetime:
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _plain(value: Any) -> Any:
    """A value outside the schema (preserved unknown fields): keep it, made CEL-representable."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return _aware(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _convert_string(value: Any, fmt: Any) -> Any:
    if isinstance(value, (datetime, date)):  # YAML turned an unquoted timestamp into an object
        if fmt in ("date-time", "date"):
            return _aware(value)
        return value.isoformat()
    if not isinstance(value, str):
        return _plain(value)
    if fmt == "date-time":
        parsed = _parse_datetime(value)
        return parsed if parsed is not None else value
    if fmt == "date":
        try:
            return _aware(date.fromisoformat(value))
        except ValueError:
            return value
    if fmt == "duration":
        parsed_d = _parse_duration(value)
        return parsed_d if parsed_d is not None else value
    if fmt == "byte":
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return value
    return value


def to_cel_value(value: Any, schema: Any, embedded: bool = False) -> Any:
    """Convert an (already defaulted) object to the CEL value the apiserver binds to ``self``."""
    if value is None:
        return None
    if not isinstance(schema, dict) or schema.get("x-kubernetes-int-or-string"):
        return _plain(value)
    if isinstance(value, dict):
        props = schema.get("properties")
        props = props if isinstance(props, dict) else {}
        additional = schema.get("additionalProperties")
        preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields")) or additional is True
        resource = embedded or bool(schema.get("x-kubernetes-embedded-resource"))
        out: dict[str, Any] = {}
        for key, child in value.items():
            if resource and key == "metadata" and isinstance(child, dict):
                out[key] = {k: child[k] for k in ("name", "generateName") if k in child}
            elif key in props:
                out[key] = to_cel_value(child, props[key])
            elif isinstance(additional, dict):
                out[key] = to_cel_value(child, additional)
            elif preserve or (resource and key in ("apiVersion", "kind")):
                out[key] = _plain(child)
            # else: pruned, as the apiserver prunes unknown fields
        return out
    if isinstance(value, (list, tuple)):
        items = schema.get("items")
        return [to_cel_value(v, items) if isinstance(items, dict) else _plain(v) for v in value]
    kind = schema.get("type")
    if kind == "number" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind == "string":
        return _convert_string(value, schema.get("format"))
    return _plain(value)


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
        text = _first_line(exc)
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
                    bound = f"value at this node cannot be converted to CEL: {_first_line(exc)}"
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


# ---------------------------------------------------------------------------------------------
# Coverage over a directory of CRDs
# ---------------------------------------------------------------------------------------------


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
