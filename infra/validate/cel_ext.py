"""Kubernetes CEL extension functions for the `cel` package (cel-rust).

The apiserver evaluates CRD rules with cel-go plus Kubernetes' own libraries. cel-rust natively
supports the core language (macros ``has``/``all``/``exists``/``exists_one``/``map``/``filter``,
conversions, ``size``, ``contains``/``startsWith``/``endsWith``/``matches``, timestamps, durations,
``optional.of``/``none``/``orValue``/``hasValue``/``value``/``or``). Everything else a CRD rule may
call is implemented here as a plain Python function and registered on a ``cel.Context``. Because
CEL treats ``x.f(a)`` as ``f(x, a)``, each function serves both the receiver and the global form.

Libraries covered (names as in the Kubernetes CEL documentation):

* lists:   ``isSorted``, ``sum``, ``min``, ``max``, ``indexOf``, ``lastIndexOf``
* strings: ``charAt``, ``indexOf``, ``lastIndexOf``, ``lowerAscii``, ``upperAscii``, ``replace``,
  ``split``, ``substring``, ``trim``, ``join``, ``reverse``, ``strings.quote``, ``format``
* regex:   ``find``, ``findAll``
* URLs:    ``url``, ``isURL``, ``getScheme``, ``getHost``, ``getHostname``, ``getPort``,
  ``getEscapedPath``, ``getQuery``
* quantity: ``quantity``, ``isQuantity``, ``sign``, ``isInteger``, ``asInteger``,
  ``asApproximateFloat``, ``add``, ``sub``, ``isLessThan``, ``isGreaterThan``, ``compareTo``
* IP/CIDR: ``ip``, ``isIP``, ``ip.isCanonical``, ``family``, ``isUnspecified``, ``isLoopback``,
  ``isLinkLocalMulticast``, ``isLinkLocalUnicast``, ``isGlobalUnicast``, ``cidr``, ``isCIDR``,
  ``containsIP``, ``containsCIDR``, ``prefixLength``, ``masked``
* semver:  ``semver``, ``isSemver``, ``major``, ``minor``, ``patch`` (+ the comparisons above)
* sets:    ``sets.contains``, ``sets.equivalent``, ``sets.intersects``
* format:  ``format.dns1123Label()`` (and the other named formats), ``format.named(name)``,
  ``<format>.validate(string)``
* core:    ``bool(string)``, and ``_k8s_size`` (code-point ``size``; see ``cel_rewrite``)

Opaque Kubernetes types (Quantity, URL, IP, CIDR, Semver) cannot cross the Python/Rust boundary
as Python objects, so they are carried as single-entry maps ``{"@k8s.<kind>": <canonical>}``.
The payload is canonical (a reduced fraction for quantities, the normalized address for IPs), so
CEL's native ``==`` on two such values gives the library's semantic equality.

Errors: a Python exception inside a callback makes the library print to stderr, so callbacks
never raise. A failure is recorded in a thread-local slot and the callback returns an
unconvertible marker object; the library then aborts the evaluation (or absorbs the error in
``||``/``&&`` exactly as CEL does) and ``take_error()`` tells the caller what happened.
``ExtError.overload`` distinguishes type errors (no matching overload) from value errors
(invalid quantity, index out of range, ...).
"""
from __future__ import annotations

import functools
import ipaddress
import math
import re
import threading
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from typing import Any, Callable
from urllib.parse import parse_qsl, urlsplit
from urllib.parse import quote as quote_path

from cel import OptionalValue  # the `cel` package (cel-rust), not infra.validate.cel

__all__ = [
    "ExtError",
    "ERROR_MARKER_TYPE",
    "FUNCTIONS",
    "NATIVE_FUNCTIONS",
    "NAMESPACES",
    "TYPE_IDENTIFIERS",
    "cel_equal",
    "cel_compare",
    "parse_quantity",
    "reset_error",
    "take_error",
]


# ---------------------------------------------------------------------------------------------
# Error plumbing
# ---------------------------------------------------------------------------------------------


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


def _no_overload(fn: str, *args: Any) -> ExtError:
    types = ", ".join(cel_type_name(a) for a in args)
    return ExtError(f"no such overload: {fn}({types})", overload=True)


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


