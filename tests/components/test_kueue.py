"""Kueue's objects, built from the node pools (pure): flavors, quotas equal to the NodePool limits (and the share),
the Cohort, priorities, the manager Configuration, the chart values, the NetworkPolicies and the scrape."""
from __future__ import annotations

from fractions import Fraction

import pytest
import yaml

from components.karpenter import node_pool_spec
from components.kueue import KUEUE_METRICS, KueueSettings, cluster_queue, kueue_values, manager_config, queue_objects
from components.kueue.queues import covered_resources, resource_flavor, scaled, workload_priority_classes
from components.kueue.values import metrics_reader_binding, namespace_doc, network_policies, service_monitor
from components.priority import PRIORITY_CLASSES
from infra.check.helm_values import check_release
from infra.check.objects import validate_objects
from infra.config import parse_config
from infra.conventions import SYSTEM_NODE_SELECTOR, SYSTEM_TOLERATION

pytestmark = pytest.mark.unit

GPU_POOL = {"name": "a100", "accelerator": "nvidia", "instanceFamilies": ["p4d"],
            "limits": {"cpu": 192, "memory": "2304Gi", "gpu": 16}}
CPU_POOL = {"name": "general", "instanceFamilies": ["m6i"], "capacityTypes": ["on-demand"],
            "limits": {"cpu": 48, "memory": "192Gi"}}
INF_POOL = {"name": "inf2", "accelerator": "inf2", "instanceFamilies": ["inf2"],
            "limits": {"cpu": 96, "memory": "384Gi", "neuron": 12}}


def settings(**training) -> KueueSettings:
    data = {"training": {"device": "gpu", **training}, "serving": {"enabled": False}}
    return KueueSettings.from_config(parse_config(data, stack="dev"))


def custom(queue=None, **over) -> KueueSettings:
    data = {"nodePools": over.pop("pools", [CPU_POOL, GPU_POOL]), "serving": {"enabled": False},
            "training": {"device": "gpu", **({"queue": queue} if queue is not None else {}), **over}}
    return KueueSettings.from_config(parse_config(data, stack="dev"))


def quotas(cq: dict) -> dict[str, dict[str, str]]:
    """``{flavor: {resource: nominalQuota}}`` of a ClusterQueue or Cohort."""
    (group,) = cq["spec"]["resourceGroups"]
    return {f["name"]: {r["name"]: r["nominalQuota"] for r in f["resources"]} for f in group["flavors"]}


def expected_quotas(s: KueueSettings, share: str = "1") -> dict[str, dict[str, str]]:
    covered = covered_resources(s.pools)
    out = {}
    for p in s.pools:
        limits = node_pool_spec(p)["limits"]
        out[p.name] = {r: scaled(r, limits[r], Fraction(share)) if r in limits else "0" for r in covered}
    return out


# ---------------------------------------------------------------- quotas follow the NodePools
@pytest.mark.parametrize("env", ["dev", "prod"])
def test_default_pools_quota_equals_each_nodepools_limits(env):
    data = {"environment": env, "training": {"device": "gpu"}, "serving": {"enabled": False}}
    if env == "prod":
        data["cluster"] = {"admins": [{"principalArn": "arn:aws:iam::123456789012:role/admins"}]}
    s = KueueSettings.from_config(parse_config(data, stack=env))
    assert [p.name for p in s.pools] == ["cpu", "gpu"]  # the plain pool first: CPU pods never land on GPUs
    got = quotas(cluster_queue(s))
    for p in s.pools:
        limits = node_pool_spec(p)["limits"]
        assert {r: got[p.name][r] for r in limits} == limits  # every resource, byte for byte
    assert got["cpu"]["nvidia.com/gpu"] == "0"
    assert got["gpu"]["nvidia.com/gpu"] == ("32" if env == "prod" else "4")


def test_custom_pools_every_resource_and_device_kind():
    s = custom(queue={"pools": ["general", "a100", "inf2"]}, pools=[GPU_POOL, INF_POOL, CPU_POOL])
    assert [p.name for p in s.pools] == ["general", "a100", "inf2"]
    assert covered_resources(s.pools) == ["cpu", "memory", "nvidia.com/gpu", "aws.amazon.com/neuron"]
    assert quotas(cluster_queue(s)) == {
        "general": {"cpu": "48", "memory": "192Gi", "nvidia.com/gpu": "0", "aws.amazon.com/neuron": "0"},
        "a100": {"cpu": "192", "memory": "2304Gi", "nvidia.com/gpu": "16", "aws.amazon.com/neuron": "0"},
        "inf2": {"cpu": "96", "memory": "384Gi", "nvidia.com/gpu": "0", "aws.amazon.com/neuron": "12"},
    }


