"""SentimentServing under Pulumi mocks: type token, children, providers, dependencies, outputs.

Two ways in:
- the whole platform as the ``dev``/``prod`` fixtures render it (the platform.py block);
- the component alone next to a real ``WorkloadStorage`` (workloads/shared.py), so variants (KEDA,
  load balancer, exposure none) and the storage wiring are checked without rendering a stack each.
"""
from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pytest

from infra.context import ClusterOutputs, PlatformContext
from infra.config import parse_config
from infra.preview.mocks import mock_engine
from tests.conftest import manifests, states

pytestmark = pytest.mark.unit

COMPONENT = "eks-ml-platform:sentiment:SentimentServing"


#: The monitoring component's parent chain and its release, as the platform registers them (the baseline dev render).
OLD_PARENT = "urn:pulumi:dev::eks-ml-platform::eks-ml-platform:platform:Platform$eks-ml-platform:monitoring:Monitoring"
SCRAPE_TYPE = "kubernetes:monitoring.coreos.com/v1"


def _monitoring_release(k8s_p: k8s.Provider) -> pulumi.Resource:
    """kube-prometheus-stack's release where the platform puts it: ``ml`` > ``ml-monitoring`` > ``ml-monitoring-release``."""
    platform = pulumi.ComponentResource("eks-ml-platform:platform:Platform", "ml")
    mon = pulumi.ComponentResource("eks-ml-platform:monitoring:Monitoring", "ml-monitoring",
                                   opts=pulumi.ResourceOptions(parent=platform))
    return k8s.helm.v3.Release("ml-monitoring-release", chart="kube-prometheus-stack", namespace="monitoring",
                               opts=pulumi.ResourceOptions(parent=mon, provider=k8s_p))


def run_component(raw: dict, *, with_storage: bool = True, monitoring: bool = False,
                  training: bool = False) -> dict[str, object]:
    """Run SentimentServing (and WorkloadStorage; with ``training`` also TrainingWorkload; with ``monitoring``
    a kube-prometheus-stack release for their scrape objects) under the preview mocks; return registrations by
    name (each with ``aliases``: the aliases it asked for)."""
    from workloads.sentiment.component import SentimentServing, SentimentServingArgs, ServingSettings
    from workloads.shared import WorkloadStorage, WorkloadStorageArgs
    from workloads.training.component import TrainingSettings, TrainingWorkload, TrainingWorkloadArgs

    cfg = parse_config(raw, stack="dev")
    with mock_engine(project="eks-ml-platform", stack="dev", region=cfg.region, cluster_name=cfg.cluster_name) as monitor:
        aws_p = aws.Provider("aws", region=cfg.region)
        k8s_p = k8s.Provider("k8s", kubeconfig="{}")
        gate = k8s.core.v1.ConfigMap("gate", metadata={"name": "gate", "namespace": "kube-system"},
                                     opts=pulumi.ResourceOptions(provider=k8s_p))
        out = pulumi.Output.from_input
        cluster = ClusterOutputs(*(out(x) for x in ["ml-dev", "https://x", "arn", "issuer", "role-arn", "role",
                                                    "sg-1", "sg-2", "{}"]))
        ctx = PlatformContext(cluster=cluster, cluster_ready=[gate], aws_provider=aws_p, k8s_provider=k8s_p,
                              private_subnet_ids=out(["subnet-1", "subnet-2"]), vpc_id=out("vpc-1"))
        priority = k8s.scheduling.v1.PriorityClass("ml-serving", metadata={"name": "ml-serving"}, value=100000,
                                                   opts=pulumi.ResourceOptions(provider=k8s_p))
        release = _monitoring_release(k8s_p) if monitoring else None
        storage = None
        if with_storage:
            storage = WorkloadStorage("ml-workload-storage", WorkloadStorageArgs(),
                                      opts=pulumi.ResourceOptions(providers={"kubernetes": k8s_p}))
        providers = {"aws": aws_p, "kubernetes": k8s_p}
        SentimentServing("ml-sentiment", SentimentServingArgs(
            settings=ServingSettings.from_config(cfg), ctx=ctx, namespace=storage.namespace if storage else None,
            models_pvc=storage.models_pvc if storage else None, priority_class=priority, monitoring_release=release),
            opts=pulumi.ResourceOptions(providers=providers, depends_on=[gate, *([storage] if storage else [])]))
        if training and storage is not None:
            TrainingWorkload("ml-training", TrainingWorkloadArgs(
                settings=TrainingSettings.from_config(cfg), ctx=ctx, namespace=storage.namespace,
                datasets_pvc=storage.datasets_pvc, models_pvc=storage.models_pvc, monitoring_release=release), opts=pulumi.ResourceOptions(providers=providers, depends_on=[gate, storage]))
    return {r.name: r for r in monitor.registrations}


@pytest.fixture(scope="module")
def default_run():
    return run_component({})


