"""Format library: ``format.dns1123Label()`` (and the other named formats), ``format.named(name)``
and ``<format>.validate(string)`` -> optional list of errors.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Callable

from cel import OptionalValue  # the `cel` package (cel-rust), not infra.check.cel

from .registry import ExtError, _register
from .urls import _check_url
from .values import _need, _tagged, _untag


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
