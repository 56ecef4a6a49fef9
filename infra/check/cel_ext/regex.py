"""Regex library: ``find``, ``findAll`` (RE2 patterns evaluated with Python's ``re``)."""
from __future__ import annotations

import functools
import re
from typing import Any

from .registry import _register
from .values import _need, _need_strings_and_limit


_POSIX_CLASSES = {
    "alnum": "0-9A-Za-z", "alpha": "A-Za-z", "ascii": "\\x00-\\x7F", "blank": "\\t ",
    "cntrl": "\\x00-\\x1F\\x7F", "digit": "0-9", "graph": "!-~", "lower": "a-z",
    "print": " -~", "punct": "!-/:-@\\[-`{-~", "space": "\\t\\n\\v\\f\\r ", "upper": "A-Z",
    "word": "0-9A-Za-z_", "xdigit": "0-9A-Fa-f",
}


def _re2_to_python(pattern: str) -> str:
    """Translate the RE2 constructs Python spells differently (\\z, \\Q..\\E, (?<name>, [[:x:]])."""
    out: list[str] = []
    i = 0
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if nxt == "z":
                out.append("\\Z")
                i += 2
                continue
            if nxt == "Q":
                end = pattern.find("\\E", i + 2)
                literal = pattern[i + 2:] if end == -1 else pattern[i + 2:end]
                out.append(re.escape(literal))
                i = n if end == -1 else end + 2
                continue
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if pattern.startswith("(?<", i) and i + 3 < n and pattern[i + 3] not in "=!":
            out.append("(?P<")
            i += 3
            continue
        if pattern.startswith("[:", i):
            end = pattern.find(":]", i + 2)
            name = pattern[i + 2:end] if end != -1 else ""
            if name in _POSIX_CLASSES:
                out.append(_POSIX_CLASSES[name])
                i = end + 2
                continue
        out.append(c)
        i += 1
    return "".join(out)


@functools.lru_cache(maxsize=512)
def _compile_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(_re2_to_python(pattern))


@_register("find")
def regex_find(s: Any, pattern: Any) -> str:
    _need(s, str, "find")
    _need(pattern, str, "find")
    m = _compile_regex(pattern).search(s)
    return m.group(0) if m else ""


@_register("findAll")
def regex_find_all(s: Any, pattern: Any, limit: Any = -1) -> list[str]:
    n = _need_strings_and_limit("findAll", s, pattern, limit)
    if n == 0:
        return []
    found = [m.group(0) for m in _compile_regex(pattern).finditer(s)]
    return found if n < 0 else found[:n]