def test_component_and_children(default_run):
    regs = default_run
    comp = regs["ml-sentiment"]
    assert comp.type == COMPONENT and not comp.custom
    children = {n: r for n, r in regs.items() if r.parent == comp.urn}
    # dev serves on inf1: the Neuron compile CronJob and its NetworkPolicy come with it
    assert sorted(children) == ["ml-sentiment-compile-cronjob", "ml-sentiment-compile-netpol",
                                "ml-sentiment-deployment", "ml-sentiment-hpa", "ml-sentiment-ingress",
                                "ml-sentiment-netpol", "ml-sentiment-pdb", "ml-sentiment-sa", "ml-sentiment-service"]
    k8s_provider = regs["k8s"]
    for child in children.values():
        assert child.provider.startswith(k8s_provider.urn + "::"), child.name  # the component's kubernetes provider


def test_storage_is_a_dependency_and_names_come_from_it(default_run):
    regs = default_run
    ns, pvc = regs["ml-workload-storage-namespace"], regs["ml-workload-storage-models"]
    dep = regs["ml-sentiment-deployment"]
    assert {ns.urn, pvc.urn} <= set(dep.dependencies)
    # implicit dependencies through the names: metadata.namespace and the claim name are outputs of those resources
    assert ns.urn in dep.property_dependencies["metadata"]
    assert pvc.urn in dep.property_dependencies["spec"]
    assert dep.inputs["metadata"]["namespace"] == "ml-workloads"
    vols = {v["name"]: v for v in dep.inputs["spec"]["template"]["spec"]["volumes"]}
    assert vols["models"]["persistentVolumeClaim"] == {"claimName": "models", "readOnly": True}
    for name in ("ml-sentiment-service", "ml-sentiment-pdb", "ml-sentiment-netpol", "ml-sentiment-sa"):
        assert ns.urn in regs[name].dependencies, name
    # the autoscaler and the ingress wait for what they point at
    assert dep.urn in regs["ml-sentiment-hpa"].dependencies
    assert regs["ml-sentiment-service"].urn in regs["ml-sentiment-ingress"].dependencies
    assert regs["gate"].urn in regs["ml-sentiment"].dependencies  # the cluster-ready gate
    for name in ("ml-sentiment-deployment", "ml-sentiment-service", "ml-sentiment-netpol"):
        assert regs["gate"].urn in regs[name].dependencies, name  # held back explicitly, not only via the parent
    assert regs["ml-serving"].urn in dep.dependencies  # pods naming ml-serving are rejected before it exists
    # the compile CronJob: the same claim by name (read-write), after the storage, the gate and the ServiceAccount
    cron = regs["ml-sentiment-compile-cronjob"]
    assert pvc.urn in cron.property_dependencies["spec"] and ns.urn in cron.property_dependencies["metadata"]
    assert {regs["gate"].urn, regs["ml-sentiment-sa"].urn} <= set(cron.dependencies)
    tmpl = cron.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert {v["name"]: v for v in tmpl["volumes"]}["models"]["persistentVolumeClaim"] == {"claimName": "models"}
    assert ns.urn in regs["ml-sentiment-compile-netpol"].dependencies


def test_component_never_creates_the_namespace_or_pvcs(default_run):
    comp = default_run["ml-sentiment"]
    kinds = {r.type for r in default_run.values() if r.parent == comp.urn}
    assert not {t for t in kinds if t.endswith((":Namespace", ":PersistentVolumeClaim"))}


def test_keda_variant_creates_a_scaledobject_and_no_hpa():
    regs = run_component({"serving": {"keda": True, "exposure": "loadBalancer"}})
    comp = regs["ml-sentiment"]
    types = {r.name: r.type for r in regs.values() if r.parent == comp.urn}
    assert types["ml-sentiment-scaledobject"] == "kubernetes:keda.sh/v1alpha1:ScaledObject"
    assert "ml-sentiment-hpa" not in types and "ml-sentiment-ingress" not in types
    so = regs["ml-sentiment-scaledobject"]
    assert regs["ml-sentiment-deployment"].urn in so.dependencies
    assert so.inputs["spec"]["scaleTargetRef"]["name"] == "sentiment"
    assert regs["ml-sentiment-service"].inputs["spec"]["type"] == "LoadBalancer"


def test_without_storage_it_refers_to_the_shared_names():
    regs = run_component({"serving": {"exposure": "none", "maxReplicas": 3}}, with_storage=False)
    dep = regs["ml-sentiment-deployment"]
    assert dep.inputs["metadata"]["namespace"] == "ml-workloads"
    assert "replicas" in dep.inputs["spec"] and "ml-sentiment-hpa" not in regs and "ml-sentiment-ingress" not in regs


# ---------------------------------------------------------------- the platform block (whole stack)
def _sentiment(result) -> list[dict]:
    """The serving objects (the ServiceMonitor in ``monitoring`` shares the name label, not the namespace)."""
    return [m for m in manifests(result)
            if m["metadata"].get("namespace") == "ml-workloads" and m["metadata"]["name"] == "sentiment"]


