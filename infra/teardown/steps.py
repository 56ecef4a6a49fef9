"""The orchestration: :func:`run_teardown` (guards, then the steps in the order the package
docstring gives: release Ceph's data, targeted destroys, wait for the nodes, destroy, sweep)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from .execute import karpenter_instances, sweep, wait_for_nodes_gone
from .guards import (
    PROTECTED_STACK_RE,
    Refused,
    _config_error_problems,
    _default_load_config,
    check_allowed,
    check_cluster_tags,
    check_neighbours,
    cluster_name_of,
    short_stack_name,
)
from .stack import (
    AutomationStackOps,
    StackOps,
    _managed,
    _unique,
    first_targets,
    nodepool_targets,
    rook_enabled,
    storage_targets,
    workload_targets,
)
from infra.conventions import DESTROY_DATA_KEY

if TYPE_CHECKING:  # boto3 is imported lazily so that `python -m infra --help` stays fast
    import boto3


def run_teardown(
    stack: str,
    *,
    region: str | None = None,
    project_dir: Path | None = None,
    dry_run: bool = False,
    yes: bool = False,
    sweep_only: bool = False,
    ops: StackOps | None = None,
    session: "boto3.Session | None" = None,
    load_config: Callable[[str, Path], Any] | None = None,
    load_neighbour: Callable[[str, Path], Any] | None = None,
    confirm: Callable[[str], str] = input,
    out: Callable[[str], None] = print,
    node_timeout: float = 900.0,
    node_poll: float = 15.0,
    sweep_fn: Callable[..., list[str]] | None = None,
) -> int:
    """Tear down ``stack``. Returns the process exit code (0 ok, 1 failed/aborted, 2 refused)."""
    project_dir = Path(project_dir) if project_dir else Path(__file__).resolve().parents[2]
    load_config = load_config or _default_load_config
    sweep_fn = sweep_fn or sweep

    try:
        # The name guard runs before reading anything.
        if PROTECTED_STACK_RE.match(short_stack_name(stack)):
            check_allowed(stack, None, region)
        try:
            cfg = load_config(stack, project_dir)
        except Exception as exc:  # noqa: BLE001
            problems = _config_error_problems(exc)
            if problems is None:
                raise
            raise Refused(f"refusing to tear down stack '{short_stack_name(stack)}': invalid "
                          f"config: {'; '.join(problems)}") from exc
        check_allowed(stack, cfg, region)
        # every other stack file of the project: none may claim this cluster name
        check_neighbours(stack, cfg, project_dir, load_neighbour)
    except Refused as exc:
        out(f"teardown: {exc}")
        return 2

    cluster = cluster_name_of(cfg)
    region = region or cfg.region
    if session is None:
        import boto3

        session = boto3.Session(region_name=region)
    mode = "DRY RUN: " if dry_run else ""
    try:
        # the cluster's own tags (AWS) must say it is this ephemeral stack's
        check_cluster_tags(stack, cluster, session)
    except Refused as exc:
        out(f"teardown: {exc}")
        return 2
    except Exception as exc:  # noqa: BLE001
        from botocore.exceptions import BotoCoreError, ClientError

        if not isinstance(exc, (BotoCoreError, ClientError)):
            raise
        out(f"teardown: AWS error reading cluster '{cluster}': {exc}")
        return 1
    out(f"teardown: {mode}stack '{stack}', cluster '{cluster}', region {region}")
    try:
        return _run_steps(stack, cluster, region, cfg=cfg, session=session, project_dir=project_dir,
                          dry_run=dry_run, yes=yes, sweep_only=sweep_only, ops=ops,
                          confirm=confirm, out=out, node_timeout=node_timeout,
                          node_poll=node_poll, sweep_fn=sweep_fn)
    except Exception as exc:  # noqa: BLE001 - AWS errors become one line, not a traceback
        from botocore.exceptions import BotoCoreError, ClientError

        if not isinstance(exc, (BotoCoreError, ClientError)):
            raise
        out(f"teardown: AWS error: {exc}")
        return 1


def _storage_teardown_reference(cfg: Any) -> list[str]:
    """components/storage.py's own description of a safe storage teardown (for --dry-run)."""
    from components.storage import teardown_steps  # ships with this repository: an ImportError is a bug

    return teardown_steps(cfg.stack)


