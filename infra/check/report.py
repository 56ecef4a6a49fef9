"""What a check found and how each kind was validated, and the report ``python -m infra check`` prints."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Finding:
    check: str      # core-schema | crd-schema | cel | checkov | policy | unchecked
    resource: str   # Kind/namespace/name
    message: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.resource}: {self.message}"


@dataclass
class KindCoverage:
    objects: int = 0
    how: str = ""
    cel_checked: int = 0
    cel_skipped: int = 0
    cel_unsupported: int = 0


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    coverage: dict[str, KindCoverage] = field(default_factory=lambda: defaultdict(KindCoverage))
    unchecked_kinds: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    helm_checked: list[str] = field(default_factory=list)       # "<release>: <chart> <version>"
    helm_not_checked: list[str] = field(default_factory=list)   # never counted as passed
    warnings: list[Finding] = field(default_factory=list)       # printed, never a failure (infra/check/legacy.py)

    @property
    def ok(self) -> bool:
        return not self.findings


def resource_id(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{obj.get('kind', '?')}/{ns + '/' if ns else ''}{meta.get('name', '?')}"


def format_report(report: Report, *, title: str) -> str:
    lines = [title, "", f"{'kind':<64} {'objects':>7}  validated by"]
    for kind in sorted(report.coverage):
        cov = report.coverage[kind]
        cel = ""
        if "CEL" in cov.how:  # every custom-resource kind states its CEL coverage, zeros included
            cel = f"  [CEL rules: {cov.cel_checked} checked, {cov.cel_skipped} skipped (update-only), " \
                  f"{cov.cel_unsupported} unsupported]"
        lines.append(f"{kind:<64} {cov.objects:>7}  {cov.how}{cel}")
    if report.helm_checked or report.helm_not_checked:
        lines.append("")
        lines.append("Helm values (each key path against the chart's values.yaml at the pinned version):")
        lines += [f"  checked      {c}" for c in report.helm_checked]
        lines += [f"  not checked  {n}" for n in report.helm_not_checked]
    t = report.timings
    if t:
        lines.append("")
        lines.append("time: " + ", ".join(f"{k} {v:.2f}s" for k, v in t.items()))
    lines.append("")
    if report.warnings:
        lines.append(f"{len(report.warnings)} warning(s) (not failures):")
        lines += [f"  {w}" for w in report.warnings]
        lines.append("")
    if report.findings:
        lines.append(f"{len(report.findings)} finding(s):")
        lines += [f"  {f}" for f in report.findings]
    else:
        lines.append("no findings")
    return "\n".join(lines)
