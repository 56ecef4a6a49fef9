"""A whole check: a stack (rendered under mocks) or a folder of YAML, through every validator.

- core kinds: ``kubernetes-validate`` (strict) at the cluster's Kubernetes version;
- custom resources: the upstream CRD's ``openAPIV3Schema`` and its CEL rules (:mod:`.objects`);
- every manifest: ``checkov`` (:mod:`.checkov`);
- the platform's policy rules (``policy/rules.py``) on the objects as the API server stores them;
- for a stack, each Helm release's values against its chart (:mod:`.helm_values`).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml

from infra.check import helm_values
from infra.check.checkov import run_checkov
from infra.check.legacy import inf1_node_pools, inf1_serving
from infra.check.objects import validate_objects
from infra.check.report import Finding, Report
from policy import rules


def run_policy(objs: list[dict[str, Any]], preview: dict[str, Any] | None, *, allow_public_lb: bool) -> list[Finding]:
    resources = []
    if preview:
        resources = [{"type": s["newState"]["type"], "urn": s["urn"], "inputs": s["newState"]["inputs"]}
                     for s in preview.get("steps", [])]
    return [Finding("policy", f.resource, f"{f.rule}: {f.message}")
            for f in rules.evaluate(objs, resources, allow_public_lb=allow_public_lb)]


def run_helm_values(report: Report, preview: dict[str, Any]) -> list[Finding]:
    """Each Helm release's values against the chart's own values.yaml at the pinned version."""
    hv = helm_values.check_preview(preview)
    report.helm_checked = list(hv.checked)
    report.helm_not_checked = [str(n) for n in hv.not_checked]
    return [Finding("helm-values", f"HelmRelease/{f.release}", f"{f.path}: {f.message}") for f in hv.findings]


def read_manifest_dir(path: Path) -> tuple[list[dict[str, Any]], list[Finding]]:
    objs, bad = [], []
    files = sorted([*path.rglob("*.yaml"), *path.rglob("*.yml")])
    for f in files:
        try:
            docs = list(yaml.load_all(f.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
        except yaml.YAMLError as exc:
            bad.append(Finding("yaml", f.name, f"not valid YAML: {exc}"))
            continue
        for doc in docs:
            if isinstance(doc, dict) and doc.get("kind"):
                objs.append(doc)
            elif doc is not None:
                bad.append(Finding("yaml", f.name, "a document without apiVersion/kind"))
    return objs, bad


def check_stack(stack: str, out: Path, crd_dir: Path | None, *, with_checkov: bool = True) -> Report:
    from infra.preview.render import render

    result = render(stack, out)
    objs = [obj for _, obj in result.manifests]
    stored: list[dict[str, Any]] = []  # custom resources defaulted as the API server stores them
    report = validate_objects(objs, k8s_version=result.cfg.cluster.version, crd_dir=crd_dir, stored=stored)
    t0 = time.perf_counter()
    report.findings += run_policy(stored, result.preview, allow_public_lb=result.cfg.allow_public_load_balancers)
    report.timings["policy"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    report.findings += run_helm_values(report, result.preview)
    report.timings["helm_values"] = time.perf_counter() - t0
    serving = result.cfg.serving
    report.warnings += inf1_node_pools(objs) + inf1_serving(serving.device if serving.enabled else "")
    if with_checkov and objs:
        t0 = time.perf_counter()
        report.findings += run_checkov(out / "manifests")
        report.timings["checkov"] = time.perf_counter() - t0
    return report


def check_manifests(path: Path, crd_dir: Path | None, k8s_version: str, *, with_checkov: bool = True) -> Report:
    objs, bad = read_manifest_dir(path)
    stored: list[dict[str, Any]] = []  # custom resources defaulted as the API server stores them
    report = validate_objects(objs, k8s_version=k8s_version, crd_dir=crd_dir, stored=stored)
    report.findings = bad + report.findings
    report.findings += run_policy(stored, None, allow_public_lb=False)
    report.warnings += inf1_node_pools(objs)
    if with_checkov and objs:
        report.findings += run_checkov(path)
    return report
