"""infra/check/helm_values.py: every Helm release's values against its chart's pinned values.yaml."""
from __future__ import annotations

import copy
import json

import pytest

from infra.check import helm_values as hv

pytestmark = pytest.mark.unit

CHECKED = {"karpenter", "karpenter-crd", "nvidia-device-plugin", "dcgm-exporter", "rook-ceph", "ceph-csi-drivers",
           "kube-prometheus-stack", "aws-load-balancer-controller", "kueue"}


def release(result, name):
    (inputs,) = [i for n, i in hv.helm_releases(result.preview) if n == name]
    return copy.deepcopy(dict(inputs))


def check(inputs, name="test"):
    return hv.check_release(name, inputs["chart"], inputs["version"], inputs["values"])


# ------------------------------------------------------------------ the rendered stacks
@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_rendered_stacks_have_no_findings(stack, request):
    result = request.getfixturevalue(stack)
    report = hv.check_preview(result.preview)
    assert report.findings == [], "\n".join(report.lines())
    assert report.ok
    assert {line.split(":")[0] for line in report.checked} == CHECKED  # every release but Neuron was compared
    (neuron,) = report.not_checked
    assert (neuron.release, neuron.chart, neuron.version) == (
        "neuron", "oci://public.ecr.aws/neuron/neuron-helm-chart", "1.9.0")
    assert "no byte-identical values.yaml" in neuron.reason
    assert str(neuron).startswith("neuron: oci://public.ecr.aws/neuron/neuron-helm-chart 1.9.0 not checked: ")


def test_a_misspelled_key_is_reported_with_the_nearest_key(dev):
    inputs = release(dev, "karpenter")
    inputs["values"]["controller"]["resurces"] = inputs["values"]["controller"].pop("resources")
    (finding,) = check(inputs, "karpenter").findings
    assert str(finding) == ("karpenter: controller.resurces: not in karpenter 1.14.1 values.yaml; "
                            "did you mean controller.resources?")


def test_a_bool_where_the_default_is_a_string_is_reported(dev):
    inputs = release(dev, "karpenter")
    inputs["values"]["logLevel"] = True
    (finding,) = check(inputs).findings
    assert finding.path == "logLevel"
    assert finding.message == 'is a bool (true) but karpenter 1.14.1 values.yaml has a string ("info")'


def test_a_list_where_the_default_is_a_map_is_reported(dev):
    inputs = release(dev, "aws-load-balancer-controller")
    inputs["values"]["defaultTags"] = [{"team": "ml"}]
    inputs["values"]["replicaCount"] = "2"
    found = {f.path: f.message for f in check(inputs).findings}
    assert found == {
        "defaultTags": 'is a list ([{"team": "ml"}]) but aws-load-balancer-controller 3.5.0 values.yaml has a map ({})',
        "replicaCount": 'is a string ("2") but aws-load-balancer-controller 3.5.0 values.yaml has a number (2)',
    }


def test_an_unknown_key_under_a_subchart_is_reported(dev):
    inputs = release(dev, "kube-prometheus-stack")
    grafana = inputs["values"]["grafana"]
    grafana["sidecar"]["dashbords"] = grafana["sidecar"].pop("dashboards")
    inputs["values"]["kube-state-metrics"]["metricLabelsAllowlist"] = "pods=[*]"  # a list in kube-state-metrics
    inputs["values"]["prometheus"]["prometheusSpec"]["retentionSise"] = "10GiB"
    found = {f.path: f.message for f in check(inputs).findings}
    assert found == {
        "grafana.sidecar.dashbords": "not in grafana 11.3.7 (subchart of kube-prometheus-stack 82.18.0) values.yaml; "
                                     "did you mean grafana.sidecar.dashboards?",
        "kube-state-metrics.metricLabelsAllowlist":
            'is a string ("pods=[*]") but kube-state-metrics 7.2.2 (subchart of kube-prometheus-stack 82.18.0) '
            "values.yaml has a list ([])",
        "prometheus.prometheusSpec.retentionSise": "not in kube-prometheus-stack 82.18.0 values.yaml; "
                                                   "did you mean prometheus.prometheusSpec.retentionSize?",
    }


def test_subchart_keys_of_the_parent_and_global_are_known(dev):
    inputs = release(dev, "kube-prometheus-stack")
    values = inputs["values"]
    values["grafana"]["defaultDashboardsEnabled"] = False  # kps's own key for its grafana subchart
    values["grafana"]["global"] = {"imageRegistry": "registry.example.com"}
    values["grafana"]["grafana.ini"] = {"auth.anonymous": {"enabled": False}}  # free-form (ranged over)
    values["crds"]["upgradeJob"] = {"enabeld": True}  # the local crds subchart is checked too
    assert [str(f) for f in check(inputs, "kps").findings] == [
        "kps: crds.upgradeJob.enabeld: not in crds 0.0.0 (subchart of kube-prometheus-stack 82.18.0) values.yaml; "
        "did you mean crds.upgradeJob.enabled?"]


