"""The sentiment-serving component: Deployment, Service, autoscaler, PDB, NetworkPolicy and exposure.

Pulumi side only: ``manifests.py`` builds every object as a plain dict (what each one is, and the
decisions behind them, are documented there), and ``SentimentServing`` turns them into resources in
the shared ``ml-workloads`` namespace (namespace and the ``models`` PVC come from
``workloads/shared.py``). With monitoring (``monitoring_release``), the ServiceMonitor
``sentiment`` too. On inf1/inf2, the Neuron compile CronJob and its NetworkPolicy (``compile_job.py``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

import pulumi
import pulumi_kubernetes as k8s

from workloads.sentiment.manifests import build_objects, server_service_monitor
from workloads.sentiment.plan import MODELS_CLAIM, NAME, NAMESPACE, plan
from workloads.sentiment.settings import ServingSettings
from workloads.shared import scrape_object

if TYPE_CHECKING:  # pragma: no cover - typing only (infra.platform imports this module at run time)
    from components.images import WorkloadImages
    from infra.context import PlatformContext



# ---------------------------------------------------------------- the component
def _name_of(resource: Optional[pulumi.CustomResource], default: str) -> pulumi.Output[str]:
    """``metadata.name`` of a Kubernetes resource as an Output (an implicit dependency), or the default name."""
    if resource is None:
        return pulumi.Output.from_input(default)
    return resource.metadata.apply(lambda m: (m.get("name") if isinstance(m, dict) else m.name) or default)


@dataclass(frozen=True)
class SentimentServingArgs:
    settings: ServingSettings
    """The ``serving`` section, the node pools, the VPC (``ServingSettings.from_config``)."""
    ctx: "PlatformContext"
    """Providers and the cluster-ready gate."""
    namespace: Optional[k8s.core.v1.Namespace]
    """The shared ``ml-workloads`` Namespace (workloads/shared.py); never created here. ``None``: refer to
    it by name only (a warning is logged; the objects then wait for nothing that creates it)."""
    models_pvc: Optional[k8s.core.v1.PersistentVolumeClaim]
    """The RWX ``models`` PVC the trainer writes to; mounted read-only at /models. ``None``: by name only."""
    priority_class: Optional[pulumi.Resource] = None
    """The ``ml-serving`` PriorityClass (components/priority.py): pods naming it are rejected until it exists."""
    images: Optional["WorkloadImages"] = None
    """The workload images (components/images.py): the Deployment runs its server ref (by digest when built).
    ``None``: the release image of infra/versions.py."""
    monitoring_release: Optional[pulumi.Resource] = None
    """kube-prometheus-stack's Helm release (components/monitoring.py ``Monitoring.release``): it installs
    the ServiceMonitor CRD, so the server's ServiceMonitor is created after it. ``None`` (no monitoring):
    no ServiceMonitor."""


class SentimentServing(pulumi.ComponentResource):
    """The sentiment-analysis API: see the module docstring for what it creates."""

    namespace: pulumi.Output[str]
    service_name: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    autoscaler: str

    def __init__(self, name: str, args: SentimentServingArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("eks-ml-platform:sentiment:SentimentServing", name, None, opts)
        st = args.settings
        if args.namespace is None or args.models_pvc is None:
            pulumi.log.warn(f"sentiment serving: no workload_storage add-on; referring to namespace {NAMESPACE!r} "
                            f"and PVC {MODELS_CLAIM!r} by name (workloads/shared.py creates them)", self)
        ns = _name_of(args.namespace, NAMESPACE)
        claim = _name_of(args.models_pvc, MODELS_CLAIM)
        objs = build_objects(st)
        p = plan(st)
        # Explicit on the children too (a component's depends_on does not hold its children back).
        deps = [*args.ctx.cluster_ready, *(r for r in (args.namespace, args.models_pvc) if r is not None)]
        child = pulumi.ResourceOptions(parent=self, depends_on=deps)

        def meta(obj: dict[str, Any]) -> dict[str, Any]:
            return {**obj["metadata"], "namespace": ns}

        self.resources: dict[str, pulumi.Resource] = {}
        sa = objs["sa"]
        self.resources["sa"] = k8s.core.v1.ServiceAccount(
            f"{name}-sa", metadata=meta(sa), automount_service_account_token=False, opts=child)
        self.deployment = self._deployment(name, args, objs["deployment"], ns, claim, deps)
        self.resources["deployment"] = self.deployment
        if "compile-cronjob" in objs:
            self.resources["compile-cronjob"] = self._compile_cronjob(name, args, objs["compile-cronjob"], ns, claim, deps)
            self.resources["compile-netpol"] = k8s.networking.v1.NetworkPolicy(
                f"{name}-compile-netpol", metadata=meta(objs["compile-netpol"]), spec=objs["compile-netpol"]["spec"],
                opts=child)
        svc = objs["service"]
        self.service = k8s.core.v1.Service(f"{name}-service", metadata=meta(svc), spec=svc["spec"], opts=child)
        self.resources["service"] = self.service
        after_deploy = pulumi.ResourceOptions(parent=self, depends_on=[*deps, self.deployment])
        if "hpa" in objs:
            self.resources["hpa"] = k8s.autoscaling.v2.HorizontalPodAutoscaler(
                f"{name}-hpa", metadata=meta(objs["hpa"]), spec=objs["hpa"]["spec"], opts=after_deploy)
        if "scaledobject" in objs:
            pulumi.log.warn("serving.keda: the ScaledObject needs KEDA (its keda.sh CRDs and operator) in the cluster; "
                            "this platform does not install it, so install KEDA before `pulumi up`", self)
            so = objs["scaledobject"]
            self.resources["scaledobject"] = k8s.apiextensions.CustomResource(
                f"{name}-scaledobject", api_version=so["apiVersion"], kind=so["kind"], metadata=meta(so),
                spec=so["spec"], opts=after_deploy)
        self.resources["pdb"] = k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb", metadata=meta(objs["pdb"]), spec=objs["pdb"]["spec"], opts=child)
        self.resources["netpol"] = k8s.networking.v1.NetworkPolicy(
            f"{name}-netpol", metadata=meta(objs["netpol"]), spec=objs["netpol"]["spec"], opts=child)
        if "ingress" in objs:
            self.resources["ingress"] = k8s.networking.v1.Ingress(
                f"{name}-ingress", metadata=meta(objs["ingress"]), spec=objs["ingress"]["spec"],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[*deps, self.service]))
        if args.monitoring_release is not None:
            self.resources["servicemonitor"] = scrape_object(
                f"{name}-servicemonitor", "ServiceMonitor", server_service_monitor(), parent=self,
                release=args.monitoring_release, ready=args.ctx.cluster_ready)

        self.namespace = ns
        self.service_name = pulumi.Output.from_input(NAME)
        self.endpoint = ns.apply(lambda n: f"http://{NAME}.{n}.svc.cluster.local/analyze")
        self.autoscaler = p.autoscaler
        self.register_outputs({
            "namespace": self.namespace,
            "serviceName": self.service_name,
            "endpoint": self.endpoint,
            "autoscaler": p.autoscaler,
            "exposure": p.exposure,
            "scheme": p.scheme,
        })

    def _templated(self, args: SentimentServingArgs, key: str, obj: dict[str, Any], ns: pulumi.Output[str],
                   claim: pulumi.Output[str]) -> tuple[Any, Any]:
        """(metadata, spec) of the object ``key`` of ``build_objects``: its namespace and claim name from the
        storage resources, its image from ``images`` (an Output: by digest once pushed; the builder takes strings)."""
        refs = dict(args.images.refs) if args.images is not None else {}
        if refs:
            out = pulumi.Output.all(**refs).apply(lambda r: build_objects(args.settings, images=r)[key])
            return (pulumi.Output.all(out, ns).apply(lambda a: {**a[0]["metadata"], "namespace": a[1]}),
                    pulumi.Output.all(out, claim).apply(lambda a: _with_claim(a[0]["spec"], a[1])))
        return {**obj["metadata"], "namespace": ns}, _with_claim(obj["spec"], claim)

    def _deployment(self, name: str, args: SentimentServingArgs, dep: dict[str, Any], ns: pulumi.Output[str],
                    claim: pulumi.Output[str], deps: list[pulumi.Resource]) -> k8s.apps.v1.Deployment:
        """The Deployment, after its ServiceAccount and PriorityClass."""
        dep_meta, spec = self._templated(args, "deployment", dep, ns, claim)
        return k8s.apps.v1.Deployment(
            f"{name}-deployment", metadata=dep_meta, spec=spec,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[
                *deps, self.resources["sa"], *([args.priority_class] if args.priority_class is not None else [])]))

    def _compile_cronjob(self, name: str, args: SentimentServingArgs, cron: dict[str, Any], ns: pulumi.Output[str],
                         claim: pulumi.Output[str], deps: list[pulumi.Resource]) -> k8s.batch.v1.CronJob:
        """The Neuron compile CronJob (compile_job.py), after the ServiceAccount its pods run as."""
        cron_meta, spec = self._templated(args, "compile-cronjob", cron, ns, claim)
        return k8s.batch.v1.CronJob(f"{name}-compile-cronjob", metadata=cron_meta, spec=spec,
                                    opts=pulumi.ResourceOptions(parent=self, depends_on=[*deps, self.resources["sa"]]))


def _with_claim(spec: dict[str, Any], claim_name: Any) -> dict[str, Any]:
    """A Deployment's or CronJob's spec with its PVC volumes pointing at ``claim_name`` (an Output)."""
    outer = spec.get("jobTemplate")
    inner = outer["spec"] if outer is not None else spec
    tmpl = inner["template"]
    vols = [dict(v) for v in tmpl["spec"]["volumes"]]
    for v in vols:
        if "persistentVolumeClaim" in v:
            v["persistentVolumeClaim"] = {**v["persistentVolumeClaim"], "claimName": claim_name}
    inner = {**inner, "template": {**tmpl, "spec": {**tmpl["spec"], "volumes": vols}}}
    return {**spec, "jobTemplate": {**outer, "spec": inner}} if outer is not None else inner
