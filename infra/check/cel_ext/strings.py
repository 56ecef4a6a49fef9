"""Strings extension (cel-go ext.Strings, as enabled in the apiserver): ``charAt``, ``lowerAscii``,
``upperAscii``, ``replace``, ``split``, ``substring``, ``trim``, ``join``, ``reverse``,
``strings.quote`` and ``format``.
"""
from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from .registry import ExtError, _register
from .values import _is_int, _is_num, _need, _need_int, _need_strings_and_limit, _no_overload, _tag_of, cel_type_name


@_register("charAt")
def char_at(s: Any, index: Any) -> str:
    _need(s, str, "charAt")
    i = _need_int(index, "charAt")
    if i < 0 or i > len(s):
        raise ExtError(f"index out of range: {i}")
    return s[i] if i < len(s) else ""


@_register("lowerAscii")
def lower_ascii(s: Any) -> str:
    _need(s, str, "lowerAscii")
    return s.translate(_LOWER)


@_register("upperAscii")
def upper_ascii(s: Any) -> str:
    _need(s, str, "upperAscii")
    return s.translate(_UPPER)


_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
_UPPER = {c: c - 32 for c in range(ord("a"), ord("z") + 1)}


@_register("replace")
def replace(s: Any, old: Any, new: Any, limit: Any = -1) -> str:
    for v in (s, old, new):
        _need(v, str, "replace")
    n = _need_int(limit, "replace")
    return s.replace(old, new) if n < 0 else s.replace(old, new, n)


@_register("split")
def split(s: Any, sep: Any, limit: Any = -1) -> list[str]:
    n = _need_strings_and_limit("split", s, sep, limit)
    if n == 0:
        return []
    if sep == "":
        chars = list(s)
        if n < 0 or n >= len(chars):
            return chars
        return chars[: n - 1] + ["".join(chars[n - 1:])]
    return s.split(sep) if n < 0 else s.split(sep, n - 1)


@_register("substring")
def substring(s: Any, start: Any, end: Any = None) -> str:
    _need(s, str, "substring")
    a = _need_int(start, "substring")
    b = len(s) if end is None else _need_int(end, "substring")
    if a < 0 or a > len(s):
        raise ExtError(f"index out of range: {a}")
    if b < 0 or b > len(s):
        raise ExtError(f"index out of range: {b}")
    if a > b:
        raise ExtError(f"invalid substring range. start: {a}, end: {b}")
    return s[a:b]


# Go's unicode.IsSpace set (str.strip() would also strip \x1c-\x1f).
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"


@_register("trim")
def trim(s: Any) -> str:
    _need(s, str, "trim")
    return s.strip(_GO_SPACE)


@_register("join")
def join(items: Any, sep: Any = "") -> str:
    _need(items, list, "join")
    _need(sep, str, "join")
    for x in items:
        if not isinstance(x, str):
            raise _no_overload("join", items)
    return sep.join(items)


@_register("reverse")
def reverse(s: Any) -> str:
    _need(s, str, "reverse")
    return s[::-1]


_QUOTE = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\a": "\\a",
          "\b": "\\b", "\f": "\\f", "\v": "\\v"}


@_register("strings.quote")
def quote(s: Any) -> str:
    _need(s, str, "strings.quote")
    return '"' + "".join(_QUOTE.get(c, c) for c in s) + '"'


def _format_value(v: Any, fn: str = "format") -> str:
    """The %s rendering of a CEL value."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "+Inf" if v > 0 else "-Inf"
        text = repr(v)
        return text[:-2] if text.endswith(".0") else text
    if isinstance(v, str):
        return v
    if isinstance(v, bytes):
        return v.decode("utf-8", errors="replace")
    if isinstance(v, timedelta):
        secs = v.total_seconds()
        return (f"{secs:.9f}".rstrip("0").rstrip(".") if secs != int(secs) else str(int(secs))) + "s"
    if isinstance(v, datetime):
        return v.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + (
            f".{v.microsecond:06d}".rstrip("0") if v.microsecond else "") + "Z"
    tag = _tag_of(v)
    if tag is not None:
        return str(tag[1])
    if isinstance(v, list):
        return "[" + ", ".join(_format_value(x, fn) for x in v) + "]"
    if isinstance(v, dict):
        parts = sorted(f"{_format_value(k, fn)}: {_format_value(x, fn)}" for k, x in v.items())
        return "{" + ", ".join(parts) + "}"
    raise _no_overload(fn, v)


_VERB_RE = re.compile(r"%(?:\.(\d+))?([a-zA-Z%])")


@_register("format")
def string_format(template: Any, args: Any) -> str:
    """cel-go `string.format(list)`: verbs %s %d %f %e %b %o %x %X and %%."""
    _need(template, str, "format")
    _need(args, list, "format", template)
    out: list[str] = []
    pos = 0
    argi = 0
    for m in _VERB_RE.finditer(template):
        out.append(template[pos:m.start()])
        pos = m.end()
        prec, verb = m.group(1), m.group(2)
        if verb == "%":
            out.append("%")
            continue
        if argi >= len(args):
            raise ExtError(f"index {argi} out of range")
        v = args[argi]
        argi += 1
        if verb == "s":
            out.append(_format_value(v))
        elif verb == "d":
            if not _is_int(v):
                raise ExtError(f"error during formatting: decimal clause can only be used on integers, was given {cel_type_name(v)}")
            out.append(str(v))
        elif verb in "fe":
            if not _is_num(v):
                raise ExtError(f"error during formatting: {'fixed-point' if verb == 'f' else 'scientific'} clause can only be used on doubles, was given {cel_type_name(v)}")
            p = 6 if prec is None else int(prec)
            out.append(f"{float(v):.{p}{verb}}")
        elif verb == "b":
            if isinstance(v, bool):
                out.append("1" if v else "0")
            elif _is_int(v):
                out.append(format(v, "b"))
            else:
                raise ExtError(f"error during formatting: only integers and bools can be formatted as binary, was given {cel_type_name(v)}")
        elif verb == "o":
            if not _is_int(v):
                raise ExtError(f"error during formatting: octal clause can only be used on integers, was given {cel_type_name(v)}")
            out.append(format(v, "o"))
        elif verb in "xX":
            if _is_int(v):
                h = format(v, "x")
            elif isinstance(v, str):
                h = v.encode("utf-8").hex()
            elif isinstance(v, bytes):
                h = v.hex()
            else:
                raise ExtError(f"error during formatting: only integers, byte buffers, and strings can be formatted as hex, was given {cel_type_name(v)}")
            out.append(h.upper() if verb == "X" else h)
        else:
            raise ExtError(f"could not parse formatting clause: unrecognized formatting clause {verb!r}")
    out.append(template[pos:])
    if argi < len(args):
        raise ExtError(f"too many arguments supplied to string.format (expected {argi}, got {len(args)})")
    return "".join(out)
