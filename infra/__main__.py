"""The platform's CLI: ``python -m infra <command>``.

  render    --stack S [--out DIR] [--upstream DIR]   offline preview (the real program under mocks)
  check     --stack S | --manifests DIR [--crds DIR] [--upstream DIR]
  cost      --stack S [--json]
  teardown  --stack S --region R [--dry-run] [--yes] [--sweep-only]
  prdiff    --base DIR --head DIR    the PR comment's rendered diff
  config-docs                        the config reference (Pulumi.yaml block / README table)
  upstream  fetch | verify [--upstream DIR]   the pinned upstream files (cache, mirror, download)
  migrate   karpenter IN... [--out DIR] [--cluster NAME]   legacy Karpenter manifests to v1, checked
"""
from __future__ import annotations

import importlib
import sys
from typing import Callable

# Each command's module, imported only when it runs (so ``--help`` stays fast). Every one is part of
# this repository: an ImportError is a bug and propagates, it is never reported as a skipped command.
COMMAND_MODULES = {
    "render": "infra.preview.cli",
    "check": "infra.check.cli",
    "cost": "infra.cost.cli",
    "teardown": "infra.teardown.cli",
    "prdiff": "infra.prdiff",
    "config-docs": "infra.config_docs",
    "upstream": "infra.upstream_cli",
    "migrate": "infra.migrate.cli",
}


def _delegate(module: str) -> Callable[[list[str]], int]:
    def run(argv: list[str]) -> int:
        return int(importlib.import_module(module).main(argv) or 0)
    return run


COMMANDS = {name: _delegate(module) for name, module in COMMAND_MODULES.items()}


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
