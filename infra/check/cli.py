"""``python -m infra check``: validate what a stack renders (or a folder of YAML) before anything is applied.

- core kinds: ``kubernetes-validate`` (strict) at the cluster's Kubernetes version;
- custom resources: the upstream CRD's ``openAPIV3Schema`` (unknown fields are errors) and its
  CEL rules (``x-kubernetes-validations``, :mod:`infra.check.cel`);
- every manifest: ``checkov`` (kubernetes framework);
- the platform's policy rules (``policy/rules.py``).

Every check that is not applied is named, with its reason, in ``check-skips.yaml``.
The exit code is non-zero on any finding.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from infra import upstream
from infra.check.report import format_report
from infra.check.run import check_manifests, check_stack
from infra.config import DEFAULT_K8S, ConfigError
from infra.upstream_cli import add_upstream_arg, parse_args

REPO = Path(__file__).resolve().parents[2]


def _parser() -> argparse.ArgumentParser:
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
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parse_args(_parser(), argv)
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
