"""The training workload component: data prep, then a PyTorchJob (or TFJob), plus optional periodic retraining.

Pulumi side only. The trainer (``train.py``) and data prep (``data_prep.py``) never import this
module, and this module never imports them: their command lines are built here as plain lists.

What it creates in the shared ``ml-workloads`` namespace. The namespace and the PVCs ``datasets``
and ``models`` come from ``workloads/shared.py``:

- ServiceAccounts ``sentiment-trainer`` and ``sentiment-data-prep``. Neither mounts an API token.
  For an ``s3://`` source, data prep gets an IAM role through an EKS Pod Identity association,
  allowed ``s3:GetObject`` under the prefix and ``s3:ListBucket`` for it.
- Job ``sentiment-data-prep``: ``data_prep.py`` fills ``/data/<dataset>`` on the ``datasets`` PVC,
  from the shipped sample, ``s3://`` or ``hf://``. Pulumi waits for it to complete, so training
  never starts on a half-written dataset. Re-running it is a no-op when the dataset is there.
- PyTorchJob ``sentiment-train`` (``kind: PyTorchJob``): 1 Master + N Workers running ``train.py``.
  The operator sets MASTER_ADDR/MASTER_PORT/WORLD_SIZE/RANK. With more than one GPU per
  replica, it runs under ``torchrun`` with ``nprocPerNode``.
  Or TFJob ``sentiment-train`` (``kind: TFJob``): PS + Worker replicas running *your* TensorFlow
  image and command. The operator gives every replica ``TF_CONFIG``.
- CronJob ``sentiment-retrain`` when ``training.schedule`` is set. Each run refreshes the dataset
  (an init container, ``--force``) and retrains in one pod, into a checkpoint folder of its own.

Every trainer pod gets:

- the label ``app.kubernetes.io/name: sentiment-trainer``;
- the ``metrics`` port on the replica that serves it (rank 0);
- ``nvidia.com/gpu`` and the GPU toleration on the GPU pool, or the CPU pool in dev;
- requests equal to limits (Guaranteed QoS) and the ``ml-training`` PriorityClass;
- ``restartPolicy: OnFailure`` and a grace period for the SIGTERM checkpoint;
- the restricted security context with a read-only root filesystem, ``/tmp`` and ``/dev/shm``
  as emptyDirs;
- both PVCs mounted.

The pure functions below build every object as a plain dict, so they are tested without Pulumi.
"""
from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Optional

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.conventions import TRAINING_PRIORITY_CLASS, checkov_annotations, pod_identity_trust
from infra.config import PlatformConfig, TrainingConfig, cpu_pool
from infra.versions import IMAGES
from workloads.shared import DATASETS_PVC, MODELS_PVC, NAMESPACE, standard_labels

if TYPE_CHECKING:  # pragma: no cover - typing only
    from components.images import WorkloadImages
    from infra.context import PlatformContext

TRAINER = "sentiment-trainer"  # pod label app.kubernetes.io/name (the monitoring PodMonitor selects it)
DATA_PREP = "sentiment-data-prep"
JOB_NAME = "sentiment-train"  # PyTorchJob/TFJob name: a DNS-1035 label (the operator's webhook checks)
CRON_NAME = "sentiment-retrain"
PRIORITY_CLASS = TRAINING_PRIORITY_CLASS  # created by the Karpenter/priority component; referred to by name
POOL_LABEL = "eks-ml-platform/pool"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
RUN_AS = 10001
METRICS_PORT = 9464  # train.py's default --metrics-port
PYTORCH_PORT = 23456  # the operator's default (port name pytorchjob-port)
TF_PORT = 2222  # the operator's default (port name tfjob-port)
DATA_MOUNT = "/data"
MODELS_MOUNT = "/models"
TMP_SIZE = "20Gi"  # HF caches (hub models/datasets) live under /tmp
DATA_PREP_RESOURCES = {"cpu": "1", "memory": "2Gi"}
# Only where an image is pinned by tag (a release image or your training.image / images.* reference):
# the images the stack builds are referenced by digest (components/images.py) and need no skip.
CHECKOV_SKIPS = {
    "CKV_K8S_43": "this image is pinned by tag (the release image in infra/versions.py, or a tag-pinned training.image "
                  "or images.trainer); the stack's own builds are digest-pinned (images.build: true)",
}