def test_platform_registers_serving(dev):
    (comp,) = [s for s in states(dev, COMPONENT)]
    assert comp["urn"].endswith("::ml-sentiment")
    assert comp["parent"].endswith("::ml")
    kinds = sorted(m["kind"] for m in _sentiment(dev))
    assert kinds == ["Deployment", "HorizontalPodAutoscaler", "Ingress", "NetworkPolicy", "PodDisruptionBudget",
                     "Service", "ServiceAccount"]
    eks = [s for s in states(dev) if s["type"] == "eks:index:Cluster"]
    assert eks and eks[0]["urn"] in comp["dependencies"]  # after the cluster-ready gate
    dep = next(s for s in states(dev, "kubernetes:apps/v1:Deployment") if s["urn"].endswith("::ml-sentiment-deployment"))
    needed = {
        "kubernetes:core/v1:Namespace": "ml-workloads",  # workloads/shared.py, never created here
        "kubernetes:core/v1:PersistentVolumeClaim": "models",
        "kubernetes:scheduling.k8s.io/v1:PriorityClass": "ml-serving",
    }
    for type_, obj_name in needed.items():
        (res,) = [s for s in states(dev, type_) if s["inputs"]["metadata"]["name"] == obj_name]
        assert res["urn"] in dep["dependencies"], obj_name
    assert not any(s["type"].endswith((":Namespace", ":PersistentVolumeClaim")) and s["parent"] == comp["urn"]
                   for s in states(dev))


def test_platform_dev_and_prod_spread(dev, prod):
    def zone(result):
        (dep,) = [m for m in _sentiment(result) if m["kind"] == "Deployment"]
        tsc = dep["spec"]["template"]["spec"]["topologySpreadConstraints"]
        return next(t["whenUnsatisfiable"] for t in tsc if t["topologyKey"] == "topology.kubernetes.io/zone")

    assert zone(dev) == "ScheduleAnyway" and zone(prod) == "DoNotSchedule"


# ---------------------------------------------------------------- the ServiceMonitor (moved from monitoring)
def test_no_service_monitor_without_monitoring(default_run):
    assert not [r for r in default_run.values() if r.type.endswith(":ServiceMonitor")]


def test_service_monitor_moved_from_monitoring_keeps_its_urn_by_alias():
    regs = run_component({}, monitoring=True)
    sm = regs["ml-sentiment-servicemonitor"]
    assert sm.type == f"{SCRAPE_TYPE}:ServiceMonitor" and sm.parent == regs["ml-sentiment"].urn
    # the URN it had as the monitoring component's child, so `pulumi up` moves it instead of replacing it
    assert sm.aliases == [f"{OLD_PARENT}${SCRAPE_TYPE}:ServiceMonitor::ml-monitoring-sentiment"]
    # after its CRD (the release) and the cluster gate, as before the move; on the component's provider
    assert sm.dependencies == sorted([regs["gate"].urn, regs["ml-monitoring-release"].urn])
    assert sm.provider.startswith(regs["k8s"].urn + "::")
    assert sm.inputs["metadata"] == {"name": "sentiment", "namespace": "monitoring", "labels": {
        "app.kubernetes.io/managed-by": "pulumi", "app.kubernetes.io/name": "sentiment",
        "app.kubernetes.io/part-of": "eks-ml-platform"}}
    assert sm.inputs["spec"] == {"namespaceSelector": {"matchNames": ["ml-workloads"]},
                                 "selector": {"matchLabels": {"app.kubernetes.io/name": "sentiment"}},
                                 "endpoints": [{"port": "http", "path": "/metrics", "interval": "15s",
                                                "honorLabels": True}]}


def test_the_platform_aliases_both_moved_scrape_objects_to_their_old_urns(dev):
    """The whole dev stack: the preview records each alias, the URN the object had before the move."""
    states = {st["newState"]["urn"].split("::")[-1]: st["newState"] for st in dev.preview["steps"]}
    moved = {"ml-sentiment-servicemonitor": ("ml-sentiment", "ServiceMonitor::ml-monitoring-sentiment"),
             "ml-training-podmonitor": ("ml-training", "PodMonitor::ml-monitoring-sentiment-trainer")}
    for name, (parent, old) in moved.items():
        assert states[name]["parent"] == states[parent]["urn"]
        assert states[name]["aliases"] == [f"{OLD_PARENT}${SCRAPE_TYPE}:{old}"], name
        assert states["ml-monitoring-release"]["urn"] in states[name]["dependencies"]
    assert not [n for n in states if n in ("ml-monitoring-sentiment", "ml-monitoring-sentiment-trainer")]
    assert [n for n, st in states.items() if "aliases" in st] == sorted(moved)  # nothing else moved
