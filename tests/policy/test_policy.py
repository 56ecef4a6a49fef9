"""Policy rules (policy/rules.py, policy/manifest_rules.py): for each rule a bad object fails and a good one passes.

policy/__main__.py is never imported here (building a PolicyPack starts a gRPC server); it is
only checked statically.
"""

from __future__ import annotations

import ast
import copy
from pathlib import Path

import pytest

from policy import rules
from policy.manifest_rules import check_workload_image_pinned
from infra.conventions import PULUMI_SECRET_SIG, PULUMI_SIG_KEY
from policy.model import Finding
from policy.rules import evaluate

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
LIMITS = {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m", "memory": "1Gi"}}


def container(name="c", **resources):
    res = copy.deepcopy(LIMITS)
    for part, values in resources.items():
        res.setdefault(part, {}).update(values)
    return {"name": name, "image": "x", "resources": res}


def deployment(pod_spec, kind="Deployment", name="app", ns="default"):
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": ns},
            "spec": {"template": {"spec": pod_spec}}}


GPU_TOL = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
NEURON_TOL = [{"key": "aws.amazon.com/neuron", "operator": "Exists", "effect": "NoSchedule"}]


def rules_of(findings):
    return {f.rule for f in findings}


def only(rule, manifests=(), resources=(), **kw):
    return [f for f in evaluate(list(manifests), list(resources), **kw) if f.rule == rule]


# --- accelerator-tolerations ------------------------------------------------------------------


def test_gpu_pod_without_toleration_fails():
    bad = deployment({"containers": [container(limits={"nvidia.com/gpu": 1})]})
    found = only("accelerator-tolerations", [bad])
    assert len(found) == 1 and "nvidia.com/gpu" in found[0].message
    assert found[0].resource == "Deployment/default/app"


def test_gpu_pod_with_toleration_passes():
    good = deployment({"containers": [container(limits={"nvidia.com/gpu": 1})],
                       "tolerations": GPU_TOL})
    assert only("accelerator-tolerations", [good]) == []


def test_neuron_pytorchjob_replicas_checked():
    worker = {"replicas": 2, "template": {"spec": {
        "containers": [container(limits={"aws.amazon.com/neuron": 1})]}}}
    job = {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob",
           "metadata": {"name": "train", "namespace": "ml"},
           "spec": {"pytorchReplicaSpecs": {"Master": copy.deepcopy(worker), "Worker": worker}}}
    found = only("accelerator-tolerations", [job])
    assert len(found) == 2 and all("aws.amazon.com/neuron" in f.message for f in found)
    for role in ("Master", "Worker"):
        job["spec"]["pytorchReplicaSpecs"][role]["template"]["spec"]["tolerations"] = NEURON_TOL
    assert only("accelerator-tolerations", [job]) == []


def test_tfjob_and_cronjob_templates_are_found():
    tf = {"apiVersion": "kubeflow.org/v1", "kind": "TFJob", "metadata": {"name": "t"},
          "spec": {"tfReplicaSpecs": {"Worker": {"template": {"spec": {
              "containers": [container(limits={"nvidia.com/gpu": 1})]}}}}}}
    cron = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
            "spec": {"jobTemplate": {"spec": {"template": {"spec": {
                "containers": [container(limits={"nvidia.com/gpu": 1})]}}}}}}
    assert len(only("accelerator-tolerations", [tf, cron])) == 2


def test_tolerating_without_requesting_fails_except_daemonsets():
    squatter = deployment({"containers": [container()], "tolerations": GPU_TOL})
    found = only("accelerator-tolerations", [squatter])
    assert len(found) == 1 and "requests none" in found[0].message
    plugin = deployment({"containers": [container()], "tolerations": GPU_TOL + NEURON_TOL},
                        kind="DaemonSet", name="nvidia-device-plugin", ns="kube-system")
    assert only("accelerator-tolerations", [plugin]) == []


