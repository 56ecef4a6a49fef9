"""The stack's state through the Pulumi Automation API (:class:`StackOps`, the seam tests fake,
and :class:`AutomationStackOps`), and which URNs each targeted destroy takes."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Protocol

from infra.conventions import NODEPOOL_TYPE_RE, STORAGE_TYPE, WORKLOAD_TYPE_PREFIXES


# --------------------------------------------------------------------------------------------
# Stack state (Automation API seam)
# --------------------------------------------------------------------------------------------


class StackOps(Protocol):
    """What the teardown needs from Pulumi; tests pass a fake."""

    def resources(self) -> list[dict[str, Any]]:
        """The stack's resources as in ``export_stack().deployment["resources"]``."""

    def destroy(self, targets: list[str] | None = None) -> None:
        """Destroy ``targets`` (with their dependents), or the whole stack when None."""

    def set_config(self, key: str, value: str, *, path: bool = False) -> None:
        """``pulumi config set [--path] key value`` on the stack."""

    def remove_config(self, key: str, *, path: bool = False) -> None:
        """``pulumi config rm [--path] key`` on the stack."""

    def up(self, targets: list[str] | None = None) -> None:
        """``pulumi up`` of ``targets`` only (no dependents), or of the whole stack when None."""


class AutomationStackOps:
    """:class:`StackOps` through ``pulumi.automation`` (needs the Pulumi CLI and a backend)."""

    def __init__(self, stack: str, project_dir: Path, *, out: Callable[[str], None] = print):
        self.stack_name = stack
        self.project_dir = Path(project_dir)
        self.out = out
        self._stack = None

    def _get(self):
        if self._stack is None:
            from pulumi import automation as auto  # lazy: importing pulumi is slow

            self._stack = auto.select_stack(stack_name=self.stack_name,
                                            work_dir=str(self.project_dir))
        return self._stack

    def resources(self) -> list[dict[str, Any]]:
        deployment = self._get().export_stack().deployment or {}
        return list(deployment.get("resources") or [])

    def destroy(self, targets: list[str] | None = None) -> None:
        stack = self._get()
        if targets is None:
            stack.destroy(on_output=self.out)
        else:
            stack.destroy(target=targets, target_dependents=True, on_output=self.out)

    def set_config(self, key: str, value: str, *, path: bool = False) -> None:
        from pulumi import automation as auto

        self._get().set_config(key, auto.ConfigValue(value=value), path=path)

    def remove_config(self, key: str, *, path: bool = False) -> None:
        self._get().remove_config(key, path=path)

    def up(self, targets: list[str] | None = None) -> None:
        stack = self._get()
        if targets is None:
            stack.up(on_output=self.out)
        else:
            stack.up(target=targets, on_output=self.out)


def _subtrees(resources: list[dict[str, Any]], pick: Callable[[str], bool]) -> list[str]:
    """URNs of the resources whose type ``pick`` accepts, each followed by all its descendants."""
    children: dict[str, list[str]] = {}
    for res in resources:
        if res.get("parent"):
            children.setdefault(res["parent"], []).append(res["urn"])
    picked: list[str] = []
    seen: set[str] = set()

    def add(urn: str) -> None:
        if urn in seen:
            return
        seen.add(urn)
        picked.append(urn)
        for child in children.get(urn, []):
            add(child)

    for res in resources:
        if pick(res.get("type", "")):
            add(res["urn"])
    return picked


def _is_workload(rtype: str) -> bool:
    return rtype.startswith(WORKLOAD_TYPE_PREFIXES)


def _is_nodepool(rtype: str) -> bool:
    return bool(NODEPOOL_TYPE_RE.match(rtype))


def first_targets(resources: list[dict[str, Any]]) -> list[str]:
    """URNs destroyed first without Rook-Ceph: workload components with all their descendants,
    and NodePools."""
    return _subtrees(resources, lambda t: _is_workload(t) or _is_nodepool(t))


def workload_targets(resources: list[dict[str, Any]]) -> list[str]:
    """The workload components with all their descendants."""
    return _subtrees(resources, _is_workload)


def storage_targets(resources: list[dict[str, Any]]) -> list[str]:
    """The Rook-Ceph component with all its descendants (CephCluster, pools, StorageClasses...)."""
    return _subtrees(resources, lambda t: t == STORAGE_TYPE)


def nodepool_targets(resources: list[dict[str, Any]]) -> list[str]:
    return _subtrees(resources, _is_nodepool)


def rook_enabled(cfg: Any) -> bool:
    """``addons.rookCeph.enabled`` of the stack's config (False when the config has no add-ons)."""
    return bool(getattr(getattr(getattr(cfg, "addons", None), "rook_ceph", None), "enabled", False))


def _managed(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in resources if not r.get("type", "").startswith("pulumi:pulumi:Stack")
            and not r.get("type", "").startswith("pulumi:providers:")]


def _unique(urns: list[str]) -> list[str]:
    return list(dict.fromkeys(urns))
