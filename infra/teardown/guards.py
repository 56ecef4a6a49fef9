"""The guards: which stacks may be torn down at all (:func:`check_allowed`, :class:`Refused`),
and reading the stack's config for them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any


#: Stack names that are never torn down, whatever their config says.
PROTECTED_STACK_RE = re.compile(r"^(prod|production|staging|stage)([-_.].*)?$", re.IGNORECASE)


class Refused(Exception):
    """The teardown is not allowed for this stack (exit code 2)."""


def short_stack_name(stack: str) -> str:
    """``org/project/dev`` -> ``dev``."""
    return stack.rsplit("/", 1)[-1]


def check_allowed(stack: str, cfg: Any, region: str | None) -> None:
    """Raise :class:`Refused` with a one-line reason unless ``stack`` may be torn down."""
    name = short_stack_name(stack)
    if PROTECTED_STACK_RE.match(name):
        raise Refused(f"refusing to tear down stack '{name}': production and staging stacks "
                      "are never torn down by this tool")
    env = getattr(cfg, "environment", None)
    if env in ("prod", "staging"):
        raise Refused(f"refusing to tear down stack '{name}': its environment is '{env}'")
    if getattr(cfg, "protect", False):
        raise Refused(f"refusing to tear down stack '{name}': its config sets protect: true")
    if getattr(cfg, "ephemeral", False) is not True:
        raise Refused(f"refusing to tear down stack '{name}': its config does not mark it "
                      "ephemeral (the dev marker, `ephemeral: true`)")
    cluster = cluster_name_of(cfg)
    if not cluster:
        raise Refused(f"refusing to tear down stack '{name}': no cluster name in its config")
    cfg_region = getattr(cfg, "region", None)
    if region and cfg_region and region != cfg_region:
        raise Refused(f"refusing to tear down stack '{name}': --region {region} does not match "
                      f"the stack's region {cfg_region}")


def cluster_name_of(cfg: Any) -> str:
    """``cfg.cluster_name`` (the name or its ``ml-<stack>`` default), else ``cfg.cluster.name``."""
    name = getattr(cfg, "cluster_name", None)
    if isinstance(name, str) and name:
        return name
    return getattr(getattr(cfg, "cluster", None), "name", None) or ""


def _default_load_config(stack: str, project_dir: Path) -> Any:
    from infra.config import load_stack_config  # lazy: config.py is owned by the lead

    return load_stack_config(short_stack_name(stack), project_dir)


def _config_error_problems(exc: Exception) -> list[str] | None:
    problems = getattr(exc, "problems", None)
    if type(exc).__name__ == "ConfigError" or problems is not None:
        return list(problems or [str(exc)])
    return None
