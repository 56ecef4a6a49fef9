"""Shared pieces of the stack config: ``ConfigError``, the ``_Model`` base, the project name,
regexes used by more than one section, and small quantity helpers (``cpu_millis``, ``memory_bytes``)."""
from __future__ import annotations

import ipaddress
import re
from types import UnionType
from typing import Any, Callable, Iterable, Optional, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator
from pydantic.alias_generators import to_camel

PROJECT = "eks-ml-platform"
QUANTITY_RE = re.compile(r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$")
CPU_QUANTITY_RE = re.compile(r"^(\d+m|\d+(\.\d{1,3})?)$")
DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
IMAGE_RE = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(:\d+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*"
                      r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}(@sha256:[0-9a-f]{64})?|@sha256:[0-9a-f]{64})$")
_MEM_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
              "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}


#: A problem line longer than this keeps its start (the key) and its end (what is allowed).
MAX_PROBLEM_CHARS = 300


def one_line(text: str, limit: int = MAX_PROBLEM_CHARS) -> str:
    """``text`` as one printable line: control characters and lone surrogates escaped, a long middle cut."""
    out = "".join(c if c.isprintable() and not 0xD800 <= ord(c) <= 0xDFFF
                  else c.encode("unicode_escape").decode("ascii") for c in text)
    if len(out) > limit:
        head, tail = limit * 2 // 5, limit * 2 // 5
        out = f"{out[:head]} ...({len(out) - head - tail} characters cut)... {out[-tail:]}"
    return out


class ConfigError(Exception):
    """Bad stack configuration. ``problems`` holds one readable line per mistake (printable, bounded)."""

    def __init__(self, problems: list[str]):
        self.problems = [one_line(p) for p in problems]
        super().__init__("\n".join(self.problems))


def _scalar_kind(annotation: Any) -> Optional[type]:
    """``int``, ``float`` or ``bool`` when a field holds exactly that (optionally None), else None."""
    args = set(get_args(annotation)) - {type(None)} if get_origin(annotation) in (Union, UnionType) else {annotation}
    return next(iter(args)) if len(args) == 1 and next(iter(args)) in (int, float, bool) else None


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, str_strip_whitespace=True
    )

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, v: Any, info: ValidationInfo) -> Any:
        """pydantic's lax mode reads ``true`` as 1 and ``0`` as false: a number key given a boolean, or a
        boolean key given a number, is a mistake to report, not to convert. (Strings stay accepted: the
        Pulumi engine passes top-level values as text.)"""
        field = cls.model_fields.get(info.field_name or "")
        kind = _scalar_kind(field.annotation) if field is not None else None
        if kind in (int, float) and isinstance(v, bool):
            raise ValueError(f"{v} is a boolean; a number is required here")
        if kind is bool and isinstance(v, (int, float)) and not isinstance(v, bool):
            raise ValueError(f"{v} is a number; use true or false")
        return v


# Kubernetes label keys ([prefix/]name) and values (https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/)
LABEL_NAME_RE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
LABEL_PREFIX_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$")
SEMVER_RE = re.compile(r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
#: AWS tag keys (1-128) and values (0-256): letters, digits, spaces and + - = . _ : / @
AWS_TAG_PUNCTUATION = set("+-=._:/@ ")


def check_each(values: Iterable[str], problem_of: Callable[[str], Optional[str]]) -> None:
    """Raise ValueError with the first value's problem (a validator over a list of names)."""
    for value in values:
        problem = problem_of(value)
        if problem:
            raise ValueError(problem)


def label_problem(key: str, value: str) -> Optional[str]:
    """Why ``key: value`` is not a valid Kubernetes label, or None."""
    prefix, slash, name = key.rpartition("/")
    if not LABEL_NAME_RE.match(name) or (slash and (len(prefix) > 253 or not LABEL_PREFIX_RE.match(prefix))):
        return (f"label key {key!r} is not valid: [a DNS subdomain prefix/]a name of at most 63 letters, digits, "
                "'-', '_' or '.', starting and ending with a letter or digit")
    if value and not LABEL_NAME_RE.match(value):
        return (f"label value {value!r} of {key!r} is not valid: at most 63 letters, digits, '-', '_' or '.', "
                "starting and ending with a letter or digit")
    return None


def aws_tag_problem(key: str, value: str) -> Optional[str]:
    """Why ``key=value`` is not a valid AWS tag, or None."""
    for what, text, limit in (("key", key, 128), ("value", value, 256)):
        if len(text) > limit or (what == "key" and not text):
            return f"tag {what} {text!r} must be {'1' if what == 'key' else '0'}-{limit} characters"
        bad = sorted({c for c in text if not (c.isalnum() or c in AWS_TAG_PUNCTUATION)})
        if bad:
            return (f"tag {what} {text!r} holds {''.join(bad)!r}; AWS tags take letters, digits, spaces and "
                    "+ - = . _ : / @")
    return None


def _cidr(value: str, key: str = "CIDR") -> str:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid {key} ({exc})") from None
    return str(net)


def _camel(name: str) -> str:
    return to_camel(name)


def memory_bytes(value: str) -> int:
    """A Kubernetes memory quantity ("512Mi", "16Gi", "1G") in bytes."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?", str(value).strip())
    if not m:
        raise ValueError(f"{value!r} is not a memory quantity such as 512Mi or 16Gi")
    return int(float(m.group(1)) * _MEM_UNITS[m.group(2) or ""])


def cpu_millis(value: str) -> int:
    """A Kubernetes CPU quantity ("500m", "1", "1.5") in millicores."""
    text = str(value)
    if not CPU_QUANTITY_RE.match(text):
        raise ValueError(f"{value!r} is not a CPU quantity such as 500m, 1 or 1.5")
    return int(text[:-1]) if text.endswith("m") else round(float(text) * 1000)


def pinned_image(v: Optional[str]) -> Optional[str]:
    """A container image pinned by tag or digest (never :latest); None passes (the platform's default)."""
    if v is None:
        return v
    if not IMAGE_RE.match(v):
        raise ValueError(f"{v!r} is not a pinned image reference (registry/name:tag or registry/name@sha256:<digest>)")
    if v.endswith(":latest"):
        raise ValueError(f"{v!r} uses :latest; pin a version tag or a digest so every replica runs the same code")
    return v


def pool_name(v: Optional[str]) -> Optional[str]:
    """The name of a node pool (a DNS label); None passes (the component picks the pool)."""
    if v is not None and not DNS_LABEL_RE.match(v):
        raise ValueError(f"{v!r} must be a node pool name (lowercase letters, digits, '-')")
    return v


def positive_cpu(v: object) -> str:
    """A CPU quantity above zero ("500m", "2"), kept as the text the user wrote."""
    text = str(v).strip()
    if cpu_millis(text) <= 0:
        raise ValueError(f"{text!r} must be more than 0")
    return text

