"""The training components under Pulumi mocks, for configs the shipped stacks do not use (S3 source, TFJob,
a retraining schedule, training off)."""
from __future__ import annotations

import json

from infra.config import from_flat, merged_stack_config
from tests.workloads.sentiment.test_serving_component_render import OLD_PARENT, SCRAPE_TYPE, run_component
from infra.preview.render import REPO, build_manifests, build_preview, run_program
import pytest

pytestmark = pytest.mark.unit

_CACHE: dict[str, tuple[dict, list]] = {}


def render_dev_with(name: str, training: dict, addons: dict | None = None) -> tuple[dict, list]:
    if name not in _CACHE:
        flat = merged_stack_config("dev", REPO)
        flat["eks-ml-platform:training"] = {**flat.get("eks-ml-platform:training", {}), **training}
        if addons is not None:
            flat["eks-ml-platform:addons"] = addons
        cfg = from_flat(flat, stack="dev")
        monitor, _ = run_program(cfg, flat)
        _CACHE[name] = (build_preview(cfg, flat, monitor.registrations), build_manifests(monitor.registrations))
    return _CACHE[name]


def resources(preview: dict, type_: str, prefix: str = "ml-training-") -> dict[str, dict]:
    """This area's resources of one type (the training workload's and the operator's children)."""
    out = {}
    for step in preview["steps"]:
        state = step["newState"]
        name = state["urn"].split("::")[-1]
        if state["type"] == type_ and name.startswith(prefix):
            out[name] = state
    return out


def test_s3_source_gets_a_scoped_pod_identity():
    preview, _ = render_dev_with("s3", {"datasetSource": "s3://my-bucket/sentiment", "schedule": "@weekly"})
    roles = resources(preview, "aws:iam/role:Role")
    role = roles["ml-training-data-prep-role"]
    trust = json.loads(role["inputs"]["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    (policy,) = resources(preview, "aws:iam/rolePolicy:RolePolicy").values()
    doc = json.loads(policy["inputs"]["policy"])
    assert doc["Statement"][0]["Resource"] == ["arn:aws:s3:::my-bucket/sentiment/*"]
    (assoc,) = resources(preview, "aws:eks/podIdentityAssociation:PodIdentityAssociation").values()
    assert assoc["inputs"]["namespace"] == "ml-workloads" and assoc["inputs"]["serviceAccount"] == "sentiment-data-prep"
    assert assoc["inputs"]["clusterName"] == "ml-dev"
    # data prep waits for its credentials; the CronJob exists
    (job,) = resources(preview, "kubernetes:batch/v1:Job").values()
    assert any(d.endswith("::ml-training-data-prep-identity") for d in job["dependencies"])
    assert "ml-training-cronjob" in resources(preview, "kubernetes:batch/v1:CronJob")


def test_tfjob_renders_as_a_custom_resource_after_the_crd():
    preview, manifests = render_dev_with("tf", {"kind": "TFJob", "image": "ghcr.io/acme/tf:2.16", "device": "gpu"})
    (tf,) = resources(preview, "kubernetes:kubeflow.org/v1:TFJob").values()
    assert any(d.endswith("::ml-training-operator-crd-tfjob") for d in tf["dependencies"])
    assert not resources(preview, "kubernetes:kubeflow.org/v1:PyTorchJob")
    assert not resources(preview, "aws:iam/role:Role")  # the shipped sample needs no credentials
    kinds = {m["kind"] for _, m in manifests}
    assert "TFJob" in kinds and not resources(preview, "kubernetes:batch/v1:CronJob")  # no schedule here


def test_training_off_keeps_the_shared_storage_for_serving():
    preview, manifests = render_dev_with("off", {"enabled": False})
    names = {(m["kind"], m["metadata"]["name"]) for _, m in manifests}
    assert ("PersistentVolumeClaim", "models") in names and ("Namespace", "ml-workloads") in names
    assert not any(k in ("PyTorchJob", "TFJob", "Job") for k, _ in names)
    assert ("Deployment", "training-operator") in names  # the add-on is its own switch


def test_operator_switched_off():
    preview, manifests = render_dev_with("no-operator", {"enabled": False},
                                         addons={"trainingOperator": {"enabled": False}})
    crds = [m["metadata"]["name"] for _, m in manifests if m["kind"] == "CustomResourceDefinition"]
    assert not [c for c in crds if c.endswith(".kubeflow.org")]
    assert not [s for s in preview["steps"] if "TrainingOperator" in s["newState"]["type"]]


def test_pod_monitor_moved_from_monitoring_keeps_its_urn_by_alias():
    regs = run_component({}, monitoring=True, training=True)
    pm = regs["ml-training-podmonitor"]
    assert pm.type == f"{SCRAPE_TYPE}:PodMonitor" and pm.parent == regs["ml-training"].urn
    # the URN it had as the monitoring component's child, so `pulumi up` moves it instead of replacing it
    assert pm.aliases == [f"{OLD_PARENT}${SCRAPE_TYPE}:PodMonitor::ml-monitoring-sentiment-trainer"]
    assert pm.dependencies == sorted([regs["gate"].urn, regs["ml-monitoring-release"].urn])  # its CRD, the gate
    assert pm.inputs["metadata"]["namespace"] == "monitoring" and pm.inputs["metadata"]["name"] == "sentiment-trainer"
    assert pm.inputs["spec"] == {
        "namespaceSelector": {"matchNames": ["ml-workloads"]},
        "selector": {"matchLabels": {"app.kubernetes.io/name": "sentiment-trainer",
                                     "training.kubeflow.org/job-role": "master"}},  # rank 0 only
        "podMetricsEndpoints": [{"port": "metrics", "path": "/metrics", "interval": "15s"}]}
    # without monitoring (no release to install the CRD) there is none
    assert not [n for n, r in run_component({}, training=True).items() if r.type.endswith(":PodMonitor")]