def image_skips(*images: str) -> dict[str, str]:
    """CHECKOV_SKIPS when one of the images is not pinned by digest, else nothing."""
    return {} if all("@sha256:" in i for i in images) else dict(CHECKOV_SKIPS)


def _meta(name: str, component: str, *, app: str = TRAINER, annotations: Optional[dict[str, str]] = None,
          namespace: str = NAMESPACE) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace,
                            "labels": standard_labels(app, **{"app.kubernetes.io/component": component})}
    if annotations:
        meta["annotations"] = dict(sorted(annotations.items()))
    return meta


# ---------------------------------------------------------------- derived settings
@dataclass(frozen=True)
class TrainingPlan:
    """Everything the manifests need, derived once from the config."""

    kind: str
    device: str
    pool: str
    cpu_pool: str
    image: str
    data_prep_image: str
    gpus: int
    cpu: str
    memory: str
    dataset: str
    data_dir: str
    checkpoint_dir: str
    nproc_per_node: int


def plan(cfg: PlatformConfig, images: Optional[Mapping[str, str]] = None) -> TrainingPlan:
    """``images``: the workload images by config key (components/images.py ``refs``); without them (pure
    tests, or a key the stack did not build) the release images of infra/versions.py. ``training.image``
    wins over both."""
    tr = cfg.training
    images = images or {}
    pool = tr.pool_for(cfg.pools)
    plain = cpu_pool(cfg.pools)
    if pool is None or plain is None:  # the config's cross-checks report this first
        raise ValueError("training needs its node pools; see PlatformConfig._training_problems")
    if tr.kind not in ("PyTorchJob", "TFJob"):
        raise ValueError(f"unknown training.kind {tr.kind!r}; use PyTorchJob or TFJob")
    if tr.kind == "TFJob" and not tr.image:
        raise ValueError("training.image: a TFJob needs your TensorFlow image (the sample trainer is PyTorch)")
    gpus = tr.gpus_per_worker if tr.device == "gpu" else 0
    cpu_image = images.get("trainer") or IMAGES["trainer"]
    default_image = (images.get("trainerGpu") or IMAGES["trainer_gpu"]) if tr.device == "gpu" else cpu_image
    return TrainingPlan(
        kind=tr.kind, device=tr.device, pool=pool.name, cpu_pool=plain.name, image=tr.image or default_image,
        data_prep_image=cpu_image, gpus=gpus, cpu=tr.cpu_per_replica, memory=tr.memory_per_replica,
        dataset=tr.dataset_name, data_dir=f"{DATA_MOUNT}/{tr.dataset_name}",
        # keyed by the dataset: a new training.datasetSource never resumes the old data's checkpoints
        checkpoint_dir=f"{MODELS_MOUNT}/checkpoints/{JOB_NAME}/{tr.dataset_name}", nproc_per_node=max(1, gpus),
    )


# ---------------------------------------------------------------- pod pieces
def container_security_context() -> dict[str, Any]:
    return {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
            "runAsUser": RUN_AS, "runAsGroup": RUN_AS, "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"}}


def pod_security_context() -> dict[str, Any]:
    # fsGroup makes the CephFS volumes writable by the non-root user; OnRootMismatch skips the
    # recursive chown once the volume root already matches (large datasets mount fast).
    return {"runAsNonRoot": True, "runAsUser": RUN_AS, "runAsGroup": RUN_AS, "fsGroup": RUN_AS,
            "fsGroupChangePolicy": "OnRootMismatch", "seccompProfile": {"type": "RuntimeDefault"}}


def resources(cpu: str, memory: str, gpus: int = 0) -> dict[str, Any]:
    """Requests equal to limits (Guaranteed QoS); GPUs only in both when asked for."""
    res: dict[str, Any] = {"cpu": cpu, "memory": memory}
    if gpus:
        res[GPU_RESOURCE] = str(gpus)
    return {"requests": dict(res), "limits": dict(res)}