# ---------------------------------------------------------------------------------------------
# CEL value helpers
# ---------------------------------------------------------------------------------------------

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


def cel_type_name(v: Any) -> str:
    tag = _tag_of(v)
    if tag is not None:
        return tag[0]
    if v is None:
        return "null_type"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "double"
    if isinstance(v, str):
        return "string"
    if isinstance(v, bytes):
        return "bytes"
    if isinstance(v, list):
        return "list"
    if isinstance(v, dict):
        return "map"
    if isinstance(v, timedelta):
        return "duration"
    if isinstance(v, datetime):
        return "timestamp"
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


# ---------------------------------------------------------------------------------------------
# Core
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Lists library
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Strings extension (cel-go ext.Strings, as enabled in the apiserver)
# ---------------------------------------------------------------------------------------------


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
    _need(s, str, "split")
    _need(sep, str, "split")
    n = _need_int(limit, "split")
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


# ---------------------------------------------------------------------------------------------
# Regex library (RE2 patterns evaluated with Python's `re`)
# ---------------------------------------------------------------------------------------------

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
    _need(s, str, "findAll")
    _need(pattern, str, "findAll")
    n = _need_int(limit, "findAll")
    if n == 0:
        return []
    found = [m.group(0) for m in _compile_regex(pattern).finditer(s)]
    return found if n < 0 else found[:n]


# ---------------------------------------------------------------------------------------------
# URL library
# ---------------------------------------------------------------------------------------------

_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*$")
_HOST_CHARS_RE = re.compile(r"^[A-Za-z0-9\-._~!$&'()*+,;=%]*$")


def _check_url(s: str) -> None:
    """Approximate Go's url.ParseRequestURI: absolute URI or absolute path, sane authority."""
    if s == "":
        raise ExtError("URL parse error during conversion from string: empty url")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in s):
        raise ExtError(f"URL parse error during conversion from string: parse {s!r}: net/url: invalid control character in URL")
    scheme, sep, rest = s.partition(":")
    has_scheme = bool(sep) and "/" not in scheme and "?" not in scheme and "#" not in scheme
    if has_scheme:
        if not _SCHEME_RE.match(scheme):
            raise ExtError(f"URL parse error during conversion from string: parse {s!r}: missing protocol scheme" if scheme == "" else f"URL parse error during conversion from string: parse {s!r}: first path segment in URL cannot contain colon")
    elif not s.startswith("/"):
        raise ExtError(f"URL parse error during conversion from string: parse {s!r}: invalid URI for request")
    if has_scheme and rest.startswith("//"):
        authority = rest[2:].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
        hostport = authority.rpartition("@")[2]
        if hostport.startswith("["):
            close = hostport.find("]")
            if close == -1:
                raise ExtError(f"URL parse error during conversion from string: parse {s!r}: missing ']' in host")
            port_part = hostport[close + 1:]
            if port_part and not re.fullmatch(r":\d*", port_part):
                raise ExtError(f"URL parse error during conversion from string: parse {s!r}: invalid port {port_part!r} after host")
        else:
            host, colon, port = hostport.rpartition(":") if ":" in hostport else (hostport, "", "")
            if colon and not port.isdigit() and port != "":
                raise ExtError(f"URL parse error during conversion from string: parse {s!r}: invalid port {':' + port!r} after host")
            if not _HOST_CHARS_RE.match(host):
                raise ExtError(f"URL parse error during conversion from string: parse {s!r}: invalid character in host name")


@_register("url")
def url(s: Any) -> dict[str, Any]:
    _need(s, str, "url")
    _check_url(s)
    return _tagged("url", s)


@_register("isURL")
def is_url(s: Any) -> bool:
    _need(s, str, "isURL")
    try:
        _check_url(s)
    except ExtError:
        return False
    return True


def _split_url(u: Any, fn: str):
    return urlsplit(_untag(u, "url", fn))


def _split_hostport(netloc: str) -> tuple[str, str]:
    hostport = netloc.rpartition("@")[2]
    if hostport.startswith("["):
        close = hostport.find("]")
        host = hostport[1:close]
        rest = hostport[close + 1:]
        return host, rest[1:] if rest.startswith(":") else ""
    if ":" in hostport:
        host, _, port = hostport.rpartition(":")
        return host, port
    return hostport, ""


