"""The Neuron compile CronJob of the sentiment server (``serving.device`` inf1 or inf2) and its NetworkPolicy.

Pure (plain dicts); ``manifests.build_objects`` adds them and ``component.py`` creates them. What it is:

- CronJob ``sentiment-neuron-compile`` (schedule ``serving.neuron.compileSchedule``, every 10 minutes by
  default): one pod runs ``python -m workloads.sentiment.neuron_compile`` (workloads/sentiment/neuron_compile.py)
  for the serving device's target, the version the server serves (``serving.modelVersion``: ``latest``, or
  the pinned one) and the compiled shapes (``serving.neuron.batchSize`` x ``seqLen``). It writes
  ``model.neuron.pt``/``neuron.json`` (inf1) or ``model.neuronx.pt``/``neuronx.json`` (inf2) next to
  ``/models/<version>/``, atomically, and exits "up to date" when they are already there, so a run after
  the first costs seconds. A newly promoted version is compiled within one period; until then a server
  that starts on it exits with the remedy (``kubectl -n ml-workloads create job
  --from=cronjob/sentiment-neuron-compile <name>`` runs it at once).
- It runs the serving device's own Neuron image (the same torch-neuron / torch-neuronx as the server that
  loads the artifact: a compiled model only loads under the compiler release that wrote it).
- On the CPU (plain) pool, never a Neuron node: neuron-cc and neuronx-cc compile on CPUs alone (AWS:
  compilation "can be done on any EC2 machine"; the Neuron device is needed to run the model, not to compile
  it), so a compile never holds a NeuronCore a serving replica could use, and needs no Neuron toleration.
- The ``models`` PVC read-write at /models (ReadWriteMany CephFS, workloads/shared.py: the serving pods mount
  the same claim read-only); /tmp an emptyDir for the compiler's work files; otherwise the serving pod's
  hardening: non-root, read-only root filesystem, seccomp RuntimeDefault, no capabilities, no
  service-account token.
- ``concurrencyPolicy: Forbid`` (two compiles of one version would race for the same files), a
  ``startingDeadlineSeconds`` (a run missed by more than that is skipped: the next one comes within a period),
  bounded history, ``backoffLimit`` and ``activeDeadlineSeconds``.
- NetworkPolicy ``sentiment-neuron-compile``: no ingress (nothing calls it; the namespace's default deny
  already holds) and no egress: it reads and writes only the CephFS volume, which the node's kernel client
  mounts (host network, not the pod's), and the image is offline (HF_HUB_OFFLINE), so it talks to no one.

Its pods carry ``app.kubernetes.io/name: sentiment-neuron-compile``, never the server's ``sentiment``: the
Service, the PDB and the serving NetworkPolicy select by that label.
"""
from __future__ import annotations

from typing import Any, Optional

from components.netpol import network_policy
from infra.config import ServingConfig
from infra.config.serving import NEURON_DEVICES
from infra.conventions import checkov_annotations
from workloads.sentiment.plan import (
    MODEL_MOUNT, MODELS_CLAIM, NAME, NAMESPACE, POOL_LABEL, ServingPlan, container_security_context,
    image_checkov_skips, labels, pod_security_context, writable_env)
from workloads.sentiment.settings import ServingSettings

COMPILE_NAME = "sentiment-neuron-compile"
COMPILE_TMP = "10Gi"  # the compiler's work directory (neuronx-cc writes its HLO/NEFF files there)
COMPILE_RESOURCES = {"cpu": ("1", "2"), "memory": ("6Gi", "6Gi")}  # request, limit
STARTING_DEADLINE_S = 300
ACTIVE_DEADLINE_S = 3600  # a compile of the sample model takes minutes; a hung one is stopped
BACKOFF_LIMIT = 2


def neuron_env(sv: ServingConfig) -> dict[str, str]:
    """The server's Neuron settings (workloads/sentiment/config.py): the compiled shapes, and whether a pod may
    compile at start-up (0: never; with no usable artifact it exits naming the compile job). None off Neuron."""
    if not sv.neuron_device:
        return {}
    n = sv.neuron
    return {"NEURON_BATCH_SIZE": str(n.batch_size), "NEURON_SEQ_LEN": str(n.seq_len),
            "NEURON_COMPILE_AT_START": "1" if n.compile_at_startup else "0"}


