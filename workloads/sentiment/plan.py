"""The sentiment server's deployment plan: names, ports, device table and the settings derived from the config.

Pure, the base of ``manifests.py`` (the objects) and ``autoscaling.py`` (HPA / KEDA). The server
(``server.py``) never imports it: its settings reach it as environment variables.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

from components.netpol import load_balancer_cidrs
from infra.conventions import SERVING_PRIORITY_CLASS, WORKLOADS_NAMESPACE
from infra.config import NodePoolConfig, cpu_pool
from infra.config.serving import DEVICE_RESOURCE
from workloads.sentiment.settings import ServingSettings
from infra.versions import IMAGES

NAME = "sentiment"
NAMESPACE = WORKLOADS_NAMESPACE
MODELS_CLAIM = "models"
MODEL_MOUNT = "/models"
CONTAINER_PORT = 8080
SERVICE_PORT = 80
PORT_NAME = "http"
RUN_AS = 10001  # UID/GID of the server image's non-root user; a high UID never collides with a host user
PRIORITY_CLASS = SERVING_PRIORITY_CLASS
POOL_LABEL = "eks-ml-platform/pool"
SELECTOR = {"app.kubernetes.io/name": NAME}
SHUTDOWN_DELAY_S = 10  # keep serving (readyz=503) while endpoints and target groups drop the pod
GRACEFUL_TIMEOUT_S = 20  # then let in-flight requests finish
DEREGISTRATION_DELAY_S = 30  # ALB/NLB target group drain time (the AWS default is 300 s)
# /tmp (HF cache, Prometheus multiprocess files; on inf1/inf2 also a start-up compile in NEURON_CACHE_DIR, with
# serving.neuron.compileAtStartup)
TMP_SIZE = {"inf1": "4Gi", "inf2": "4Gi", "gpu": "1Gi", "cpu": "1Gi"}
SKIP_AWAIT = {"pulumi.com/skipAwait": "true"}

# device -> (backend env, extended resource, taint key to tolerate, image key). The Neuron pools' taint is
# aws.amazon.com/neuron on inf1 and inf2 alike; inf2 replicas request one NeuronCore (infra/config/serving.py
# DEVICE_RESOURCE says why).
DEVICES: dict[str, tuple[str, Optional[str], Optional[str], str]] = {
    "inf1": ("neuron", DEVICE_RESOURCE["inf1"], "aws.amazon.com/neuron", "sentiment_neuron"),
    "inf2": ("neuronx", DEVICE_RESOURCE["inf2"], "aws.amazon.com/neuron", "sentiment_neuronx"),
    "gpu": ("cuda", DEVICE_RESOURCE["gpu"], "nvidia.com/gpu", "sentiment"),
    "cpu": ("cpu", None, None, "sentiment"),
}
# IMAGES key -> images.* config key
IMAGE_KEY = {"sentiment": "server", "sentiment_neuron": "serverNeuron", "sentiment_neuronx": "serverNeuronx"}


def labels(component: str = "inference") -> dict[str, str]:
    return {
        "app.kubernetes.io/name": NAME,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "eks-ml-platform",
        "app.kubernetes.io/managed-by": "pulumi",
    }


def meta(namespace: str, *, annotations: Optional[dict[str, str]] = None) -> dict[str, Any]:
    """Every object's metadata: named ``sentiment``, the standard labels, sorted annotations."""
    out: dict[str, Any] = {"name": NAME, "namespace": namespace, "labels": labels()}
    if annotations:
        out["annotations"] = dict(sorted(annotations.items()))
    return out


# Checkov findings that do not apply here, with the reason, as per-object annotations.
# CKV_K8S_43 (image by digest) only where the image is pinned by tag (the release image in infra/versions.py,
# or a tag-pinned serving.image / images.server*): the images the stack builds are referenced by digest.
DEPLOYMENT_CHECKOV_SKIPS = {
    "CKV_K8S_43": "this image is pinned by tag (the release image in infra/versions.py, or a tag-pinned serving.image "
                  "or images.server reference); the stack's own builds are digest-pinned (images.build: true)",
}


def image_checkov_skips(image: str) -> dict[str, str]:
    """DEPLOYMENT_CHECKOV_SKIPS unless ``image`` is pinned by digest (the server's and the compile job's)."""
    return {} if "@sha256:" in image else dict(DEPLOYMENT_CHECKOV_SKIPS)