@_register("getScheme")
def get_scheme(u: Any) -> str:
    return _split_url(u, "getScheme").scheme.lower()


@_register("getHost")
def get_host(u: Any) -> str:
    return _split_url(u, "getHost").netloc.rpartition("@")[2]


@_register("getHostname")
def get_hostname(u: Any) -> str:
    return _split_hostport(_split_url(u, "getHostname").netloc)[0]


@_register("getPort")
def get_port(u: Any) -> str:
    return _split_hostport(_split_url(u, "getPort").netloc)[1]


@_register("getEscapedPath")
def get_escaped_path(u: Any) -> str:
    # Existing %-escapes are kept; characters Go would escape (space, non-ASCII, ...) are escaped.
    return quote_path(_split_url(u, "getEscapedPath").path, safe="/;:@&=+$,!~*'()%-._")


@_register("getQuery")
def get_query(u: Any) -> dict[str, list[str]]:
    query: dict[str, list[str]] = {}
    for key, value in parse_qsl(_split_url(u, "getQuery").query, keep_blank_values=True, separator="&"):
        query.setdefault(key, []).append(value)
    return query


# ---------------------------------------------------------------------------------------------
# Quantity library
# ---------------------------------------------------------------------------------------------

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


@_register("isQuantity")
def is_quantity(s: Any) -> bool:
    _need(s, str, "isQuantity")
    try:
        parse_quantity(s)
    except ValueError:
        return False
    return True


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


# ---------------------------------------------------------------------------------------------
# Semver library
# ---------------------------------------------------------------------------------------------

