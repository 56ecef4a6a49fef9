"""The platform's CLI: ``python -m infra <command>``.

  render    --stack S [--out DIR] [--upstream DIR]   offline preview (the real program under mocks)
  check     --stack S | --manifests DIR [--crds DIR] [--upstream DIR]
  cost      --stack S [--json]
  teardown  --stack S --region R [--dry-run] [--yes] [--sweep-only]
  prdiff    --base DIR --head DIR    the PR comment's rendered diff
  config-docs                        the config reference (Pulumi.yaml block / README table)
  upstream  fetch | verify [--upstream DIR]   the pinned upstream files (cache, mirror, download)
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def cmd_render(argv: list[str]) -> int:
    from infra.config import ConfigError
    from infra.render import render
    from infra.upstream import UpstreamError
    from infra.upstream_cli import add_upstream_arg, parse_args

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


def _delegate(module: str) -> "callable":
    def run(argv: list[str]) -> int:
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            print(f"error: {module} is not available ({exc})", file=sys.stderr)
            return 2
        return int(mod.main(argv) or 0)
    return run


COMMANDS = {
    "render": cmd_render,
    "check": _delegate("infra.check"),
    "cost": _delegate("infra.cost"),
    "teardown": _delegate("infra.teardown"),
    "prdiff": _delegate("infra.prdiff"),
    "config-docs": _delegate("infra.config_docs"),
    "upstream": _delegate("infra.upstream_cli"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(__doc__.strip())
        if argv and argv[0] not in ("-h", "--help"):
            print(f"\nerror: unknown command {argv[0]!r}; use one of: {', '.join(COMMANDS)}", file=sys.stderr)
            return 2
        return 0
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