def cache_env() -> list[dict[str, str]]:
    """Writable homes under /tmp (the root filesystem is read-only)."""
    return [{"name": "HOME", "value": "/tmp"}, {"name": "HF_HOME", "value": "/tmp/hf"},
            {"name": "XDG_CACHE_HOME", "value": "/tmp/.cache"}, {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"}]


def volumes(tr: TrainingConfig, *, with_models: bool = True, with_shm: bool = True) -> list[dict[str, Any]]:
    vols: list[dict[str, Any]] = [{"name": "data", "persistentVolumeClaim": {"claimName": DATASETS_PVC}}]
    if with_models:
        vols.append({"name": "models", "persistentVolumeClaim": {"claimName": MODELS_PVC}})
    vols.append({"name": "tmp", "emptyDir": {"sizeLimit": TMP_SIZE}})
    if with_shm:
        vols.append({"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": tr.shm_size}})
    return vols


def mounts(*, data_read_only: bool = True, with_models: bool = True, with_shm: bool = True) -> list[dict[str, Any]]:
    ms: list[dict[str, Any]] = [{"name": "data", "mountPath": DATA_MOUNT, "readOnly": data_read_only}]
    if with_models:
        ms.append({"name": "models", "mountPath": MODELS_MOUNT})
    ms.append({"name": "tmp", "mountPath": "/tmp"})
    if with_shm:
        ms.append({"name": "dshm", "mountPath": "/dev/shm"})
    return ms


def placement(p: TrainingPlan, *, gpu: bool) -> dict[str, Any]:
    """nodeSelector (and the GPU toleration) for a trainer replica or a CPU helper pod."""
    if gpu and p.device == "gpu":
        return {"nodeSelector": {POOL_LABEL: p.pool}, "tolerations": [dict(GPU_TOLERATION)]}
    return {"nodeSelector": {POOL_LABEL: p.pool if p.device == "cpu" else p.cpu_pool}}


def same_zone_affinity(job: str) -> dict[str, Any]:
    """Prefer one zone for all replicas of a job (collective traffic stays in the AZ: faster, no cross-AZ cost)."""
    return {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
        "weight": 100,
        "podAffinityTerm": {"topologyKey": "topology.kubernetes.io/zone",
                            "labelSelector": {"matchLabels": {"training.kubeflow.org/job-name": job}}},
    }]}}


def trainer_args(tr: TrainingConfig, p: TrainingPlan, *, checkpoint_dir: str) -> list[str]:
    """train.py's command line (DESIGN.md's trainer interface)."""
    args = ["--data", p.data_dir, "--model-dir", MODELS_MOUNT, "--checkpoint-dir", checkpoint_dir,
            "--epochs", str(tr.epochs), "--batch-size", str(tr.batch_size), "--lr", f"{tr.learning_rate:g}",
            "--checkpoint-every-steps", str(tr.checkpoint_every_steps), "--metrics-port", str(METRICS_PORT),
            "--device", "cuda" if p.device == "gpu" else "cpu"]
    if tr.max_samples:
        args += ["--max-samples", str(tr.max_samples)]
    if tr.base_model:
        args += ["--base-model", tr.base_model]
    return args


def trainer_command(tr: TrainingConfig, p: TrainingPlan) -> list[str]:
    if p.nproc_per_node > 1:
        # torchrun reads PET_NNODES/PET_NODE_RANK/PET_MASTER_ADDR/PET_MASTER_PORT/PET_NPROC_PER_NODE,
        # which the operator sets, and starts one process per GPU.
        return ["python", "-m", "torch.distributed.run", "workloads/training/train.py"]
    return ["python", "workloads/training/train.py"]


def workload_env(p: TrainingPlan, checkpoint_dir: str) -> list[dict[str, str]]:
    """The contract for any trainer image (the sample's or yours): where data, models and checkpoints are."""
    return [{"name": "DATA_DIR", "value": p.data_dir}, {"name": "MODEL_DIR", "value": MODELS_MOUNT},
            {"name": "CHECKPOINT_DIR", "value": checkpoint_dir}, *cache_env()]


