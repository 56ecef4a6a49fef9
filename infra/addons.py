"""The add-on registry: every add-on the platform installs, what it needs, and in which order.

Each :class:`Addon` declares

- ``key``: its name in the registry (and in :attr:`Built`), and ``config_key``, the stack config key
  that switches it (for error messages);
- ``enabled(cfg)``: whether this stack installs it;
- ``requires``: add-ons that must be enabled when this one is; a disabled requirement is a config
  error naming both keys (:func:`requirement_problems`), never a silent skip;
- ``after``: add-ons it is built after *when they are enabled* (an optional dependency: the
  monitoring release whose CRD a ServiceMonitor needs, the storage classes a PVC binds to);
- ``build(env, built)``: the builder. It receives the shared :class:`BuildEnv` and the typed
  :class:`Built` record of the add-ons built before it, and returns the component;
- ``outputs(component)``: the stack outputs it contributes.

:func:`build_all` builds the enabled add-ons in topological order (``graphlib``); ties keep the
declaration order, so the program registers its resources in the same order on every run.
The platform itself (``infra/platform.py``) has no per-add-on code.
"""
from __future__ import annotations

import graphlib
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Callable, Optional

import pulumi

from infra.config import ConfigError, PlatformConfig, kueue_enabled
from infra.context import PlatformContext
from infra.conventions import SERVING_PRIORITY_CLASS, TRAINING_PRIORITY_CLASS

if TYPE_CHECKING:  # pragma: no cover - the builders import the components they build
    from components.accelerators import Accelerators
    from components.images import WorkloadImages
    from components.karpenter import Karpenter
    from components.kueue import Kueue
    from components.load_balancer import LoadBalancerController
    from components.monitoring import Monitoring
    from components.priority import PriorityClasses
    from components.storage import RookCeph
    from components.training_operator import TrainingOperator
    from workloads.sentiment.component import SentimentServing
    from workloads.shared import WorkloadStorage
    from workloads.training.component import TrainingWorkload


@dataclass
class Built:
    """The add-ons built so far, one typed field each (None: disabled, or not built yet)."""

    storage: Optional["RookCeph"] = None
    monitoring: Optional["Monitoring"] = None
    priority: Optional["PriorityClasses"] = None
    karpenter: Optional["Karpenter"] = None
    accelerators: Optional["Accelerators"] = None
    training_operator: Optional["TrainingOperator"] = None
    images: Optional["WorkloadImages"] = None
    workload_storage: Optional["WorkloadStorage"] = None
    kueue: Optional["Kueue"] = None
    training: Optional["TrainingWorkload"] = None
    load_balancer: Optional["LoadBalancerController"] = None
    serving: Optional["SentimentServing"] = None

    def items(self) -> list[tuple[str, pulumi.Resource]]:
        """``(key, component)`` of every add-on built, in declaration order."""
        return [(f.name, getattr(self, f.name)) for f in fields(self) if getattr(self, f.name) is not None]


@dataclass(frozen=True)
class BuildEnv:
    """What every builder receives besides the add-ons: the stack config (each builder hands its
    component only the slice it needs, ``<Component>Settings.from_config``), the context, the parent
    and the name prefix."""

    cfg: PlatformConfig
    ctx: PlatformContext
    parent: pulumi.Resource
    name: str

    def opts(self, *depends_on: Optional[pulumi.Resource]) -> pulumi.ResourceOptions:
        """Both providers, the ``cluster_ready`` gate, and ``depends_on`` the given (non-None) resources."""
        deps = [d for d in depends_on if d is not None]
        return self.ctx.opts(self.parent, depends_on=deps or None)

    def aws_opts(self) -> pulumi.ResourceOptions:
        """Only the AWS provider and no cluster gate (for what does not wait for the cluster)."""
        return pulumi.ResourceOptions(parent=self.parent, providers={"aws": self.ctx.aws_provider})