_IDENT = r"(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)"
_SEMVER_RE = re.compile(
    rf"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-({_IDENT}(?:\.{_IDENT})*))?(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)
_LOOSE_CORE_RE = re.compile(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(.*)$")


def _parse_semver(s: str, normalize: bool = False) -> str:
    text = s
    if normalize:
        m = _LOOSE_CORE_RE.match(s)
        if m:
            major, minor, patch, tail = m.groups()
            text = f"{int(major)}.{int(minor or 0)}.{int(patch or 0)}{tail}"
    m = _SEMVER_RE.match(text)
    if not m:
        raise ValueError(f"No Major.Minor.Patch elements found: {s!r}" if "." not in s else f"invalid semver: {s!r}")
    core = f"{m.group(1)}.{m.group(2)}.{m.group(3)}"
    return core + (f"-{m.group(4)}" if m.group(4) else "")  # build metadata does not affect identity


def _semver_parts(payload: str) -> tuple[int, int, int, list[str]]:
    core, _, pre = payload.partition("-")
    major, minor, patch = (int(x) for x in core.split("."))
    return major, minor, patch, pre.split(".") if pre else []


def _semver_cmp(a: tuple[int, int, int, list[str]], b: tuple[int, int, int, list[str]]) -> int:
    if a[:3] != b[:3]:
        return -1 if a[:3] < b[:3] else 1
    pa, pb = a[3], b[3]
    if not pa or not pb:  # a release is greater than any pre-release of it
        return (not pa) - (not pb)
    for x, y in zip(pa, pb):
        if x == y:
            continue
        xd, yd = x.isdigit(), y.isdigit()
        if xd and yd:
            return -1 if int(x) < int(y) else 1
        if xd != yd:
            return -1 if xd else 1
        return -1 if x < y else 1
    return (len(pa) > len(pb)) - (len(pa) < len(pb))


@_register("semver")
def semver(s: Any, normalize: Any = False) -> dict[str, Any]:
    _need(s, str, "semver")
    _need(normalize, bool, "semver")
    return _tagged("semver", _parse_semver(s, normalize))


@_register("isSemver")
def is_semver(s: Any, normalize: Any = False) -> bool:
    _need(s, str, "isSemver")
    _need(normalize, bool, "isSemver")
    try:
        _parse_semver(s, normalize)
    except ValueError:
        return False
    return True


@_register("major")
def semver_major(v: Any) -> int:
    return _semver_parts(_untag(v, "semver", "major"))[0]


@_register("minor")
def semver_minor(v: Any) -> int:
    return _semver_parts(_untag(v, "semver", "minor"))[1]


@_register("patch")
def semver_patch(v: Any) -> int:
    return _semver_parts(_untag(v, "semver", "patch"))[2]


# ---------------------------------------------------------------------------------------------
# IP and CIDR libraries
# ---------------------------------------------------------------------------------------------

IPAddr = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse_ip(s: str) -> IPAddr:
    if "%" in s:
        raise ValueError(f"IP address with zone value is not allowed: {s!r}")
    try:
        addr = ipaddress.ip_address(s)
    except ValueError as exc:
        raise ValueError(f"IP Address {s!r} parse error during conversion from string: {exc}") from None
    if addr.version == 6 and addr.ipv4_mapped is not None:
        raise ValueError(f"IPv4-mapped IPv6 address is not allowed: {s!r}")
    return addr


def _parse_cidr(s: str) -> tuple[IPAddr, int]:
    addr_text, slash, bits_text = s.partition("/")
    if not slash or not re.fullmatch(r"0|[1-9]\d{0,2}", bits_text):
        raise ValueError(f"network address parse error during conversion from string: invalid CIDR {s!r}")
    addr = _parse_ip(addr_text)
    bits = int(bits_text)
    if bits > addr.max_prefixlen:
        raise ValueError(f"network address parse error during conversion from string: prefix length {bits} too large for IPv{addr.version}")
    return addr, bits


def _ip_of(v: Any, fn: str) -> IPAddr:
    return ipaddress.ip_address(_untag(v, "ip", fn))


def _cidr_of(v: Any, fn: str) -> tuple[IPAddr, int]:
    addr_text, _, bits = _untag(v, "cidr", fn).partition("/")
    return ipaddress.ip_address(addr_text), int(bits)


@_register("ip")
def ip(value: Any) -> dict[str, Any]:
    """`ip(string)` parses an address; `cidr.ip()` returns a prefix's address."""
    if isinstance(value, str):
        return _tagged("ip", str(_parse_ip(value)))
    addr, _ = _cidr_of(value, "ip")
    return _tagged("ip", str(addr))


@_register("isIP")
def is_ip(s: Any) -> bool:
    _need(s, str, "isIP")
    try:
        _parse_ip(s)
    except ValueError:
        return False
    return True


@_register("ip.isCanonical")
def ip_is_canonical(s: Any) -> bool:
    _need(s, str, "ip.isCanonical")
    return str(_parse_ip(s)) == s


@_register("family")
def ip_family(v: Any) -> int:
    return _ip_of(v, "family").version


@_register("isUnspecified")
def ip_is_unspecified(v: Any) -> bool:
    return _ip_of(v, "isUnspecified").is_unspecified


@_register("isLoopback")
def ip_is_loopback(v: Any) -> bool:
    addr = _ip_of(v, "isLoopback")
    return addr in _V4_LOOPBACK if addr.version == 4 else addr == ipaddress.IPv6Address("::1")


_V4_LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
_V4_LINK_LOCAL = ipaddress.ip_network("169.254.0.0/16")
_V6_LINK_LOCAL = ipaddress.ip_network("fe80::/10")
_V4_LL_MULTICAST = ipaddress.ip_network("224.0.0.0/24")
_V4_MULTICAST = ipaddress.ip_network("224.0.0.0/4")
_V6_MULTICAST = ipaddress.ip_network("ff00::/8")


@_register("isLinkLocalMulticast")
def ip_is_link_local_multicast(v: Any) -> bool:
    addr = _ip_of(v, "isLinkLocalMulticast")
    if addr.version == 4:
        return addr in _V4_LL_MULTICAST
    return (int(addr) >> 112) & 0xFF0F == 0xFF02


@_register("isLinkLocalUnicast")
def ip_is_link_local_unicast(v: Any) -> bool:
    addr = _ip_of(v, "isLinkLocalUnicast")
    return addr in (_V4_LINK_LOCAL if addr.version == 4 else _V6_LINK_LOCAL)


@_register("isGlobalUnicast")
def ip_is_global_unicast(v: Any) -> bool:
    """Go's netip definition: not unspecified/loopback/multicast/link-local (private is global)."""
    addr = _ip_of(v, "isGlobalUnicast")
    if addr.is_unspecified or ip_is_loopback(v):
        return False
    if addr.version == 4:
        return (addr != ipaddress.IPv4Address("255.255.255.255") and addr not in _V4_MULTICAST
                and addr not in _V4_LINK_LOCAL)
    return addr not in _V6_MULTICAST and addr not in _V6_LINK_LOCAL


@_register("cidr")
def cidr(s: Any) -> dict[str, Any]:
    _need(s, str, "cidr")
    addr, bits = _parse_cidr(s)
    return _tagged("cidr", f"{addr}/{bits}")


@_register("isCIDR")
def is_cidr(s: Any) -> bool:
    _need(s, str, "isCIDR")
    try:
        _parse_cidr(s)
    except ValueError:
        return False
    return True


def _network(v: Any, fn: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    addr, bits = _cidr_of(v, fn)
    return ipaddress.ip_network(f"{addr}/{bits}", strict=False)


@_register("containsIP")
def cidr_contains_ip(c: Any, other: Any) -> bool:
    net = _network(c, "containsIP")
    addr = _parse_ip(other) if isinstance(other, str) else _ip_of(other, "containsIP")
    return addr.version == net.version and addr in net


@_register("containsCIDR")
def cidr_contains_cidr(c: Any, other: Any) -> bool:
    net = _network(c, "containsCIDR")
    if isinstance(other, str):
        addr, bits = _parse_cidr(other)
        sub = ipaddress.ip_network(f"{addr}/{bits}", strict=False)
    else:
        sub = _network(other, "containsCIDR")
    return sub.version == net.version and sub.prefixlen >= net.prefixlen and sub.network_address in net


@_register("prefixLength")
def cidr_prefix_length(c: Any) -> int:
    return _cidr_of(c, "prefixLength")[1]


@_register("masked")
def cidr_masked(c: Any) -> dict[str, Any]:
    net = _network(c, "masked")
    return _tagged("cidr", f"{net.network_address}/{net.prefixlen}")


# ---------------------------------------------------------------------------------------------
# Format library: format.dns1123Label().validate(s) -> optional list of errors
# ---------------------------------------------------------------------------------------------

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_BASE64 = re.compile(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _check_regex(value: str, pattern: re.Pattern[str], max_len: int | None, what: str, example: str) -> list[str]:
    errors = []
    if max_len is not None and len(value) > max_len:
        errors.append(f"must be no more than {max_len} characters")
    if not pattern.match(value):
        errors.append(f"{what} (e.g. {example}, regex used for validation is '{pattern.pattern[1:-1]}')")
    return errors


def _prefix(value: str) -> str:
    # "...Prefix" formats validate a generateName-style prefix: a trailing '-' is allowed.
    return value[:-1] if value.endswith("-") else value


def _fmt_dns1123_label(v: str) -> list[str]:
    return _check_regex(v, _DNS1123_LABEL, 63, "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character", "'my-name', or '123-abc'")


def _fmt_dns1123_subdomain(v: str) -> list[str]:
    return _check_regex(v, _DNS1123_SUBDOMAIN, 253, "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character", "'example.com'")


def _fmt_dns1035_label(v: str) -> list[str]:
    return _check_regex(v, _DNS1035_LABEL, 63, "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character", "'my-name', or 'abc-123'")


def _fmt_qualified_name(v: str) -> list[str]:
    prefix, slash, name = v.rpartition("/")
    errors = []
    if slash:
        if not prefix:
            errors.append("prefix part must be non-empty")
        else:
            errors.extend("prefix part " + e for e in _fmt_dns1123_subdomain(prefix))
    if not name:
        errors.append("name part must be non-empty")
    else:
        errors.extend(_check_regex(name, _QUALIFIED_NAME, 63, "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character", "'MyName', or 'my.name', or '123-abc'"))
    return errors


def _fmt_label_value(v: str) -> list[str]:
    return _check_regex(v, _LABEL_VALUE, 63, "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character", "'MyValue', or 'my_value', or '12345'")


def _fmt_uri(v: str) -> list[str]:
    try:
        _check_url(v)
    except ExtError as exc:
        return [exc.message]
    return []


def _fmt_simple(pattern: re.Pattern[str], what: str) -> Callable[[str], list[str]]:
    return lambda v: [] if pattern.match(v) else [f"invalid {what}"]


def _fmt_datetime(v: str) -> list[str]:
    try:
        datetime.fromisoformat(v.replace("z", "Z"))
    except ValueError:
        return ["invalid datetime"]
    return [] if "T" in v.upper() else ["invalid datetime"]


def _fmt_date(v: str) -> list[str]:
    try:
        if _DATE.match(v):
            datetime.strptime(v, "%Y-%m-%d")
            return []
    except ValueError:
        pass
    return ["invalid date"]


_NAMED_FORMATS: dict[str, Callable[[str], list[str]]] = {
    "dns1123Label": _fmt_dns1123_label,
    "dns1123Subdomain": _fmt_dns1123_subdomain,
    "dns1035Label": _fmt_dns1035_label,
    "qualifiedName": _fmt_qualified_name,
    "dns1123LabelPrefix": lambda v: _fmt_dns1123_label(_prefix(v)),
    "dns1123SubdomainPrefix": lambda v: _fmt_dns1123_subdomain(_prefix(v)),
    "dns1035LabelPrefix": lambda v: _fmt_dns1035_label(_prefix(v)),
    "labelValue": _fmt_label_value,
    "uri": _fmt_uri,
    "uuid": _fmt_simple(_UUID, "uuid"),
    "byte": _fmt_simple(_BASE64, "base64"),
    "date": _fmt_date,
    "datetime": _fmt_datetime,
}


def _make_named_format(name: str) -> Callable[[], dict[str, Any]]:
    def constructor() -> dict[str, Any]:
        return _tagged("format", name)
    constructor.__name__ = f"format_{name}"
    return constructor


for _name in _NAMED_FORMATS:
    _register(f"format.{_name}")(_make_named_format(_name))


@_register("format.named")
def format_named(name: Any) -> Any:
    """`format.named(name)`: optional of the named format (none if unknown)."""
    _need(name, str, "format.named")
    if name in _NAMED_FORMATS:
        return OptionalValue.of(_tagged("format", name))
    return OptionalValue.none()


@_register("validate")
def format_validate(fmt: Any, value: Any) -> Any:
    """`<format>.validate(string)`: optional.none() when valid, else optional.of([errors])."""
    name = _untag(fmt, "format", "validate")
    _need(value, str, "validate")
    errors = _NAMED_FORMATS[name](value)
    return OptionalValue.of(errors) if errors else OptionalValue.none()


# ---------------------------------------------------------------------------------------------
# Sets extension
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Names for the static check of a compiled rule
# ---------------------------------------------------------------------------------------------

#: Functions cel-rust implements itself (as reported by ``Program.references()``).
NATIVE_FUNCTIONS = frozenset({
    "size", "int", "uint", "double", "string", "bytes", "timestamp", "duration", "dyn", "type",
    "contains", "startsWith", "endsWith", "matches",
    "getFullYear", "getMonth", "getDate", "getDayOfMonth", "getDayOfWeek", "getDayOfYear",
    "getHours", "getMinutes", "getSeconds", "getMilliseconds",
    # optional values (`optional.of(x)` is reported as variable `optional` + function `of`)
    "of", "none", "ofNonZeroValue", "orValue", "hasValue", "value", "or",
})

#: Namespaces a call may be qualified with (`sets.contains(...)` reports variable `sets`).
NAMESPACES = frozenset({"optional", "sets", "strings", "ip", "format"})

#: Type identifiers usable in expressions such as `type(self) == string`.
TYPE_IDENTIFIERS = frozenset({"int", "uint", "double", "bool", "string", "bytes", "list", "map",
                              "null_type", "type", "duration", "timestamp", "dyn"})


def known_function_names() -> frozenset[str]:
    """Every function name (last dotted component) a rule may call."""
    registered = {name.rsplit(".", 1)[-1] for name in FUNCTIONS}
    return NATIVE_FUNCTIONS | registered

