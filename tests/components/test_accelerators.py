"""Device plugins and exporters: each tolerates and selects only its own accelerator's nodes."""
from __future__ import annotations

import pytest

from components import accelerators as acc
from components import karpenter as kp
from components.priority import PRIORITY_CLASSES, SERVING, TRAINING, priority_class_manifest
from infra.check.objects import validate_objects
from infra.config import parse_config
from infra.versions import NEURON_KUBE_SCHEDULER

pytestmark = pytest.mark.unit

GPU = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
NEURON = {"key": "aws.amazon.com/neuron", "operator": "Exists", "effect": "NoSchedule"}


def selected_values(affinity):
    """The (key, values) pairs a required node affinity demands, per term."""
    terms = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    return [[(e["key"], e["operator"], tuple(e["values"])) for e in t["matchExpressions"]] for t in terms]


def node_labels(pool_name):
    cfg = parse_config({}, stack="dev")
    pool = next(p for p in cfg.pools if p.name == pool_name)
    return kp.node_pool_spec(pool)["template"]["metadata"]["labels"], kp.pool_taints(pool)


def schedules_on(affinity, tolerations, labels, taints):
    """Would a pod with this affinity/tolerations land on a node with these labels/taints?"""
    terms = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    match = any(all(labels.get(e["key"]) in e["values"] for e in t["matchExpressions"]) for t in terms)
    tolerated = all(any(t.get("key") == taint["key"] and t.get("effect") in (None, taint["effect"]) for t in tolerations)
                    for taint in taints)
    return match and tolerated


@pytest.mark.parametrize("name,values", [
    ("nvidia-device-plugin", acc.nvidia_device_plugin_values()),
    ("dcgm-exporter", acc.dcgm_exporter_values()),
])
def test_nvidia_charts_tolerate_and_select_only_gpu_nodes(name, values):
    assert values["tolerations"] == [GPU]  # the chart's CriticalAddonsOnly / control-plane tolerations are replaced
    assert selected_values(values["affinity"]) == [[("eks-ml-platform/accelerator", "In", ("nvidia",))]]
    for pool, expected in (("gpu", True), ("inf1", False), ("cpu", False)):
        labels, taints = node_labels(pool)
        assert schedules_on(values["affinity"], values["tolerations"], labels, taints) is expected, (name, pool)


def test_neuron_device_plugin_tolerates_and_selects_only_neuron_nodes():
    plugin = acc.neuron_values("1.34")["devicePlugin"]
    assert plugin["enabled"] is True and plugin["tolerations"] == [NEURON]
    assert selected_values(plugin["affinity"]) == [[("eks-ml-platform/accelerator", "In", ("neuron",))]]
    for pool, expected in (("inf1", True), ("gpu", False), ("cpu", False)):
        labels, taints = node_labels(pool)
        assert schedules_on(plugin["affinity"], plugin["tolerations"], labels, taints) is expected, pool


def test_neuron_monitor_tolerates_and_selects_only_neuron_nodes():
    ds = acc.neuron_monitor_daemonset()
    pod = ds["spec"]["template"]["spec"]
    assert pod["tolerations"] == [NEURON]
    for pool, expected in (("inf1", True), ("gpu", False), ("cpu", False)):
        labels, taints = node_labels(pool)
        assert schedules_on(pod["affinity"], pod["tolerations"], labels, taints) is expected, pool
    (c,) = pod["containers"]
    assert c["image"].startswith("public.ecr.aws/neuron/neuron-monitor:") and not c["image"].endswith(":latest")
    assert c["ports"] == [{"name": "metrics", "containerPort": 8000, "protocol": "TCP"}]
    assert c["resources"]["limits"]["cpu"] and c["resources"]["limits"]["memory"]
    assert pod["automountServiceAccountToken"] is False
    assert all(v.split("=", 1)[1] for k, v in ds["metadata"]["annotations"].items() if k.startswith("checkov.io/skip"))


def test_neuron_scheduler_extension_runs_on_system_nodes_with_a_matching_kube_scheduler():
    for version, image in NEURON_KUBE_SCHEDULER.items():
        values = acc.neuron_values(version)
        sched = values["scheduler"]
        assert sched["enabled"] is True and sched["defaultScheduler"] == {"enabled": False}
        custom = sched["customScheduler"]
        assert custom["enabled"] is True
        assert f'{custom["image"]["repository"]}:{custom["image"]["tag"]}' == image
        assert custom["image"]["tag"].startswith(f"v{version}.")  # same minor as the control plane
        for placement in (sched, custom):
            terms = placement["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            assert terms["nodeSelectorTerms"] == [{"matchExpressions": [
                {"key": "eks-ml-platform/node-role", "operator": "In", "values": ["system"]}]}]
            assert "nodeSelector" not in placement
            assert placement["tolerations"] == [{"key": "CriticalAddonsOnly", "operator": "Exists", "effect": "NoSchedule"}]
        assert values["npd"] == {"enabled": False}  # its DaemonSet would otherwise land on every node


def test_every_supported_kubernetes_version_has_a_scheduler_image():
    from infra.config import SUPPORTED_K8S

    assert set(SUPPORTED_K8S) <= set(NEURON_KUBE_SCHEDULER)


