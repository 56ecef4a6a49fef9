"""Shared pieces of the stack config: ``ConfigError``, the ``_Model`` base, the project name,
regexes used by more than one section, and small quantity helpers (``cpu_millis``, ``memory_bytes``)."""
from __future__ import annotations

import ipaddress
import re
from typing import Optional

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

PROJECT = "eks-ml-platform"
QUANTITY_RE = re.compile(r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$")
CPU_QUANTITY_RE = re.compile(r"^(\d+m|\d+(\.\d{1,3})?)$")
DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
IMAGE_RE = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(:\d+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*"
                      r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}(@sha256:[0-9a-f]{64})?|@sha256:[0-9a-f]{64})$")
_MEM_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
              "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}


class ConfigError(Exception):
    """Bad stack configuration. ``problems`` holds one readable line per mistake."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, str_strip_whitespace=True
    )


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

