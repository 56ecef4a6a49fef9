"""``python -m infra migrate karpenter IN... [--out DIR] [--cluster NAME]``: legacy Karpenter manifests as v1.

Reads each YAML file (one or many documents), migrates the Karpenter objects in them
(:func:`infra.migrate.karpenter.migrate`) and puts the result through the checks of
``check --manifests``: the core and CRD schemas, the CRDs' CEL rules and the platform's policy
rules, on the objects as the API server would store them. Only a result that passes is written:
to stdout, or one file per object under ``--out``; each object's warnings stand above it as
comments and are printed. Exit codes: 0 written, 1 the result would be rejected (why is printed,
nothing is written), 2 bad input or usage.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from infra import upstream
from infra.check.objects import validate_objects
from infra.check.report import Finding
from infra.check.run import run_policy
from infra.config import DEFAULT_K8S
from infra.migrate.common import MigrationError
from infra.migrate.karpenter import Migration, migrate
from infra.upstream_cli import add_upstream_arg, parse_args

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m infra migrate", description=__doc__.split("\n\n")[0])
    targets = ap.add_subparsers(dest="target", required=True, metavar="karpenter")
    k = targets.add_parser("karpenter", help="Provisioner/AWSNodeTemplate (v1alpha5/v1alpha1) and v1beta1 "
                                             "NodePool/EC2NodeClass to karpenter.sh/v1 and karpenter.k8s.aws/v1")
    k.add_argument("inputs", nargs="+", type=Path, metavar="IN", help="YAML file(s), one or many documents each")
    k.add_argument("--out", type=Path, metavar="DIR", help="write one file per object here (default: stdout)")
    k.add_argument("--cluster", metavar="NAME", help="resolve cluster-name placeholders (<cluster-name>, "
                                                     "${CLUSTER_NAME}) to NAME")
    k.add_argument("--k8s-version", default=DEFAULT_K8S, help="Kubernetes version the core schemas are read at")
    add_upstream_arg(k)
    return ap


def read_inputs(paths: list[Path]) -> tuple[list[Any], list[str]]:
    """Every non-empty YAML document of ``paths`` and its label ("seed.yaml, document 1") for errors."""
    docs: list[Any] = []
    sources: list[str] = []
    for path in paths:
        if path.is_dir():
            raise MigrationError(f"{path}: is a folder; give the YAML files")
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise MigrationError(f"{path}: cannot read it: {getattr(exc, 'strerror', None) or exc}") from None
        try:
            found = list(yaml.load_all(text, Loader=LOADER))
        except yaml.YAMLError as exc:
            raise MigrationError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
        for n, doc in enumerate(found, start=1):
            if doc is not None:
                docs.append(doc)
                sources.append(f"{path}, document {n}")
    return docs, sources


def check_objects(objs: list[dict[str, Any]], k8s_version: str = DEFAULT_K8S) -> list[Finding]:
    """What ``check --manifests`` would find in ``objs``: schemas, CRD schemas and CEL, then the policy
    rules on the objects as stored (defaulted)."""
    stored: list[dict[str, Any]] = []
    report = validate_objects(objs, k8s_version=k8s_version, crd_dir=None, stored=stored)
    return report.findings + run_policy(stored, None, allow_public_lb=False)


def file_name(obj: dict[str, Any]) -> str:
    return f"{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"


def document(m: Migration, i: int) -> str:
    """Object ``i`` as YAML (sorted keys), under comments naming its origin and its warnings."""
    obj = m.objects[i]
    head = [f"# {obj['apiVersion']} {obj['kind']}/{obj['metadata']['name']}, from {m.origins[i]}"]
    head += [f"# WARNING: {note}" for note in m.notes_for(obj)]
    return "\n".join(head) + "\n" + yaml.safe_dump(obj, sort_keys=True, default_flow_style=False)


def summary(m: Migration) -> list[str]:
    """The warnings, grouped by object in output order (then the objects left out)."""
    lines = []
    written = [f"{o['kind']}/{o['metadata']['name']}" for o in m.objects]
    for rid in dict.fromkeys([*(r for r in written if any(n.resource == r for n in m.notes)),
                              *(n.resource for n in m.notes)]):
        lines.append(f"{rid}:")
        lines += [f"  warning: {n.message}" for n in m.notes if n.resource == rid]
    return lines


def _write(m: Migration, out: Path | None) -> None:
    docs = [document(m, i) for i in range(len(m.objects))]
    if out is None:
        sys.stdout.write("---\n".join(docs))
        print("\n".join(summary(m)), file=sys.stderr)
        return
    out.mkdir(parents=True, exist_ok=True)
    for obj, text in zip(m.objects, docs):
        (out / file_name(obj)).write_text(text)
        print(f"wrote {out / file_name(obj)}")
    print("\n".join(summary(m)))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(_parser(), argv)
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        print(f"error: --out {args.out}: not a folder", file=sys.stderr)
        return 2
    try:
        docs, sources = read_inputs(args.inputs)
        result = migrate(docs, cluster=args.cluster, sources=sources)
        if not result.objects:
            raise MigrationError(f"{', '.join(map(str, args.inputs))}: no Karpenter object to migrate")
        findings = check_objects(result.objects, args.k8s_version)
    except MigrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except upstream.UpstreamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if findings:
        print("\n".join(summary(result)), file=sys.stderr)
        print(f"the migrated objects would be rejected ({len(findings)} finding(s)); nothing written:",
              file=sys.stderr)
        print("\n".join(f"  {f}" for f in findings), file=sys.stderr)
        return 1
    _write(result, args.out)
    return 0