def test_blanket_toleration_counts_for_requests_only():
    blanket = [{"operator": "Exists"}]
    gpu = deployment({"containers": [container(limits={"nvidia.com/gpu": 1})],
                      "tolerations": blanket})
    cpu = deployment({"containers": [container()], "tolerations": blanket}, name="cpu")
    assert only("accelerator-tolerations", [gpu, cpu]) == []


# --- container-resources ------------------------------------------------------------------------


def test_container_without_limits_fails():
    c = {"name": "app", "image": "x", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}
    init = {"name": "init", "image": "x", "resources": {"limits": {"cpu": "1"}}}
    bad = deployment({"containers": [c], "initContainers": [init]})
    found = only("container-resources", [bad])
    msgs = sorted(f.message for f in found)
    assert len(found) == 2
    assert "containers[app] has no cpu or memory limit" in msgs[0]
    assert "initContainers[init] has no memory limit" in msgs[1]


def test_container_with_limits_passes():
    good = deployment({"containers": [container()], "initContainers": [container("init")]})
    assert only("container-resources", [good]) == []


def test_non_workloads_are_ignored():
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "d"},
          "data": {"a": "b"}}
    assert evaluate([cm], []) == []


# --- no-public-load-balancer --------------------------------------------------------------------


def service(annotations=None, type_="LoadBalancer"):
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "sentiment", "namespace": "serving",
                         "annotations": annotations or {}},
            "spec": {"type": type_, "ports": [{"port": 80}]}}


def test_public_load_balancer_service_fails():
    found = only("no-public-load-balancer", [service()])
    assert [f.resource for f in found] == ["Service/serving/sentiment"]
    public = service({"service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing"})
    assert only("no-public-load-balancer", [public])


def test_internal_or_allowed_load_balancer_passes():
    internal = service({"service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"})
    legacy = service({"service.beta.kubernetes.io/aws-load-balancer-internal": "true"})
    cluster_ip = service(type_="ClusterIP")
    assert only("no-public-load-balancer", [internal, legacy, cluster_ip]) == []
    assert only("no-public-load-balancer", [service()], allow_public_lb=True) == []


def test_internet_facing_ingress_fails_internal_passes():
    def ingress(scheme):
        return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": "web", "namespace": "serving",
                             "annotations": {"alb.ingress.kubernetes.io/scheme": scheme}},
                "spec": {}}

    assert len(only("no-public-load-balancer", [ingress("internet-facing")])) == 1
    assert only("no-public-load-balancer", [ingress("internal")]) == []
    assert only("no-public-load-balancer", [ingress("internet-facing")], allow_public_lb=True) == []


# --- imdsv2-required / ami-alias-pinned ---------------------------------------------------------


