"""Shared CEL value helpers: the ``{"@k8s.<kind>": payload}`` tagging of opaque Kubernetes types,
CEL type names, equality and ordering, and the argument checks every library uses.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Callable

from .registry import ExtError


def _no_overload(fn: str, *args: Any) -> ExtError:
    types = ", ".join(cel_type_name(a) for a in args)
    return ExtError(f"no such overload: {fn}({types})", overload=True)


_TAG = "@k8s."


def _tagged(kind: str, payload: Any) -> dict[str, Any]:
    return {_TAG + kind: payload}


def _tag_of(value: Any) -> tuple[str, Any] | None:
    if isinstance(value, dict) and len(value) == 1:
        ((key, payload),) = value.items()
        if isinstance(key, str) and key.startswith(_TAG):
            return key[len(_TAG):], payload
    return None


def _untag(value: Any, kind: str, fn: str) -> Any:
    tag = _tag_of(value)
    if tag is None or tag[0] != kind:
        raise _no_overload(fn, value)
    return tag[1]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


_CEL_TYPE_NAMES = ((bool, "bool"), (int, "int"), (float, "double"), (str, "string"), (bytes, "bytes"),
                   (list, "list"), (dict, "map"), (timedelta, "duration"), (datetime, "timestamp"))


def cel_type_name(v: Any) -> str:
    tag = _tag_of(v)
    if tag is not None:
        return tag[0]
    if v is None:
        return "null_type"
    for kind, name in _CEL_TYPE_NAMES:  # bool before int: a bool is an int in Python
        if isinstance(v, kind):
            return name
    return type(v).__name__


def cel_equal(a: Any, b: Any) -> bool:
    """CEL equality: numbers compare across int/uint/double, other types must match exactly."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_num(a) and _is_num(b):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(cel_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        if len(a) != len(b):
            return False
        for key, val in a.items():
            if key not in b or not cel_equal(val, b[key]):
                return False
        return True
    if type(a) is not type(b):
        return False
    return a == b


def cel_compare(a: Any, b: Any, fn: str = "compare") -> int:
    """CEL ordering (-1, 0, 1) for orderable values of the same kind; numbers across kinds."""
    if _is_num(a) and _is_num(b):
        pass
    elif isinstance(a, bool) and isinstance(b, bool):
        pass
    elif not (type(a) is type(b) and isinstance(a, (str, bytes, timedelta, datetime))):
        raise _no_overload(fn, a, b)
    return (a > b) - (a < b)


def _need(value: Any, kind: type | tuple[type, ...], fn: str, *others: Any) -> None:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _no_overload(fn, value, *others)


def _need_int(value: Any, fn: str) -> int:
    if not _is_int(value):
        raise _no_overload(fn, value)
    return value


def _need_strings_and_limit(fn: str, s: Any, other: Any, limit: Any) -> int:
    """The arguments of a ``split``/``findAll``-style function: two strings and an int limit."""
    _need(s, str, fn)
    _need(other, str, fn)
    return _need_int(limit, fn)


def _accepts(fn: str, parse: Callable[[str], Any],
             errors: type[Exception] | tuple[type[Exception], ...] = ValueError) -> Callable[[Any], bool]:
    """An ``isX(string)`` predicate: true when ``parse`` accepts the string, false when it raises ``errors``."""
    def predicate(s: Any) -> bool:
        _need(s, str, fn)
        try:
            parse(s)
        except errors:
            return False
        return True

    predicate.__name__ = predicate.__qualname__ = fn
    return predicate
