"""Semver library: ``semver``, ``isSemver``, ``major``, ``minor``, ``patch`` (comparisons live in
``quantities``).
"""
from __future__ import annotations

import re
from typing import Any

from .registry import _register
from .values import _need, _tagged, _untag


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