def nodeclass(tokens="required", alias="al2023@v20251112"):
    spec = {"role": "node-role", "amiSelectorTerms": [{"alias": alias}],
            "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "dev"}}]}
    if tokens is not None:
        spec["metadataOptions"] = {"httpTokens": tokens, "httpPutResponseHopLimit": 1}
    return {"apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass",
            "metadata": {"name": "default"}, "spec": spec}


def test_imdsv2_optional_or_missing_fails():
    assert len(only("imdsv2-required", [nodeclass("optional")])) == 1
    assert len(only("imdsv2-required", [nodeclass(None)])) == 1
    assert only("imdsv2-required", [nodeclass()]) == []


def test_launch_template_imdsv2():
    lt = {"type": "aws:ec2/launchTemplate:LaunchTemplate", "urn": "urn:...::nodes-lt",
          "inputs": {"metadataOptions": {"httpTokens": "optional"}}}
    found = only("imdsv2-required", resources=[lt])
    assert found and found[0].resource == "aws:ec2/launchTemplate:LaunchTemplate/nodes-lt"
    lt["inputs"]["metadataOptions"]["httpTokens"] = "required"
    assert only("imdsv2-required", resources=[lt]) == []


@pytest.mark.parametrize("alias", ["al2023@latest", "al2023", "bottlerocket@LATEST"])
def test_unpinned_ami_alias_fails(alias):
    found = only("ami-alias-pinned", [nodeclass(alias=alias)])
    assert len(found) == 1 and found[0].resource == "EC2NodeClass/default"


@pytest.mark.parametrize("alias", ["al2023@v20251112", "bottlerocket@v1.50.0"])
def test_pinned_ami_alias_passes(alias):
    assert only("ami-alias-pinned", [nodeclass(alias=alias)]) == []


def test_empty_ami_selector_fails_id_selector_passes():
    nc = nodeclass()
    nc["spec"]["amiSelectorTerms"] = []
    assert len(only("ami-alias-pinned", [nc])) == 1
    nc["spec"]["amiSelectorTerms"] = [{"id": "ami-0123456789abcdef0"}]
    assert only("ami-alias-pinned", [nc]) == []


# --- nodepool-limits ----------------------------------------------------------------------------


def nodepool(limits):
    spec = {"template": {"spec": {"nodeClassRef": {"group": "karpenter.k8s.aws",
                                                   "kind": "EC2NodeClass", "name": "default"},
                                  "requirements": []}}}
    if limits is not None:
        spec["limits"] = limits
    return {"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "gpu"},
            "spec": spec}


def test_nodepool_without_cpu_limit_fails():
    assert len(only("nodepool-limits", [nodepool(None)])) == 1
    assert len(only("nodepool-limits", [nodepool({"memory": "100Gi"})])) == 1


def test_nodepool_with_limits_passes():
    assert only("nodepool-limits", [nodepool({"cpu": "64", "nvidia.com/gpu": "4"})]) == []


# --- grafana-password-not-plaintext -------------------------------------------------------------


def release(values, chart="kube-prometheus-stack"):
    return {"op": "create", "urn": "urn:pulumi:dev::eks-ml-platform::x$kubernetes:helm.sh/v3:"
                                   "Release::monitoring-kps",
            "newState": {"type": "kubernetes:helm.sh/v3:Release",
                         "urn": "urn:pulumi:dev::eks-ml-platform::x$kubernetes:helm.sh/v3:"
                                "Release::monitoring-kps",
                         "inputs": {"chart": chart, "version": "82.0.0", "values": values}}}


def test_plaintext_grafana_password_fails():
    found = only("grafana-password-not-plaintext",
                 resources=[release({"grafana": {"adminPassword": "prom-operator"}})])
    assert len(found) == 1
    assert found[0].resource == "kubernetes:helm.sh/v3:Release/monitoring-kps"
    standalone = release({"adminPassword": "hunter2"}, chart="oci://ghcr.io/grafana/grafana")
    assert len(only("grafana-password-not-plaintext", resources=[standalone])) == 1


@pytest.mark.parametrize("values", [
    {"grafana": {"admin": {"existingSecret": "grafana-admin"}}},
    {"grafana": {"adminPassword": "[secret]"}},
    {"grafana": {"adminPassword": {PULUMI_SIG_KEY: PULUMI_SECRET_SIG,
                                   "value": "x"}}},
    "[secret]",
    {},
])
def test_secret_or_absent_grafana_password_passes(values):
    assert only("grafana-password-not-plaintext", resources=[release(values)]) == []


def test_other_charts_are_not_checked():
    r = release({"grafana": {"adminPassword": "x"}}, chart="karpenter")
    assert only("grafana-password-not-plaintext", resources=[r]) == []


def secret(field, data):
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "grafana-admin", "namespace": "monitoring"}, field: data}


def test_secret_manifest_with_literal_password_fails():
    found = only("grafana-password-not-plaintext",
                 [secret("stringData", {"admin-user": "admin", "admin-password": "hunter2"})])
    assert len(found) == 1 and "stringData.admin-password" in found[0].message
    assert found[0].resource == "Secret/monitoring/grafana-admin"
    assert only("grafana-password-not-plaintext", [secret("data", {"PASSWORD": "aHVudGVyMg=="})])


def test_secret_manifest_with_secret_value_passes():
    assert only("grafana-password-not-plaintext",
                [secret("stringData", {"admin-password": "[secret]", "admin-user": "admin"})]) == []


