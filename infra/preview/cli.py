"""``python -m infra render --stack S [--out DIR] [--upstream DIR]``: the offline preview of a stack."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from infra.config import ConfigError
from infra.preview.render import REPO, render
from infra.upstream import UpstreamError
from infra.upstream_cli import add_upstream_arg, parse_args


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m infra render", description="offline preview of a stack")
    ap.add_argument("--stack", default="dev")
    ap.add_argument("--out", type=Path, default=None, help="output folder (default: build/<stack>)")
    ap.add_argument("--project-dir", type=Path, default=REPO, help="folder holding Pulumi.yaml and Pulumi.<stack>.yaml")
    add_upstream_arg(ap)
    args = parse_args(ap, argv)
    out = args.out or REPO / "build" / args.stack
    try:
        result = render(args.stack, out, project_dir=args.project_dir)
    except ConfigError as exc:
        print("invalid stack configuration:\n  " + "\n  ".join(exc.problems), file=sys.stderr)
        return 2
    except UpstreamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(result.summary, end="")
    print(f"\nwrote {out / 'preview.json'} and {len(result.manifests)} manifests under {out / 'manifests'} "
          f"(program ran in {result.seconds:.1f}s)")
    return 0