def replica_template(cfg: PlatformConfig, p: TrainingPlan, *, role: str, container: str, ports: list[dict[str, Any]],
                     command: list[str], args: list[str], gpu: bool, env: list[dict[str, str]]) -> dict[str, Any]:
    """One replica's pod template (PyTorchJob Master/Worker, TFJob PS/Worker)."""
    tr = cfg.training
    return {
        "metadata": {"labels": standard_labels(TRAINER, **{"app.kubernetes.io/component": role})},
        "spec": {
            **placement(p, gpu=gpu),
            "affinity": same_zone_affinity(JOB_NAME),
            "priorityClassName": PRIORITY_CLASS,
            "serviceAccountName": TRAINER,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": tr.termination_grace_period_seconds,
            "securityContext": pod_security_context(),
            "containers": [{
                "name": container,
                "image": p.image,
                "imagePullPolicy": "Always",
                **({"command": command} if command else {}),
                **({"args": args} if args else {}),
                "env": env,
                "ports": ports,
                "resources": resources(p.cpu, p.memory, p.gpus if gpu else 0),
                "securityContext": container_security_context(),
                "volumeMounts": mounts(),
            }],
            "volumes": volumes(tr),
        },
    }


# ---------------------------------------------------------------- the objects
def service_accounts() -> dict[str, dict[str, Any]]:
    return {
        name: {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(name, component, app=name),
               "automountServiceAccountToken": False}
        for name, component in ((TRAINER, "trainer"), (DATA_PREP, "data-prep"))
    }


def data_prep_env(tr: TrainingConfig, *, out: str, force: bool = False) -> list[dict[str, str]]:
    """data_prep.py reads every option from the environment (DATA_SOURCE, S3_URI, HF_DATASET, ...)."""
    src = tr.dataset_source or ""
    ds = tr.dataset
    env = {"DATA_DIR": out, "DATA_SOURCE": "sample"}
    if src.startswith("s3://"):
        env.update(DATA_SOURCE="s3", S3_URI=src)
    elif src.startswith("hf://"):
        env.update(DATA_SOURCE="hf", HF_DATASET=src[len("hf://"):])
        if ds.config:
            env["HF_CONFIG"] = ds.config
        if ds.revision:
            env["HF_REVISION"] = ds.revision
        if ds.train_split:
            env["TRAIN_SPLIT"] = ds.train_split
        if ds.eval_split:
            env["EVAL_SPLIT"] = ds.eval_split
    if src:
        env.update(TEXT_COLUMN=ds.text_column, LABEL_COLUMN=ds.label_column)
    if force:
        env["FORCE"] = "1"
    return [{"name": k, "value": v} for k, v in env.items()] + cache_env()


def data_prep_container(tr: TrainingConfig, p: TrainingPlan, *, name: str, force: bool) -> dict[str, Any]:
    return {
        "name": name,
        "image": p.data_prep_image,
        "imagePullPolicy": "Always",
        "command": ["python", "workloads/training/data_prep.py"],
        "env": data_prep_env(tr, out=p.data_dir, force=force),
        "resources": resources(DATA_PREP_RESOURCES["cpu"], DATA_PREP_RESOURCES["memory"]),
        "securityContext": container_security_context(),
        "volumeMounts": mounts(data_read_only=False, with_models=False, with_shm=False),
    }


def data_prep_job(cfg: PlatformConfig, p: TrainingPlan) -> dict[str, Any]:
    """The Job that fills /data/<dataset> (idempotent: a dataset already there is kept)."""
    tr = cfg.training
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": _meta(DATA_PREP, "data-prep", app=DATA_PREP,
                          annotations=checkov_annotations(image_skips(p.data_prep_image))),
        "spec": {
            "backoffLimit": 4,
            "activeDeadlineSeconds": 3600,
            "template": {
                "metadata": {"labels": standard_labels(DATA_PREP, **{"app.kubernetes.io/component": "data-prep"})},
                "spec": {
                    **placement(p, gpu=False),
                    "priorityClassName": PRIORITY_CLASS,
                    "serviceAccountName": DATA_PREP,
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "restartPolicy": "OnFailure",
                    "securityContext": pod_security_context(),
                    "containers": [data_prep_container(tr, p, name="data-prep", force=False)],
                    "volumes": volumes(tr, with_models=False, with_shm=False),
                },
            },
        },
    }


