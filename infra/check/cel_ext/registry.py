"""Error plumbing and the function registry: ``ExtError``, the error marker, ``FUNCTIONS``,
``_register``, ``reset_error`` and ``take_error``.

A callback never raises: ``_register`` wraps it so that a failure is recorded in a thread-local
slot (read back with ``take_error()``) and an unconvertible marker object is returned instead.
"""
from __future__ import annotations

import functools
import re
import threading
from typing import Any, Callable


class ExtError(Exception):
    """An evaluation error raised by an extension function."""

    def __init__(self, message: str, overload: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.overload = overload


class _K8sCelErrorMarker:
    """Returned by a failing callback: the library cannot convert it, so evaluation errors out."""

    __slots__ = ()


ERROR_MARKER_TYPE = _K8sCelErrorMarker.__name__
_MARKER = _K8sCelErrorMarker()
_state = threading.local()


def reset_error() -> None:
    _state.error = None


def take_error() -> ExtError | None:
    err = getattr(_state, "error", None)
    _state.error = None
    return err


FUNCTIONS: dict[str, Callable[..., Any]] = {}


def _register(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        label = names[0]

        @functools.wraps(fn)
        def wrapper(*args: Any) -> Any:
            try:
                return fn(*args)
            except ExtError as exc:
                _state.error = exc
            except TypeError as exc:  # wrong arity or argument types
                _state.error = ExtError(f"no such overload: {label}: {exc}", overload=True)
            except re.error as exc:  # a pattern Python's `re` cannot compile (RE2 dialect gap)
                _state.error = ExtError(f"unsupported regular expression: {exc}", overload=True)
            except (ValueError, ArithmeticError, IndexError, KeyError) as exc:
                _state.error = ExtError(f"{label}: {exc}")
            return _MARKER

        for name in names:
            FUNCTIONS[name] = wrapper
        return fn  # the undecorated function, for direct unit tests

    return deco
