"""The guards: which stacks may be torn down at all (:func:`check_allowed`, :class:`Refused`),
and reading the stack's config for them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

from infra.conventions import TAG_PROJECT_ENVIRONMENT, TAG_PROJECT_EPHEMERAL, TAG_PROJECT_STACK


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


def stack_files(project_dir: Path) -> list[str]:
    """The project's stack names, from its ``Pulumi.<stack>.yaml`` files."""
    return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in Path(project_dir).glob("Pulumi.*.yaml"))


def _why_protected(other: str, cfg: Any) -> str:
    if PROTECTED_STACK_RE.match(other):
        return "a production or staging stack"
    env = getattr(cfg, "environment", None)
    if env in ("prod", "staging"):
        return f"environment {env}"
    if getattr(cfg, "protect", False):
        return "protected"
    if getattr(cfg, "ephemeral", False) is not True:
        return "not ephemeral"
    return "ephemeral too"


def check_neighbours(stack: str, cfg: Any, project_dir: Path,
                     load_config: Callable[[str, Path], Any] | None = None) -> None:
    """Refuse when another stack of the project claims the same cluster name.

    Two stacks with one cluster name is refused whatever they are (the sweep would find the other's
    resources by that name); a protected, production or non-ephemeral owner is named as such. A stack
    file that cannot be read cannot be ruled out, so it is refused as well."""
    load_config = load_config or _default_load_config
    name, cluster = short_stack_name(stack), cluster_name_of(cfg)
    for other in stack_files(project_dir):
        if other == name:
            continue
        try:
            other_cfg = load_config(other, project_dir)
        except Exception as exc:  # noqa: BLE001 - any unreadable neighbour is a refusal, not a crash
            problems = _config_error_problems(exc) or [f"{type(exc).__name__}: {exc}"]
            raise Refused(f"refusing to tear down stack '{name}': stack '{other}' of this project cannot be "
                          f"read ({'; '.join(problems)[:300]}), so it cannot be ruled out as the owner of "
                          f"cluster '{cluster}'") from None
        if cluster_name_of(other_cfg) == cluster:
            raise Refused(f"refusing to tear down stack '{name}': its cluster name '{cluster}' is also claimed "
                          f"by stack '{other}' ({_why_protected(other, other_cfg)})")


def check_cluster_tags(stack: str, cluster: str, session: Any) -> None:
    """Refuse unless the EKS cluster's own tags say it is this ephemeral stack's cluster.

    A cluster that no longer exists passes (the sweep then looks for its leftovers by tag)."""
    from botocore.exceptions import ClientError

    name = short_stack_name(stack)
    try:
        tags = session.client("eks").describe_cluster(name=cluster)["cluster"].get("tags") or {}
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return
        raise
    owner, env, ephemeral = tags.get(TAG_PROJECT_STACK), tags.get(TAG_PROJECT_ENVIRONMENT), tags.get(TAG_PROJECT_EPHEMERAL)
    if owner != name:
        raise Refused(f"refusing to tear down stack '{name}': EKS cluster '{cluster}' is tagged "
                      f"{TAG_PROJECT_STACK}={owner!r}, not this stack")
    if env in ("prod", "staging") or ephemeral != "true":
        raise Refused(f"refusing to tear down stack '{name}': EKS cluster '{cluster}' is tagged "
                      f"{TAG_PROJECT_ENVIRONMENT}={env!r}, {TAG_PROJECT_EPHEMERAL}={ephemeral!r}: not an ephemeral cluster")
