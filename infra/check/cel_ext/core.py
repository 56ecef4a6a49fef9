"""Core additions: ``_k8s_size`` (code-point ``size``; see ``cel_rewrite``) and ``bool(string)``."""
from __future__ import annotations

from typing import Any

from .registry import ExtError, _register
from .values import _no_overload, _tag_of


@_register("_k8s_size")
def k8s_size(value: Any) -> int:
    """CEL `size`: code points for strings (cel-rust counts UTF-8 bytes), else element count."""
    if isinstance(value, (str, bytes, list)):
        return len(value)
    if isinstance(value, dict) and _tag_of(value) is None:
        return len(value)
    raise _no_overload("size", value)


_BOOL_STRINGS = {"1": True, "t": True, "true": True, "TRUE": True, "True": True,
                 "0": False, "f": False, "false": False, "FALSE": False, "False": False}


@_register("bool")
def to_bool(value: Any) -> bool:
    """cel-go's `bool()` conversion (cel-rust has none)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        if value in _BOOL_STRINGS:
            return _BOOL_STRINGS[value]
        raise ExtError(f"type conversion error from 'string' to 'bool': {value!r}")
    raise _no_overload("bool", value)
