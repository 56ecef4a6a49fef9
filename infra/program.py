"""The Pulumi program, as a function: `__main__.py` and the offline render both call ``run``."""
from __future__ import annotations

import pulumi

from infra.config import ConfigError, PlatformConfig, load_from_pulumi


def program_artifacts(cfg: PlatformConfig) -> list[str]:
    """The pinned upstream files (infra/upstream.py) this stack's program reads."""
    from infra.upstream import ARTIFACTS

    prefixes = []
    if cfg.addons.training_operator.enabled:
        prefixes.append("training-operator/")
    if cfg.addons.load_balancer_controller.enabled:
        prefixes.append("aws-load-balancer-controller/iam-policy/")
    return [k for k in sorted(ARTIFACTS) if k.startswith(tuple(prefixes))] if prefixes else []


def preload(cfg: PlatformConfig) -> None:
    """Everything that must hold before any resource is registered, so that a problem stops the run with
    its one-line message and nothing half-created: the add-ons' requirements (ConfigError), and every
    upstream file the program needs, obtained and verified (UpstreamError)."""
    from infra import upstream
    from infra.addons import check_requirements

    check_requirements(cfg)
    for key in program_artifacts(cfg):
        upstream.read_bytes(key)


def run(cfg: PlatformConfig | None = None) -> "object":
    """Build the whole platform for the current stack and export its outputs."""
    from infra.platform import Platform
    from infra.upstream import UpstreamError

    under_pulumi = cfg is None
    if cfg is None:
        try:
            cfg = load_from_pulumi()
        except ConfigError as exc:
            # A user mistake: one line per problem, no Python traceback, nothing created.
            raise pulumi.RunError("invalid stack configuration:\n  " + "\n  ".join(exc.problems)) from None
    try:
        preload(cfg)
        platform = Platform("ml", cfg)
    except ConfigError as exc:
        if not under_pulumi:
            raise  # the offline render reports it itself
        raise pulumi.RunError("invalid stack configuration:\n  " + "\n  ".join(exc.problems)) from None
    except UpstreamError as exc:
        if not under_pulumi:
            raise  # the offline render reports it itself
        # A pinned upstream file that cannot be had: one line saying which and how to provide it.
        raise pulumi.RunError(str(exc)) from None
    for key, value in platform.outputs.items():
        pulumi.export(key, value)
    return platform
