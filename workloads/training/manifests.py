"""The training workload's Kubernetes objects: data prep, then a PyTorchJob (or TFJob), plus optional retraining.

Pure: every object is a plain dict built from the config, so it is tested without Pulumi;
``component.py`` (``TrainingWorkload``) only turns them into resources. The pod pieces they share
(the plan, security contexts, volumes, the trainer's command line) are in ``pods.py``.

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
- NetworkPolicies (default deny, then what each pod needs), and with monitoring the PodMonitor
  ``sentiment-trainer`` in ``monitoring``: rank 0's ``metrics`` port.
- With Kueue (components/kueue), the data-prep Job, the training job and each retraining Job carry
  ``kueue.x-k8s.io/queue-name: training`` and a ``kueue.x-k8s.io/priority-class`` (``ml-training``; the
  retraining Jobs ``ml-training-urgent``). Kueue's webhook creates them suspended; they start once all of
  their pods fit the ClusterQueue's quota (the node pools' limits).

Every trainer pod gets:

- the label ``app.kubernetes.io/name: sentiment-trainer``;
- the ``metrics`` port on the replica that serves it (rank 0);
- ``nvidia.com/gpu`` and the GPU toleration on the GPU pool, or the CPU pool in dev;
- requests equal to limits (Guaranteed QoS) and the ``ml-training`` PriorityClass;
- ``restartPolicy: OnFailure`` and a grace period for the SIGTERM checkpoint;
- the restricted security context with a read-only root filesystem, ``/tmp`` and ``/dev/shm``
  as emptyDirs;
- both PVCs mounted.
"""
from __future__ import annotations

import json
import shlex
from typing import Any, Mapping, Optional

from components.netpol import DNS_EGRESS, HTTPS_EGRESS, allow, network_policy, prometheus_peer, tcp
from components.scrape import pod_monitor
from infra.conventions import TRAINING_PRIORITY_CLASS, checkov_annotations
from infra.config import LOCAL_QUEUE, PRIORITY_LABEL, QUEUE_LABEL, URGENT_PRIORITY_CLASS, TrainingConfig
from workloads.shared import NAMESPACE, standard_labels
from workloads.training.pods import (
    CRON_NAME, DATA_PREP, JOB_NAME, METRICS_PORT, MODELS_MOUNT, PRIORITY_CLASS, PYTORCH_PORT, TF_PORT, TRAINER,
    TrainingPlan, data_prep_container, placement, plan, pod_security_context, replica_template, resources,
    trainer_args, trainer_command, volumes, workload_env)
from workloads.training.settings import TrainingSettings

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


def queue_labels(s: TrainingSettings, priority: str = TRAINING_PRIORITY_CLASS) -> dict[str, str]:
    """Kueue's labels (none without Kueue): the LocalQueue the job waits in and its WorkloadPriorityClass."""
    return {QUEUE_LABEL: LOCAL_QUEUE, PRIORITY_LABEL: priority} if s.kueue else {}


def _queued(obj: dict[str, Any], s: TrainingSettings) -> dict[str, Any]:
    obj["metadata"]["labels"].update(queue_labels(s))
    return obj


# ---------------------------------------------------------------- the objects
def service_accounts() -> dict[str, dict[str, Any]]:
    return {
        name: {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(name, component, app=name),
               "automountServiceAccountToken": False}
        for name, component in ((TRAINER, "trainer"), (DATA_PREP, "data-prep"))
    }


def data_prep_job(s: TrainingSettings, p: TrainingPlan) -> dict[str, Any]:
    """The Job that fills /data/<dataset> (idempotent: a dataset already there is kept)."""
    tr = s.training
    return _queued({
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
    }, s)


def pytorchjob(s: TrainingSettings, p: TrainingPlan) -> dict[str, Any]:
    """1 Master + N Workers of train.py (or of your own PyTorch command)."""
    tr = s.training
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
                   "template": replica_template(s, p, role=role.lower(), container="pytorch", ports=ports,
                                                command=command, args=args, gpu=True, env=env)}
            for role, (n, ports) in replicas.items()
        },
    }
    if p.nproc_per_node > 1 and not custom:
        spec["nprocPerNode"] = str(p.nproc_per_node)
    return _queued({"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob",
                    "metadata": _meta(JOB_NAME, "training-job"), "spec": spec}, s)


def tfjob(s: TrainingSettings, p: TrainingPlan) -> dict[str, Any]:
    """PS + Worker replicas of your TensorFlow image; the operator sets TF_CONFIG in each."""
    tr = s.training
    env = workload_env(p, p.checkpoint_dir)
    port = {"name": "tfjob-port", "containerPort": TF_PORT, "protocol": "TCP"}
    roles: dict[str, tuple[int, bool]] = {}
    if tr.parameter_servers:
        roles["PS"] = (tr.parameter_servers, False)  # parameter servers hold variables: CPU pool, no GPU
    roles["Worker"] = (tr.workers, True)
    return _queued({
        "apiVersion": "kubeflow.org/v1", "kind": "TFJob",
        "metadata": _meta(JOB_NAME, "training-job"),
        "spec": {
            "runPolicy": {"cleanPodPolicy": "None", "backoffLimit": tr.backoff_limit},
            "tfReplicaSpecs": {
                role: {"replicas": n, "restartPolicy": "OnFailure",
                       "template": replica_template(s, p, role=role.lower(), container="tensorflow", ports=[port],
                                                    command=list(tr.command), args=[], gpu=gpu, env=env)}
                for role, (n, gpu) in roles.items()
            },
        },
    }, s)