def test_a_changed_nodepool_limit_changes_the_quota():
    before = quotas(cluster_queue(custom()))
    bigger = {**GPU_POOL, "limits": {**GPU_POOL["limits"], "gpu": 24, "memory": "3000Gi"}}
    after = quotas(cluster_queue(custom(pools=[CPU_POOL, bigger])))
    assert before["a100"]["nvidia.com/gpu"] == "16" and after["a100"]["nvidia.com/gpu"] == "24"
    assert after["a100"]["memory"] == "3000Gi" and after["general"] == before["general"]


@pytest.mark.parametrize("share,gpu,cpu,memory", [
    (0.5, "8", "96", "1179648Mi"),
    (0.25, "4", "48", "589824Mi"),
    (0.3, "4", "57600m", "707788Mi"),  # rounded down: never above the share
])
def test_share_scales_every_resource(share, gpu, cpu, memory):
    s = custom(queue={"share": share})
    got = quotas(cluster_queue(s))
    assert got["a100"] == {"cpu": cpu, "memory": memory, "nvidia.com/gpu": gpu}
    assert got == expected_quotas(s, str(share))
    assert "cohortName" not in cluster_queue(s)["spec"]


def test_borrow_puts_the_rest_of_the_limits_in_a_cohort():
    s = custom(queue={"share": 0.3, "borrow": True})
    objs = {(o["kind"], o["metadata"]["name"]): o for o in queue_objects(s)}
    cq, cohort = objs[("ClusterQueue", "ml-training")], objs[("Cohort", "eks-ml-platform")]
    assert cq["spec"]["cohortName"] == "eks-ml-platform"
    assert cq["spec"]["preemption"] == {"withinClusterQueue": "LowerPriority", "reclaimWithinCohort": "Any"}
    own, rest = quotas(cq), quotas(cohort)
    assert rest["a100"] == {"cpu": "134400m", "memory": "1651508Mi", "nvidia.com/gpu": "12"}
    # queue + cohort = the NodePool's limits: borrowing never goes past what Karpenter may launch
    assert int(own["a100"]["nvidia.com/gpu"]) + int(rest["a100"]["nvidia.com/gpu"]) == 16
    assert own["a100"]["cpu"] == "57600m" and 57600 + 134400 == 192 * 1000
    assert int(own["a100"]["memory"][:-2]) + int(rest["a100"]["memory"][:-2]) == 2304 * 1024


def test_no_cohort_without_borrowing():
    kinds = [o["kind"] for o in queue_objects(custom())]
    assert kinds == ["ResourceFlavor", "ResourceFlavor", "WorkloadPriorityClass", "WorkloadPriorityClass",
                     "ClusterQueue", "LocalQueue"]


