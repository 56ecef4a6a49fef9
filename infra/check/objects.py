"""Core and CRD validation of parsed objects (no rendering, no checkov, no policy).

Core kinds go to ``kubernetes-validate`` (strict) at the cluster's Kubernetes version; a custom
resource is checked as the API server checks it on create: nulls of fields that are neither
nullable nor defaulted are dropped and the CRD's structural defaults applied
(:mod:`infra.check.defaults`), then the defaulted object is validated against the CRD's
``openAPIV3Schema`` (unknown fields are errors) and then its CEL rules (:mod:`infra.check.cel`).
Karpenter's legacy APIs (v1alpha5, v1alpha1, v1beta1), which Karpenter v1 no longer serves, are a
finding that names the way forward (``python -m infra migrate karpenter``), not an unchecked kind.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from infra.check import cel
from infra.check.crds import CrdVersion, load_crds, load_pinned_crds, schema_errors
from infra.check.defaults import as_stored
from infra.check.report import Finding, KindCoverage, Report, resource_id

# Karpenter APIs that Karpenter v1 (the pinned 1.14) no longer serves: a finding with the way forward,
# not an unchecked kind (``python -m infra migrate karpenter`` rewrites them; see infra/migrate/).
LEGACY_KARPENTER: frozenset[tuple[str, str]] = frozenset({
    ("karpenter.sh/v1alpha5", "Provisioner"),
    ("karpenter.k8s.aws/v1alpha1", "AWSNodeTemplate"),
    ("karpenter.sh/v1beta1", "NodePool"),
    ("karpenter.k8s.aws/v1beta1", "EC2NodeClass"),
})


def _legacy_karpenter(obj: dict[str, Any], cov: KindCoverage, report: Report) -> None:
    api, kind = obj.get("apiVersion"), obj.get("kind")
    cov.how = "NOT SERVED by Karpenter v1: migrate it (python -m infra migrate karpenter)"
    report.findings.append(Finding("legacy-api", resource_id(obj),
                                   f"Karpenter v1 no longer serves {api} {kind}; "
                                   "run `python -m infra migrate karpenter FILE`"))


def _check_custom_resource(obj: dict[str, Any], crd: CrdVersion, cov: KindCoverage, report: Report,
                           stored: list[dict[str, Any]] | None) -> tuple[float, float]:
    """Schema and CEL of one custom resource, as stored; returns (schema seconds, CEL seconds)."""
    rid = resource_id(obj)
    cov.how = "CRD schema + CEL"
    t0 = time.perf_counter()
    # (1) nulls pruned, (2) structural defaults, then (3) schema and (4) CEL on that object
    defaulted = as_stored(obj, crd.schema)
    if stored is not None:
        stored.append(defaulted)
    for err in schema_errors(defaulted, crd):
        report.findings.append(Finding("crd-schema", rid, err))
    t1 = time.perf_counter()
    cel_report = cel.validate(defaulted, crd.schema)
    cov.cel_checked += cel_report.checked
    cov.cel_skipped += cel_report.skipped
    cov.cel_unsupported += len(cel_report.unsupported)
    for f in cel_report.failures:
        report.findings.append(Finding("cel", rid, f"{f.path or '<root>'}: {f.message}"))
    return t1 - t0, time.perf_counter() - t1


def _check_core(obj: dict[str, Any], version: str, crd_dir: Path | None, cov: KindCoverage, report: Report) -> None:
    """One core object against the Kubernetes OpenAPI schema of ``version`` (strict)."""
    import kubernetes_validate

    kind = f"{obj.get('apiVersion')}/{obj.get('kind')}"
    rid = resource_id(obj)
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


def validate_objects(objs: list[dict[str, Any]], *, k8s_version: str, crd_dir: Path | None,
                     stored: list[dict[str, Any]] | None = None) -> Report:
    """Core and CRD validation of parsed objects (no rendering, no checkov).

    When ``stored`` is given, each object as the server would store it (the defaulted copy for a
    custom resource, the object itself otherwise) is appended to it, in order: that is what the
    policy rules judge.
    """
    report = Report()
    # the pinned upstream CRDs, then a user's own (--crds) on top
    crds: dict[tuple[str, str], CrdVersion] = load_pinned_crds()
    if crd_dir and crd_dir.exists():
        crds.update(load_crds(crd_dir))
    version = k8s_version if k8s_version.count(".") == 2 else f"{k8s_version}.0"
    t_core = t_crd = t_cel = 0.0
    for obj in objs:
        cov = report.coverage[f"{obj.get('apiVersion')}/{obj.get('kind')}"]
        cov.objects += 1
        if (obj.get("apiVersion"), obj.get("kind")) in LEGACY_KARPENTER:  # even with an old CRD given by --crds
            if stored is not None:
                stored.append(obj)
            _legacy_karpenter(obj, cov, report)
            continue
        crd = crds.get((obj.get("apiVersion", ""), obj.get("kind", "")))
        if crd is not None:
            dt_crd, dt_cel = _check_custom_resource(obj, crd, cov, report, stored)
            t_crd += dt_crd
            t_cel += dt_cel
            continue
        if stored is not None:
            stored.append(obj)
        t0 = time.perf_counter()
        _check_core(obj, version, crd_dir, cov, report)
        t_core += time.perf_counter() - t0
    report.timings.update(core=t_core, crd_schema=t_crd, cel=t_cel)
    return report