def test_secret_manifest_whose_whole_data_is_secret_passes():
    """The SDK may wrap the whole stringData map as one secret: it renders as the string "[secret]"."""
    assert only("grafana-password-not-plaintext", [secret("stringData", "[secret]")]) == []
    assert only("grafana-password-not-plaintext", [secret("data", "[secret]")]) == []


# --- evaluate / analyzer adapter / pack ---------------------------------------------------------


def test_evaluate_sorted_unique_and_finding_shape():
    bad = deployment({"containers": [{"name": "c", "image": "x"}]})
    found = evaluate([bad, bad, service()], [])
    assert found == sorted(set(found), key=lambda f: (f.rule, f.resource, f.message))
    assert {f.rule for f in found} == {"container-resources", "no-public-load-balancer"}
    assert all(isinstance(f, Finding) for f in found)
    assert "[container-resources] Deployment/default/app" in str(found[0])


def test_analyzer_findings_maps_kubernetes_types():
    props = nodepool(None)
    del props["kind"], props["apiVersion"]
    found = rules.analyzer_findings("nodepool-limits", "kubernetes:karpenter.sh/v1:NodePool",
                                    props, "gpu")
    assert len(found) == 1
    svc = service()
    assert rules.analyzer_findings("no-public-load-balancer", "kubernetes:core/v1:Service",
                                   svc, "sentiment")
    assert not rules.analyzer_findings("no-public-load-balancer", "kubernetes:core/v1:Service",
                                       svc, "sentiment", allow_public_lb=True)
    # only the asked rule
    assert not rules.analyzer_findings("imdsv2-required", "kubernetes:core/v1:Service", svc, "s")
    rel = release({"grafana": {"adminPassword": "x"}})["newState"]
    assert rules.analyzer_findings("grafana-password-not-plaintext", rel["type"], rel["inputs"],
                                   "kps")
    with pytest.raises(KeyError):
        rules.analyzer_findings("nope", "x", {}, "y")


