"""The training workload's pod pieces: the plan derived from the config, and what every pod shares.

Pure (plain dicts, no Pulumi resources): ``manifests.py`` assembles the Jobs, the PyTorchJob/TFJob
and the CronJob from these, and ``component.py`` turns them into resources. The trainer
(``train.py``) and data prep (``data_prep.py``) never import this module, and this module never
imports them: data prep's settings are environment variables, and the trainer's command line
comes from ``args.py``'s ``TrainArgs`` (the flags train.py declares).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

from infra.conventions import TRAINING_PRIORITY_CLASS
from infra.config import TrainingConfig, cpu_pool
from infra.versions import IMAGES
from workloads.shared import DATASETS_PVC, MODELS_PVC, standard_labels
from workloads.training.args import COMPONENT_FIELDS, TrainArgs
from workloads.training.metrics import DEFAULT_METRICS_PORT
from workloads.training.settings import TrainingSettings

TRAINER = "sentiment-trainer"  # pod label app.kubernetes.io/name (the trainer PodMonitor selects it)
DATA_PREP = "sentiment-data-prep"
JOB_NAME = "sentiment-train"  # PyTorchJob/TFJob name: a DNS-1035 label (the operator's webhook checks)
CRON_NAME = "sentiment-retrain"
PRIORITY_CLASS = TRAINING_PRIORITY_CLASS  # created by the Karpenter/priority component; referred to by name
POOL_LABEL = "eks-ml-platform/pool"
GPU_RESOURCE = "nvidia.com/gpu"
EFA_RESOURCE = "vpc.amazonaws.com/efa"  # the EFA device plugin's resource (Karpenter v1 labels.go ResourceEFA)
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
RUN_AS = 10001
METRICS_PORT = DEFAULT_METRICS_PORT  # train.py's default --metrics-port
PYTORCH_PORT = 23456  # the operator's default (port name pytorchjob-port)
TF_PORT = 2222  # the operator's default (port name tfjob-port)
DATA_MOUNT = "/data"
MODELS_MOUNT = "/models"
TMP_SIZE = "20Gi"  # HF caches (hub models/datasets) live under /tmp
DATA_PREP_RESOURCES = {"cpu": "1", "memory": "2Gi"}


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
    efa: int = 0  # EFA interfaces per GPU worker (the training pool has efa: true), else 0


def plan(s: TrainingSettings, images: Optional[Mapping[str, str]] = None) -> TrainingPlan:
    """``images``: the workload images by config key (components/images.py ``refs``); without them (pure
    tests, or a key the stack did not build) the release images of infra/versions.py. ``training.image``
    wins over both."""
    tr = s.training
    images = images or {}
    pool = tr.pool_for(s.pools)
    plain = cpu_pool(s.pools)
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
        efa=pool.efa_per_worker(gpus) if gpus else 0,
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


def resources(cpu: str, memory: str, gpus: int = 0, efa: int = 0) -> dict[str, Any]:
    """Requests equal to limits (Guaranteed QoS); GPUs and EFA interfaces only in both when asked for."""
    res: dict[str, Any] = {"cpu": cpu, "memory": memory}
    if gpus:
        res[GPU_RESOURCE] = str(gpus)
    if efa:
        res[EFA_RESOURCE] = str(efa)
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


def same_zone_affinity(job: str, *, required: bool = False) -> dict[str, Any]:
    """Prefer one zone for all replicas of a job (collective traffic stays in the AZ: faster, no cross-AZ cost);
    ``required`` with EFA, whose OS-bypass traffic never leaves its subnet (one private subnet per AZ here)."""
    term = {"topologyKey": "topology.kubernetes.io/zone",
            "labelSelector": {"matchLabels": {"training.kubeflow.org/job-name": job}}}
    if required:
        return {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}
    return {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": term}]}}


def efa_env(p: TrainingPlan) -> list[dict[str, str]]:
    """NCCL over EFA (libfabric's efa provider through the aws-ofi-nccl plugin the CUDA image must ship), after
    AWS's EKS EFA guide and aws-samples/awsome-distributed-training: RDMA reads (p4d, p5, p5e), fork-safe
    libfabric (DataLoader workers fork), NCCL's bootstrap socket off loopback and docker bridges."""
    if not p.efa:
        return []
    env = {"FI_PROVIDER": "efa", "FI_EFA_USE_DEVICE_RDMA": "1", "FI_EFA_FORK_SAFE": "1",
           "NCCL_SOCKET_IFNAME": "^lo,docker"}
    return [{"name": k, "value": v} for k, v in env.items()]


def trainer_args(tr: TrainingConfig, p: TrainingPlan, *, checkpoint_dir: str) -> list[str]:
    """train.py's command line, spelled by the flags train.py declares (``args.py``'s ``TrainArgs``)."""
    return TrainArgs(
        data=Path(p.data_dir), model_dir=Path(MODELS_MOUNT), checkpoint_dir=Path(checkpoint_dir), epochs=tr.epochs,
        batch_size=tr.batch_size, lr=tr.learning_rate, checkpoint_every_steps=tr.checkpoint_every_steps,
        metrics_port=METRICS_PORT, device="cuda" if p.device == "gpu" else "cpu",
        max_samples=tr.max_samples or None, base_model=tr.base_model or None,
        min_accuracy=tr.promotion.min_accuracy, max_regression=tr.promotion.max_regression,
    ).to_argv(COMPONENT_FIELDS)


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


def replica_template(s: TrainingSettings, p: TrainingPlan, *, role: str, container: str, ports: list[dict[str, Any]],
                     command: list[str], args: list[str], gpu: bool, env: list[dict[str, str]]) -> dict[str, Any]:
    """One replica's pod template (PyTorchJob Master/Worker, TFJob PS/Worker)."""
    tr = s.training
    return {
        "metadata": {"labels": standard_labels(TRAINER, **{"app.kubernetes.io/component": role})},
        "spec": {
            **placement(p, gpu=gpu),
            "affinity": same_zone_affinity(JOB_NAME, required=bool(gpu and p.efa)),
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
                "env": [*env, *efa_env(p)] if gpu else env,
                "ports": ports,
                "resources": resources(p.cpu, p.memory, p.gpus if gpu else 0, p.efa if gpu else 0),
                "securityContext": container_security_context(),
                "volumeMounts": mounts(),
            }],
            "volumes": volumes(tr),
        },
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