def test_the_rook_ceph_subchart_alias_is_checked(dev):
    inputs = release(dev, "rook-ceph")
    inputs["values"]["ceph-csi-operator"]["controllerManager"]["replicas"] = 2  # a real key of the subchart
    inputs["values"]["ceph-csi-operator"]["controllerManager"]["replica"] = 2
    (finding,) = check(inputs).findings
    assert finding.path == "ceph-csi-operator.controllerManager.replica"
    assert "subchart of rook-ceph v1.20.6" in finding.message and "replicas?" in finding.message


def test_allowlisted_template_keys_pass_only_through_the_allowlist(dev, monkeypatch):
    dcgm, csi = release(dev, "dcgm-exporter"), release(dev, "ceph-csi-drivers")
    assert "customMetrics" in dcgm["values"] and check(dcgm).findings == [] and check(csi).findings == []
    monkeypatch.setattr(hv, "ALLOWLIST", {})
    assert [f.path for f in check(dcgm).findings] == ["customMetrics"]
    assert {f.path for f in check(csi).findings} == {
        "drivers.cephfs.controllerPlugin.affinity", "drivers.cephfs.controllerPlugin.priorityClassName",
        "drivers.rbd.controllerPlugin.affinity", "drivers.rbd.controllerPlugin.priorityClassName",
        "operatorConfig.driverSpecDefaults.controllerPlugin.priorityClassName"}


def test_every_allowlist_entry_cites_a_template_line():
    for chart, entries in hv.ALLOWLIST.items():
        assert any(name == chart for name, _ in hv.REGISTRY), chart
        for path, where in entries.items():
            assert where.startswith("templates/") and ".yaml:" in where and "{{" in where, (chart, path)


def test_charts_without_pinned_values_are_not_checked(dev):
    neuron = release(dev, "neuron")
    report = check(neuron, "neuron")
    assert report.findings == [] and report.checked == [] and len(report.not_checked) == 1
    newer = release(dev, "karpenter")
    (entry,) = hv.check_release("karpenter", newer["chart"], "1.15.0", newer["values"]).not_checked
    assert entry.reason == "no pinned values.yaml for this version (pinned: 1.14.1)"
    plugin = release(dev, "nvidia-device-plugin")
    plugin["values"]["nfd"] = {"enabled": True, "worker": {"tolerations": []}}
    report = check(plugin, "plugin")
    assert report.findings == [] and report.checked == ["plugin: nvidia-device-plugin 0.18.2"]
    (sub,) = report.not_checked
    assert (sub.path, sub.chart, sub.version) == ("nfd", "node-feature-discovery", "0.17.3")
    secret = hv.check_release("dcgm", "dcgm-exporter", "4.8.2", "[secret]")  # values wholly secret in a preview
    assert secret.findings == [] and [n.reason for n in secret.not_checked] == ["values unknown in the preview"]


def test_check_preview_walks_only_helm_releases(dev):
    preview = copy.deepcopy(dev.preview)
    for _, inputs in hv.helm_releases(preview):
        if inputs["chart"] == "dcgm-exporter":
            inputs["values"]["serviceMonitor"]["enabled"] = "false"
    preview["steps"].append({"newState": {"type": "kubernetes:core/v1:ConfigMap", "inputs": {"values": {"x": 1}}}})
    preview["steps"].append({"newState": {"type": hv.RELEASE_TYPE, "urn": "urn:pulumi:dev::p::t::extra",
                                          "inputs": {"chart": "dcgm-exporter", "version": "4.8.2",
                                                     "values": {"hostPid": True}}}})
    report = hv.check_preview(json.loads(json.dumps(preview)))
    assert [str(f) for f in report.findings] == [
        'dcgm-exporter: serviceMonitor.enabled: is a string ("false") but dcgm-exporter 4.8.2 values.yaml has a '
        "bool (true)",
        "extra: hostPid: not in dcgm-exporter 4.8.2 values.yaml; did you mean hostPID?",
    ]
    assert not report.ok and len(report.lines()) == 3  # two findings, Neuron not checked


# ------------------------------------------------------------------ the pure comparison
DEFAULTS = {
    "name": "", "tag": "v1", "replicas": 1, "ratio": 0.5, "enabled": False, "anything": None, "extra": {},
    "list": [], "resources": {"limits": {"cpu": "1"}}, "probe": {"initialDelaySeconds": 5},
    "image": {"repository": "r", "pullPolicy": "IfNotPresent"}, "grafana.ini": {"server": {"domain": ""}},
}


def paths(values, **kw):
    return [p for p, _ in hv.compare(values, DEFAULTS, label="demo 1.0", **kw)]


def test_kinds():
    assert [hv.kind_of(v) for v in (None, True, 1, 1.5, "x", {}, [])] == [
        "null", "bool", "number", "number", "string", "map", "list"]