def pytorchjob(cfg: PlatformConfig, p: TrainingPlan) -> dict[str, Any]:
    """1 Master + N Workers of train.py (or of your own PyTorch command)."""
    tr = cfg.training
    custom = bool(tr.command)
    command = list(tr.command) if custom else trainer_command(tr, p)
    args = [] if custom else trainer_args(tr, p, checkpoint_dir=p.checkpoint_dir)
    env = workload_env(p, p.checkpoint_dir)
    comm = {"name": "pytorchjob-port", "containerPort": PYTORCH_PORT, "protocol": "TCP"}
    metrics = {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}
    replicas = {
        # rank 0 (the Master) serves the trainer's metrics; the workers do not, so they declare no metrics port
        "Master": (1, [comm, metrics]),
        "Worker": (tr.workers, [comm]),
    }
    spec: dict[str, Any] = {
        "runPolicy": {"cleanPodPolicy": "None", "backoffLimit": tr.backoff_limit},
        "pytorchReplicaSpecs": {
            role: {"replicas": n, "restartPolicy": "OnFailure",
                   "template": replica_template(cfg, p, role=role.lower(), container="pytorch", ports=ports,
                                                command=command, args=args, gpu=True, env=env)}
            for role, (n, ports) in replicas.items()
        },
    }
    if p.nproc_per_node > 1 and not custom:
        spec["nprocPerNode"] = str(p.nproc_per_node)
    return {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob",
            "metadata": _meta(JOB_NAME, "training-job"), "spec": spec}


def tfjob(cfg: PlatformConfig, p: TrainingPlan) -> dict[str, Any]:
    """PS + Worker replicas of your TensorFlow image; the operator sets TF_CONFIG in each."""
    tr = cfg.training
    env = workload_env(p, p.checkpoint_dir)
    port = {"name": "tfjob-port", "containerPort": TF_PORT, "protocol": "TCP"}
    roles: dict[str, tuple[int, bool]] = {}
    if tr.parameter_servers:
        roles["PS"] = (tr.parameter_servers, False)  # parameter servers hold variables: CPU pool, no GPU
    roles["Worker"] = (tr.workers, True)
    return {
        "apiVersion": "kubeflow.org/v1", "kind": "TFJob",
        "metadata": _meta(JOB_NAME, "training-job"),
        "spec": {
            "runPolicy": {"cleanPodPolicy": "None", "backoffLimit": tr.backoff_limit},
            "tfReplicaSpecs": {
                role: {"replicas": n, "restartPolicy": "OnFailure",
                       "template": replica_template(cfg, p, role=role.lower(), container="tensorflow", ports=[port],
                                                    command=list(tr.command), args=[], gpu=gpu, env=env)}
                for role, (n, gpu) in roles.items()
            },
        },
    }