@dataclass(frozen=True)
class Addon:
    key: str
    config_key: str
    #: ``module:Class`` of the component it builds (documentation, the README diagram, the graph test).
    component: str
    enabled: Callable[[PlatformConfig], bool]
    build: Callable[[BuildEnv, Built], pulumi.Resource]
    requires: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    outputs: Callable[[Any], dict[str, Any]] = field(default=lambda component: {})
    #: The config keys that switch it on in this stack (default: ``config_key`` when enabled). An add-on
    #: whose switches only follow a default (the device plugins follow Karpenter) names none.
    switched_on: Optional[Callable[[PlatformConfig], list[str]]] = None

    def switches(self, cfg: PlatformConfig) -> list[str]:
        if self.switched_on is not None:
            return self.switched_on(cfg)
        return [self.config_key] if self.enabled(cfg) else []


# ---------------------------------------------------------------- builders
def _storage(env: BuildEnv, built: Built) -> pulumi.Resource:
    from components.monitoring import PROMETHEUS_URL
    from components.storage import RookCeph, StorageArgs, StorageSettings

    prometheus = PROMETHEUS_URL if env.cfg.addons.monitoring.enabled else None
    args = StorageArgs(settings=StorageSettings.from_config(env.cfg), ctx=env.ctx, prometheus_url=prometheus)
    return RookCeph(f"{env.name}-storage", args, opts=env.opts())


def _monitoring(env: BuildEnv, built: Built) -> pulumi.Resource:
    from components.monitoring import Monitoring, MonitoringArgs, MonitoringSettings

    # Prometheus, Alertmanager and Grafana keep their volumes on ceph-block: after the StorageClasses.
    args = MonitoringArgs(settings=MonitoringSettings.from_config(env.cfg), ctx=env.ctx, storage=built.storage)
    return Monitoring(f"{env.name}-monitoring", args, opts=env.opts(built.storage))


def _release(built: Built) -> Optional[pulumi.Resource]:
    """kube-prometheus-stack's release (it installs the ServiceMonitor/PodMonitor CRDs), when installed."""
    return built.monitoring.release if built.monitoring is not None else None


def _priority(env: BuildEnv, built: Built) -> pulumi.Resource:
    from components.priority import PriorityClasses, PriorityClassesArgs

    return PriorityClasses(f"{env.name}-priority", PriorityClassesArgs(ready=tuple(env.ctx.cluster_ready)),
                           opts=env.opts())


def _karpenter(env: BuildEnv, built: Built) -> pulumi.Resource:
    from components.karpenter import Karpenter, KarpenterArgs, KarpenterSettings

    args = KarpenterArgs(settings=KarpenterSettings.from_config(env.cfg), ctx=env.ctx,
                         monitoring_release=_release(built))
    return Karpenter(f"{env.name}-karpenter", args, opts=env.opts())


def _accelerators(env: BuildEnv, built: Built) -> pulumi.Resource:
    from components.accelerators import Accelerators, AcceleratorsArgs, AcceleratorsSettings

    # The device plugins target the accelerator labels of the Karpenter pools: in parallel with Karpenter
    # (a DaemonSet with no matching node is ready at once), not after it.
    args = AcceleratorsArgs(settings=AcceleratorsSettings.from_config(env.cfg), ctx=env.ctx,
                            monitoring_release=_release(built))
    return Accelerators(f"{env.name}-accelerators", args, opts=env.opts())


def _training_operator(env: BuildEnv, built: Built) -> pulumi.Resource:
    from components.training_operator import OperatorSettings, TrainingOperator, TrainingOperatorArgs

    args = TrainingOperatorArgs(settings=OperatorSettings.from_config(env.cfg), protect_crds=env.cfg.protect)
    return TrainingOperator(f"{env.name}-training-operator", args, opts=env.opts())


def _images(env: BuildEnv, built: Built) -> pulumi.Resource:
    from components.images import ImagesSettings, WorkloadImages, WorkloadImagesArgs

    # Only the AWS provider: nothing here waits for the cluster, so the builds run while it comes up.
    return WorkloadImages(f"{env.name}-images", WorkloadImagesArgs(settings=ImagesSettings.from_config(env.cfg)),
                          opts=env.aws_opts())