ABORTED = "teardown: aborted (confirmation did not match)"


@dataclass
class _Teardown:
    """One run's steps, numbered as they are printed (``step i/total``)."""

    stack: str
    cluster: str
    region: str
    cfg: Any
    session: Any
    ops: StackOps | None
    confirm: Callable[[str], str]
    out: Callable[[str], None]
    node_timeout: float
    node_poll: float
    sweep_fn: Callable[..., list[str]]
    total: int = 4
    _counter: Iterator[int] = field(default_factory=lambda: iter(range(1, 5)))

    def number_steps(self, total: int) -> None:
        self.total = total
        self._counter = iter(range(1, total + 1))

    def step(self) -> str:
        return f"step {next(self._counter)}/{self.total}"

    def confirmed(self, prompt: str) -> bool:
        """The operator typed the stack's short name (an EOF is a no)."""
        try:
            answer = self.confirm(prompt)
        except EOFError:
            answer = ""
        return answer.strip() == short_stack_name(self.stack)

    def describe(self, plan: list[tuple[str, list[str]]], ceph: list[str], managed: list[Any]) -> None:
        """--dry-run: every step a real run takes, with what it would touch."""
        out = self.out
        if ceph:
            out(f"{self.step()}: would set {DESTROY_DATA_KEY}=true (Automation API set_config, path=True) "
                f"and run `pulumi up` on the {len(ceph)} Rook-Ceph resource(s): CephCluster cleanupPolicy, "
                "force-deletion of the block pool (as components/storage.py teardown_steps):")
            for line in _storage_teardown_reference(self.cfg):
                out(f"    {line}")
        for what, urns in plan:
            out(f"{self.step()}: would destroy {len(urns)} {what} resource(s) (with dependents):")
            for urn in urns:
                out(f"  {urn}")
        live = karpenter_instances(self.session, self.cluster)
        out(f"{self.step()}: would wait up to {self.node_timeout:.0f}s for {len(live)} Karpenter "
            f"instance(s) to terminate{': ' + ', '.join(live) if live else ''}")
        out(f"{self.step()}: would destroy the remaining {len(managed)} resource(s) of the stack"
            + (f", then remove {DESTROY_DATA_KEY} from the stack's config" if ceph else ""))

    def release_ceph(self, ceph: list[str]) -> bool:
        """Set storage.destroyData and ``pulumi up`` the Rook-Ceph resources; False stops the run."""
        label = self.step()
        self.out(f"{label}: releasing Ceph's data: {DESTROY_DATA_KEY}=true and `pulumi up` of "
                 f"{len(ceph)} Rook-Ceph resource(s)")
        try:
            self.ops.set_config(DESTROY_DATA_KEY, "true", path=True)
            self.ops.up(ceph)
        except Exception as exc:  # noqa: BLE001 - destroying now would hang on Rook's finalizers
            self.out(f"{label}: failed ({exc}); nothing was destroyed. Fix it and run the teardown "
                     f"again, or undo with `pulumi config rm --path storage.destroyData`")
            return False
        return True

    def targeted_destroys(self, plan: list[tuple[str, list[str]]]) -> None:
        for what, urns in plan:
            label = self.step()
            if urns:
                self.out(f"{label}: destroying {len(urns)} {what} resource(s)")
                try:
                    self.ops.destroy(urns)
                except Exception as exc:  # noqa: BLE001 - the full destroy and sweep follow
                    self.out(f"{label}: targeted destroy failed, continuing: {exc}")
            else:
                self.out(f"{label}: no {what} resources in the stack")

    def wait_for_nodes(self) -> None:
        label = self.step()
        self.out(f"{label}: waiting up to {self.node_timeout:.0f}s for Karpenter instances to go")
        left = wait_for_nodes_gone(self.session, self.cluster, timeout=self.node_timeout, poll=self.node_poll)
        if left:
            self.out(f"{label}: {len(left)} instance(s) still live, the sweep will terminate "
                     f"them: {', '.join(left)}")

    def destroy_stack(self) -> bool:
        """``pulumi destroy``; on failure sweep the orphans and try once more. False: it failed twice."""
        label = self.step()
        self.out(f"{label}: destroying the stack")
        try:
            self.ops.destroy(None)
        except Exception as exc:  # noqa: BLE001
            self.out(f"{label}: destroy failed ({exc}); sweeping orphans and retrying once")
            for item in self.sweep_fn(self.session, self.cluster, dry_run=False):
                self.out(f"  deleted {item}")
            try:
                self.ops.destroy(None)
            except Exception as exc2:  # noqa: BLE001
                self.out(f"{label}: destroy failed again: {exc2}")
                return False
        return True

    def sweep(self, *, dry_run: bool) -> None:
        verb = "would delete" if dry_run else "deleted"
        items = self.sweep_fn(self.session, self.cluster, dry_run=dry_run)
        self.out(f"step {self.total}/{self.total}: sweep {verb} {len(items)} resource(s)")
        for item in items:
            self.out(f"  {item}")

    def unset_destroy_data(self, *, failed: bool) -> None:
        """storage.destroyData must never stay set once the stack is gone."""
        if failed:
            self.out(f"storage: {DESTROY_DATA_KEY} stays true while the stack still has resources; run the "
                     "teardown again (or `pulumi config rm --path storage.destroyData` before a `pulumi up`)")
            return
        try:
            self.ops.remove_config(DESTROY_DATA_KEY, path=True)
            self.out(f"storage: removed {DESTROY_DATA_KEY} from the stack's config again")
        except Exception as exc:  # noqa: BLE001 - the stack is gone; say what is left to do
            self.out(f"storage: could not remove {DESTROY_DATA_KEY} ({exc}); run "
                     "`pulumi config rm --path storage.destroyData` before the next `pulumi up`")


