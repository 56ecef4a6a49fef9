"""The Neuron compile CronJob (workloads/sentiment/compile_job.py): command, shapes, mounts, placement, hardening."""
from __future__ import annotations

import pytest

from infra.config import parse_config
from workloads.shared import pvc_manifest
from workloads.sentiment.compile_job import COMPILE_NAME
from workloads.sentiment.manifests import build_objects
from workloads.sentiment.plan import SELECTOR
from workloads.sentiment.settings import ServingSettings

pytestmark = pytest.mark.unit

CPU = {"name": "plain", "instanceFamilies": ["m6i"], "limits": {"cpu": 64, "memory": "256Gi"}}
INF1 = {"name": "inf1", "accelerator": "inf1", "instanceFamilies": ["inf1"], "limits": {"cpu": 32, "neuron": 4}}
INF2 = {"name": "inf2", "accelerator": "inf2", "instanceFamilies": ["inf2"], "limits": {"cpu": 32, "neuron": 4}}


def _objs(serving: dict, images=None) -> dict:
    raw = {"environment": "dev", "ephemeral": True, "region": "us-west-2", "cluster": {"name": "ml-x"},
           "nodePools": [CPU, INF1, INF2], "training": {"enabled": False}, "serving": serving}
    return build_objects(ServingSettings.from_config(parse_config(raw, stack="x")), images=images)


def _pod(cron: dict) -> dict:
    return cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def test_the_cronjob_compiles_the_serving_version_for_the_configured_shapes():
    objs = _objs({"device": "inf2", "modelVersion": "v20260101T000000Z-0123abcd",
                  "neuron": {"batchSize": 16, "seqLen": 64, "compileSchedule": "*/30 * * * *"}})
    cron = objs["compile-cronjob"]
    assert (cron["kind"], cron["metadata"]["name"]) == ("CronJob", COMPILE_NAME)
    (c,) = _pod(cron)["containers"]
    assert c["command"] == ["python", "-m", "workloads.sentiment.neuron_compile", "--target", "inf2",
                            "--model-dir", "/models", "--version", "v20260101T000000Z-0123abcd",
                            "--batch-size", "16", "--seq-len", "64"]
    assert cron["spec"]["schedule"] == "*/30 * * * *"
    # the server is configured for the same shapes, so the artifact the job writes is the one it loads
    env = {e["name"]: e["value"] for e in objs["deployment"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert (env["NEURON_BATCH_SIZE"], env["NEURON_SEQ_LEN"], env["MODEL_VERSION"]) == (
        "16", "64", "v20260101T000000Z-0123abcd")
    # the default: follow latest every 10 minutes, inf1 compiles for inf1
    inf1 = _objs({"device": "inf1"})["compile-cronjob"]
    assert _pod(inf1)["containers"][0]["command"][3:] == ["--target", "inf1", "--model-dir", "/models",
                                                           "--version", "latest", "--batch-size", "8", "--seq-len", "128"]
    assert inf1["spec"]["schedule"] == "*/10 * * * *"


def test_the_job_runs_the_serving_image_on_the_plain_pool_with_no_neuron_device():
    ref = "123456789012.dkr.ecr.us-west-2.amazonaws.com/ml-x/sentiment-neuronx@sha256:" + "b" * 64
    objs = _objs({"device": "inf2"}, images={"serverNeuronx": ref})
    pod = _pod(objs["compile-cronjob"])
    (c,) = pod["containers"]
    assert c["image"] == ref == objs["deployment"]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert pod["nodeSelector"] == {"eks-ml-platform/pool": "plain"}  # cpu_pool: the first plain pool
    assert "tolerations" not in pod  # never on a Neuron node (the compilers need CPUs only)
    assert not [r for part in c["resources"].values() for r in part if r.startswith("aws.amazon.com/")]
    assert c["resources"]["limits"]["memory"] == c["resources"]["requests"]["memory"]
    assert {"cpu", "memory"} <= set(c["resources"]["limits"])
    assert "checkov.io/skip1" not in objs["compile-cronjob"]["metadata"].get("annotations", {})  # by digest


def test_models_are_mounted_read_write_where_serving_mounts_them_read_only():
    objs = _objs({"device": "inf2"})
    pod = _pod(objs["compile-cronjob"])
    (c,) = pod["containers"]
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert mounts["models"]["mountPath"] == "/models" and not mounts["models"].get("readOnly")
    vols = {v["name"]: v for v in pod["volumes"]}
    assert vols["models"]["persistentVolumeClaim"] == {"claimName": "models"}
    assert vols["tmp"]["emptyDir"]["sizeLimit"]
    serving = objs["deployment"]["spec"]["template"]["spec"]
    assert {m["name"]: m for m in serving["containers"][0]["volumeMounts"]}["models"]["readOnly"] is True
    # both on one claim: it must be ReadWriteMany (the shared models PVC is)
    assert pvc_manifest("models", 20)["spec"]["accessModes"] == ["ReadWriteMany"]


def test_the_compile_pod_is_hardened_like_the_serving_pod():
    objs = _objs({"device": "inf2"})
    pod = _pod(objs["compile-cronjob"])
    serving = objs["deployment"]["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["securityContext"] == serving["containers"][0]["securityContext"]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True and c["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"] == serving["securityContext"]
    assert pod["automountServiceAccountToken"] is False and pod["enableServiceLinks"] is False
    assert {m["mountPath"] for m in c["volumeMounts"]} == {"/models", "/tmp"}
    assert {e["name"]: e["value"] for e in c["env"]}["HOME"] == "/tmp"


def test_runs_never_overlap_and_are_bounded():
    spec = _objs({"device": "inf2"})["compile-cronjob"]["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert 0 < spec["startingDeadlineSeconds"] <= 600
    assert spec["successfulJobsHistoryLimit"] >= 1 and spec["failedJobsHistoryLimit"] >= 1
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] >= 1 and job["activeDeadlineSeconds"] > 0
    assert job["template"]["spec"]["restartPolicy"] == "Never"


def test_the_compile_pods_are_no_serving_pods_and_talk_to_no_one():
    objs = _objs({"device": "inf2"})
    labels = objs["compile-cronjob"]["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    # the Service, the PDB and the serving NetworkPolicy select the server by name: never the compile pods
    assert labels["app.kubernetes.io/name"] == COMPILE_NAME != SELECTOR["app.kubernetes.io/name"]
    pol = objs["compile-netpol"]
    assert pol["spec"]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": COMPILE_NAME}}
    assert pol["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert pol["spec"]["ingress"] == [] and pol["spec"]["egress"] == []


@pytest.mark.parametrize("device", ["cpu", "gpu"])
def test_no_compile_job_off_neuron(device):
    pools = [CPU, {"name": "gpu", "accelerator": "nvidia", "instanceFamilies": ["g5"], "limits": {"cpu": 32, "gpu": 4}}]
    raw = {"environment": "dev", "ephemeral": True, "region": "us-west-2", "cluster": {"name": "ml-x"},
           "nodePools": pools, "training": {"enabled": False}, "serving": {"device": device}}
    objs = build_objects(ServingSettings.from_config(parse_config(raw, stack="x")))
    assert "compile-cronjob" not in objs and "compile-netpol" not in objs
