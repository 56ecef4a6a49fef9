"""The orchestration: :func:`run_teardown` (guards, then the steps in the order the package
docstring gives: release Ceph's data, targeted destroys, wait for the nodes, destroy, sweep)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

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
    try:
        from components.storage import teardown_steps
    except ImportError:  # pragma: no cover - the component ships with this repository
        return []
    return teardown_steps(cfg)


def _run_steps(stack: str, cluster: str, region: str, *, cfg: Any, session: Any, project_dir: Path,
               dry_run: bool, yes: bool, sweep_only: bool, ops: StackOps | None,
               confirm: Callable[[str], str], out: Callable[[str], None], node_timeout: float,
               node_poll: float, sweep_fn: Callable[..., list[str]]) -> int:

    failed = False
    release_data = False  # whether this run set storage.destroyData (and must remove it again)
    total = 4
    if not sweep_only:
        if ops is None:
            ops = AutomationStackOps(stack, project_dir, out=out)
        try:
            resources = ops.resources()
        except Exception as exc:  # noqa: BLE001
            out(f"teardown: cannot read the state of stack '{stack}': {exc}")
            if not dry_run:
                return 1
            resources, failed = [], True
        managed = _managed(resources)
        ceph = storage_targets(resources) if rook_enabled(cfg) else []
        if not rook_enabled(cfg):
            out("storage: Rook-Ceph is not enabled in this stack's config: no storage.destroyData step")
        elif not ceph:
            out("storage: Rook-Ceph is enabled but none of its resources are in the stack's state: "
                "no storage.destroyData step")
        total = 6 if ceph else 4
        n = iter(range(1, total + 1))

        def step() -> str:
            return f"step {next(n)}/{total}"

        if ceph:
            plan: list[tuple[str, list[str]]] = [
                ("workload and Rook-Ceph", _unique(workload_targets(resources) + ceph)),
                ("NodePool", nodepool_targets(resources))]
        else:
            plan = [("workload/NodePool", first_targets(resources))]

        if dry_run:
            if ceph:
                out(f"{step()}: would set {DESTROY_DATA_KEY}=true (Automation API set_config, path=True) "
                    f"and run `pulumi up` on the {len(ceph)} Rook-Ceph resource(s): CephCluster cleanupPolicy, "
                    "force-deletion of the block pool (as components/storage.py teardown_steps):")
                for line in _storage_teardown_reference(cfg):
                    out(f"    {line}")
            for what, urns in plan:
                out(f"{step()}: would destroy {len(urns)} {what} resource(s) (with dependents):")
                for urn in urns:
                    out(f"  {urn}")
            live = karpenter_instances(session, cluster)
            out(f"{step()}: would wait up to {node_timeout:.0f}s for {len(live)} Karpenter "
                f"instance(s) to terminate{': ' + ', '.join(live) if live else ''}")
            out(f"{step()}: would destroy the remaining {len(managed)} resource(s) of the stack"
                + (f", then remove {DESTROY_DATA_KEY} from the stack's config" if ceph else ""))
        else:
            if not yes:
                try:
                    answer = confirm(f"Destroy stack '{stack}' (cluster '{cluster}', "
                                     f"{len(managed)} resources{', Ceph data included' if ceph else ''}) "
                                     f"and sweep its orphans? Type the stack name to confirm: ")
                except EOFError:
                    answer = ""
                if answer.strip() != short_stack_name(stack):
                    out("teardown: aborted (confirmation did not match)")
                    return 1
            if ceph:
                label = step()
                out(f"{label}: releasing Ceph's data: {DESTROY_DATA_KEY}=true and `pulumi up` of "
                    f"{len(ceph)} Rook-Ceph resource(s)")
                try:
                    ops.set_config(DESTROY_DATA_KEY, "true", path=True)
                    release_data = True
                    ops.up(ceph)
                except Exception as exc:  # noqa: BLE001 - destroying now would hang on Rook's finalizers
                    out(f"{label}: failed ({exc}); nothing was destroyed. Fix it and run the teardown "
                        f"again, or undo with `pulumi config rm --path storage.destroyData`")
                    return 1
            for what, urns in plan:
                label = step()
                if urns:
                    out(f"{label}: destroying {len(urns)} {what} resource(s)")
                    try:
                        ops.destroy(urns)
                    except Exception as exc:  # noqa: BLE001 - the full destroy and sweep follow
                        out(f"{label}: targeted destroy failed, continuing: {exc}")
                else:
                    out(f"{label}: no {what} resources in the stack")
            label = step()
            out(f"{label}: waiting up to {node_timeout:.0f}s for Karpenter instances to go")
            left = wait_for_nodes_gone(session, cluster, timeout=node_timeout, poll=node_poll)
            if left:
                out(f"{label}: {len(left)} instance(s) still live, the sweep will terminate "
                    f"them: {', '.join(left)}")
            label = step()
            out(f"{label}: destroying the stack")
            try:
                ops.destroy(None)
            except Exception as exc:  # noqa: BLE001
                out(f"{label}: destroy failed ({exc}); sweeping orphans and retrying once")
                swept = sweep_fn(session, cluster, dry_run=False)
                for item in swept:
                    out(f"  deleted {item}")
                try:
                    ops.destroy(None)
                except Exception as exc2:  # noqa: BLE001
                    out(f"{label}: destroy failed again: {exc2}")
                    failed = True
    elif not dry_run and not yes:
        try:
            answer = confirm(f"Sweep orphans of cluster '{cluster}' in {region}? "
                             "Type the stack name to confirm: ")
        except EOFError:
            answer = ""
        if answer.strip() != short_stack_name(stack):
            out("teardown: aborted (confirmation did not match)")
            return 1

    verb = "would delete" if dry_run else "deleted"
    items = sweep_fn(session, cluster, dry_run=dry_run)
    out(f"step {total}/{total}: sweep {verb} {len(items)} resource(s)")
    for item in items:
        out(f"  {item}")
    if release_data:
        if failed:
            out(f"storage: {DESTROY_DATA_KEY} stays true while the stack still has resources; run the "
                "teardown again (or `pulumi config rm --path storage.destroyData` before a `pulumi up`)")
        else:
            try:
                ops.remove_config(DESTROY_DATA_KEY, path=True)
                out(f"storage: removed {DESTROY_DATA_KEY} from the stack's config again")
            except Exception as exc:  # noqa: BLE001 - the stack is gone; say what is left to do
                out(f"storage: could not remove {DESTROY_DATA_KEY} ({exc}); run "
                    "`pulumi config rm --path storage.destroyData` before the next `pulumi up`")
    return 1 if failed else 0
