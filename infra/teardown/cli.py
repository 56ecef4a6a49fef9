"""The command line: ``python -m infra teardown`` (argparse and :func:`main`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .steps import run_teardown


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m infra teardown",
        description="Safely tear down an ephemeral (dev) stack and sweep what Karpenter and "
                    "the controllers left outside Pulumi's state.")
    p.add_argument("--stack", required=True, help="stack name, e.g. dev")
    p.add_argument("--region", help="AWS region; must match the stack's (default: the stack's)")
    p.add_argument("--dry-run", action="store_true",
                   help="print what each step would do and the exact sweep list; change nothing")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--sweep-only", action="store_true", help="run only the sweep (step 4)")
    p.add_argument("--node-timeout", type=float, default=900.0,
                   help="seconds to wait for Karpenter nodes to go (step 2, default 900)")
    p.add_argument("--project-dir", type=Path, default=None, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_teardown(args.stack, region=args.region, project_dir=args.project_dir,
                        dry_run=args.dry_run, yes=args.yes, sweep_only=args.sweep_only,
                        node_timeout=args.node_timeout)