@pytest.mark.parametrize("values", [
    {"replicas": 2.5, "ratio": 1},                     # int and float are both numbers
    {"anything": {"a": [1]}}, {"anything": "x"},      # a null default takes anything
    {"name": "x"}, {"name": 3}, {"name": True},      # "" takes any scalar
    {"extra": {"free": {"form": 1}}},                 # {}: free-form below
    {"list": [{"a": 1}]}, {"tag": None},              # null drops a default
    {"image": "[secret]"}, {"tag": "[secret]"},       # secrets in a preview
    {"resources": {"requests": {"memory": "1Gi"}}},   # Kubernetes-typed: not the chart's keys
    {"grafana.ini": {"server": {"domain": "d"}}},
])
def test_values_that_fit(values):
    assert hv.compare(values, DEFAULTS) == []


@pytest.mark.parametrize("values,path,message", [
    ({"replicas": True}, "replicas", "is a bool (true) but demo 1.0 values.yaml has a number (1)"),
    ({"enabled": "true"}, "enabled", 'is a string ("true") but demo 1.0 values.yaml has a bool (false)'),
    ({"tag": 1}, "tag", 'is a number (1) but demo 1.0 values.yaml has a string ("v1")'),
    ({"name": {"a": 1}}, "name", 'is a map ({"a": 1}) but demo 1.0 values.yaml has a string ("")'),
    ({"extra": []}, "extra", "is a list ([]) but demo 1.0 values.yaml has a map ({})"),
    ({"list": {}}, "list", "is a map ({}) but demo 1.0 values.yaml has a list ([])"),
    ({"image": {"pullPolicyy": "Always"}}, "image.pullPolicyy",
     "not in demo 1.0 values.yaml; did you mean image.pullPolicy?"),
    ({"probe": {"initialDelay": 1}}, "probe.initialDelay",
     "not in demo 1.0 values.yaml; did you mean probe.initialDelaySeconds?"),
    ({"zzz": 1}, "zzz", "not in demo 1.0 values.yaml"),
])
def test_values_that_do_not_fit(values, path, message):
    assert hv.compare(values, DEFAULTS, label="demo 1.0") == [(path, message)]


def test_allowlist_and_free_form_paths():
    values = {"probe": {"httpGet": {"port": 80}}, "image": {"digest": "sha256:x", "tagz": "y"}, "custom": {"a": 1}}
    assert paths(values) == ["probe.httpGet", "image.digest", "image.tagz", "custom"]
    assert paths(values, free_form=["probe"], allow=["custom", "image.dig*"]) == ["image.tagz"]
    assert paths({"drivers": {"rbd": {"x": 1}}}, allow=["drivers.*.x"]) == ["drivers"]  # allowed only under it


def test_a_values_schema_is_applied_when_registered(dev):
    spec = hv.ChartSpec("demo", "1.0.0", "demo/values", schema_key="demo/schema")
    files = {"demo/values": "replicas: 1\nimage:\n  tag: v1\n",
             "demo/schema": json.dumps({"type": "object", "properties": {
                 "replicas": {"type": "integer", "minimum": 1},
                 "image": {"type": "object", "required": ["tag"]}}})}
    registry = {("demo", "1.0.0"): spec}
    ok = hv.check_release("r", "oci://example.com/charts/demo", "v1.0.0", {"replicas": 3},
                          registry=registry, load=files.__getitem__)
    assert ok.findings == [] and ok.checked == ["r: demo 1.0.0"]
    bad = hv.check_release("r", "demo", "1.0.0", {"replicas": 0}, registry=registry, load=files.__getitem__)
    assert [str(f) for f in bad.findings] == ["r: replicas: values.schema.json of demo 1.0.0: 0 is less than the "
                                              "minimum of 1"]


def test_subcharts_from_a_pinned_chart_yaml():
    files = {"p/values": "global:\n  registry: ''\nsub:\n  parentOnly: true\n",
             "p/chart": "dependencies:\n- name: child\n  version: 2.0.0\n  alias: sub\n"
                        "- name: gone\n  version: 0.1.*\n",
             "c/values": "replicas: 1\n"}
    registry = {("p", "1.0.0"): hv.ChartSpec("p", "1.0.0", "p/values", chart_key="p/chart"),
                ("child", "2.0.0"): hv.ChartSpec("child", "2.0.0", "c/values")}
    values = {"sub": {"replicas": 2, "parentOnly": False, "global": {"x": 1}, "replica": 1}, "gone": {"a": 1}}
    report = hv.check_release("r", "p", "1.0.0", values, registry=registry, load=files.__getitem__)
    assert [str(f) for f in report.findings] == [
        "r: sub.replica: not in child 2.0.0 (subchart of p 1.0.0) values.yaml; did you mean sub.replicas?"]
    assert [(n.path, n.chart, n.version) for n in report.not_checked] == [("gone", "gone", "0.1.*")]
