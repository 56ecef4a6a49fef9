"""``python -m infra check``: validate what a stack renders (or a folder of YAML) before anything is applied.

- core kinds: ``kubernetes-validate`` (strict) at the cluster's Kubernetes version;
- custom resources: the upstream CRD's ``openAPIV3Schema`` (unknown fields are errors) and its
  CEL rules (``x-kubernetes-validations``), when ``infra.validate.cel`` is present;
- every manifest: ``checkov`` (kubernetes framework);
- the platform's policy rules (``policy/rules.py``) when present.

Every check that is not applied is named, with its reason, in ``check-skips.yaml``.
The exit code is non-zero on any finding.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from infra import upstream
from infra.upstream_cli import add_upstream_arg, parse_args
from infra.validate.crds import CrdVersion, load_crds, load_pinned_crds, schema_errors
from infra.validate.defaults import as_stored

REPO = Path(__file__).resolve().parents[1]
SKIPS_FILE = REPO / "check-skips.yaml"


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

    @property
    def ok(self) -> bool:
        return not self.findings


def resource_id(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{obj.get('kind', '?')}/{ns + '/' if ns else ''}{meta.get('name', '?')}"


def load_skips(path: Path = SKIPS_FILE) -> dict[str, Any]:
    if not path.exists():
        return {}
    return yaml.safe_load(path.read_text()) or {}


def _cel():
    from infra.validate import cel  # part of the repository: an import error is a bug, never a silent skip

    return cel


def validate_objects(objs: list[dict[str, Any]], *, k8s_version: str, crd_dir: Path | None,
                     stored: list[dict[str, Any]] | None = None) -> Report:
    """Core and CRD validation of parsed objects (no rendering, no checkov).

    A custom resource is checked as the API server checks it on create: nulls of fields that are
    neither nullable nor defaulted are dropped and the CRD's structural defaults applied
    (``infra.validate.defaults``), then the defaulted object is validated against the schema and
    then its CEL rules. When ``stored`` is given, each object as the server would store it (the
    defaulted copy for a custom resource, the object itself otherwise) is appended to it, in
    order: that is what the policy rules judge.
    """
    import kubernetes_validate

    report = Report()
    # the pinned upstream CRDs, then a user's own (--crds) on top
    crds: dict[tuple[str, str], CrdVersion] = load_pinned_crds()
    if crd_dir and crd_dir.exists():
        crds.update(load_crds(crd_dir))
    cel = _cel()
    version = k8s_version if k8s_version.count(".") == 2 else f"{k8s_version}.0"
    t_core = t_crd = t_cel = 0.0
    for obj in objs:
        kind = f"{obj.get('apiVersion')}/{obj.get('kind')}"
        rid = resource_id(obj)
        cov = report.coverage[kind]
        cov.objects += 1
        crd = crds.get((obj.get("apiVersion", ""), obj.get("kind", "")))
        if crd is None and stored is not None:
            stored.append(obj)
        if crd is not None:
            cov.how = "CRD schema" + (" + CEL" if cel else "")
            t0 = time.perf_counter()
            # (1) nulls pruned, (2) structural defaults, then (3) schema and (4) CEL on that object
            defaulted = as_stored(obj, crd.schema)
            if stored is not None:
                stored.append(defaulted)
            for err in schema_errors(defaulted, crd):
                report.findings.append(Finding("crd-schema", rid, err))
            t1 = time.perf_counter()
            if cel is not None:
                cel_report = cel.validate(defaulted, crd.schema)
                cov.cel_checked += cel_report.checked
                cov.cel_skipped += cel_report.skipped
                cov.cel_unsupported += len(cel_report.unsupported)
                for f in cel_report.failures:
                    report.findings.append(Finding("cel", rid, f"{f.path or '<root>'}: {f.message}"))
            t_crd += t1 - t0
            t_cel += time.perf_counter() - t1
            continue
        t0 = time.perf_counter()
        try:
            kubernetes_validate.validate(obj, version, strict=True)
            cov.how = f"kubernetes-validate {version} (strict)"
        except kubernetes_validate.SchemaNotFoundError:
            why = "no pinned upstream CRD for it" + (f" and none in {crd_dir}" if crd_dir else
                                                      " (give its CRD with --crds DIR)")
            report.unchecked_kinds[kind] = why
            cov.how = "NOT CHECKED: " + why
            report.findings.append(Finding("unchecked", rid, f"{kind} has no schema: {why}"))
        except kubernetes_validate.ValidationError as exc:
            cov.how = f"kubernetes-validate {version} (strict)"
            path = ".".join(str(p) for p in exc.path) or "<root>"
            report.findings.append(Finding("core-schema", rid, f"{path}: {exc.message}"))
        t_core += time.perf_counter() - t0
    report.timings.update(core=t_core, crd_schema=t_crd, cel=t_cel)
    return report


def checkov_binary() -> str | None:
    local = REPO / ".venv-checkov" / "bin" / "checkov"
    if local.exists():
        return str(local)
    return shutil.which("checkov")


def run_checkov(manifest_dir: Path, *, framework: str = "kubernetes") -> list[Finding]:
    """Run checkov over a folder; every finding not listed (with a reason) in check-skips.yaml is reported."""
    binary = checkov_binary()
    if binary is None:
        return [Finding("checkov", str(manifest_dir), "checkov is not installed (run `make deps`)")]
    skips = load_skips().get("checkov", {}) or {}
    cmd = [binary, "-d", str(manifest_dir), "--framework", framework, "-o", "json", "--quiet", "--compact",
           "--skip-download", "--soft-fail"]
    if skips:
        cmd += ["--skip-check", ",".join(sorted(skips))]
    env = dict(os.environ, BC_SKIP_MAPPING="TRUE", CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false", PYTHONWARNINGS="ignore")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    text = proc.stdout.strip()
    if not text:
        return [Finding("checkov", str(manifest_dir), f"checkov produced no report: {proc.stderr.strip()[-500:]}")]
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return [Finding("checkov", str(manifest_dir), f"unreadable checkov output: {text[:300]}")]
    results = data if isinstance(data, list) else [data]
    out = []
    for block in results:
        for failed in (block.get("results") or {}).get("failed_checks", []):
            res = failed.get("resource", "?")
            out.append(Finding("checkov", f"{Path(failed.get('file_path', '')).name} {res}",
                               f"{failed['check_id']} {failed.get('check_name', '')}"))
    return out


def run_policy(objs: list[dict[str, Any]], preview: dict[str, Any] | None, *, allow_public_lb: bool) -> list[Finding]:
    from policy import rules  # part of the repository: an import error propagates
    resources = []
    if preview:
        resources = [{"type": s["newState"]["type"], "urn": s["urn"], "inputs": s["newState"]["inputs"]}
                     for s in preview.get("steps", [])]
    return [Finding("policy", f.resource, f"{f.rule}: {f.message}")
            for f in rules.evaluate(objs, resources, allow_public_lb=allow_public_lb)]


def run_helm_values(report: Report, preview: dict[str, Any]) -> list[Finding]:
    """Each Helm release's values against the chart's own values.yaml at the pinned version."""
    from infra.validate import helm_values

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
    if report.findings:
        lines.append(f"{len(report.findings)} finding(s):")
        lines += [f"  {f}" for f in report.findings]
    else:
        lines.append("no findings")
    return "\n".join(lines)


def check_stack(stack: str, out: Path, crd_dir: Path | None, *, with_checkov: bool = True) -> Report:
    from infra.render import render

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
    if with_checkov and objs:
        report.findings += run_checkov(path)
    return report


def main(argv: list[str] | None = None) -> int:
    import argparse

    from infra.config import DEFAULT_K8S, ConfigError

    ap = argparse.ArgumentParser(prog="python -m infra check", description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--stack", default=None, help="render this stack and check it (default: dev)")
    src.add_argument("--manifests", type=Path, help="check a folder of YAML files without rendering")
    ap.add_argument("--crds", type=Path, default=None,
                    help="folder of your own CRDs, checked on top of the pinned upstream ones")
    add_upstream_arg(ap)
    ap.add_argument("--out", type=Path, help="render output folder (default: build/<stack>)")
    ap.add_argument("--k8s-version", default=DEFAULT_K8S, help="Kubernetes version for --manifests")
    ap.add_argument("--no-checkov", action="store_true", help="skip checkov (it is reported as skipped)")
    args = parse_args(ap, argv)
    if args.crds is not None and not args.crds.is_dir():
        print(f"error: --crds {args.crds}: not a folder", file=sys.stderr)
        return 2
    if args.manifests is not None and not args.manifests.is_dir():
        print(f"error: --manifests {args.manifests}: not a folder", file=sys.stderr)
        return 2
    try:
        if args.manifests is not None:
            report = check_manifests(args.manifests, args.crds, args.k8s_version, with_checkov=not args.no_checkov)
            title = f"check of {args.manifests}"
        else:
            stack = args.stack or "dev"
            report = check_stack(stack, args.out or REPO / "build" / stack, args.crds,
                                 with_checkov=not args.no_checkov)
            title = f"check of stack {stack}"
    except ConfigError as exc:
        print("invalid stack configuration:\n  " + "\n  ".join(exc.problems), file=sys.stderr)
        return 2
    except upstream.UpstreamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.no_checkov:
        title += " (checkov skipped: --no-checkov)"
    print(format_report(report, title=title))
    return 0 if report.ok else 1
