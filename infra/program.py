"""The Pulumi program, as a function: `__main__.py` and the offline render both call ``run``."""
from __future__ import annotations

import pulumi

from infra.config import ConfigError, PlatformConfig, load_from_pulumi


def run(cfg: PlatformConfig | None = None) -> "object":
    """Build the whole platform for the current stack and export its outputs."""
    from infra.platform import Platform

    if cfg is None:
        try:
            cfg = load_from_pulumi()
        except ConfigError as exc:
            # A user mistake: one line per problem, no Python traceback, nothing created.
            raise pulumi.RunError("invalid stack configuration:\n  " + "\n  ".join(exc.problems)) from None
    platform = Platform("ml", cfg)
    for key, value in platform.outputs.items():
        pulumi.export(key, value)
    return platform
