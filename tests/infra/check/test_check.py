"""`python -m infra check`: it must catch what an API server (or checkov) would reject, and say what it skipped."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from infra.check.checkov import load_skips, run_checkov
from infra.check.objects import validate_objects
from infra.check.run import read_manifest_dir
from infra.check.crds import load_pinned_crds
from tests.conftest import REPO

pytestmark = pytest.mark.manifests

NODEPOOL = {
    "apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "gpu"},
    "spec": {
        "template": {"spec": {
            "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
            "requirements": [{"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": ["g5"]}],
        }},
        "limits": {"cpu": "64", "nvidia.com/gpu": "4"},
    },
}
DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}},
}


def findings(objs):
    return [str(f) for f in validate_objects(objs, k8s_version="1.34", crd_dir=None).findings]


def test_valid_objects_pass():
    assert findings([NODEPOOL, DEPLOYMENT]) == []


def test_cel_rules_run_in_check_and_are_counted():
    """A NodePool that passes the JSON schema but breaks a CRD CEL rule, as the API server would reject it."""
    bad = yaml.safe_load(yaml.safe_dump(NODEPOOL))
    bad["spec"]["template"]["spec"]["requirements"].append(
        {"key": "karpenter.sh/nodepool", "operator": "In", "values": ["x"]})
    report = validate_objects([bad], k8s_version="1.34", crd_dir=None)
    assert [f.check for f in report.findings] == ["cel"]
    assert "NodePool/gpu" in report.findings[0].resource
    assert report.findings[0].message == 'spec.template.spec.requirements[1].key: label "karpenter.sh/nodepool" is restricted'
    cov = report.coverage["karpenter.sh/v1/NodePool"]
    assert cov.cel_checked > 0 and cov.cel_unsupported == 0 and cov.cel_skipped >= 1


def test_crd_schema_catches_unknown_fields_and_bad_enums():
    bad = yaml.safe_load(yaml.safe_dump(NODEPOOL))
    bad["spec"]["limitz"] = {}
    bad["spec"]["template"]["spec"]["requirements"][0]["operator"] = "Within"
    found = findings([bad])
    assert any("[crd-schema] NodePool/gpu: spec: unknown field(s): 'limitz'" in f for f in found), found
    assert any("spec.template.spec.requirements[0].operator" in f and "Within" in f for f in found), found


def test_core_schema_is_strict():
    """An unknown field alone (strictness) and a type error alone are each reported, on their own objects:
    the validator reports one core-schema finding per object, so planting both in one object proves nothing."""
    unknown = yaml.safe_load(yaml.safe_dump(DEPLOYMENT))
    unknown["metadata"]["name"] = "unknown-field"
    unknown["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    wrong_type = yaml.safe_load(yaml.safe_dump(DEPLOYMENT))
    wrong_type["metadata"]["name"] = "wrong-type"
    wrong_type["spec"]["replicas"] = "two"
    found = findings([unknown, wrong_type, yaml.safe_load(yaml.safe_dump(DEPLOYMENT))])
    strict = [f for f in found if f.startswith("[core-schema] Deployment/default/unknown-field:")]
    assert strict and "imagePullPolicyy" in strict[0], found
    assert any(f.startswith("[core-schema] Deployment/default/wrong-type:") and "two" in f for f in found), found
    assert not [f for f in found if "Deployment/default/web:" in f]  # the unchanged object passes


def test_unknown_kinds_are_reported_not_passed():
    odd = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {}}
    report = validate_objects([odd], k8s_version="1.34", crd_dir=None)
    assert "example.com/v1/Widget" in report.unchecked_kinds
    assert not report.ok


def test_checkov_finds_an_insecure_pod(tmp_path):
    (tmp_path / "pod.yaml").write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad", "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "nginx", "securityContext": {"privileged": True}}]}}))
    ids = {f.message.split()[0] for f in run_checkov(tmp_path)}
    assert "CKV_K8S_16" in ids  # privileged container


def test_every_skip_has_a_reason():
    skips = load_skips()
    assert set(skips) <= {"checkov"}
    for check_id, reason in (skips.get("checkov") or {}).items():
        assert check_id.startswith("CKV"), check_id
        assert isinstance(reason, str) and len(reason.split()) >= 4, f"{check_id}: give a real reason"


def test_manifests_mode_reads_a_folder(tmp_path):
    (tmp_path / "a.yaml").write_text(yaml.safe_dump_all([NODEPOOL, DEPLOYMENT]))
    (tmp_path / "b.yaml").write_text("kind: [unclosed\n")
    objs, bad = read_manifest_dir(tmp_path)
    assert [o["kind"] for o in objs] == ["NodePool", "Deployment"]
    assert bad and bad[0].check == "yaml"
    load_pinned_crds()  # the CLI reads the pinned CRDs (skipped, naming them, when nobody provides them)
    proc = subprocess.run([sys.executable, "-m", "infra", "check", "--manifests", str(tmp_path),
                           "--no-checkov"], cwd=REPO, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.returncode == 1
    assert "karpenter.sh/v1/NodePool" in proc.stdout and "not valid YAML" in proc.stdout


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_rendered_stacks_pass_check(stack, tmp_path):
    """The whole gate, as CI and users run it: schemas, CRDs, CEL, policy and checkov."""
    load_pinned_crds()
    proc = subprocess.run([sys.executable, "-m", "infra", "check", "--stack", stack, "--out", str(tmp_path / stack)],
                          cwd=REPO, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "no findings" in proc.stdout and "NOT CHECKED" not in proc.stdout
    # Helm values: every release compared with its chart's values.yaml, Neuron's stated as not checked
    assert "  checked      karpenter: karpenter 1.14.1" in proc.stdout
    assert "  checked      kube-prometheus-stack: kube-prometheus-stack 82.18.0" in proc.stdout
    assert "  not checked  neuron: oci://public.ecr.aws/neuron/neuron-helm-chart 1.9.0 not checked: " in proc.stdout
    # per-kind coverage: NodePools and EC2NodeClasses had their CEL rules evaluated, none unsupported
    for kind in ("karpenter.sh/v1/NodePool", "karpenter.k8s.aws/v1/EC2NodeClass"):
        line = next(ln for ln in proc.stdout.splitlines() if ln.startswith(kind))
        checked = int(line.split("[CEL rules: ")[1].split(" checked")[0])
        assert checked > 0 and line.endswith("0 unsupported]"), line
