"""The training workload's and the training operator's pure builders (no Pulumi engine)."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from components import training_operator as op
from infra.config import parse_config
from infra import upstream
from infra.versions import IMAGES, MANIFESTS
from workloads import shared
from workloads.training import manifests as tc
from workloads.training.settings import TrainingSettings

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
TF_IMAGE = "registry.example.com/team/tf-trainer:2.16.1"


def cfg_of(**training):
    return parse_config({"training": training}, stack="dev")


def pod_specs(job: dict) -> dict[str, dict]:
    key = "pytorchReplicaSpecs" if job["kind"] == "PyTorchJob" else "tfReplicaSpecs"
    return {role: r["template"]["spec"] for role, r in job["spec"][key].items()}


# ---------------------------------------------------------------- PyTorchJob
def test_pytorchjob_gpu_master_and_workers():
    cfg = cfg_of(device="gpu", workers=3, gpusPerWorker=1, epochs=5, batchSize=32)
    job = tc.build_objects(TrainingSettings.from_config(cfg))["job"]
    assert (job["apiVersion"], job["kind"]) == ("kubeflow.org/v1", "PyTorchJob")
    assert job["metadata"]["name"] == "sentiment-train" and job["metadata"]["namespace"] == "ml-workloads"
    replicas = job["spec"]["pytorchReplicaSpecs"]
    assert {r: v["replicas"] for r, v in replicas.items()} == {"Master": 1, "Worker": 3}
    assert {v["restartPolicy"] for v in replicas.values()} == {"OnFailure"}
    for role, spec in pod_specs(job).items():
        (c,) = spec["containers"]
        assert c["name"] == "pytorch"  # the operator injects MASTER_ADDR/RANK/... into this container only
        assert c["image"] == IMAGES["trainer_gpu"]
        res = c["resources"]
        assert res["requests"] == res["limits"]  # Guaranteed QoS
        assert res["limits"]["nvidia.com/gpu"] == "1" and res["limits"]["cpu"] and res["limits"]["memory"]
        assert spec["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
        assert spec["nodeSelector"] == {"eks-ml-platform/pool": "gpu"}
        assert spec["priorityClassName"] == "ml-training"
        assert spec["terminationGracePeriodSeconds"] == 120
        claims = {v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"] if "persistentVolumeClaim" in v}
        assert claims == {"datasets", "models"}
        mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
        assert mounts["/data"]["readOnly"] is True and not mounts["/models"].get("readOnly")
        assert {"/tmp", "/dev/shm"} <= set(mounts)
        shm = next(v for v in spec["volumes"] if v["name"] == "dshm")
        assert shm["emptyDir"]["medium"] == "Memory"
        assert c["args"][c["args"].index("--epochs") + 1] == "5"
        assert c["args"][c["args"].index("--batch-size") + 1] == "32"
        assert c["args"][c["args"].index("--device") + 1] == "cuda"
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert ports["pytorchjob-port"] == 23456
        # rank 0 serves metrics: only the Master declares the port the PodMonitor scrapes
        assert ("metrics" in ports) == (role == "Master")
    assert "nprocPerNode" not in job["spec"]


def test_pytorchjob_cpu_mode_for_dev():
    job = tc.build_objects(TrainingSettings.from_config(cfg_of(device="cpu")))["job"]
    for spec in pod_specs(job).values():
        (c,) = spec["containers"]
        assert "tolerations" not in spec and spec["nodeSelector"] == {"eks-ml-platform/pool": "cpu"}
        assert "nvidia.com/gpu" not in c["resources"]["limits"]
        assert c["image"] == IMAGES["trainer"]
        assert c["args"][c["args"].index("--device") + 1] == "cpu"


def test_trainer_command_line_matches_the_design():
    cfg = cfg_of(device="cpu", epochs=4, maxSamples=300, baseModel="sentence-transformers/all-MiniLM-L6-v2",
                 learningRate=0.0003, checkpointEverySteps=50)
    (c,) = pod_specs(tc.build_objects(TrainingSettings.from_config(cfg))["job"])["Master"]["containers"]
    assert c["command"] == ["python", "workloads/training/train.py"]
    args = c["args"]
    flags = dict(zip(args[::2], args[1::2]))
    assert flags == {"--data": "/data/sample", "--model-dir": "/models", "--checkpoint-dir": "/models/checkpoints/sentiment-train/sample",
                     "--epochs": "4", "--batch-size": "16", "--lr": "0.0003", "--checkpoint-every-steps": "50",
                     "--metrics-port": "9464", "--device": "cpu", "--max-samples": "300",
                     "--base-model": "sentence-transformers/all-MiniLM-L6-v2",
                     "--min-accuracy": "0.7", "--max-regression": "0.02"}  # training.promotion's defaults


def test_trainer_args_are_accepted_by_train_py():
    """The contract with train.py: its own parser accepts every flag and value the component passes."""
    from workloads.training import train

    for cfg in (cfg_of(device="cpu"), cfg_of(device="gpu", maxSamples=10, baseModel="x/y"), cfg_of(schedule="@daily")):
        objs = tc.build_objects(TrainingSettings.from_config(cfg))
        specs = list(pod_specs(objs["job"]).values())
        if "cronjob" in objs:
            specs.append(objs["cronjob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"])
        for spec in specs:
            args = spec["containers"][0]["args"]
            ns = train.build_parser().parse_args(args)
            assert str(ns.model_dir) == "/models" and ns.metrics_port == tc.METRICS_PORT
    assert train.build_parser().get_default("metrics_port") == tc.METRICS_PORT


def test_multi_gpu_replicas_run_torchrun():
    cfg = cfg_of(device="gpu", workers=1, gpusPerWorker=2)
    job = tc.build_objects(TrainingSettings.from_config(cfg))["job"]
    assert job["spec"]["nprocPerNode"] == "2"
    (c,) = pod_specs(job)["Worker"]["containers"]
    assert c["command"][:3] == ["python", "-m", "torch.distributed.run"]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "2"


def test_custom_pytorch_command_replaces_the_sample():
    cfg = cfg_of(device="cpu", image="ghcr.io/acme/my-trainer:1.2", command=["python", "/app/train.py", "--fast"])
    (c,) = pod_specs(tc.build_objects(TrainingSettings.from_config(cfg))["job"])["Master"]["containers"]
    assert c["image"] == "ghcr.io/acme/my-trainer:1.2"
    assert c["command"] == ["python", "/app/train.py", "--fast"] and "args" not in c
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["DATA_DIR"] == "/data/sample" and env["MODEL_DIR"] == "/models"


def test_security_context_is_restricted_everywhere():
    objs = tc.build_objects(TrainingSettings.from_config(cfg_of(device="gpu", schedule="@weekly")))
    specs = [*pod_specs(objs["job"]).values(), objs["data-prep"]["spec"]["template"]["spec"],
             objs["cronjob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]]
    for spec in specs:
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        for c in [*spec.get("initContainers", []), *spec["containers"]]:
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] and sc["runAsUser"] == 10001 and sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"] == {"drop": ["ALL"]} and sc["readOnlyRootFilesystem"] is True
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
            assert c["resources"]["requests"] == c["resources"]["limits"]
            env = {e["name"]: e.get("value") for e in c["env"]}
            assert env["HOME"] == "/tmp" and env["HF_HOME"].startswith("/tmp")


def test_trainer_pods_carry_the_monitoring_label():
    objs = tc.build_objects(TrainingSettings.from_config(cfg_of(schedule="@daily")))
    templates = [r["template"] for r in objs["job"]["spec"]["pytorchReplicaSpecs"].values()]
    templates.append(objs["cronjob"]["spec"]["jobTemplate"]["spec"]["template"])
    for t in templates:
        assert t["metadata"]["labels"]["app.kubernetes.io/name"] == "sentiment-trainer"
        assert t["metadata"]["labels"]["app.kubernetes.io/part-of"] == "eks-ml-platform"


# ---------------------------------------------------------------- TFJob
def test_tfjob_ps_and_workers():
    cfg = cfg_of(kind="TFJob", image=TF_IMAGE, command=["python", "/app/train.py"], workers=2, parameterServers=1)
    objs = tc.build_objects(TrainingSettings.from_config(cfg))
    job = objs["job"]
    assert (job["apiVersion"], job["kind"]) == ("kubeflow.org/v1", "TFJob")
    specs = job["spec"]["tfReplicaSpecs"]
    assert {r: v["replicas"] for r, v in specs.items()} == {"PS": 1, "Worker": 2}
    for role, spec in pod_specs(job).items():
        (c,) = spec["containers"]
        assert c["name"] == "tensorflow" and c["image"] == TF_IMAGE and c["command"] == ["python", "/app/train.py"]
        assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"tfjob-port": 2222}
        gpu = c["resources"]["limits"].get("nvidia.com/gpu")
        if role == "PS":  # parameter servers keep variables on CPU
            assert gpu is None and spec["nodeSelector"] == {"eks-ml-platform/pool": "cpu"} and "tolerations" not in spec
        else:
            assert gpu == "1" and spec["nodeSelector"] == {"eks-ml-platform/pool": "gpu"}
    # your own image may download (S3, hub): the trainer network policy allows HTTPS out
    assert tc.HTTPS_EGRESS in objs["netpol-trainer"]["spec"]["egress"]


def test_tfjob_without_parameter_servers():
    job = tc.build_objects(TrainingSettings.from_config(cfg_of(kind="TFJob", image=TF_IMAGE, parameterServers=0)))["job"]
    assert set(job["spec"]["tfReplicaSpecs"]) == {"Worker"}


@pytest.mark.parametrize("bad, message", [
    ({"kind": "TFJob", "image": None}, "a TFJob needs your TensorFlow image"),
    ({"kind": "MPIJob"}, "unknown training.kind"),
])
def test_plan_rejects_what_config_would(bad, message):
    cfg = cfg_of(kind="TFJob", image=TF_IMAGE)
    broken = cfg.model_copy(update={"training": cfg.training.model_copy(update=bad)})
    with pytest.raises(ValueError, match=message):
        tc.plan(TrainingSettings.from_config(broken))


# ---------------------------------------------------------------- data prep and retraining
@pytest.mark.parametrize("source, env_expected", [
    (None, {"DATA_SOURCE": "sample", "DATA_DIR": "/data/sample"}),
    ("s3://my-bucket/sentiment/v2/", {"DATA_SOURCE": "s3", "S3_URI": "s3://my-bucket/sentiment/v2/",
                                      "DATA_DIR": "/data/s3-my-bucket-sentiment-v2"}),
    ("hf://stanfordnlp/sst2", {"DATA_SOURCE": "hf", "HF_DATASET": "stanfordnlp/sst2", "TEXT_COLUMN": "sentence",
                               "EVAL_SPLIT": "validation", "DATA_DIR": "/data/hf-stanfordnlp-sst2"}),
])
def test_data_prep_job(source, env_expected, monkeypatch):
    raw = {"datasetSource": source} if source else {}
    if source and source.startswith("hf://"):
        raw["dataset"] = {"textColumn": "sentence", "evalSplit": "validation"}
    cfg = cfg_of(device="gpu", **raw)
    job = tc.build_objects(TrainingSettings.from_config(cfg))["data-prep"]
    assert job["kind"] == "Job" and job["metadata"]["name"] == "sentiment-data-prep"
    spec = job["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"eks-ml-platform/pool": "cpu"} and "tolerations" not in spec  # CPU, even for GPU training
    assert spec["restartPolicy"] == "OnFailure" and spec["serviceAccountName"] == "sentiment-data-prep"
    (c,) = spec["containers"]
    assert c["command"] == ["python", "workloads/training/data_prep.py"]
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env_expected.items() <= env.items() and "FORCE" not in env
    assert {m["mountPath"]: m["readOnly"] for m in c["volumeMounts"] if m["name"] == "data"} == {"/data": False}
    # the trainer reads what data prep writes
    (t,) = pod_specs(tc.build_objects(TrainingSettings.from_config(cfg))["job"])["Master"]["containers"]
    assert t["args"][t["args"].index("--data") + 1] == env["DATA_DIR"]
    # data_prep.py's own parser accepts the environment as given
    from workloads.training import data_prep

    for k in ("DATA_DIR", "DATA_SOURCE", "S3_URI", "HF_DATASET", "TEXT_COLUMN", "EVAL_SPLIT", "FORCE"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    ns = data_prep.parse_args([])
    assert str(ns.out) == env["DATA_DIR"] and ns.source == env["DATA_SOURCE"] and ns.force is False


def test_s3_read_policy_is_scoped_to_the_prefix():
    doc = json.loads(tc.s3_read_policy("s3://my-bucket/sentiment/v2"))
    get, lst = doc["Statement"]
    assert get["Action"] == ["s3:GetObject"] and get["Resource"] == ["arn:aws:s3:::my-bucket/sentiment/v2/*"]
    assert lst["Action"] == ["s3:ListBucket"] and lst["Resource"] == ["arn:aws:s3:::my-bucket"]
    assert lst["Condition"] == {"StringLike": {"s3:prefix": ["sentiment/v2/*"]}}
    whole = json.loads(tc.s3_read_policy("s3://my-bucket"))
    assert whole["Statement"][0]["Resource"] == ["arn:aws:s3:::my-bucket/*"]


def test_retrain_cronjob():
    cfg = cfg_of(device="gpu", workers=1, gpusPerWorker=2, schedule="0 3 * * SUN", timeZone="Europe/Berlin",
                 datasetSource="s3://my-bucket/data")
    objs = tc.build_objects(TrainingSettings.from_config(cfg))
    cj = objs["cronjob"]
    assert cj["kind"] == "CronJob" and cj["apiVersion"] == "batch/v1" and cj["metadata"]["name"] == "sentiment-retrain"
    assert cj["spec"]["schedule"] == "0 3 * * SUN" and cj["spec"]["timeZone"] == "Europe/Berlin"
    assert cj["spec"]["concurrencyPolicy"] == "Forbid"
    spec = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert spec["restartPolicy"] == "OnFailure" and spec["priorityClassName"] == "ml-training"
    (init,), (c,) = spec["initContainers"], spec["containers"]
    env = {e["name"]: e.get("value") for e in init["env"]}
    assert env["FORCE"] == "1" and env["DATA_SOURCE"] == "s3"  # each run refreshes the dataset
    assert spec["serviceAccountName"] == "sentiment-data-prep"  # the one with the S3 Pod Identity
    job_env = next(e for e in c["env"] if e["name"] == "JOB_NAME")
    assert job_env["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.labels['batch.kubernetes.io/job-name']"
    assert c["args"][c["args"].index("--checkpoint-dir") + 1] == "/models/checkpoints/$(JOB_NAME)"
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "1"  # one process uses one GPU
    assert spec["tolerations"] and spec["nodeSelector"] == {"eks-ml-platform/pool": "gpu"}
    # the retrain pod may reach S3 like data prep
    assert tc.POD_IDENTITY_EGRESS in objs["netpol-retrain"]["spec"]["egress"]


def test_no_cronjob_without_schedule():
    assert "cronjob" not in tc.build_objects(TrainingSettings.from_config(cfg_of()))


def test_network_policies():
    objs = tc.build_objects(TrainingSettings.from_config(cfg_of(device="cpu")))
    trainer = objs["netpol-trainer"]["spec"]
    assert trainer["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "sentiment-trainer"}}
    assert set(trainer["policyTypes"]) == {"Ingress", "Egress"}
    assert tc.HTTPS_EGRESS not in trainer["egress"]  # the sample trains offline
    scrape = next(r for r in trainer["ingress"] if r.get("ports"))
    assert scrape["ports"] == [{"port": 9464, "protocol": "TCP"}]
    prep = objs["netpol-data-prep"]["spec"]
    assert prep["ingress"] == [] and prep["egress"] == [tc.DNS_EGRESS]  # the shipped sample needs no network
    hub = tc.build_objects(TrainingSettings.from_config(cfg_of(datasetSource="hf://imdb")))["netpol-data-prep"]["spec"]
    assert tc.HTTPS_EGRESS in hub["egress"] and tc.POD_IDENTITY_EGRESS not in hub["egress"]


def test_every_object_has_name_namespace_and_standard_labels():
    for obj in tc.build_objects(TrainingSettings.from_config(cfg_of(schedule="@daily", datasetSource="s3://my-bucket/x"))).values():
        meta = obj["metadata"]
        assert meta["name"] and meta["namespace"] == "ml-workloads"
        assert meta["labels"]["app.kubernetes.io/part-of"] == "eks-ml-platform"
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "pulumi" and meta["labels"]["app.kubernetes.io/name"]


def test_describe():
    assert tc.describe(TrainingSettings.from_config(cfg_of(device="gpu", workers=2))) == (
        f"PyTorchJob sentiment-train: 1 master + 2 worker(s) on pool gpu, 1 GPU(s) each; data /data/sample; "
        f"image {IMAGES['trainer_gpu']}")


# ---------------------------------------------------------------- shared namespace and PVCs
def test_shared_namespace_and_pvcs():
    ns = shared.namespace_manifest()
    assert ns["metadata"]["name"] == "ml-workloads"
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for name in ("datasets", "models"):
        pvc = shared.pvc_manifest(name, 50)
        assert pvc["metadata"] == {"name": name, "namespace": "ml-workloads", "labels": pvc["metadata"]["labels"]}
        assert pvc["spec"]["accessModes"] == ["ReadWriteMany"] and pvc["spec"]["storageClassName"] == "ceph-filesystem"
        assert pvc["spec"]["resources"]["requests"]["storage"] == "50Gi"
    with pytest.raises(ValueError, match="at least 1 GiB"):
        shared.pvc_manifest("models", 0)


# ---------------------------------------------------------------- the training operator
def test_operator_installs_only_pytorchjob_and_tfjob():
    objs = op.operator_objects()
    crds = [o for o in objs if o["kind"] == "CustomResourceDefinition"]
    assert sorted(c["metadata"]["name"] for c in crds) == ["pytorchjobs.kubeflow.org", "tfjobs.kubeflow.org"]
    # CRDs right after the namespace, before anything that uses them
    kinds = [o["kind"] for o in objs]
    assert kinds[:3] == ["Namespace", "CustomResourceDefinition", "CustomResourceDefinition"]
    assert kinds[-1] == "Deployment"
    (vwc,) = [o for o in objs if o["kind"] == "ValidatingWebhookConfiguration"]
    assert [w["clientConfig"]["service"] for w in vwc["webhooks"]] == [
        {"name": "training-operator", "namespace": "kubeflow", "path": "/validate-kubeflow-org-v1-pytorchjob"},
        {"name": "training-operator", "namespace": "kubeflow", "path": "/validate-kubeflow-org-v1-tfjob"}]
    (crb,) = [o for o in objs if o["kind"] == "ClusterRoleBinding"]
    assert crb["subjects"] == [{"kind": "ServiceAccount", "name": "training-operator", "namespace": "kubeflow"}]


def test_operator_deployment_is_pinned_and_on_system_nodes():
    (dep,) = [o for o in op.operator_objects() if o["kind"] == "Deployment"]
    spec = dep["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"eks-ml-platform/node-role": "system"}
    assert {"key": "CriticalAddonsOnly", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    (c,) = spec["containers"]
    assert c["image"] == IMAGES["training_operator"] == "ghcr.io/kubeflow/training-v1/training-operator:v1-93c5489"
    assert c["args"] == ["--enable-scheme=pytorchjob", "--enable-scheme=tfjob"]
    assert c["resources"]["limits"] and c["resources"]["requests"]
    assert c["securityContext"]["readOnlyRootFilesystem"] and c["securityContext"]["runAsNonRoot"]
    assert spec["securityContext"]["runAsUser"] == 65532
    # upstream's webhook cert volume is kept (the cert rotator writes the Secret)
    assert {"name": "cert", "secret": {"defaultMode": 420, "secretName": "training-operator-webhook-cert"}} in spec["volumes"]


def test_operator_network_policies_admit_the_webhook_from_the_vpc_and_metrics_from_prometheus_only():
    cfg = parse_config({"vpc": {"cidr": "10.50.0.0/16"}}, stack="dev")
    objs = op.operator_objects(op.OperatorSettings.from_config(cfg))
    pols = {o["metadata"]["name"]: o["spec"] for o in objs if o["kind"] == "NetworkPolicy"}
    assert sorted(pols) == ["default-deny", "training-operator"]
    assert pols["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": []}
    operator = pols["training-operator"]
    assert operator["podSelector"] == {"matchLabels": {"control-plane": "kubeflow-training-operator"}}
    webhook, metrics = operator["ingress"]
    # the API server's ENIs have no pod labels: the VPC CIDR, on the webhook port only; no open probe port
    assert webhook == {"from": [{"ipBlock": {"cidr": "10.50.0.0/16"}}], "ports": [{"port": 9443, "protocol": "TCP"}]}
    assert metrics == {"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                                 "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}],
                       "ports": [{"port": 8080, "protocol": "TCP"}]}


def test_operator_objects_are_upstream_plus_labels():
    ns = next(o for o in op.operator_objects() if o["kind"] == "Namespace")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for o in op.operator_objects():
        assert o["metadata"]["labels"]["app.kubernetes.io/part-of"] == "eks-ml-platform"
        if o["kind"] not in ("Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding",
                             "ValidatingWebhookConfiguration"):
            assert o["metadata"]["namespace"] == "kubeflow"
    (secret,) = [o for o in op.operator_objects() if o["kind"] == "Secret"]
    assert "data" not in secret  # filled by the operator at run time


def test_operator_subset_and_bad_input():
    only_pt = op.operator_objects(op.OperatorSettings(kinds=("PyTorchJob",)))
    assert [o["metadata"]["name"] for o in only_pt if o["kind"] == "CustomResourceDefinition"] == ["pytorchjobs.kubeflow.org"]
    dep = next(o for o in only_pt if o["kind"] == "Deployment")
    assert dep["spec"]["template"]["spec"]["containers"][0]["args"] == ["--enable-scheme=pytorchjob"]
    with pytest.raises(ValueError, match="unknown job kind"):
        op.operator_objects(op.OperatorSettings(kinds=("MPIJob",)))
    with pytest.raises(ValueError, match="only the pinned release v1.9.4"):
        op.operator_objects(op.OperatorSettings(version="v1.8.1"))


def test_upstream_files_are_pinned_at_the_release_tag():
    pin = MANIFESTS["training_operator"]
    keys = [*op.BASE_RESOURCES, op.WEBHOOK_MANIFESTS, op.WEBHOOK_PATCH, op.OVERLAY, op.OVERLAY_NAMESPACE,
            *op.CRD_ARTIFACTS.values()]
    for key in keys:
        art = upstream.artifact(key)
        assert (art.repo, art.tag) == (pin.repo, pin.tag) and art.path.startswith("manifests/"), key
    # the image is the tag the standalone overlay pins
    (overlay,) = upstream.read_yaml_docs(op.OVERLAY)
    (image,) = overlay["images"]
    assert IMAGES["training_operator"] == f"{image['name']}:{image['newTag']}"


def test_standalone_overlay_is_what_kustomize_builds():
    """The objects of `kubectl kustomize manifests/overlays/standalone` at v1.9.4 (kubectl v1.32.4), as
    recorded from its output: every namespaced object in kubeflow, the webhook renamed and pointed at
    the training-operator Service, the overlay's image tag, and the generated empty cert Secret."""
    objs = op.standalone_overlay("v1.9.4")
    ids = sorted((o["kind"], o["metadata"]["name"], o["metadata"].get("namespace")) for o in objs)
    assert ids == [
        ("ClusterRole", "training-operator", None),
        ("ClusterRoleBinding", "training-operator", None),
        ("Deployment", "training-operator", "kubeflow"),
        ("Namespace", "kubeflow", None),
        ("Secret", "training-operator-webhook-cert", "kubeflow"),
        ("Service", "training-operator", "kubeflow"),
        ("ServiceAccount", "training-operator", "kubeflow"),
        ("ValidatingWebhookConfiguration", "validator.training-operator.kubeflow.org", None),
    ]
    by_kind = {o["kind"]: o for o in objs}
    hook = by_kind["ValidatingWebhookConfiguration"]
    assert hook["metadata"]["labels"] == {"control-plane": "kubeflow-training-operator"}
    assert [w["name"] for w in hook["webhooks"]] == [
        f"validator.{k}.training-operator.kubeflow.org" for k in ("jaxjob", "paddlejob", "pytorchjob", "tfjob",
                                                                 "xgboostjob")]
    assert {(w["clientConfig"]["service"]["name"], w["clientConfig"]["service"]["namespace"])
            for w in hook["webhooks"]} == {("training-operator", "kubeflow")}
    assert by_kind["ClusterRoleBinding"]["subjects"] == [
        {"kind": "ServiceAccount", "name": "training-operator", "namespace": "kubeflow"}]
    (container,) = by_kind["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "ghcr.io/kubeflow/training-v1/training-operator:v1-93c5489"
    assert by_kind["Secret"] == {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "data": {},
                                 "metadata": {"name": "training-operator-webhook-cert", "namespace": "kubeflow"}}
    # fresh copies: a caller may change them without touching the next build
    by_kind["Deployment"]["spec"]["replicas"] = 7
    assert next(o for o in op.standalone_overlay("v1.9.4") if o["kind"] == "Deployment")["spec"]["replicas"] == 1


def test_apps_do_not_import_pulumi_or_the_component():
    """train.py and data_prep.py run in the training image, which has neither pulumi nor infra."""
    for script in ("train.py", "data_prep.py"):
        tree = ast.parse((REPO / "workloads" / "training" / script).read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not any(n.split(".")[0] in ("pulumi", "pulumi_kubernetes", "pulumi_aws", "infra") or n.endswith("component")
                       for n in names), (script, names)


def test_a_new_dataset_source_gets_its_own_checkpoint_folder():
    """Changing training.datasetSource must never resume (and re-publish) the old data's weights."""
    folders = {}
    for src in (None, "s3://my-bucket/sentiment-v2/", "hf://stanfordnlp/sst2"):
        raw = {"training": {"datasetSource": src}} if src else {}
        folders[src] = tc.plan(TrainingSettings.from_config(parse_config(raw, stack="dev"))).checkpoint_dir
    assert folders[None] == "/models/checkpoints/sentiment-train/sample"
    assert len(set(folders.values())) == 3
    assert all(f.startswith("/models/checkpoints/sentiment-train/") for f in folders.values())


def test_the_pod_monitor_scrapes_rank_0s_metrics_port():
    job = tc.build_objects(TrainingSettings.from_config(cfg_of()))["job"]
    master = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]
    pm = tc.trainer_pod_monitor()
    assert pm["metadata"]["namespace"] == "monitoring"  # next to Prometheus, selecting the workloads' namespace
    assert pm["spec"]["namespaceSelector"] == {"matchNames": [job["metadata"]["namespace"]]}
    selector = dict(pm["spec"]["selector"]["matchLabels"])
    assert selector.pop("training.kubeflow.org/job-role") == "master"  # the operator's label on rank 0
    assert selector.items() <= master["metadata"]["labels"].items()
    (endpoint,) = pm["spec"]["podMetricsEndpoints"]
    (port,) = [p for p in master["spec"]["containers"][0]["ports"] if p["name"] == endpoint["port"]]
    assert port["containerPort"] == tc.METRICS_PORT and endpoint["path"] == "/metrics"


def test_operator_rbac_is_narrowed_to_the_enabled_controllers():
    """Upstream's ClusterRole covers six job kinds, MPIJob's launcher RBAC and every Secret in the cluster;
    the platform keeps what PyTorchJob/TFJob and the cert rotator use, and the rotator's Secrets in a Role."""
    upstream_role = next(o for o in op.standalone_overlay("v1.9.4") if o["kind"] == "ClusterRole")
    upstream = {(g, r) for rule in upstream_role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert ("", "secrets") in upstream and ("kubeflow.org", "mpijobs") in upstream  # what was narrowed away
    objs = op.operator_objects(op.OperatorSettings())
    (role,) = [o for o in objs if o["kind"] == "ClusterRole"]
    granted = {(g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert granted <= upstream  # narrowed, never widened
    assert ("", "secrets") not in granted
    assert not {r for g, r in granted if g == "kubeflow.org"} - {
        "pytorchjobs", "pytorchjobs/status", "pytorchjobs/finalizers", "tfjobs", "tfjobs/status", "tfjobs/finalizers"}
    assert not granted & {("", "serviceaccounts"), ("", "configmaps"), ("", "pods/exec"),
                          ("rbac.authorization.k8s.io", "roles"), ("rbac.authorization.k8s.io", "rolebindings")}
    for needed in [("", "pods"), ("", "services"), ("", "events"), ("autoscaling", "horizontalpodautoscalers"),
                   ("admissionregistration.k8s.io", "validatingwebhookconfigurations"), ("kubeflow.org", "tfjobs")]:
        assert needed in granted, needed
    # without PyTorchJob, no HorizontalPodAutoscalers (only elastic PyTorchJobs create them)
    tf_only = op.operator_objects(op.OperatorSettings(kinds=("TFJob",)))
    (tf_role,) = [o for o in tf_only if o["kind"] == "ClusterRole"]
    assert not any("horizontalpodautoscalers" in rule["resources"] for rule in tf_role["rules"])
    (secrets,) = [o for o in objs if o["kind"] == "Role"]
    (binding,) = [o for o in objs if o["kind"] == "RoleBinding"]
    assert secrets["metadata"]["namespace"] == "kubeflow"
    assert secrets["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "update", "watch"]}]
    assert binding["roleRef"]["name"] == secrets["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "training-operator", "namespace": "kubeflow"}]
