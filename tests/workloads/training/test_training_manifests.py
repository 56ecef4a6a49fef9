"""The training operator and training workload as rendered: schemas, CRDs, checkov, and the resource graph.

`python -m infra check` must pass for the PyTorchJob, TFJob, Job, CronJob and PVC manifests against
the upstream kubeflow.org/v1 CRDs (../shared/crds) and the core schemas. The shipped stacks only
render a PyTorchJob without a schedule, so the TFJob, CronJob and S3/hub variants are built here
from configs and checked the same way.

pytestmark = pytest.mark.manifests
"""
from __future__ import annotations

import pytest

from infra.check.objects import validate_objects
from infra.check.run import check_manifests
from infra.config import parse_config
from infra.preview.render import dump_yaml
from tests.conftest import by_name, manifests, states
from workloads.training import manifests as tc
from workloads.training.settings import TrainingSettings

MINE = {"training-operator", "sentiment-trainer", "sentiment-data-prep", "datasets", "models", "ml-workloads"}
# your TensorFlow image, pinned by digest as check's workload-image-pinned policy requires
TF_IMAGE = f"registry.example.com/team/tf-trainer:2.16.1@sha256:{'cd' * 32}"
# what components/images.py hands the workloads when the stack builds its images: references by digest
BUILT = {key: f"123456789012.dkr.ecr.us-west-2.amazonaws.com/ml-dev/{repo}@sha256:{'ab' * 32}"
         for key, repo in (("trainer", "trainer"), ("trainerGpu", "trainer-gpu"))}
VARIANTS = {
    "tfjob": {"kind": "TFJob", "image": TF_IMAGE, "command": ["python", "/app/train.py"], "workers": 2,
              "parameterServers": 2, "datasetSource": "s3://my-bucket/sentiment/"},
    "cron-s3": {"device": "gpu", "schedule": "0 3 * * SUN", "timeZone": "Europe/Berlin",
                "datasetSource": "s3://my-bucket/sentiment/", "gpusPerWorker": 2},
    "cron-hub-cpu": {"device": "cpu", "schedule": "@daily", "datasetSource": "hf://stanfordnlp/sst2",
                     "dataset": {"textColumn": "sentence", "evalSplit": "validation"}, "workers": 2},
}


def mine(result) -> list[dict]:
    return [m for m in manifests(result) if (m["metadata"].get("labels") or {}).get("app.kubernetes.io/name") in MINE
            or m["metadata"]["name"] in MINE]


def variant_objects() -> dict[str, dict]:
    out = {}
    for name, raw in VARIANTS.items():
        cfg = parse_config({"training": raw}, stack="dev")
        for key, obj in tc.build_objects(TrainingSettings.from_config(cfg), images=BUILT).items():
            out[f"{name}-{key}"] = obj
    return out


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_stack_renders_the_training_objects(stack, request):
    result = request.getfixturevalue(stack)
    kinds = sorted((m["kind"], m["metadata"].get("namespace", ""), m["metadata"]["name"]) for m in mine(result))
    assert ("CustomResourceDefinition", "", "pytorchjobs.kubeflow.org") in kinds
    assert ("CustomResourceDefinition", "", "tfjobs.kubeflow.org") in kinds
    for expected in [("Deployment", "kubeflow", "training-operator"), ("Namespace", "", "kubeflow"),
                     ("Namespace", "", "ml-workloads"), ("PersistentVolumeClaim", "ml-workloads", "datasets"),
                     ("PersistentVolumeClaim", "ml-workloads", "models"), ("Job", "ml-workloads", "sentiment-data-prep"),
                     ("PyTorchJob", "ml-workloads", "sentiment-train"),
                     ("ValidatingWebhookConfiguration", "", "validator.training-operator.kubeflow.org")]:
        assert expected in kinds, expected
    job = next(m for m in manifests(result, "PyTorchJob"))
    workers = job["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"]
    assert workers == result.cfg.training.workers
    gpu = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert ("nvidia.com/gpu" in gpu) == (result.cfg.training.device == "gpu")


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_stack_objects_pass_core_and_crd_schemas(stack, request):
    result = request.getfixturevalue(stack)
    objs = mine(result)
    report = validate_objects(objs, k8s_version=result.cfg.cluster.version, crd_dir=None)
    assert report.ok, [str(f) for f in report.findings]
    how = {k: v.how for k, v in report.coverage.items()}
    assert how["kubeflow.org/v1/PyTorchJob"].startswith("CRD schema")
    assert how["apiextensions.k8s.io/v1/CustomResourceDefinition"].startswith("kubernetes-validate")
    assert how["v1/PersistentVolumeClaim"].startswith("kubernetes-validate")


def test_variants_pass_schemas_and_checkov(prod, tmp_path):
    """TFJob, CronJob, S3/hub data prep, plus every training object prod renders: `check` finds nothing."""
    objs = variant_objects()
    assert {o["kind"] for o in objs.values()} >= {"TFJob", "PyTorchJob", "CronJob", "Job", "NetworkPolicy"}
    for i, obj in enumerate([*objs.values(), *mine(prod)]):
        (tmp_path / f"{i:03d}-{obj['kind'].lower()}-{obj['metadata']['name']}.yaml").write_text(dump_yaml(obj))
    report = check_manifests(tmp_path, None, prod.cfg.cluster.version)
    assert report.ok, [str(f) for f in report.findings]
    assert report.coverage["kubeflow.org/v1/TFJob"].how.startswith("CRD schema")
    assert report.coverage["batch/v1/CronJob"].how.startswith("kubernetes-validate")