def writable_env() -> dict[str, str]:
    """Homes and caches on the /tmp emptyDir (the root filesystem is read-only), for every sentiment container."""
    return {"TMPDIR": "/tmp", "HOME": "/tmp", "HF_HOME": "/tmp/hf", "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1"}


def container_security_context() -> dict[str, Any]:
    """The restricted container context of every sentiment pod (server and compile job): non-root, no
    privilege, nothing writable on the root filesystem (everything writable is the /tmp emptyDir)."""
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "privileged": False,
            "readOnlyRootFilesystem": True, "runAsGroup": RUN_AS, "runAsNonRoot": True, "runAsUser": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"}}


def pod_security_context() -> dict[str, Any]:
    """fsGroup makes the CephFS models volume readable (and, for the compile job, writable) by the non-root user;
    OnRootMismatch skips the recursive chown once the volume root matches."""
    return {"fsGroup": RUN_AS, "fsGroupChangePolicy": "OnRootMismatch", "runAsGroup": RUN_AS, "runAsNonRoot": True,
            "runAsUser": RUN_AS, "seccompProfile": {"type": "RuntimeDefault"}}


# ---------------------------------------------------------------- derived settings
@dataclass(frozen=True)
class ServingPlan:
    """Everything the manifests need, derived once from the config."""

    device: str
    backend: str
    device_resource: Optional[str]
    toleration_key: Optional[str]
    image: str
    pool: str
    replicas: int
    max_replicas: int
    autoscaler: str  # "hpa" | "keda" | "none"
    zone_when_unsatisfiable: str
    max_surge: int
    max_unavailable: int
    scheme: str  # internal | internet-facing
    exposure: str
    lb_cidrs: tuple[str, ...]
    #: serving.gpuSharing: the device plugin config label the pods select
    shared_gpu_labels: tuple[tuple[str, str], ...] = ()
    #: replicas per accelerator device (replicasPerGpu, or an inf2 device's NeuronCores): the node spread's skew
    pods_per_device: int = 1
    #: the plain pool the Neuron compile CronJob runs on (inf1/inf2 serving), else None
    compile_pool: Optional[str] = None


def plan(s: ServingSettings, images: Optional[Mapping[str, str]] = None) -> ServingPlan:
    """``images``: the workload images by config key (components/images.py ``refs``); without them the release
    image of infra/versions.py. ``serving.image`` wins over both."""
    sv = s.serving
    images = images or {}
    pool: Optional[NodePoolConfig] = sv.pool_for(s.pools)
    if pool is None:  # the config validation reports this first; keep the component honest anyway
        raise ValueError(f"serving.device {sv.device}: no node pool fits")
    backend, resource, taint, image_key = DEVICES[sv.device]
    most = sv.max_replicas_for(pool)
    autoscaler = "none" if most <= sv.replicas else ("keda" if sv.keda else "hpa")
    # One device per replica: a surge pod needs a spare device. When the autoscaler may already use
    # every device the pool can launch, roll one pod at a time instead (a surge pod would never schedule).
    limit = sv.device_limit(pool)
    surge, unavailable = (1, 0) if limit is None or most + 1 <= limit else (0, 1)
    public = sv.public and s.allow_public_load_balancers
    scheme = "internet-facing" if public else "internal"
    return ServingPlan(
        device=sv.device, backend=backend, device_resource=resource, toleration_key=taint,
        image=sv.image or images.get(IMAGE_KEY[image_key]) or IMAGES[image_key], pool=pool.name, replicas=sv.replicas, max_replicas=most,
        autoscaler=autoscaler,
        zone_when_unsatisfiable="DoNotSchedule" if sv.zone_spread_for(s.environment) == "required" else "ScheduleAnyway",
        max_surge=surge, max_unavailable=unavailable, scheme=scheme,
        exposure=sv.exposure, lb_cidrs=tuple(load_balancer_cidrs(s.vpc, scheme, sv.load_balancer_cidrs)),
        shared_gpu_labels=tuple(sorted(sv.gpu_sharing.node_labels().items())) if sv.gpu_sharing else (),
        pods_per_device=sv.replicas_per_device, compile_pool=_compile_pool(s),
    )


def _compile_pool(s: ServingSettings) -> Optional[str]:
    """The compile job's pool: a plain one (the compilers need CPUs, never a Neuron device serving could use)."""
    plain = cpu_pool(list(s.pools)) if s.serving.neuron_device else None
    return plain.name if plain is not None else None
