"""Quantity library: ``quantity``, ``isQuantity``, ``sign``, ``isInteger``, ``asInteger``,
``asApproximateFloat``, ``add``, ``sub``, and the comparisons ``isLessThan``, ``isGreaterThan``,
``compareTo`` (shared with semver values).
"""
from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Any

from .registry import ExtError, _register
from .values import _accepts, _is_int, _need, _no_overload, _tag_of, _tagged, _untag


_QTY_RE = re.compile(r"^([+-]?)(\d+(?:\.\d*)?|\.\d+)(.*)$")
_BINARY_SUFFIX = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL_SUFFIX = {"n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "": Fraction(1),
                   "k": Fraction(10**3), "M": Fraction(10**6), "G": Fraction(10**9), "T": Fraction(10**12),
                   "P": Fraction(10**15), "E": Fraction(10**18)}
_EXP_RE = re.compile(r"^[eE]([+-]?\d+)$")
_NANO = 10**9
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def parse_quantity(s: str) -> Fraction:
    """Parse a Kubernetes resource.Quantity string to its exact value (rounded up to nano units)."""
    m = _QTY_RE.match(s)
    if not m:
        raise ValueError(f"quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {s!r}")
    sign, number, suffix = m.groups()
    value = Fraction(number + "0" if number.endswith(".") else number)
    if suffix in _BINARY_SUFFIX:
        value *= _BINARY_SUFFIX[suffix]
    elif suffix in _DECIMAL_SUFFIX:
        value *= _DECIMAL_SUFFIX[suffix]
    else:
        e = _EXP_RE.match(suffix)
        if not e or abs(int(e.group(1))) > 1000:
            raise ValueError(f"unable to parse quantity's suffix: {s!r}")
        value *= Fraction(10) ** int(e.group(1))
    if sign == "-":
        value = -value
    scaled = value * _NANO
    if scaled.denominator != 1:  # more precise than nano: rounded up, away from zero
        whole = math.ceil(abs(scaled))
        value = Fraction(whole if scaled > 0 else -whole, _NANO)
    return value


def _quantity_value(q: Any, fn: str) -> Fraction:
    payload = _untag(q, "quantity", fn)
    return Fraction(payload)


def _make_quantity(value: Fraction) -> dict[str, Any]:
    return _tagged("quantity", f"{value.numerator}/{value.denominator}")


@_register("quantity")
def quantity(s: Any) -> dict[str, Any]:
    _need(s, str, "quantity")
    return _make_quantity(parse_quantity(s))


is_quantity = _register("isQuantity")(_accepts("isQuantity", parse_quantity))


@_register("sign")
def sign(q: Any) -> int:
    v = _quantity_value(q, "sign")
    return (v > 0) - (v < 0)


@_register("isInteger")
def is_integer(q: Any) -> bool:
    v = _quantity_value(q, "isInteger")
    return v.denominator == 1 and _INT64_MIN <= v.numerator <= _INT64_MAX


@_register("asInteger")
def as_integer(q: Any) -> int:
    v = _quantity_value(q, "asInteger")
    if v.denominator != 1 or not _INT64_MIN <= v.numerator <= _INT64_MAX:
        raise ExtError("cannot convert value to integer")
    return v.numerator


@_register("asApproximateFloat")
def as_approximate_float(q: Any) -> float:
    return float(_quantity_value(q, "asApproximateFloat"))


def _quantity_operand(other: Any, fn: str) -> Fraction:
    if _is_int(other):
        return Fraction(other)
    return _quantity_value(other, fn)


@_register("add")
def q_add(q: Any, other: Any) -> dict[str, Any]:
    return _make_quantity(_quantity_value(q, "add") + _quantity_operand(other, "add"))


@_register("sub")
def q_sub(q: Any, other: Any) -> dict[str, Any]:
    return _make_quantity(_quantity_value(q, "sub") - _quantity_operand(other, "sub"))


def _compare_tagged(a: Any, b: Any, fn: str) -> int:
    ta, tb = _tag_of(a), _tag_of(b)
    if ta is None or tb is None or ta[0] != tb[0]:
        raise _no_overload(fn, a, b)
    if ta[0] == "quantity":
        x, y = Fraction(ta[1]), Fraction(tb[1])
        return (x > y) - (x < y)
    if ta[0] == "semver":
        # Imported here, not at module top: importing `semvers` registers its functions, and the
        # registration order (quantity before semver) must stay as it was.
        from .semvers import _semver_cmp, _semver_parts

        return _semver_cmp(_semver_parts(ta[1]), _semver_parts(tb[1]))
    raise _no_overload(fn, a, b)


@_register("isLessThan")
def is_less_than(a: Any, b: Any) -> bool:
    return _compare_tagged(a, b, "isLessThan") < 0


@_register("isGreaterThan")
def is_greater_than(a: Any, b: Any) -> bool:
    return _compare_tagged(a, b, "isGreaterThan") > 0


@_register("compareTo")
def compare_to(a: Any, b: Any) -> int:
    return _compare_tagged(a, b, "compareTo")
