"""Monitoring: kube-prometheus-stack values, the Grafana admin secret, scrapes, alerts, and the
rendered stacks (pinned chart, CR dependencies on the release, CRD validation)."""
from __future__ import annotations

import json

import pytest

from components import alerts
from components import monitoring as mon
from infra.config import ConfigError, parse_config
from infra.check.crds import load_pinned_crds, schema_errors
from tests.conftest import by_name, manifests, states

pytestmark = pytest.mark.unit

RELEASE = "kubernetes:helm.sh/v3:Release"
CR = "kubernetes:monitoring.coreos.com/v1:"


def cfg_for(env: str = "dev", **raw):
    base = {"environment": env}
    if env == "prod":
        base["cluster"] = {"admins": [{"principalArn": "arn:aws:iam::123456789012:role/admin"}]}
    base.update(raw)
    return parse_config(base, stack=env)


def _walk_keys(node, path=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield f"{path}.{k}" if path else k
            yield from _walk_keys(v, f"{path}.{k}" if path else k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk_keys(v, f"{path}[{i}]")


# ------------------------------------------------------------------ values
def test_prometheus_retention_and_storage_come_from_config():
    cfg = cfg_for("dev", monitoring={"retention": "9d", "storageGib": 40})
    spec = mon.monitoring_values(mon.MonitoringSettings.from_config(cfg), storage_class="ceph-block")["prometheus"]["prometheusSpec"]
    assert spec["retention"] == "9d" and spec["retentionSize"] == "34GiB"
    claim = spec["storageSpec"]["volumeClaimTemplate"]["spec"]
    assert claim["storageClassName"] == "ceph-block" and claim["resources"]["requests"]["storage"] == "40Gi"
    assert spec["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete"
    prod = mon.monitoring_values(mon.MonitoringSettings.from_config(cfg_for("prod")), storage_class="ceph-block")["prometheus"]["prometheusSpec"]
    assert prod["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Retain"


def test_prometheus_selects_everything_in_every_namespace():
    spec = mon.monitoring_values(mon.MonitoringSettings.from_config(cfg_for()), storage_class="ceph-block")["prometheus"]["prometheusSpec"]
    for kind in ("serviceMonitor", "podMonitor", "rule", "probe", "scrapeConfig"):
        assert spec[f"{kind}SelectorNilUsesHelmValues"] is False
    for kind in ("serviceMonitor", "podMonitor", "rule"):
        assert spec[f"{kind}NamespaceSelector"] == {}


def test_alertmanager_and_grafana_persist_on_ceph_block():
    values = mon.monitoring_values(mon.MonitoringSettings.from_config(cfg_for()), storage_class="ceph-block")
    assert values["alertmanager"]["enabled"] is True
    am = values["alertmanager"]["alertmanagerSpec"]["storage"]["volumeClaimTemplate"]["spec"]
    assert am["storageClassName"] == "ceph-block"
    graf = values["grafana"]
    assert graf["persistence"]["enabled"] is True and graf["persistence"]["storageClassName"] == "ceph-block"
    assert graf["deploymentStrategy"] == {"type": "Recreate"}
    # without the storage add-on nothing asks for a StorageClass that does not exist
    bare = mon.monitoring_values(mon.MonitoringSettings.from_config(cfg_for()), storage_class=None)
    assert bare["prometheus"]["prometheusSpec"]["storageSpec"] == {} and bare["grafana"]["persistence"] == {"enabled": False}


def test_grafana_credentials_only_through_the_existing_secret():
    values = mon.monitoring_values(mon.MonitoringSettings.from_config(cfg_for()), storage_class="ceph-block")
    assert values["grafana"]["admin"] == {"existingSecret": "grafana-admin", "userKey": "admin-user",
                                          "passwordKey": "admin-password"}
    assert not [k for k in _walk_keys(values) if k.lower().endswith("password")]
    sidecar = values["grafana"]["sidecar"]["dashboards"]
    assert (sidecar["label"], sidecar["labelValue"], sidecar["searchNamespace"]) == ("grafana_dashboard", "1", "ALL")


def test_eks_control_plane_scrapes_are_off():
    values = mon.monitoring_values(mon.MonitoringSettings.from_config(cfg_for()), storage_class="ceph-block")
    for key in ("kubeEtcd", "kubeControllerManager", "kubeScheduler", "kubeProxy"):
        assert values[key] == {"enabled": False}
    rules = values["defaultRules"]["rules"]
    assert rules["etcd"] is False and rules["kubeProxy"] is False


def test_kube_state_metrics_exports_the_training_job_label():
    ksm = mon.monitoring_values(mon.MonitoringSettings.from_config(cfg_for()), storage_class=None)["kube-state-metrics"]
    assert ksm["metricLabelsAllowlist"] == ["pods=[app.kubernetes.io/name,training.kubeflow.org/job-name,"
                                            "training.kubeflow.org/replica-type]"]


def test_controllers_on_system_nodes_and_placement_without_karpenter():
    values = mon.monitoring_values(mon.MonitoringSettings.from_config(cfg_for()), storage_class=None)
    for part in (values["prometheusOperator"], values["kube-state-metrics"]):
        assert part["tolerations"][0]["key"] == "CriticalAddonsOnly"
    bare_cfg = cfg_for("dev", addons={"karpenter": {"enabled": False}, "rookCeph": {"enabled": False}},
                       training={"enabled": False}, serving={"enabled": False})
    alone = mon.monitoring_values(mon.MonitoringSettings.from_config(bare_cfg), storage_class=None)
    assert alone["prometheus"]["prometheusSpec"]["tolerations"][0]["key"] == "CriticalAddonsOnly"
    assert alone["grafana"]["tolerations"][0]["key"] == "CriticalAddonsOnly"


# ------------------------------------------------------------------ scrapes
def test_scrape_monitors():
    docs = {d["metadata"]["name"]: (k, d) for k, d in mon.scrape_monitors(mon.MonitoringSettings.from_config(cfg_for()), storage=True)}
    # the workloads' own scrapes (sentiment, sentiment-trainer) come with the workload components
    assert set(docs) == {"rook-ceph-mgr", "rook-ceph-exporter", "training-operator"}
    kind, mgr = docs["rook-ceph-mgr"]
    assert kind == "ServiceMonitor" and mgr["spec"]["namespaceSelector"] == {"matchNames": ["rook-ceph"]}
    assert mgr["spec"]["selector"]["matchLabels"] == {"app": "rook-ceph-mgr", "rook_cluster": "rook-ceph"}
    assert mgr["spec"]["endpoints"][0]["port"] == "http-metrics"
    _, op = docs["training-operator"]
    assert op["spec"]["namespaceSelector"] == {"matchNames": ["kubeflow"]}
    assert op["spec"]["selector"]["matchLabels"] == {"app": "training-operator"}
    assert op["spec"]["endpoints"][0]["port"] == "monitoring-port"
    # a disabled add-on gets no scrape
    off = cfg_for("dev", serving={"enabled": False}, training={"enabled": False, "device": "cpu"},
                  addons={"trainingOperator": {"enabled": False}})
    assert [d["metadata"]["name"] for _, d in mon.scrape_monitors(mon.MonitoringSettings.from_config(off), storage=False)] == []


#: The URNs the monitoring component gave the workloads' scrape objects (the baseline dev render).
OLD_PARENT = "urn:pulumi:dev::eks-ml-platform::eks-ml-platform:platform:Platform$eks-ml-platform:monitoring:Monitoring"
RELEASE_URN = f"{OLD_PARENT}$kubernetes:helm.sh/v3:Release::ml-monitoring-release"
OLD_SERVICE_MONITOR = f"{OLD_PARENT}$kubernetes:monitoring.coreos.com/v1:ServiceMonitor::ml-monitoring-sentiment"
OLD_POD_MONITOR = f"{OLD_PARENT}$kubernetes:monitoring.coreos.com/v1:PodMonitor::ml-monitoring-sentiment-trainer"


def test_former_scrape_urn_is_the_urn_the_monitoring_component_gave():
    from workloads.sentiment.manifests import server_service_monitor
    from workloads.training.manifests import trainer_pod_monitor

    assert mon.former_scrape_urn(RELEASE_URN, "ServiceMonitor", server_service_monitor()) == OLD_SERVICE_MONITOR
    assert mon.former_scrape_urn(RELEASE_URN, "PodMonitor", trainer_pod_monitor()) == OLD_POD_MONITOR
    # the name rule is the one the component's own scrapes use
    doc = {"metadata": {"name": "training-operator"}}
    assert mon.scrape_resource_name("ml-monitoring", doc) == "ml-monitoring-training-operator"
    with pytest.raises(ValueError, match="not the URN of a Monitoring component's release"):
        mon.former_scrape_urn(OLD_SERVICE_MONITOR, "ServiceMonitor", doc)


# ------------------------------------------------------------------ alerts
def _rules(spec):
    return {r["alert"]: r for g in spec["groups"] for r in g["rules"]}


def test_alerts_use_config_thresholds():
    cfg = cfg_for("dev", monitoring={"gpuIdleMinutes": 45, "servingP99TargetMs": 300, "modelVersionSkewMinutes": 7})
    rules = _rules(alerts.platform_rules(mon.MonitoringSettings.from_config(cfg)))
    assert rules["SentimentModelVersionSkew"]["for"] == "7m"
    assert "modelVersionSkewMinutes" in rules["SentimentModelVersionSkew"]["annotations"]["description"]
    default = _rules(alerts.platform_rules(mon.MonitoringSettings.from_config(cfg_for("dev"))))
    assert default["SentimentModelVersionSkew"]["for"] == "15m"
    assert rules["GpuNodeIdle"]["for"] == "45m" and "DCGM_FI_DEV_GPU_UTIL" in rules["GpuNodeIdle"]["expr"]
    assert rules["SentimentP99LatencyHigh"]["expr"].endswith("> 0.3")
    assert "histogram_quantile(0.99" in rules["SentimentP99LatencyHigh"]["expr"]
    assert "ceph_health_status == 1" == rules["CephHealthWarning"]["expr"]
    assert "ceph_health_status == 2" == rules["CephHealthError"]["expr"]
    assert rules["CephClusterCapacityHigh"]["expr"].endswith("> 0.8")
    assert rules["CephPoolCapacityHigh"]["expr"].endswith("> 0.8")
    assert "kube_pod_container_status_restarts_total" in rules["TrainingPodRestarting"]["expr"]
    assert 'method="Create"' in rules["KarpenterNodeLaunchFailing"]["expr"]
    for rule in rules.values():
        assert rule["labels"]["severity"] in ("info", "warning", "critical") and rule["annotations"]["summary"]


def test_alert_groups_follow_addons():
    cfg = cfg_for("dev", addons={"rookCeph": {"enabled": False}, "karpenter": {"enabled": False}},
                  training={"enabled": False, "device": "cpu"}, serving={"enabled": False})
    names = [g["name"] for g in alerts.platform_rules(mon.MonitoringSettings.from_config(cfg))["groups"]]
    assert "eks-ml-platform.ceph" not in names and "eks-ml-platform.karpenter" not in names


def test_queue_alert_follows_kueue_and_its_configured_wait():
    cfg = cfg_for("dev", training={"queue": {"maxWaitMinutes": 90}})
    rule = _rules(alerts.platform_rules(mon.MonitoringSettings.from_config(cfg)))["TrainingQueueWaitingTooLong"]
    assert rule["for"] == "90m" and 'kueue_pending_workloads{cluster_queue="ml-training"}' in rule["expr"]
    assert "90 minutes" in rule["annotations"]["summary"]
    off = cfg_for("dev", addons={"kueue": {"enabled": False}})
    names = [g["name"] for g in alerts.platform_rules(mon.MonitoringSettings.from_config(off))["groups"]]
    assert "eks-ml-platform.queue" not in names


@pytest.mark.parametrize("raw,needle", [
    ({"monitoring": {"retention": "15 days"}}, "monitoring.retention: '15 days' must be a Prometheus duration"),
    ({"monitoring": {"gpuIdleMinutes": 0}}, "monitoring.gpuIdleMinutes"),
    ({"monitoring": {"modelVersionSkewMinutes": 0}}, "monitoring.modelVersionSkewMinutes"),
    ({"monitoring": {"servingP99Target": 10}}, "monitoring.servingP99Target: unknown key; did you mean 'servingP99TargetMs'?"),
])
def test_bad_monitoring_config(raw, needle):
    with pytest.raises(ConfigError) as exc:
        parse_config(raw, stack="dev")
    assert any(needle in p for p in exc.value.problems), exc.value.problems


# ------------------------------------------------------------------ rendered stacks
def test_rendered_release_is_pinned_with_values(dev, prod):
    for result, gib in ((dev, 20), (prod, 200)):
        rel = by_name(result, RELEASE, "ml-monitoring-release")["inputs"]
        assert (rel["chart"], rel["version"], rel["name"]) == ("kube-prometheus-stack", "82.18.0", "kube-prometheus-stack")
        assert rel["repositoryOpts"]["repo"] == "https://prometheus-community.github.io/helm-charts"
        spec = rel["values"]["prometheus"]["prometheusSpec"]
        assert spec["retention"] == result.cfg.monitoring.retention
        assert spec["storageSpec"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"] == f"{gib}Gi"
        assert "adminPassword" not in json.dumps(rel["values"])


def test_custom_resources_depend_on_the_release(dev):
    release = by_name(dev, RELEASE, "ml-monitoring-release")["urn"]
    ours = [s for s in states(dev) if s["type"].startswith(CR) and "::ml-monitoring-" in s["urn"]]
    assert len(ours) == 4  # 3 ServiceMonitors (Ceph x2, the training operator), 1 PrometheusRule
    for s in ours:
        assert release in s["dependencies"], s["urn"]
    # and the release waits for ceph-block (its volumes) and for the admin Secret
    deps = by_name(dev, RELEASE, "ml-monitoring-release")["dependencies"]
    assert by_name(dev, "kubernetes:storage.k8s.io/v1:StorageClass", "ml-storage-block")["urn"] in deps
    assert by_name(dev, "kubernetes:core/v1:Secret", "ml-monitoring-grafana-admin")["urn"] in deps


def test_others_scrapes_depend_on_our_release(dev):
    """Karpenter/DCGM/neuron-monitor ServiceMonitors (other components) use `.release` too."""
    release = by_name(dev, RELEASE, "ml-monitoring-release")["urn"]
    for s in states(dev):
        if s["type"] in (CR + "ServiceMonitor", CR + "PodMonitor", CR + "PrometheusRule"):
            assert release in s["dependencies"], s["urn"]


def test_rendered_monitoring_objects_validate_against_crds(dev, prod, staging):
    crds = load_pinned_crds()
    for result in (dev, prod, staging):
        objs = [m for m in manifests(result) if m["apiVersion"] == "monitoring.coreos.com/v1"]
        assert {"ServiceMonitor", "PodMonitor", "PrometheusRule"} <= {m["kind"] for m in objs}
        for obj in objs:
            errors = list(schema_errors(obj, crds[(obj["apiVersion"], obj["kind"])]))
            assert not errors, (obj["kind"], obj["metadata"]["name"], errors)


def test_grafana_secret_is_marked_secret(dev):
    secret = by_name(dev, "kubernetes:core/v1:Secret", "ml-monitoring-grafana-admin")["inputs"]
    assert secret["stringData"] == {"admin-user": "admin", "admin-password": "[secret]"}
    # generated (no grafanaAdminPassword in Pulumi.dev.yaml), at a useful length
    pw = by_name(dev, "random:index/randomPassword:RandomPassword", "ml-monitoring-grafana-admin")["inputs"]
    assert pw["length"] >= 24


def test_dashboard_config_maps(dev):
    maps = {m["metadata"]["name"]: m for m in manifests(dev, "ConfigMap") if m["metadata"]["namespace"] == "monitoring"}
    expected = {f"grafana-dashboard-{n[:-5]}" for n in mon.dashboard_files()}
    assert expected == {n for n in maps if n.startswith("grafana-dashboard-")}
    assert len(expected) == 5
    for name in expected:
        m = maps[name]
        assert m["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert m["metadata"]["annotations"]["grafana_folder"] == "ML Platform"
        (text,) = m["data"].values()
        assert json.loads(text)["uid"].startswith("eks-ml-")