def _workload_storage(env: BuildEnv, built: Built) -> pulumi.Resource:
    from workloads.shared import WorkloadStorage, WorkloadStorageArgs, WorkloadStorageSettings

    # The PVCs bind once the storage add-on's CephFS StorageClass (ceph-filesystem) exists.
    storage = built.storage
    deps = (storage.file_storage_class,) if storage is not None else ()
    args = WorkloadStorageArgs(settings=WorkloadStorageSettings.from_config(env.cfg), storage_dependencies=deps)
    return WorkloadStorage(f"{env.name}-workload-storage", args, opts=env.opts())


def _kueue(env: BuildEnv, built: Built) -> pulumi.Resource:
    from components.kueue import Kueue, KueueArgs, KueueSettings

    # After the training operator (its CRDs: Kueue sets up the PyTorchJob/TFJob integrations at start) and the
    # shared namespace (the LocalQueue's); the training jobs are built after this, once the webhook serves.
    ws = built.workload_storage
    assert ws is not None  # required
    args = KueueArgs(settings=KueueSettings.from_config(env.cfg), ctx=env.ctx, workloads_namespace=ws.namespace,
                     monitoring_release=_release(built))
    return Kueue(f"{env.name}-kueue", args, opts=env.opts(built.training_operator))


def _kueue_set(cfg: PlatformConfig) -> list[str]:
    """``addons.kueue.enabled`` when the stack sets it true itself (by default it follows training)."""
    toggle = cfg.addons.kueue
    return ["addons.kueue.enabled"] if toggle.enabled and "enabled" in toggle.model_fields_set else []


def _training(env: BuildEnv, built: Built) -> pulumi.Resource:
    from workloads.training.component import TrainingSettings, TrainingWorkload, TrainingWorkloadArgs

    ws = built.workload_storage
    assert ws is not None  # required
    classes = built.priority.classes if built.priority is not None else {}
    priority = tuple(c for n, c in classes.items() if n == TRAINING_PRIORITY_CLASS)
    # With Kueue, every job also needs its webhook (the release), LocalQueue and WorkloadPriorityClasses: the
    # data-prep Job, the training job and the CronJob depend on them as on the PriorityClass.
    queue = (built.kueue.release, *built.kueue.queue_objects) if built.kueue is not None else ()
    operator = built.training_operator
    # with monitoring, its PodMonitor waits for the release that installs the CRD
    args = TrainingWorkloadArgs(settings=TrainingSettings.from_config(env.cfg), ctx=env.ctx, namespace=ws.namespace,
                                datasets_pvc=ws.datasets_pvc, models_pvc=ws.models_pvc,
                                operator_ready=tuple(operator.ready) if operator else (),
                                priority_classes=priority + queue, images=built.images,
                                monitoring_release=_release(built))
    return TrainingWorkload(f"{env.name}-training", args, opts=env.opts(ws, *priority, built.images, built.kueue))


def _load_balancer(env: BuildEnv, built: Built) -> pulumi.Resource:
    from components.load_balancer import LoadBalancerController, LoadBalancerControllerArgs, LoadBalancerSettings

    # Runs on the system nodes: only the cluster gate (and monitoring's CRD for its ServiceMonitor).
    # The serving Ingress/Service depend on it, so a destroy deletes them (and their ALB/NLB) first.
    args = LoadBalancerControllerArgs(settings=LoadBalancerSettings.from_config(env.cfg), ctx=env.ctx,
                                      monitoring_release=_release(built))
    return LoadBalancerController(f"{env.name}-load-balancer", args, opts=env.opts())


