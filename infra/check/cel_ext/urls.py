"""URL library: ``url``, ``isURL``, ``getScheme``, ``getHost``, ``getHostname``, ``getPort``,
``getEscapedPath``, ``getQuery``.
"""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from urllib.parse import quote as quote_path

from .registry import ExtError, _register
from .values import _accepts, _need, _tagged, _untag


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


is_url = _register("isURL")(_accepts("isURL", _check_url, ExtError))


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
