"""Plain (rendered) values as CEL values, typed the way the apiserver types them from the schema.

``type: number`` is a double, ``integer`` an int, strings with ``format`` ``date-time``/``date``
become timestamps, ``duration`` durations and ``byte`` bytes; fields unknown to the schema are
pruned unless ``x-kubernetes-preserve-unknown-fields``.
"""
from __future__ import annotations

import base64
import binascii
import re
from datetime import date, datetime, timedelta, timezone
from typing import Any

_DURATION_RE = re.compile(r"^([-+]?)((?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h|d|w))+)$")
_DURATION_PART_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d|w)")
_DURATION_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
                  "h": 3600.0, "d": 86400.0, "w": 604800.0}


def _parse_duration(text: str) -> timedelta | None:
    if text in ("0", "+0", "-0"):
        return timedelta(0)
    m = _DURATION_RE.match(text)
    if not m:
        return None
    seconds = sum(float(n) * _DURATION_UNIT[u] for n, u in _DURATION_PART_RE.findall(m.group(2)))
    return timedelta(seconds=-seconds if m.group(1) == "-" else seconds)


def _parse_datetime(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None
    if "T" not in text.upper() and " " not in text:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _aware(value: datetime | date) -> datetime:
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _plain(value: Any) -> Any:
    """A value outside the schema (preserved unknown fields): keep it, made CEL-representable."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return _aware(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _convert_string(value: Any, fmt: Any) -> Any:
    if isinstance(value, (datetime, date)):  # YAML turned an unquoted timestamp into an object
        if fmt in ("date-time", "date"):
            return _aware(value)
        return value.isoformat()
    if not isinstance(value, str):
        return _plain(value)
    if fmt == "date-time":
        parsed = _parse_datetime(value)
        return parsed if parsed is not None else value
    if fmt == "date":
        try:
            return _aware(date.fromisoformat(value))
        except ValueError:
            return value
    if fmt == "duration":
        parsed_d = _parse_duration(value)
        return parsed_d if parsed_d is not None else value
    if fmt == "byte":
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return value
    return value


def to_cel_value(value: Any, schema: Any, embedded: bool = False) -> Any:
    """Convert an (already defaulted) object to the CEL value the apiserver binds to ``self``."""
    if value is None:
        return None
    if not isinstance(schema, dict) or schema.get("x-kubernetes-int-or-string"):
        return _plain(value)
    if isinstance(value, dict):
        props = schema.get("properties")
        props = props if isinstance(props, dict) else {}
        additional = schema.get("additionalProperties")
        preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields")) or additional is True
        resource = embedded or bool(schema.get("x-kubernetes-embedded-resource"))
        out: dict[str, Any] = {}
        for key, child in value.items():
            if resource and key == "metadata" and isinstance(child, dict):
                out[key] = {k: child[k] for k in ("name", "generateName") if k in child}
            elif key in props:
                out[key] = to_cel_value(child, props[key])
            elif isinstance(additional, dict):
                out[key] = to_cel_value(child, additional)
            elif preserve or (resource and key in ("apiVersion", "kind")):
                out[key] = _plain(child)
            # else: pruned, as the apiserver prunes unknown fields
        return out
    if isinstance(value, (list, tuple)):
        items = schema.get("items")
        return [to_cel_value(v, items) if isinstance(items, dict) else _plain(v) for v in value]
    kind = schema.get("type")
    if kind == "number" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind == "string":
        return _convert_string(value, schema.get("format"))
    return _plain(value)