def _serving(env: BuildEnv, built: Built) -> pulumi.Resource:
    from workloads.sentiment.component import SentimentServing, SentimentServingArgs, ServingSettings

    # The models PVC of the shared namespace; the ml-serving PriorityClass admits the pods. After
    # Karpenter, so that a destroy removes the serving pods before the controller that owns their nodes.
    ws = built.workload_storage
    assert ws is not None  # required
    serving_class = built.priority.classes.get(SERVING_PRIORITY_CLASS) if built.priority else None
    lbc = built.load_balancer.release if built.load_balancer is not None else None
    # with monitoring, its ServiceMonitor waits for the release that installs the CRD
    args = SentimentServingArgs(settings=ServingSettings.from_config(env.cfg), ctx=env.ctx, namespace=ws.namespace,
                                models_pvc=ws.models_pvc, priority_class=serving_class, images=built.images,
                                monitoring_release=_release(built))
    return SentimentServing(f"{env.name}-sentiment", args,
                            opts=env.opts(ws, serving_class, built.karpenter, built.images, lbc))


def _image_outputs(images: "WorkloadImages") -> dict[str, Any]:
    """The workload images, by digest when built: ``imageTrainer``, ``imageServer`` ..."""
    return {f"image{key[0].upper()}{key[1:]}": ref for key, ref in sorted(images.refs.items())}


def _any_workload(cfg: PlatformConfig) -> bool:
    return cfg.training.enabled or cfg.serving.enabled


def _device_plugins_set(cfg: PlatformConfig) -> list[str]:
    """The device plugins and exporters set ``enabled: true`` in the stack's config (their defaults follow Karpenter)."""
    a = cfg.addons
    toggles = (("nvidiaDevicePlugin", a.nvidia_device_plugin), ("dcgmExporter", a.dcgm_exporter), ("neuron", a.neuron))
    return [f"addons.{key}.enabled" for key, t in toggles if t.enabled and "enabled" in t.model_fields_set]


# ---------------------------------------------------------------- the registry
ADDONS: tuple[Addon, ...] = (
    Addon("storage", "addons.rookCeph.enabled", "components.storage:RookCeph",
          lambda c: c.addons.rook_ceph.enabled, _storage),
    Addon("monitoring", "addons.monitoring.enabled", "components.monitoring:Monitoring",
          lambda c: c.addons.monitoring.enabled, _monitoring, after=("storage",),
          outputs=lambda m: {"grafanaAdminPassword": pulumi.Output.secret(m.grafana_admin_password)}),
    Addon("priority", "(always)", "components.priority:PriorityClasses", lambda c: True, _priority),
    Addon("karpenter", "addons.karpenter.enabled", "components.karpenter:Karpenter",
          lambda c: c.addons.karpenter.enabled, _karpenter, after=("monitoring",)),
    Addon("accelerators", "addons.nvidiaDevicePlugin.enabled", "components.accelerators:Accelerators",
          lambda c: c.addons.karpenter.enabled, _accelerators, requires=("karpenter",), after=("monitoring",),
          switched_on=_device_plugins_set),
    Addon("training_operator", "addons.trainingOperator.enabled", "components.training_operator:TrainingOperator",
          lambda c: c.addons.training_operator.enabled, _training_operator),
    Addon("images", "images", "components.images:WorkloadImages", _any_workload, _images, outputs=_image_outputs),
    Addon("workload_storage", "training.enabled/serving.enabled", "workloads.shared:WorkloadStorage",
          _any_workload, _workload_storage, after=("storage",)),
    Addon("kueue", "addons.kueue.enabled", "components.kueue:Kueue", kueue_enabled, _kueue,
          requires=("karpenter", "workload_storage"), after=("training_operator", "monitoring"),
          switched_on=_kueue_set),
    Addon("training", "training.enabled", "workloads.training.component:TrainingWorkload",
          lambda c: c.training.enabled, _training, requires=("workload_storage",),
          after=("training_operator", "priority", "images", "monitoring", "kueue")),
    Addon("load_balancer", "addons.loadBalancerController.enabled", "components.load_balancer:LoadBalancerController",
          lambda c: c.addons.load_balancer_controller.enabled, _load_balancer, after=("monitoring",)),
    Addon("serving", "serving.enabled", "workloads.sentiment.component:SentimentServing",
          lambda c: c.serving.enabled, _serving, requires=("workload_storage",),
          after=("priority", "karpenter", "images", "load_balancer", "monitoring"),
          outputs=lambda s: {"servingEndpoint": s.endpoint}),  # the in-cluster URL of POST /analyze
)
BY_KEY = {a.key: a for a in ADDONS}