def retrain_cronjob(s: TrainingSettings, p: TrainingPlan) -> dict[str, Any]:
    """Periodic retraining: refresh the dataset, then train in one pod into a per-run checkpoint folder."""
    tr = s.training
    # Each run is a new Job; its name (a pod label) keys the checkpoint folder, so a retried pod
    # resumes its own run and never an earlier, finished one.
    ckpt = f"{MODELS_MOUNT}/checkpoints/$(JOB_NAME)"
    tmpl = replica_template(s, p, role="retrain", container="trainer",
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
    if s.kueue:  # each run's Job queues in its own right, ahead of ad-hoc training (kueue.sigs.k8s.io "Run a CronJob")
        spec["jobTemplate"]["metadata"] = {"labels": queue_labels(s, URGENT_PRIORITY_CLASS)}
    if tr.time_zone:
        spec["timeZone"] = tr.time_zone
    return {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": _meta(CRON_NAME, "retrain",
                              annotations=checkov_annotations(image_skips(p.image, p.data_prep_image))), "spec": spec}


# EKS Pod Identity: the node agent serves credentials on this link-local address
POD_IDENTITY_EGRESS = {"to": [{"ipBlock": {"cidr": "169.254.170.23/32"}}], "ports": [{"port": 80, "protocol": "TCP"}]}


def _netpol(name: str, app: str, selector: dict[str, str], ingress: list[dict[str, Any]],
            egress: list[dict[str, Any]]) -> dict[str, Any]:
    return network_policy(_meta(name, "network-policy", app=app), {"matchLabels": selector}, ingress, egress)


def external_egress(tr: TrainingConfig) -> list[dict[str, Any]]:
    """What data prep needs beyond DNS: HTTPS to S3 / the hub, and Pod Identity credentials for S3."""
    src = tr.dataset_source or ""
    if src.startswith("s3://"):
        return [HTTPS_EGRESS, POD_IDENTITY_EGRESS]
    if src.startswith("hf://"):
        return [HTTPS_EGRESS]
    return []


def network_policies(s: TrainingSettings) -> dict[str, dict[str, Any]]:
    """Default deny, then: replicas talk to each other, Prometheus scrapes ``metrics``, DNS; HTTPS out only
    where something must be downloaded.

    Replica to replica is every port on purpose: the rendezvous (``pytorchjob-port``/``tfjob-port``) is
    fixed, but gloo and NCCL connect on ports they pick at run time. The peers are the trainer pods of
    this namespace only; nothing else reaches them but Prometheus, on ``metrics``."""
    tr = s.training
    peers = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": TRAINER}}}
    trainer_egress = [{"to": [peers]}, DNS_EGRESS]
    # a hub base model, or your own image (TFJob / custom command) may read from S3, GCS or the hub
    if tr.base_model or tr.kind == "TFJob" or tr.command:
        trainer_egress.append(HTTPS_EGRESS)
    pols = {
        "netpol-trainer": _netpol(TRAINER, TRAINER, {"app.kubernetes.io/name": TRAINER},
                                  [allow([peers]), allow([prometheus_peer()], tcp(METRICS_PORT))],
                                  trainer_egress),
        "netpol-data-prep": _netpol(DATA_PREP, DATA_PREP, {"app.kubernetes.io/name": DATA_PREP}, [],
                                    [DNS_EGRESS, *external_egress(tr)]),
    }
    if tr.schedule and external_egress(tr):
        pols["netpol-retrain"] = _netpol(CRON_NAME, TRAINER, {"app.kubernetes.io/name": TRAINER,
                                                              "app.kubernetes.io/component": "retrain"},
                                         [], external_egress(tr))
    return pols


# Only rank 0 serves the trainer's metrics: the operator labels that pod (PyTorchJob Master, TFJob chief)
# training.kubeflow.org/job-role=master (kubeflow/trainer v1.9.4 pkg/controller.v1/common/pod.go).
SCRAPE_LABELS = {"app.kubernetes.io/name": TRAINER, "training.kubeflow.org/job-role": "master"}


def trainer_pod_monitor() -> dict[str, Any]:
    """The PodMonitor ``sentiment-trainer`` (in ``monitoring``): rank 0's ``metrics`` port, every 15 s."""
    return pod_monitor(TRAINER, namespace=NAMESPACE, labels=SCRAPE_LABELS, port="metrics", interval="15s")


def build_objects(s: TrainingSettings, images: Optional[Mapping[str, str]] = None) -> dict[str, dict[str, Any]]:
    """Every Kubernetes object of the training workload, keyed by role (pure; no Pulumi). ``images``: see plan."""
    p = plan(s, images)
    objs: dict[str, dict[str, Any]] = {f"sa-{k}": v for k, v in service_accounts().items()}
    objs["data-prep"] = data_prep_job(s, p)
    objs["job"] = pytorchjob(s, p) if p.kind == "PyTorchJob" else tfjob(s, p)
    if s.training.schedule:
        objs["cronjob"] = retrain_cronjob(s, p)
    objs.update(network_policies(s))
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


def describe(s: TrainingSettings) -> str:
    """One line for humans: what will run where."""
    p = plan(s)
    tr = s.training
    roles = (f"1 master + {tr.workers} worker(s)" if p.kind == "PyTorchJob"
             else f"{tr.parameter_servers} PS + {tr.workers} worker(s)")
    gpu = f", {p.gpus} GPU(s) each" if p.gpus else ""
    return f"{p.kind} {JOB_NAME}: {roles} on pool {p.pool}{gpu}; data {p.data_dir}; image {shlex.quote(p.image)}"


def job_image(job: dict[str, Any]) -> str:
    """The image of a PyTorchJob's/TFJob's first replica (the component's ``image`` output)."""
    specs = job["spec"].get("pytorchReplicaSpecs") or job["spec"].get("tfReplicaSpecs")
    return next(iter(specs.values()))["template"]["spec"]["containers"][0]["image"]