def _ceph_targets(cfg: Any, resources: list[Any], out: Callable[[str], None]) -> list[str]:
    """The Rook-Ceph resources whose data a run releases first (none: said so)."""
    ceph = storage_targets(resources) if rook_enabled(cfg) else []
    if not rook_enabled(cfg):
        out("storage: Rook-Ceph is not enabled in this stack's config: no storage.destroyData step")
    elif not ceph:
        out("storage: Rook-Ceph is enabled but none of its resources are in the stack's state: "
            "no storage.destroyData step")
    return ceph


def _run_steps(stack: str, cluster: str, region: str, *, cfg: Any, session: Any, project_dir: Path,
               dry_run: bool, yes: bool, sweep_only: bool, ops: StackOps | None,
               confirm: Callable[[str], str], out: Callable[[str], None], node_timeout: float,
               node_poll: float, sweep_fn: Callable[..., list[str]]) -> int:
    run = _Teardown(stack, cluster, region, cfg, session, ops, confirm, out, node_timeout, node_poll, sweep_fn)
    failed = False
    release_data = False  # whether this run set storage.destroyData (and must remove it again)
    if not sweep_only:
        if run.ops is None:
            run.ops = AutomationStackOps(stack, project_dir, out=out)
        try:
            resources = run.ops.resources()
        except Exception as exc:  # noqa: BLE001
            out(f"teardown: cannot read the state of stack '{stack}': {exc}")
            if not dry_run:
                return 1
            resources, failed = [], True
        managed = _managed(resources)
        ceph = _ceph_targets(cfg, resources, out)
        run.number_steps(6 if ceph else 4)
        if ceph:
            plan: list[tuple[str, list[str]]] = [
                ("workload and Rook-Ceph", _unique(workload_targets(resources) + ceph)),
                ("NodePool", nodepool_targets(resources))]
        else:
            plan = [("workload/NodePool", first_targets(resources))]
        if dry_run:
            run.describe(plan, ceph, managed)
        else:
            if not yes and not run.confirmed(
                    f"Destroy stack '{stack}' (cluster '{cluster}', "
                    f"{len(managed)} resources{', Ceph data included' if ceph else ''}) "
                    f"and sweep its orphans? Type the stack name to confirm: "):
                out(ABORTED)
                return 1
            if ceph:
                if not run.release_ceph(ceph):
                    return 1
                release_data = True
            run.targeted_destroys(plan)
            run.wait_for_nodes()
            failed = not run.destroy_stack()
    elif not dry_run and not yes and not run.confirmed(
            f"Sweep orphans of cluster '{cluster}' in {region}? Type the stack name to confirm: "):
        out(ABORTED)
        return 1
    run.sweep(dry_run=dry_run)
    if release_data:
        run.unset_destroy_data(failed=failed)
    return 1 if failed else 0