def graph(addons: tuple[Addon, ...] = ADDONS) -> dict[str, tuple[str, ...]]:
    """``{key: (what it is built after, requirements included)}`` for every declared add-on."""
    return {a.key: tuple(dict.fromkeys((*a.requires, *a.after))) for a in addons}


def mermaid(addons: tuple[Addon, ...] = ADDONS) -> str:
    """The add-on graph as a Mermaid flowchart (the README's architecture section embeds it).

    ``a --> b``: b is built after a (and depends on what it needs of it); ``a -.->|requires| b``: b
    cannot be enabled without a. Add-ons with neither start once the cluster is ready.
    """
    lines = ["flowchart LR", "  cluster([EKS cluster: cluster_ready + providers])"]
    for a in addons:
        module, cls = a.component.split(":")
        lines.append(f"  {a.key}[{a.key}<br/>{module}.{cls}]")
    for a in addons:
        lines += [f"  {d} -.->|requires| {a.key}" for d in a.requires]
        lines += [f"  {d} --> {a.key}" for d in a.after if d not in a.requires]
        if not a.requires and not a.after:
            lines.append(f"  cluster --> {a.key}")
    return "\n".join(lines) + "\n"


def build_order(addons: tuple[Addon, ...] = ADDONS) -> list[str]:
    """Every add-on key in dependency order (ties in declaration order); a cycle raises graphlib.CycleError."""
    g = graph(addons)
    unknown = sorted({d for deps in g.values() for d in deps} - set(g))
    if unknown:
        raise ValueError(f"add-on dependencies name no add-on: {', '.join(unknown)}")
    ts = graphlib.TopologicalSorter()
    for key in g:  # declaration order: graphlib hands out ready nodes in insertion order
        ts.add(key, *g[key])
    order: list[str] = []
    ts.prepare()
    while ts.is_active():
        ready = sorted(ts.get_ready(), key=list(g).index)
        order += ready
        ts.done(*ready)
    return order


def requirement_problems(cfg: PlatformConfig, addons: tuple[Addon, ...] = ADDONS) -> list[str]:
    """One line per enabled add-on whose requirement is disabled, naming both config keys."""
    by_key = {a.key: a for a in addons}
    out = []
    for a in addons:
        for switch in a.switches(cfg):
            for req in (by_key[r] for r in a.requires):
                if not req.enabled(cfg):
                    out.append(f"{switch}: true needs {req.config_key}: true ({req.key} is off); enable "
                               f"{req.config_key} or set {switch} to false")
    return out


def check_requirements(cfg: PlatformConfig, addons: tuple[Addon, ...] = ADDONS) -> None:
    """Raise ConfigError (one line per problem) when an enabled add-on's requirement is disabled."""
    problems = requirement_problems(cfg, addons)
    if problems:
        raise ConfigError(problems)


def build_all(cfg: PlatformConfig, ctx: PlatformContext, parent: pulumi.Resource, name: str,
              addons: tuple[Addon, ...] = ADDONS) -> tuple[Built, dict[str, Any]]:
    """Build every enabled add-on in dependency order; return them and the stack outputs they add."""
    check_requirements(cfg, addons)
    env, built, outputs = BuildEnv(cfg=cfg, ctx=ctx, parent=parent, name=name), Built(), {}
    by_key = {a.key: a for a in addons}
    for key in build_order(addons):
        addon = by_key[key]
        if not addon.enabled(cfg):
            continue
        component = addon.build(env, built)
        setattr(built, key, component)
        outputs.update(addon.outputs(component))
    return built, outputs


if __name__ == "__main__":  # python -m infra.addons: the README's add-on graph
    print(mermaid(), end="")
