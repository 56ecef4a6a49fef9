"""The command line: ``python -m infra cost`` (:func:`main`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .estimator import estimate
from .report import format_text
from .table import REPO, PriceTableError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m infra cost",
                                description="Idle and maximum $/hour of a stack from the shipped "
                                            "price table.")
    p.add_argument("--stack", default="dev")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--project-dir", type=Path, default=REPO, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    from infra.config import ConfigError, load_stack_config

    try:
        cfg = load_stack_config(args.stack, args.project_dir)
    except ConfigError as exc:
        print("invalid stack configuration:\n  " + "\n  ".join(exc.problems), file=sys.stderr)
        return 2
    try:
        est = estimate(cfg)
    except PriceTableError as exc:
        print(f"cost: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(est, indent=2, sort_keys=True))
    else:
        print(format_text(est), end="")
    return 0