def retrain_cronjob(cfg: PlatformConfig, p: TrainingPlan) -> dict[str, Any]:
    """Periodic retraining: refresh the dataset, then train in one pod into a per-run checkpoint folder."""
    tr = cfg.training
    # Each run is a new Job; its name (a pod label) keys the checkpoint folder, so a retried pod
    # resumes its own run and never an earlier, finished one.
    ckpt = f"{MODELS_MOUNT}/checkpoints/$(JOB_NAME)"
    tmpl = replica_template(cfg, p, role="retrain", container="trainer",
                            ports=[{"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}],
                            command=["python", "workloads/training/train.py"],
                            args=trainer_args(tr, p, checkpoint_dir=ckpt), gpu=True,
                            env=[{"name": "JOB_NAME", "valueFrom": {"fieldRef": {
                                "fieldPath": "metadata.labels['batch.kubernetes.io/job-name']"}}},
                                 *workload_env(p, ckpt)])
    # single process: one GPU is all train.py uses without torchrun
    tmpl["spec"]["containers"][0]["resources"] = resources(p.cpu, p.memory, 1 if p.device == "gpu" else 0)
    tmpl["spec"].pop("affinity")
    tmpl["spec"]["serviceAccountName"] = DATA_PREP  # the init container may need the S3 Pod Identity
    tmpl["spec"]["restartPolicy"] = "OnFailure"
    # the init container refreshes the dataset (it mounts /data read-write; the trainer keeps it read-only)
    tmpl["spec"]["initContainers"] = [data_prep_container(tr, p, name="data-prep", force=True)]
    tmpl["spec"]["volumes"] = volumes(tr)
    spec: dict[str, Any] = {
        "schedule": tr.schedule,
        "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": 3600,
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 3,
        "jobTemplate": {"spec": {"backoffLimit": tr.backoff_limit, "template": tmpl}},
    }
    if tr.time_zone:
        spec["timeZone"] = tr.time_zone
    return {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": _meta(CRON_NAME, "retrain",
                              annotations=checkov_annotations(image_skips(p.image, p.data_prep_image))), "spec": spec}


PROMETHEUS_PEER = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                   "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}
DNS_EGRESS = {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                      "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
              "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}
HTTPS_EGRESS = {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 443, "protocol": "TCP"}]}
# EKS Pod Identity: the node agent serves credentials on this link-local address
POD_IDENTITY_EGRESS = {"to": [{"ipBlock": {"cidr": "169.254.170.23/32"}}], "ports": [{"port": 80, "protocol": "TCP"}]}


def _netpol(name: str, app: str, selector: dict[str, str], ingress: list[dict[str, Any]],
            egress: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": _meta(name, "network-policy", app=app),
            "spec": {"podSelector": {"matchLabels": selector}, "policyTypes": ["Ingress", "Egress"],
                     "ingress": ingress, "egress": egress}}


def external_egress(tr: TrainingConfig) -> list[dict[str, Any]]:
    """What data prep needs beyond DNS: HTTPS to S3 / the hub, and Pod Identity credentials for S3."""
    src = tr.dataset_source or ""
    if src.startswith("s3://"):
        return [HTTPS_EGRESS, POD_IDENTITY_EGRESS]
    if src.startswith("hf://"):
        return [HTTPS_EGRESS]
    return []


def network_policies(cfg: PlatformConfig) -> dict[str, dict[str, Any]]:
    """Default deny, then: replicas talk to each other (rendezvous + gloo/NCCL use dynamic ports),
    Prometheus scrapes ``metrics``, DNS; HTTPS out only where something must be downloaded."""
    tr = cfg.training
    peers = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": TRAINER}}}
    trainer_egress = [{"to": [peers]}, DNS_EGRESS]
    # a hub base model, or your own image (TFJob / custom command) may read from S3, GCS or the hub
    if tr.base_model or tr.kind == "TFJob" or tr.command:
        trainer_egress.append(HTTPS_EGRESS)
    pols = {
        "netpol-trainer": _netpol(TRAINER, TRAINER, {"app.kubernetes.io/name": TRAINER},
                                  [{"from": [peers]},
                                   {"from": [PROMETHEUS_PEER], "ports": [{"port": METRICS_PORT, "protocol": "TCP"}]}],
                                  trainer_egress),
        "netpol-data-prep": _netpol(DATA_PREP, DATA_PREP, {"app.kubernetes.io/name": DATA_PREP}, [],
                                    [DNS_EGRESS, *external_egress(tr)]),
    }
    if tr.schedule and external_egress(tr):
        pols["netpol-retrain"] = _netpol(CRON_NAME, TRAINER, {"app.kubernetes.io/name": TRAINER,
                                                              "app.kubernetes.io/component": "retrain"},
                                         [], external_egress(tr))
    return pols


