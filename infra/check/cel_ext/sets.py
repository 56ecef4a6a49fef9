"""Sets extension: ``sets.contains``, ``sets.equivalent``, ``sets.intersects``."""
from __future__ import annotations

from typing import Any

from .registry import _register
from .values import _need, cel_equal


@_register("sets.contains")
def sets_contains(a: Any, b: Any) -> bool:
    _need(a, list, "sets.contains")
    _need(b, list, "sets.contains")
    return all(any(cel_equal(x, y) for y in a) for x in b)


@_register("sets.equivalent")
def sets_equivalent(a: Any, b: Any) -> bool:
    return sets_contains(a, b) and sets_contains(b, a)


@_register("sets.intersects")
def sets_intersects(a: Any, b: Any) -> bool:
    _need(a, list, "sets.intersects")
    _need(b, list, "sets.intersects")
    return any(any(cel_equal(x, y) for y in b) for x in a)