@pytest.mark.parametrize("module", ["rules.py", "manifest_rules.py", "model.py"])
def test_rules_modules_import_only_the_stdlib_policy_and_conventions(module):
    """The rules load without pulumi (fast, offline) and, run by the Pulumi CLI from policy/, need only
    the repository root on the path: ``policy.*`` and the leaf ``infra.conventions``."""
    import sys

    tree = ast.parse((REPO / "policy" / module).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    ours = {m for m in imported if m.split(".")[0] in ("policy", "infra")}
    assert ours <= {"policy.model", "policy.manifest_rules", "infra.conventions"}, ours
    assert all(m.split(".")[0] in sys.stdlib_module_names for m in imported - ours - {"__future__"}), imported


def test_the_workload_namespace_is_the_conventions_one():
    from infra.conventions import WORKLOADS_NAMESPACE

    pod = {"containers": [{"name": "c", "image": "repo/app:1"}]}
    assert check_workload_image_pinned(deployment(pod, ns=WORKLOADS_NAMESPACE))
    assert not check_workload_image_pinned(deployment(pod, ns="elsewhere"))


class _RecordedPack:
    """Stands in for pulumi_policy.PolicyPack: records the pack instead of starting the analyzer's server."""

    packs: list["_RecordedPack"] = []

    def __init__(self, name, enforcement_level=None, policies=None, **_):
        self.name, self.enforcement_level, self.policies = name, enforcement_level, list(policies or [])
        _RecordedPack.packs.append(self)


class _Args:
    """The parts of ResourceValidationArgs the pack's validators read."""

    def __init__(self, state: dict, config: dict | None = None):
        self.resource_type, self.props, self.urn = state["type"], state["inputs"], state["urn"]
        self.name = state["urn"].split("::")[-1]
        self._config = config or {}

    def get_config(self):
        return self._config


def _run_pack(monkeypatch):
    import runpy

    import pulumi_policy

    _RecordedPack.packs = []
    monkeypatch.setattr(pulumi_policy, "PolicyPack", _RecordedPack)
    runpy.run_path(str(REPO / "policy" / "__main__.py"), run_name="__main__")
    assert len(_RecordedPack.packs) == 1
    return _RecordedPack.packs[0]


def _violations(pack, states, config=None):
    out = []
    for policy in pack.policies:
        for state in states:
            policy.validate(_Args(state, config), lambda message, urn=None, p=policy: out.append((p.name, message)))
    return out


def test_the_policy_pack_runs_every_rule_as_mandatory_and_passes_the_dev_stack(monkeypatch, dev):
    from pulumi_policy import EnforcementLevel

    pack = _run_pack(monkeypatch)
    assert pack.name == "eks-ml-platform" and pack.enforcement_level == EnforcementLevel.MANDATORY
    assert [p.name for p in pack.policies] == list(rules.RULES)
    assert all(p.enforcement_level == EnforcementLevel.MANDATORY for p in pack.policies)
    states = [st["newState"] for st in dev.preview["steps"]]
    # the analyzer sees raw inputs (not check's defaulted objects), and Pulumi secrets unwrapped
    assert _violations(pack, states) == []


def test_the_policy_pack_reports_a_planted_public_load_balancer(monkeypatch):
    pack = _run_pack(monkeypatch)
    svc = {"type": "kubernetes:core/v1:Service", "urn": "urn:pulumi:dev::p::kubernetes:core/v1:Service::public",
           "inputs": service({"service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing"})}
    found = _violations(pack, [svc])
    assert [name for name, _ in found] == ["no-public-load-balancer"], found
    assert _violations(pack, [svc], config={"allowPublicLoadBalancers": True}) == []


def test_policy_pack_metadata():
    import yaml

    meta = yaml.safe_load((REPO / "policy" / "PulumiPolicy.yaml").read_text())
    assert meta["runtime"]["name"] == "python" and meta["version"]


# --- workload-image-pinned ----------------------------------------------------------------------

DIGEST = "123456789012.dkr.ecr.us-west-2.amazonaws.com/ml-dev/trainer@sha256:" + "ab" * 32


def _job(image, *, namespace="ml-workloads", init_image=None):
    pod = {"containers": [{"name": "pytorch", "image": image}]}
    if init_image is not None:
        pod["initContainers"] = [{"name": "wait", "image": init_image}]
    return {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob",
            "metadata": {"name": "sentiment-train", "namespace": namespace},
            "spec": {"pytorchReplicaSpecs": {"Master": {"replicas": 1, "template": {"spec": pod}}}}}


def test_workload_image_pinned_by_digest_passes():
    assert check_workload_image_pinned(_job(DIGEST)) == []
    assert check_workload_image_pinned(_job("ghcr.io/me/trainer:1.2.3@sha256:" + "cd" * 32)) == []


def test_workload_image_pinned_only_by_tag_is_a_finding():
    (f,) = check_workload_image_pinned(_job("ghcr.io/eks-ml-platform/trainer:0.1.0"))
    assert f.rule == "workload-image-pinned" and f.resource == "PyTorchJob/ml-workloads/sentiment-train"
    assert "spec.pytorchReplicaSpecs.Master.template.spec.containers[pytorch].image" in f.message
    # init containers too; a short digest is not a digest
    found = check_workload_image_pinned(_job(DIGEST, init_image="busybox:1.37.0"))
    assert [x.message.split(".image")[0].rsplit(".", 1)[-1] for x in found] == ["initContainers[wait]"]
    assert check_workload_image_pinned(_job("repo/x@sha256:abc"))


def test_workload_image_rule_scope():
    # the platform's own add-ons (other namespaces) are outside it; an unknown image (a build not run yet,
    # as `pulumi preview` sees it) is not judged
    assert check_workload_image_pinned(_job("quay.io/x:1", namespace="kubeflow")) == []
    assert check_workload_image_pinned(_job(None)) == []
    assert "workload-image-pinned" in rules.RULES
    assert "workload-image-pinned" in [f.rule for f in rules.evaluate([_job("x/y:1")], [])]
