"""Lists library: ``isSorted``, ``sum``, ``min``, ``max``, ``indexOf``, ``lastIndexOf``.

``indexOf``/``lastIndexOf`` also serve the strings extension's ``string.indexOf(sub[, offset])``.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from .registry import ExtError, _register
from .values import _is_int, _is_num, _need, _need_int, _no_overload, cel_compare, cel_equal


@_register("isSorted")
def is_sorted(items: Any) -> bool:
    _need(items, list, "isSorted")
    return all(cel_compare(items[i], items[i + 1], "isSorted") <= 0 for i in range(len(items) - 1))


@_register("sum")
def list_sum(items: Any) -> Any:
    _need(items, list, "sum")
    if not items:
        return 0
    if all(_is_int(x) for x in items):
        return sum(items)
    if all(_is_num(x) for x in items):
        return float(sum(items))
    if all(isinstance(x, timedelta) for x in items):
        return sum(items, timedelta())
    raise _no_overload("sum", items)


def _extreme(items: Any, fn: str, pick_greater: bool) -> Any:
    _need(items, list, fn)
    if not items:
        raise ExtError(f"{fn} called on empty list")
    best = items[0]
    for x in items[1:]:
        c = cel_compare(x, best, fn)
        if (c > 0) if pick_greater else (c < 0):
            best = x
    return best


@_register("min")
def list_min(items: Any) -> Any:
    return _extreme(items, "min", pick_greater=False)


@_register("max")
def list_max(items: Any) -> Any:
    return _extreme(items, "max", pick_greater=True)


@_register("indexOf")
def index_of(receiver: Any, needle: Any, offset: Any = None) -> int:
    """`list.indexOf(elem)` (lists library) or `string.indexOf(sub[, offset])` (strings ext)."""
    if isinstance(receiver, list) and offset is None:
        for i, x in enumerate(receiver):
            if cel_equal(x, needle):
                return i
        return -1
    if isinstance(receiver, str) and isinstance(needle, str):
        start = 0 if offset is None else _need_int(offset, "indexOf")
        if start < 0 or start > len(receiver):
            raise ExtError(f"index out of range: {start}")
        return receiver.find(needle, start)
    raise _no_overload("indexOf", receiver, needle)


@_register("lastIndexOf")
def last_index_of(receiver: Any, needle: Any, offset: Any = None) -> int:
    """`list.lastIndexOf(elem)` or `string.lastIndexOf(sub[, offset])`."""
    if isinstance(receiver, list) and offset is None:
        for i in range(len(receiver) - 1, -1, -1):
            if cel_equal(receiver[i], needle):
                return i
        return -1
    if isinstance(receiver, str) and isinstance(needle, str):
        if offset is None:
            return receiver.rfind(needle)
        end = _need_int(offset, "lastIndexOf")
        if end < 0 or end > len(receiver):
            raise ExtError(f"index out of range: {end}")
        return receiver.rfind(needle, 0, end + len(needle))
    raise _no_overload("lastIndexOf", receiver, needle)