def test_dcgm_counters_are_what_the_exporter_is_told_to_collect():
    values = acc.dcgm_exporter_values()
    fields = [line.split(",")[0].strip() for line in values["customMetrics"].splitlines()
              if line.strip() and not line.startswith("#")]
    assert fields == list(acc.DCGM_METRICS)
    assert {"DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE",
            "DCGM_FI_PROF_GR_ENGINE_ACTIVE"} <= set(acc.DCGM_METRICS)
    for line in values["customMetrics"].splitlines()[1:]:
        field, typ, help_ = (x.strip() for x in line.split(",", 2))
        assert field.startswith("DCGM_FI_") and typ in ("gauge", "counter") and help_
    assert values["serviceMonitor"] == {"enabled": False}
    assert values["arguments"] == ["-f", "/etc/dcgm-exporter/default-counters.csv"]


def test_dcgm_exporter_reads_the_custom_metrics_configmap():
    """`-f FILE` reads customMetrics only because the chart mounts its ConfigMap over FILE (4.8.2 defaults)."""
    import hashlib

    from infra import upstream

    (chart,) = upstream.read_yaml_docs("dcgm-exporter/chart/values")
    values = acc.dcgm_exporter_values()
    merged = {**chart, **values}  # Helm coalescing, top level: the component overrides none of the mount keys
    assert "extraConfigMapVolumes" not in values and "extraVolumeMounts" not in values
    args = merged["arguments"]
    assert "-m" not in args and "--configmap-data" not in args  # the pod gets no API token: -m would exit
    counters_file = args[args.index("-f") + 1]
    (volume,) = [v for v in merged["extraConfigMapVolumes"] if v["configMap"]["name"] == "exporter-metrics-config-map"]
    (item,) = [i for i in volume["configMap"]["items"] if i["key"] == "metrics"]  # the key customMetrics fills
    (mount,) = [m for m in merged["extraVolumeMounts"] if m["name"] == volume["name"]]
    assert mount["mountPath"] == counters_file == acc.DCGM_COUNTERS_FILE and mount["subPath"] == item["path"]
    assert {"DCGM_FI_PROF_SM_ACTIVE", "DCGM_FI_PROF_SM_OCCUPANCY"} <= set(acc.DCGM_METRICS)
    assert "DCGM_FI_PROF_SM_ACTIVE, gauge," in merged["customMetrics"]
    # a subPath mount keeps the old file: the counter list's hash in the pod template rolls the DaemonSet
    digest = hashlib.sha256(values["customMetrics"].encode()).hexdigest()
    assert values["podAnnotations"] == {acc.DCGM_COUNTERS_ANNOTATION: digest}


def test_neuron_metric_names():
    assert {"neuroncore_utilization_ratio", "neuron_runtime_memory_used_bytes"} <= set(acc.NEURON_METRICS)
    assert len(set(acc.NEURON_METRICS)) == len(acc.NEURON_METRICS)


def test_service_monitors_validate_against_the_prometheus_operator_crd():
    objs = []
    for sm in (kp.karpenter_service_monitor(), acc.dcgm_service_monitor(), acc.neuron_monitor_service_monitor()):
        objs.append({"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", **sm})
    report = validate_objects(objs, k8s_version="1.34", crd_dir=None)
    assert report.findings == []
    assert report.coverage["monitoring.coreos.com/v1/ServiceMonitor"].how.startswith("CRD schema")
    karpenter, dcgm, neuron = objs
    assert karpenter["spec"]["endpoints"][0]["port"] == "http-metrics"  # the karpenter chart's Service port
    assert karpenter["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "karpenter",
                                                            "app.kubernetes.io/instance": "karpenter"}
    assert dcgm["metadata"]["namespace"] == "nvidia-device-plugin" and dcgm["spec"]["endpoints"][0]["port"] == "metrics"
    svc = acc.neuron_monitor_service()
    assert neuron["spec"]["selector"]["matchLabels"] == svc["spec"]["selector"]
    assert svc["spec"]["ports"][0]["name"] == neuron["spec"]["endpoints"][0]["port"]


def test_accelerator_kinds_follow_the_pools():
    assert acc.accelerator_kinds(parse_config({}, stack="dev").pools) == {"nvidia", "neuron"}
    only_cpu = parse_config({"nodePools": [{"name": "cpu", "instanceFamilies": ["m6i"], "limits": {"cpu": 8}}],
                             "training": {"enabled": False}, "serving": {"enabled": False}}, stack="dev")
    assert acc.accelerator_kinds(only_cpu.pools) == set()


def test_priority_classes_let_serving_preempt_training():
    by_name = {p.name: priority_class_manifest(p) for p in PRIORITY_CLASSES}
    serving, training = by_name[SERVING], by_name[TRAINING]
    assert (SERVING, TRAINING) == ("ml-serving", "ml-training")
    assert serving["value"] == 100000 and serving["preemption_policy"] == "PreemptLowerPriority"
    assert training["value"] == 1000 and training["preemption_policy"] == "Never"
    assert serving["value"] > training["value"]
    assert not serving["global_default"] and not training["global_default"]