def build_objects(cfg: PlatformConfig, images: Optional[Mapping[str, str]] = None) -> dict[str, dict[str, Any]]:
    """Every Kubernetes object of the training workload, keyed by role (pure; no Pulumi). ``images``: see plan."""
    p = plan(cfg, images)
    objs: dict[str, dict[str, Any]] = {f"sa-{k}": v for k, v in service_accounts().items()}
    objs["data-prep"] = data_prep_job(cfg, p)
    objs["job"] = pytorchjob(cfg, p) if p.kind == "PyTorchJob" else tfjob(cfg, p)
    if cfg.training.schedule:
        objs["cronjob"] = retrain_cronjob(cfg, p)
    objs.update(network_policies(cfg))
    return objs


def s3_read_policy(uri: str) -> str:
    """Pure: least-privilege S3 read for data prep (GetObject under the prefix; ListBucket so a
    missing eval.jsonl reads as 404 rather than 403)."""
    bucket, _, prefix = uri[len("s3://"):].partition("/")
    prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "ReadDataset", "Effect": "Allow", "Action": ["s3:GetObject"],
         "Resource": [f"arn:aws:s3:::{bucket}/{prefix}*"]},
        {"Sid": "ListDatasetPrefix", "Effect": "Allow", "Action": ["s3:ListBucket"],
         "Resource": [f"arn:aws:s3:::{bucket}"], "Condition": {"StringLike": {"s3:prefix": [f"{prefix}*"]}}},
    ]}, sort_keys=True)


def describe(cfg: PlatformConfig) -> str:
    """One line for humans: what will run where."""
    p = plan(cfg)
    tr = cfg.training
    roles = (f"1 master + {tr.workers} worker(s)" if p.kind == "PyTorchJob"
             else f"{tr.parameter_servers} PS + {tr.workers} worker(s)")
    gpu = f", {p.gpus} GPU(s) each" if p.gpus else ""
    return f"{p.kind} {JOB_NAME}: {roles} on pool {p.pool}{gpu}; data {p.data_dir}; image {shlex.quote(p.image)}"


# ---------------------------------------------------------------- the component
@dataclass(frozen=True)
class TrainingWorkloadArgs:
    ctx: "PlatformContext"
    """Config, providers, the cluster name (for the Pod Identity association)."""
    namespace: k8s.core.v1.Namespace
    """The shared ``ml-workloads`` Namespace (workloads/shared.py)."""
    datasets_pvc: k8s.core.v1.PersistentVolumeClaim
    models_pvc: k8s.core.v1.PersistentVolumeClaim
    operator_ready: tuple[pulumi.Resource, ...] = ()
    """The training operator's CRDs, webhook and Deployment: jobs are created after them."""
    priority_classes: tuple[pulumi.Resource, ...] = ()
    """The ``ml-training`` PriorityClass (components/priority.py): pods are rejected without it."""
    images: Optional["WorkloadImages"] = None
    """The workload images (components/images.py): the jobs run its ``refs`` (by digest when built).
    ``None``: the release images of infra/versions.py."""
    data_prep_timeout: str = "30m"
    """How long Pulumi waits for the data-prep Job (an S3/hub download on a fresh node)."""


def _job_image(job: dict[str, Any]) -> str:
    specs = job["spec"].get("pytorchReplicaSpecs") or job["spec"].get("tfReplicaSpecs")
    return next(iter(specs.values()))["template"]["spec"]["containers"][0]["image"]