def compile_command(sv: ServingConfig) -> list[str]:
    """The compile CLI for the serving version and shapes (``neuron_compile``'s flags, iface of issue #23)."""
    return ["python", "-m", "workloads.sentiment.neuron_compile", "--target", sv.device, "--model-dir", MODEL_MOUNT,
            "--version", sv.model_version, "--batch-size", str(sv.neuron.batch_size),
            "--seq-len", str(sv.neuron.seq_len)]


def compile_labels() -> dict[str, str]:
    return {**labels("neuron-compile"), "app.kubernetes.io/name": COMPILE_NAME}


def _meta(namespace: str, annotations: Optional[dict[str, str]] = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": COMPILE_NAME, "namespace": namespace, "labels": compile_labels()}
    if annotations:
        out["annotations"] = dict(sorted(annotations.items()))
    return out


def compile_pod_spec(s: ServingSettings, p: ServingPlan, *, models_claim: str = MODELS_CLAIM) -> dict[str, Any]:
    """The compile pod: the serving image on the plain pool, /models read-write, the serving pod's hardening."""
    if p.compile_pool is None:  # the config's cross-checks report this first (nodePools)
        raise ValueError("the Neuron compile job needs a node pool without an accelerator")
    container = {
        "name": "compile",
        "image": p.image,
        "imagePullPolicy": "Always",
        "command": compile_command(s.serving),
        "env": [{"name": k, "value": v} for k, v in sorted({"MODEL_DIR": MODEL_MOUNT, **writable_env()}.items())],
        "resources": {"requests": {k: v[0] for k, v in COMPILE_RESOURCES.items()},
                      "limits": {k: v[1] for k, v in COMPILE_RESOURCES.items()}},
        "securityContext": container_security_context(),
        "volumeMounts": [{"name": "models", "mountPath": MODEL_MOUNT}, {"name": "tmp", "mountPath": "/tmp"}],
    }
    return {
        "serviceAccountName": NAME,  # the server's: no API token, no IAM role
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "restartPolicy": "Never",  # a failed compile keeps its pod (and its log) for `kubectl logs`
        "nodeSelector": {POOL_LABEL: p.compile_pool},
        "securityContext": pod_security_context(),
        "containers": [container],
        "volumes": [
            {"name": "models", "persistentVolumeClaim": {"claimName": models_claim}},
            {"name": "tmp", "emptyDir": {"sizeLimit": COMPILE_TMP}},
        ],
    }


def compile_cronjob(s: ServingSettings, p: ServingPlan, *, namespace: str = NAMESPACE,
                    models_claim: str = MODELS_CLAIM) -> Optional[dict[str, Any]]:
    """The CronJob ``sentiment-neuron-compile`` (see the module docstring); None unless serving is on inf1/inf2."""
    sv = s.serving
    if not sv.neuron_device:
        return None
    template = {"metadata": {"labels": compile_labels()},
                "spec": compile_pod_spec(s, p, models_claim=models_claim)}
    return {
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": _meta(namespace, checkov_annotations(image_checkov_skips(p.image))),
        "spec": {
            "schedule": sv.neuron.compile_schedule,
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": STARTING_DEADLINE_S,
            "successfulJobsHistoryLimit": 1,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {"labels": compile_labels()},
                "spec": {"backoffLimit": BACKOFF_LIMIT, "activeDeadlineSeconds": ACTIVE_DEADLINE_S,
                         "template": template},
            },
        },
    }


def compile_network_policy(p: ServingPlan, *, namespace: str = NAMESPACE) -> Optional[dict[str, Any]]:
    """No ingress and no egress for the compile pods (they touch only the CephFS volume); None off Neuron."""
    if p.device not in NEURON_DEVICES:
        return None
    return network_policy(_meta(namespace), {"matchLabels": {"app.kubernetes.io/name": COMPILE_NAME}}, [], [])