# ---------------------------------------------------------------- flavors, queues, priorities
def test_flavors_select_the_pools_nodes_and_tolerate_their_taints():
    s = custom()
    cpu, gpu = (resource_flavor(p) for p in s.pools)
    assert cpu["spec"] == {"nodeLabels": {"karpenter.sh/nodepool": "general", "eks-ml-platform/pool": "general"}}
    assert gpu["spec"]["nodeLabels"] == {"karpenter.sh/nodepool": "a100", "eks-ml-platform/pool": "a100",
                                         "eks-ml-platform/accelerator": "nvidia"}
    assert gpu["spec"]["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def test_a_taint_with_a_value_is_tolerated_with_equal(monkeypatch):
    import components.kueue.queues as queues

    pool = custom().pools[1]
    spec = node_pool_spec(pool)
    spec["template"]["spec"]["taints"] = [{"key": "team", "value": "ml", "effect": "NoExecute"}]
    monkeypatch.setattr(queues, "node_pool_spec", lambda p: spec)
    assert queues.resource_flavor(pool)["spec"]["tolerations"] == [
        {"key": "team", "operator": "Equal", "value": "ml", "effect": "NoExecute"}]


def test_queues_take_only_the_workload_namespace():
    s = custom()
    cq = cluster_queue(s)
    assert cq["spec"]["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "ml-workloads"}}
    assert cq["spec"]["preemption"]["withinClusterQueue"] == "LowerPriority"
    lq = queue_objects(s)[-1]
    assert (lq["kind"], lq["metadata"], lq["spec"]) == (
        "LocalQueue", {**lq["metadata"], "name": "training", "namespace": "ml-workloads"}, {"clusterQueue": "ml-training"})


def test_priority_classes_map_to_the_platforms():
    by_name = {p.name: p.value for p in PRIORITY_CLASSES}
    wpcs = {w["metadata"]["name"]: w["value"] for w in workload_priority_classes()}
    assert wpcs["ml-training"] == by_name["ml-training"]
    assert by_name["ml-training"] < wpcs["ml-training-urgent"] < by_name["ml-serving"]


@pytest.mark.parametrize("queue", [None, {"share": 0.5, "borrow": True}, {"share": 0.3}])
def test_every_object_passes_the_pinned_crds_schema_and_cel(queue):
    s = custom(queue=queue, pools=[CPU_POOL, GPU_POOL, INF_POOL])
    report = validate_objects(queue_objects(s), k8s_version="1.34", crd_dir=None)
    assert [str(f) for f in report.findings] == []
    assert {k.split("/")[-1] for k in report.coverage} >= {"ClusterQueue", "ResourceFlavor", "LocalQueue",
                                                           "WorkloadPriorityClass"}


# ---------------------------------------------------------------- the chart and its Configuration
def test_manager_config_enables_only_the_platforms_integrations_and_waits_for_pods():
    cfg = manager_config(custom(queue={"podsReadyTimeoutMinutes": 15}))
    assert cfg["apiVersion"] == "config.kueue.x-k8s.io/v1beta2" and cfg["kind"] == "Configuration"
    assert cfg["integrations"] == {"frameworks": ["batch/job", "kubeflow.org/pytorchjob", "kubeflow.org/tfjob"]}
    assert cfg["waitForPodsReady"]["timeout"] == "15m" and cfg["waitForPodsReady"]["blockAdmission"] is True
    assert cfg["waitForPodsReady"]["requeuingStrategy"]["timestamp"] == "Eviction"
    assert cfg["managedJobsNamespaceSelector"]["matchExpressions"][0]["values"] == ["ml-workloads"]
    assert cfg["metrics"]["enableClusterQueueResources"] is True
    no_operator = parse_config({"addons": {"trainingOperator": {"enabled": False}, "kueue": {"enabled": True}},
                                "training": {"enabled": False}}, stack="dev")
    assert manager_config(KueueSettings.from_config(no_operator))["integrations"]["frameworks"] == ["batch/job"]


@pytest.mark.parametrize("prod", [False, True])
def test_values_pass_the_charts_values_and_run_on_the_system_nodes(prod):
    s = KueueSettings(pools=custom().pools, prod=prod)
    values = kueue_values(s)
    report = check_release("kueue", "oci://registry.k8s.io/kueue/charts/kueue", "0.19.2", values)
    assert report.findings == [] and report.checked == ["kueue: kueue 0.19.2"]
    cm = values["controllerManager"]
    assert cm["nodeSelector"] == SYSTEM_NODE_SELECTOR and cm["tolerations"] == [SYSTEM_TOLERATION]
    assert cm["manager"]["image"] == {"repository": "registry.k8s.io/kueue/kueue", "tag": "v0.19.2",
                                      "pullPolicy": "IfNotPresent"}
    assert (cm["replicas"], cm["podDisruptionBudget"]["enabled"]) == ((2, True) if prod else (1, False))
    assert yaml.safe_load(values["managerConfig"]["controllerManagerConfigYaml"]) == manager_config(s)


def test_namespace_policies_and_scrape():
    s = KueueSettings(api_server_cidrs=("10.9.0.0/16",))
    assert namespace_doc(s)["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    deny, controller = network_policies(s)
    assert deny["metadata"]["name"] == "default-deny" and deny["spec"]["ingress"] == []
    api, prom = controller["spec"]["ingress"]
    assert api["from"] == [{"ipBlock": {"cidr": "10.9.0.0/16"}}]
    assert [p["port"] for p in api["ports"]] == [9443, 8082] and [p["port"] for p in prom["ports"]] == [8443]
    assert len(network_policies(KueueSettings(monitoring=False))[1]["spec"]["ingress"]) == 1
    sm = service_monitor(s)
    assert sm["metadata"]["namespace"] == "monitoring" and sm["spec"]["namespaceSelector"] == {"matchNames": ["kueue-system"]}
    (ep,) = sm["spec"]["endpoints"]
    assert (ep["port"], ep["scheme"], ep["path"]) == ("https", "https", "/metrics")
    rb = metrics_reader_binding()
    assert rb["roleRef"]["name"] == "kueue-metrics-reader"
    assert rb["subjects"] == [{"kind": "ServiceAccount", "name": "kube-prometheus-stack-prometheus",
                               "namespace": "monitoring"}]
    assert {"kueue_pending_workloads", "kueue_cluster_queue_nominal_quota"} <= set(KUEUE_METRICS)


def test_kueue_follows_training_unless_set():
    assert KueueSettings.enabled(parse_config({}, stack="dev"))
    assert not KueueSettings.enabled(parse_config({"training": {"enabled": False}}, stack="dev"))
    assert KueueSettings.enabled(parse_config({"training": {"enabled": False}, "addons": {"kueue": {"enabled": True}}},
                                              stack="dev"))
    assert not KueueSettings.enabled(parse_config({"addons": {"kueue": {"enabled": False}}}, stack="dev"))
