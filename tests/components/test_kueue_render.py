"""The rendered stacks (the real program under mocks): the ClusterQueue's quota is each NodePool's limits in the
same render, the jobs go through the queue, and two 4-GPU jobs on a 4-GPU pool are admitted one at a time."""
from __future__ import annotations

import copy
import shutil

import pytest
import yaml

from tests.conftest import REPO, manifests, states

pytestmark = pytest.mark.render

P = "eks-ml-platform:"
RELEASE = "kubernetes:helm.sh/v3:Release"


def _one(result, kind: str, name: str) -> dict:
    (doc,) = [m for m in manifests(result, kind) if m["metadata"]["name"] == name]
    return doc


def quotas(cq: dict) -> dict[str, dict[str, str]]:
    (group,) = cq["spec"]["resourceGroups"]
    return {f["name"]: {r["name"]: r["nominalQuota"] for r in f["resources"]} for f in group["flavors"]}


def kueue_config(result) -> dict:
    (release,) = [s for s in states(result, RELEASE) if s["inputs"]["name"] == "kueue"]
    return yaml.safe_load(release["inputs"]["values"]["managerConfig"]["controllerManagerConfigYaml"])


def assert_quota_is_the_nodepools_limits(result) -> dict[str, dict[str, str]]:
    got = quotas(_one(result, "ClusterQueue", "ml-training"))
    assert got, "the ClusterQueue has flavors"
    for flavor, res in got.items():
        limits = _one(result, "NodePool", flavor)["spec"]["limits"]
        assert {r: q for r, q in res.items() if r in limits} == limits, flavor
        assert all(q == "0" for r, q in res.items() if r not in limits), flavor
        assert _one(result, "ResourceFlavor", flavor)["spec"]["nodeLabels"]["karpenter.sh/nodepool"] == flavor
    return got


def job_gpus(job: dict) -> int:
    specs = job["spec"]["pytorchReplicaSpecs"]
    return sum(r["replicas"] * int(c["resources"]["requests"].get("nvidia.com/gpu", 0))
               for r in specs.values() for c in r["template"]["spec"]["containers"])


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_the_stacks_queue_their_jobs_for_the_pools_limits(name, request):
    result = request.getfixturevalue(name)
    got = assert_quota_is_the_nodepools_limits(result)
    assert list(got)[0] == "cpu"  # data prep's flavor first
    job = _one(result, "PyTorchJob", "sentiment-train")
    labels = job["metadata"]["labels"]
    assert labels["kueue.x-k8s.io/queue-name"] == "training" and labels["kueue.x-k8s.io/priority-class"] == "ml-training"
    assert "suspend" not in job["spec"]["runPolicy"]  # Kueue's webhook suspends it, then admits it
    prep = _one(result, "Job", "sentiment-data-prep")
    assert prep["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "training"
    assert _one(result, "LocalQueue", "training")["metadata"]["namespace"] == "ml-workloads"
    cfg = kueue_config(result)
    assert cfg["waitForPodsReady"]["blockAdmission"] is True
    assert cfg["integrations"]["frameworks"] == ["batch/job", "kubeflow.org/pytorchjob", "kubeflow.org/tfjob"]


def test_the_training_job_waits_for_kueues_webhook_and_queue(dev):
    (job,) = [s for s in states(dev, "kubernetes:kubeflow.org/v1:PyTorchJob")]
    deps = set(job["dependencies"])
    assert any(d.endswith("::ml-kueue-release") for d in deps)
    assert any(d.endswith("::ml-kueue-localqueue-training") for d in deps)
    assert any(d.endswith("::ml-kueue-workloadpriorityclass-ml-training") for d in deps)


def _render(tmp_path, name: str, gpu_limit: int):
    from infra.preview.render import render

    project = tmp_path / name
    project.mkdir()
    shutil.copy(REPO / "Pulumi.yaml", project / "Pulumi.yaml")
    doc = yaml.safe_load((REPO / "Pulumi.dev.yaml").read_text())
    cfg = doc["config"]
    cfg[P + "nodePools"] = [
        {"name": "cpu", "instanceFamilies": ["m6i"], "capacityTypes": ["spot", "on-demand"],
         "limits": {"cpu": 64, "memory": "256Gi"}},
        {"name": "gpu", "accelerator": "nvidia", "instanceFamilies": ["g6"],
         "limits": {"cpu": 96, "memory": "768Gi", "gpu": gpu_limit}},
    ]
    cfg[P + "training"] = {"device": "gpu", "workers": 1, "gpusPerWorker": 2}  # master + worker: 4 GPUs
    cfg[P + "serving"] = {"enabled": False}
    (project / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump(doc))
    return render(name, tmp_path / "out" / name, project_dir=project)


def test_two_4_gpu_jobs_on_a_4_gpu_pool_are_admitted_one_at_a_time(tmp_path):
    result = _render(tmp_path, "gang", 4)
    got = assert_quota_is_the_nodepools_limits(result)
    assert got["gpu"]["nvidia.com/gpu"] == "4" and got["cpu"]["nvidia.com/gpu"] == "0"
    ours = _one(result, "PyTorchJob", "sentiment-train")
    theirs = copy.deepcopy(ours)  # a second job submitted the README's way: the same one label
    theirs["metadata"] = {"name": "my-train", "namespace": "ml-workloads",
                          "labels": {"kueue.x-k8s.io/queue-name": "training"}}
    jobs = [ours, theirs]
    assert all(job_gpus(j) == 4 and j["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "training"
               for j in jobs)
    cq = _one(result, "ClusterQueue", "ml-training")
    assert "cohortName" not in cq["spec"]  # no borrowing: the pool's 4 GPUs are all there is
    assert not manifests(result, "Cohort")
    # Kueue admits a workload whole or not at all: the quota holds one 4-GPU job, never half of each
    assert int(got["gpu"]["nvidia.com/gpu"]) // job_gpus(ours) == 1 < len(jobs)
    ready = kueue_config(result)["waitForPodsReady"]
    assert ready["blockAdmission"] is True and ready["timeout"] == "20m"
    # a changed NodePool limit changes the quota in the same render
    bigger = _render(tmp_path, "gang8", 8)
    assert _one(bigger, "NodePool", "gpu")["spec"]["limits"]["nvidia.com/gpu"] == "8"
    assert quotas(_one(bigger, "ClusterQueue", "ml-training"))["gpu"]["nvidia.com/gpu"] == "8"