def test_jobs_carry_kueues_labels_only_with_kueue():
    label, prio = "kueue.x-k8s.io/queue-name", "kueue.x-k8s.io/priority-class"
    raw = {"device": "gpu", "schedule": "@daily"}
    objs = tc.build_objects(TrainingSettings.from_config(parse_config({"training": raw}, stack="dev")))
    for key in ("job", "data-prep"):
        assert objs[key]["metadata"]["labels"][label] == "training", key
        assert objs[key]["metadata"]["labels"][prio] == "ml-training", key
    # each retraining run's Job queues ahead of ad-hoc training
    assert objs["cronjob"]["spec"]["jobTemplate"]["metadata"]["labels"] == {label: "training", prio: "ml-training-urgent"}
    assert "suspend" not in objs["job"]["spec"]["runPolicy"]  # Kueue's webhook suspends it on create
    tf = tc.build_objects(TrainingSettings.from_config(parse_config({"training": VARIANTS["tfjob"]}, stack="dev")))
    assert tf["job"]["kind"] == "TFJob" and tf["job"]["metadata"]["labels"][label] == "training"
    off = parse_config({"training": raw, "addons": {"kueue": {"enabled": False}}}, stack="dev")
    plain = tc.build_objects(TrainingSettings.from_config(off))
    assert label not in plain["job"]["metadata"]["labels"] and label not in plain["data-prep"]["metadata"]["labels"]
    assert "metadata" not in plain["cronjob"]["spec"]["jobTemplate"]


def test_crd_schema_rejects_a_typo(dev):
    """The check is real: an unknown field in the PyTorchJob is reported against the upstream CRD."""
    job = next(m for m in manifests(dev, "PyTorchJob"))
    bad = {**job, "spec": {**job["spec"], "pytorchReplicaSpec": {}}}
    report = validate_objects([bad], k8s_version="1.34", crd_dir=None)
    assert any(f.check == "crd-schema" and "pytorchReplicaSpec" in f.message for f in report.findings)


def test_jobs_wait_for_crds_operator_data_and_volumes(prod):
    job = by_name(prod, "kubernetes:kubeflow.org/v1:PyTorchJob", "ml-training-pytorchjob")
    deps = {d.split("::")[-1] for d in job["dependencies"]}
    assert {"ml-training-operator-crd-pytorchjob", "ml-training-operator-deployment", "ml-training-operator-webhook",
            "ml-training-data-prep", "ml-workload-storage-datasets", "ml-workload-storage-models"} <= deps
    prep = by_name(prod, "kubernetes:batch/v1:Job", "ml-training-data-prep")
    assert {"ml-workload-storage-datasets", "ml-training-netpol-data-prep"} <= {d.split("::")[-1] for d in prep["dependencies"]}
    # the operator Deployment comes after its CRDs, RBAC and webhook configuration
    dep = by_name(prod, "kubernetes:apps/v1:Deployment", "ml-training-operator-deployment")
    assert {"ml-training-operator-crd-tfjob", "ml-training-operator-clusterrolebinding",
            "ml-training-operator-webhook"} <= {d.split("::")[-1] for d in dep["dependencies"]}


def test_ml_training_priority_class_comes_first(prod):
    if not any(s["urn"].endswith("::ml-priority-ml-training") for s in states(prod)):
        pytest.fail("the ml-training PriorityClass is not rendered (components/priority.py)")
    prep = by_name(prod, "kubernetes:batch/v1:Job", "ml-training-data-prep")
    assert any(d.endswith("::ml-priority-ml-training") for d in prep["dependencies"])


def test_prod_protects_models_and_crds(prod, dev):
    for result, protected in ((prod, True), (dev, False)):
        pvc = by_name(result, "kubernetes:core/v1:PersistentVolumeClaim", "ml-workload-storage-models")
        crd = by_name(result, "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition",
                      "ml-training-operator-crd-pytorchjob")
        assert pvc["protect"] is protected and crd["protect"] is protected


def test_components_and_outputs(dev):
    comps = {s["type"]: s for s in states(dev) if not s["custom"]}
    assert "eks-ml-platform:training_operator:TrainingOperator" in comps
    assert "eks-ml-platform:training:TrainingWorkload" in comps
    assert "eks-ml-platform:workloads:WorkloadStorage" in comps
    job = by_name(dev, "kubernetes:kubeflow.org/v1:PyTorchJob", "ml-training-pytorchjob")
    assert job["parent"].endswith("::ml-training")
    assert "k8s" in job["provider"]


def test_no_secret_material_in_training_manifests(dev):
    secret = next(m for m in manifests(dev, "Secret") if m["metadata"]["name"] == "training-operator-webhook-cert")
    assert "data" not in secret and "stringData" not in secret
