"""Compiling one CRD validation rule for the offline evaluator (:mod:`infra.check.cel`), cached per rule text.

A rule is first rewritten token-aware (:mod:`.cel_rewrite`) into what the ``cel`` library parses,
then compiled; a rule that calls a function outside :mod:`.cel_ext`, references an undeclared
name or does not compile is returned as unsupported (with the reason), never as passing.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

import cel as _cel_lib

from . import cel_ext
from .cel_rewrite import RewriteError, macro_binders, rewrite, tokenize



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


def first_line(text: str) -> str:
    """The first (up to three) non-blank lines of an error, as one line."""
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
        return CompiledRule(rule, None, f"compile error: {first_line(exc)}", transition)
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