class TrainingWorkload(pulumi.ComponentResource):
    """Data prep, the PyTorchJob/TFJob and the optional retraining CronJob (see the module docstring)."""

    job_name: pulumi.Output[str]
    job_kind: str
    data_dir: str

    def __init__(self, name: str, args: TrainingWorkloadArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("eks-ml-platform:training:TrainingWorkload", name, None, opts)
        cfg = args.ctx.cfg
        objs = build_objects(cfg)  # the static shape (which objects exist, names)
        p = plan(cfg)
        # The pods' objects with the built images' references (Outputs: by digest once pushed). The pure
        # builders take plain strings, so they run again inside the apply.
        refs = dict(args.images.refs) if args.images is not None else {}
        live: Optional[pulumi.Output[dict[str, dict[str, Any]]]] = (
            pulumi.Output.all(**refs).apply(lambda r: build_objects(cfg, r)) if refs else None)

        def part(key: str, field_: str) -> Any:
            return live.apply(lambda o: o[key][field_]) if live is not None else objs[key][field_]

        base_deps = [args.namespace, args.datasets_pvc, args.models_pvc, *args.priority_classes]
        child = pulumi.ResourceOptions(parent=self, depends_on=base_deps)
        self.resources: dict[str, pulumi.Resource] = {}
        for key in ("sa-" + TRAINER, "sa-" + DATA_PREP):
            sa = objs[key]
            self.resources[key] = k8s.core.v1.ServiceAccount(
                f"{name}-{key}", metadata=sa["metadata"], automount_service_account_token=False, opts=child)

        # network policies first, so no pod ever runs unrestricted
        netpols = []
        for key in sorted(k for k in objs if k.startswith("netpol-")):
            np_ = objs[key]
            self.resources[key] = k8s.networking.v1.NetworkPolicy(
                f"{name}-{key}", metadata=np_["metadata"], spec=np_["spec"], opts=child)
            netpols.append(self.resources[key])
        prep_deps: list[pulumi.Resource] = [*base_deps, self.resources["sa-" + DATA_PREP], *netpols]
        src = cfg.training.dataset_source or ""
        if src.startswith("s3://"):
            role = aws.iam.Role(
                f"{name}-data-prep-role", assume_role_policy=pod_identity_trust(),
                description="eks-ml-platform data prep: read the training dataset from S3",
                opts=pulumi.ResourceOptions(parent=self))
            policy = aws.iam.RolePolicy(f"{name}-data-prep-s3", role=role.id, policy=s3_read_policy(src),
                                        opts=pulumi.ResourceOptions(parent=self))
            assoc = aws.eks.PodIdentityAssociation(
                f"{name}-data-prep-identity", cluster_name=args.ctx.cluster.name, namespace=NAMESPACE,
                service_account=DATA_PREP, role_arn=role.arn,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[*args.ctx.cluster_ready]))
            self.resources.update({"data-prep-role": role, "data-prep-s3": policy, "data-prep-identity": assoc})
            prep_deps += [policy, assoc]
        self.data_prep = k8s.batch.v1.Job(
            f"{name}-data-prep", metadata=part("data-prep", "metadata"), spec=part("data-prep", "spec"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=prep_deps, delete_before_replace=True,
                                        custom_timeouts=pulumi.CustomTimeouts(create=args.data_prep_timeout,
                                                                              update=args.data_prep_timeout)))
        self.resources["data-prep"] = self.data_prep

        tj = objs["job"]
        # A finished job ignores spec updates: replace it (same name, so delete first) when its spec
        # changes; the new run resumes from the same checkpoint folder (one per dataset).
        self.job = k8s.apiextensions.CustomResource(
            f"{name}-{tj['kind'].lower()}", api_version=tj["apiVersion"], kind=tj["kind"], metadata=part("job", "metadata"),
            spec=part("job", "spec"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*base_deps, *args.operator_ready, self.data_prep,
                                                                 self.resources["sa-" + TRAINER], *netpols],
                                        replace_on_changes=["spec"], delete_before_replace=True))
        self.resources["job"] = self.job
        if "cronjob" in objs:
            self.resources["cronjob"] = k8s.batch.v1.CronJob(
                f"{name}-cronjob", metadata=part("cronjob", "metadata"), spec=part("cronjob", "spec"),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[*prep_deps, self.data_prep]))

        self.job_kind = p.kind
        self.data_dir = p.data_dir
        self.job_name = pulumi.Output.from_input(JOB_NAME)
        self.register_outputs({
            "jobKind": p.kind, "jobName": self.job_name, "namespace": NAMESPACE, "dataDir": p.data_dir,
            "image": (live.apply(lambda o: _job_image(o["job"])) if live is not None else p.image), "pool": p.pool, "schedule": cfg.training.schedule or "",
        })
