"""The sentiment-serving component: Deployment, Service, autoscaler, PDB, NetworkPolicy and exposure.

Pulumi side only: the server (``workloads/sentiment/server.py``) never imports this module, and this
module never imports the server (its settings are passed as environment variables).

What it creates in the shared ``ml-workloads`` namespace (namespace and the ``models`` PVC come from
``workloads/shared.py``, registered as ``Platform.addons["workload_storage"]``):

- ServiceAccount ``sentiment`` (no API token mounted: the server never talks to the API server);
- Deployment ``sentiment``: on the inf1 pool by default (``aws.amazon.com/neuron: 1``, the Neuron
  taint tolerated), gpu (``nvidia.com/gpu: 1``) or cpu by ``serving.device``; spread over zones and
  nodes; the ``ml-serving`` PriorityClass; restricted security context with a read-only root
  filesystem (``/tmp`` is an emptyDir); the ``models`` PVC mounted read-only at ``/models``;
- Service ``sentiment`` (port ``http`` 80 -> 8080; ``/metrics`` on the same port, which the
  monitoring ServiceMonitor selects by ``app.kubernetes.io/name: sentiment``), type LoadBalancer
  (an NLB through the AWS Load Balancer Controller) when ``serving.exposure`` is ``loadBalancer``;
- HorizontalPodAutoscaler on CPU, or, with ``serving.keda``, a KEDA ScaledObject on request rate
  plus CPU (KEDA then owns the HPA, so none is created here); neither when ``maxReplicas`` equals
  ``replicas``;
- PodDisruptionBudget (maxUnavailable 1);
- NetworkPolicy: ingress only from Prometheus, the load balancer (the VPC CIDR) and listed client
  namespaces; egress only to cluster DNS;
- Ingress (an ALB, internal unless ``serving.public``) when ``serving.exposure`` is ``ingress``.

The pure functions below build every object as a plain dict (sorted keys when serialised), so they
are tested without Pulumi; ``SentimentServing`` only turns them into resources.

Decisions worth knowing:
- ``pulumi.com/skipAwait`` on the Deployment, Service and Ingress: the pods turn Ready only once a
  trained model is on the ``models`` PVC (the training job writes it after ``pulumi up``), and the
  load balancers only once the AWS Load Balancer Controller runs; ``pulumi up`` must not block
  (and fail after 10 minutes) on either. Watch ``kubectl -n ml-workloads rollout status deploy/sentiment``.
- With an autoscaler, ``spec.replicas`` is left out so a later ``pulumi up`` does not undo a scale-out.
- One accelerator device per replica: the rollout surges only when the pool has a spare device.
- Zone spread is required in prod and preferred elsewhere (2-AZ dev, AZs without inf1 capacity);
  node spread is always required (Karpenter launches the nodes).
- The PDB uses maxUnavailable 1 (works at any replica count) and lets not-Ready pods be evicted.
- The Ingress routes only ``/analyze`` (Exact); ``/metrics`` and the probes stay inside the cluster.
- NetworkPolicy: ALB/NLB ``ip`` targets reach the pods from their ENIs in the VPC, hence an ipBlock
  of the VPC CIDR (``serving.loadBalancerCidrs`` overrides it). It is only enforced once the VPC CNI
  runs with network policy enabled.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Optional

import pulumi
import pulumi_kubernetes as k8s

from components.monitoring import PROMETHEUS_URL  # the in-cluster kube-prometheus-stack Prometheus
from infra.conventions import SERVING_PRIORITY_CLASS, WORKLOADS_NAMESPACE, checkov_annotations
from infra.config import NodePoolConfig, PlatformConfig, cpu_millis
from infra.versions import IMAGES

if TYPE_CHECKING:  # pragma: no cover - typing only (infra.platform imports this module at run time)
    from components.images import WorkloadImages
    from infra.context import PlatformContext

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
REQUEST_RATE_QUERY = f'sum(rate(sentiment_requests_total{{namespace="{NAMESPACE}"}}[1m]))'
SHUTDOWN_DELAY_S = 10  # keep serving (readyz=503) while endpoints and target groups drop the pod
GRACEFUL_TIMEOUT_S = 20  # then let in-flight requests finish
DEREGISTRATION_DELAY_S = 30  # ALB/NLB target group drain time (the AWS default is 300 s)
# /tmp (HF cache, Prometheus multiprocess files; on inf1 also a start-up neuron-cc compile in NEURON_CACHE_DIR)
TMP_SIZE = {"inf1": "4Gi", "gpu": "1Gi", "cpu": "1Gi"}
SKIP_AWAIT = {"pulumi.com/skipAwait": "true"}

# device -> (backend env, extended resource, taint key to tolerate, image key)
DEVICES: dict[str, tuple[str, Optional[str], Optional[str], str]] = {
    "inf1": ("neuron", "aws.amazon.com/neuron", "aws.amazon.com/neuron", "sentiment_neuron"),
    "gpu": ("cuda", "nvidia.com/gpu", "nvidia.com/gpu", "sentiment"),
    "cpu": ("cpu", None, None, "sentiment"),
}

# Checkov findings that do not apply here, with the reason, as per-object annotations.
# CKV_K8S_43 (image by digest) only where the image is pinned by tag (the release image in infra/versions.py,
# or a tag-pinned serving.image / images.server*): the images the stack builds are referenced by digest.
DEPLOYMENT_CHECKOV_SKIPS = {
    "CKV_K8S_43": "this image is pinned by tag (the release image in infra/versions.py, or a tag-pinned serving.image "
                  "or images.server reference); the stack's own builds are digest-pinned (images.build: true)",
}
IMAGE_KEY = {"sentiment": "server", "sentiment_neuron": "serverNeuron"}  # IMAGES key -> images.* config key


def labels(component: str = "inference") -> dict[str, str]:
    return {
        "app.kubernetes.io/name": NAME,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "eks-ml-platform",
        "app.kubernetes.io/managed-by": "pulumi",
    }


def _meta(namespace: str, *, annotations: Optional[dict[str, str]] = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": NAME, "namespace": namespace, "labels": labels()}
    if annotations:
        meta["annotations"] = dict(sorted(annotations.items()))
    return meta


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


def plan(cfg: PlatformConfig, images: Optional[Mapping[str, str]] = None) -> ServingPlan:
    """``images``: the workload images by config key (components/images.py ``refs``); without them the release
    image of infra/versions.py. ``serving.image`` wins over both."""
    sv = cfg.serving
    images = images or {}
    pool: Optional[NodePoolConfig] = sv.pool_for(cfg.pools)
    if pool is None:  # the config validation reports this first; keep the component honest anyway
        raise ValueError(f"serving.device {sv.device}: no node pool fits")
    backend, resource, taint, image_key = DEVICES[sv.device]
    most = sv.max_replicas_for(pool)
    autoscaler = "none" if most <= sv.replicas else ("keda" if sv.keda else "hpa")
    # One device per replica: a surge pod needs a spare device. When the autoscaler may already use
    # every device the pool can launch, roll one pod at a time instead (a surge pod would never schedule).
    limit = sv.device_limit(pool)
    surge, unavailable = (1, 0) if limit is None or most + 1 <= limit else (0, 1)
    public = sv.public and cfg.allow_public_load_balancers
    return ServingPlan(
        device=sv.device, backend=backend, device_resource=resource, toleration_key=taint,
        image=sv.image or images.get(IMAGE_KEY[image_key]) or IMAGES[image_key], pool=pool.name, replicas=sv.replicas, max_replicas=most,
        autoscaler=autoscaler,
        zone_when_unsatisfiable="DoNotSchedule" if sv.zone_spread_for(cfg.environment) == "required" else "ScheduleAnyway",
        max_surge=surge, max_unavailable=unavailable, scheme="internet-facing" if public else "internal",
        exposure=sv.exposure, lb_cidrs=tuple(sv.load_balancer_cidrs or [cfg.vpc.cidr]),
    )


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def server_env(cfg: PlatformConfig, p: ServingPlan) -> list[dict[str, str]]:
    """The server's settings (workloads/sentiment/config.py ENV_DOC), sorted by name."""
    sv = cfg.serving
    env = {
        "MODEL_DIR": MODEL_MOUNT,
        "HOST": "0.0.0.0",
        "PORT": str(CONTAINER_PORT),
        "BACKEND": p.backend,
        "WORKERS": str(sv.workers),
        "MAX_BATCH_SIZE": str(sv.max_batch_size),
        "MAX_BATCH_WAIT_MS": _num(sv.max_batch_wait_ms),
        "MAX_QUEUE": str(sv.max_queue),
        # torch's default is every core of the node; match the CPU limit so the pod is not throttled.
        "TORCH_THREADS": str(max(1, math.ceil(cpu_millis(sv.resources.cpu_limit) / 1000))),
        "SHUTDOWN_DELAY_S": str(SHUTDOWN_DELAY_S),
        "GRACEFUL_TIMEOUT_S": str(GRACEFUL_TIMEOUT_S),
        # read-only root filesystem: everything writable lives on the /tmp emptyDir
        "TMPDIR": "/tmp",
        "NEURON_CACHE_DIR": "/tmp/neuron",  # where a start-up compile goes (BACKEND=neuron only)
        "HOME": "/tmp",
        "HF_HOME": "/tmp/hf",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    return [{"name": k, "value": v} for k, v in sorted(env.items())]


def container_resources(cfg: PlatformConfig, p: ServingPlan) -> dict[str, dict[str, str]]:
    r = cfg.serving.resources
    memory = r.memory_for(p.device)
    requests = {"cpu": r.cpu, "memory": memory}
    limits = {"cpu": r.cpu_limit, "memory": memory}
    if p.device_resource:
        requests[p.device_resource] = "1"  # extended resources: request == limit, whole devices
        limits[p.device_resource] = "1"
    return {"limits": limits, "requests": requests}


def probes(cfg: PlatformConfig) -> dict[str, dict[str, Any]]:
    """startup: model load (readyz), readiness: readyz, liveness: healthz (answers while loading)."""
    def get(path: str, period: int, failures: int) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": PORT_NAME, "scheme": "HTTP"}, "periodSeconds": period,
                "timeoutSeconds": 3, "failureThreshold": failures, "successThreshold": 1}

    startup_period = 10
    return {
        "startupProbe": get("/readyz", startup_period, math.ceil(cfg.serving.startup_timeout_seconds / startup_period)),
        "readinessProbe": get("/readyz", 5, 2),
        "livenessProbe": get("/healthz", 10, 3),
    }


def topology_spread(p: ServingPlan) -> list[dict[str, Any]]:
    """Zones (required in prod, preferred elsewhere: 2-AZ dev stacks and AZs without inf1 capacity must not
    leave pods Pending) and nodes (required: one node's loss takes at most one more replica than its share).

    ``matchLabelKeys: [pod-template-hash]`` is left out on purpose: Karpenter does not honour it
    (kubernetes-sigs/karpenter#1569), so its provisioning would disagree with kube-scheduler during rollouts.
    """
    sel = {"matchLabels": dict(SELECTOR)}
    return [
        {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": p.zone_when_unsatisfiable,
         "labelSelector": sel},
        {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
         "labelSelector": sel},
    ]


def pod_template(cfg: PlatformConfig, p: ServingPlan, *, models_claim: str = MODELS_CLAIM) -> dict[str, Any]:
    container = {
        "name": "server",
        "image": p.image,
        "imagePullPolicy": "Always",
        "command": ["python", "-m", "workloads.sentiment.server"],
        "env": server_env(cfg, p),
        "ports": [{"name": PORT_NAME, "containerPort": CONTAINER_PORT, "protocol": "TCP"}],
        "resources": container_resources(cfg, p),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "privileged": False,
            "readOnlyRootFilesystem": True,
            "runAsGroup": RUN_AS,
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [
            {"name": "models", "mountPath": MODEL_MOUNT, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
        **probes(cfg),
    }
    tolerations = []
    if p.toleration_key:
        tolerations.append({"key": p.toleration_key, "operator": "Exists", "effect": "NoSchedule"})
    spec: dict[str, Any] = {
        "serviceAccountName": NAME,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "priorityClassName": PRIORITY_CLASS,
        "nodeSelector": {POOL_LABEL: p.pool},
        "topologySpreadConstraints": topology_spread(p),
        "terminationGracePeriodSeconds": SHUTDOWN_DELAY_S + GRACEFUL_TIMEOUT_S + 5,
        "securityContext": {
            "fsGroup": RUN_AS,
            "fsGroupChangePolicy": "OnRootMismatch",
            "runAsGroup": RUN_AS,
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [
            {"name": "models", "persistentVolumeClaim": {"claimName": models_claim, "readOnly": True}},
            {"name": "tmp", "emptyDir": {"sizeLimit": TMP_SIZE[p.device]}},
        ],
    }
    if tolerations:
        spec["tolerations"] = tolerations
    return {"metadata": {"labels": labels()}, "spec": spec}


def deployment(cfg: PlatformConfig, p: ServingPlan, *, namespace: str = NAMESPACE,
               models_claim: str = MODELS_CLAIM) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": dict(SELECTOR)},
        "strategy": {"type": "RollingUpdate",
                     "rollingUpdate": {"maxSurge": p.max_surge, "maxUnavailable": p.max_unavailable}},
        "revisionHistoryLimit": 5,
        "minReadySeconds": 5,
        # node launch (Karpenter, minutes for inf1/GPU) + model load
        "progressDeadlineSeconds": cfg.serving.startup_timeout_seconds + 600,
        "template": pod_template(cfg, p, models_claim=models_claim),
    }
    if p.autoscaler == "none":
        spec["replicas"] = p.replicas
    # With an autoscaler, replicas is left out: the HPA (or KEDA's) owns it, and a `pulumi up` must not
    # reset a scaled-out Deployment. The HPA raises it to minReplicas (= serving.replicas) at once.
    skips = {} if "@sha256:" in p.image else DEPLOYMENT_CHECKOV_SKIPS
    ann = {**SKIP_AWAIT, **checkov_annotations(skips)}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(namespace, annotations=ann), "spec": spec}


def service_account(namespace: str = NAMESPACE) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(namespace),
            "automountServiceAccountToken": False}


def service(cfg: PlatformConfig, p: ServingPlan, *, namespace: str = NAMESPACE) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": dict(SELECTOR),
        "ports": [{"name": PORT_NAME, "port": SERVICE_PORT, "targetPort": PORT_NAME, "protocol": "TCP"}],
    }
    ann = dict(SKIP_AWAIT)
    if p.exposure == "loadBalancer":
        spec["type"] = "LoadBalancer"
        spec["allocateLoadBalancerNodePorts"] = False  # ip targets: the NLB sends to pod IPs, no NodePorts
        ann.update({
            "service.beta.kubernetes.io/aws-load-balancer-type": "external",  # the AWS Load Balancer Controller
            "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
            "service.beta.kubernetes.io/aws-load-balancer-scheme": p.scheme,
            "service.beta.kubernetes.io/aws-load-balancer-healthcheck-protocol": "HTTP",
            "service.beta.kubernetes.io/aws-load-balancer-healthcheck-path": "/readyz",
            "service.beta.kubernetes.io/aws-load-balancer-healthcheck-port": "traffic-port",
            "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes":
                f"deregistration_delay.timeout_seconds={DEREGISTRATION_DELAY_S}",
        })
    else:
        spec["type"] = "ClusterIP"
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(namespace, annotations=ann), "spec": spec}


def ingress(cfg: PlatformConfig, p: ServingPlan, *, namespace: str = NAMESPACE) -> Optional[dict[str, Any]]:
    if p.exposure != "ingress":
        return None
    ing = cfg.serving.ingress
    ann = {
        **SKIP_AWAIT,
        "alb.ingress.kubernetes.io/scheme": p.scheme,
        "alb.ingress.kubernetes.io/target-type": "ip",
        "alb.ingress.kubernetes.io/healthcheck-path": "/readyz",
        "alb.ingress.kubernetes.io/healthcheck-port": "traffic-port",
        "alb.ingress.kubernetes.io/success-codes": "200",
        "alb.ingress.kubernetes.io/target-group-attributes": f"deregistration_delay.timeout_seconds={DEREGISTRATION_DELAY_S}",
    }
    if ing.certificate_arn:
        ann.update({
            "alb.ingress.kubernetes.io/listen-ports": json.dumps([{"HTTP": 80}, {"HTTPS": 443}]),
            "alb.ingress.kubernetes.io/certificate-arn": ing.certificate_arn,
            "alb.ingress.kubernetes.io/ssl-redirect": "443",
            "alb.ingress.kubernetes.io/ssl-policy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
        })
    else:
        ann["alb.ingress.kubernetes.io/listen-ports"] = json.dumps([{"HTTP": 80}])
    # Only the API goes through the load balancer: /metrics, /healthz and /readyz stay in the cluster.
    backend = {"service": {"name": NAME, "port": {"name": PORT_NAME}}}
    rule: dict[str, Any] = {"http": {"paths": [{"path": "/analyze", "pathType": "Exact", "backend": backend}]}}
    if ing.host:
        rule["host"] = ing.host
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": _meta(namespace, annotations=ann),
            "spec": {"ingressClassName": ing.class_name, "rules": [rule]}}


def _behavior() -> dict[str, Any]:
    """Scale up fast (a new inf1/GPU node takes minutes), scale down slowly, one pod at a time."""
    return {
        "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 60},
                                 {"type": "Pods", "value": 2, "periodSeconds": 60}]},
        "scaleDown": {"stabilizationWindowSeconds": 300, "selectPolicy": "Min",
                      "policies": [{"type": "Pods", "value": 1, "periodSeconds": 120}]},
    }


def _target_ref() -> dict[str, str]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": NAME}


def hpa(cfg: PlatformConfig, p: ServingPlan, *, namespace: str = NAMESPACE) -> Optional[dict[str, Any]]:
    if p.autoscaler != "hpa":
        return None
    return {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": _meta(namespace),
        "spec": {
            "scaleTargetRef": _target_ref(), "minReplicas": p.replicas, "maxReplicas": p.max_replicas,
            "metrics": [{"type": "Resource", "resource": {
                "name": "cpu", "target": {"type": "Utilization", "averageUtilization": cfg.serving.target_cpu_percent}}}],
            "behavior": _behavior(),
        },
    }


def scaled_object(cfg: PlatformConfig, p: ServingPlan, *, namespace: str = NAMESPACE) -> Optional[dict[str, Any]]:
    """KEDA: request rate per replica (Prometheus) and CPU; KEDA creates and owns the HPA ``keda-hpa-sentiment``."""
    if p.autoscaler != "keda":
        return None
    sv = cfg.serving
    return {
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": _meta(namespace),
        "spec": {
            "scaleTargetRef": _target_ref(), "minReplicaCount": p.replicas, "maxReplicaCount": p.max_replicas,
            "pollingInterval": 15, "cooldownPeriod": 300,
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": _behavior()}},
            "triggers": [
                {"type": "prometheus", "name": "request-rate", "metricType": "AverageValue",
                 "metadata": {"serverAddress": PROMETHEUS_URL, "query": REQUEST_RATE_QUERY,
                              "threshold": str(sv.keda_target_rps)}},
                {"type": "cpu", "name": "cpu", "metricType": "Utilization",
                 "metadata": {"value": str(sv.target_cpu_percent)}},
            ],
        },
    }


def pdb(p: ServingPlan, *, namespace: str = NAMESPACE) -> dict[str, Any]:
    """maxUnavailable 1 (not minAvailable 2): drains never deadlock at any replica count, and pods that are
    not Ready (e.g. no model yet) may always be evicted."""
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": _meta(namespace),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": dict(SELECTOR)},
                     "unhealthyPodEvictionPolicy": "AlwaysAllow"}}


def network_policy(cfg: PlatformConfig, p: ServingPlan, *, namespace: str = NAMESPACE) -> dict[str, Any]:
    port = [{"port": CONTAINER_PORT, "protocol": "TCP"}]
    ingress_rules: list[dict[str, Any]] = [
        {"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                   "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}], "ports": port},
    ]
    if p.exposure != "none":
        # ALB/NLB with ip targets connect to the pod IP from their own ENIs in the VPC subnets.
        ingress_rules.append({"from": [{"ipBlock": {"cidr": c}} for c in p.lb_cidrs], "ports": port})
    if cfg.serving.client_namespaces:
        ingress_rules.append({"from": [{"namespaceSelector": {"matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": sorted(cfg.serving.client_namespaces)}]}}],
            "ports": port})
    dns = {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                   "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
           "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": _meta(namespace),
            "spec": {"podSelector": {"matchLabels": dict(SELECTOR)}, "policyTypes": ["Ingress", "Egress"],
                     "ingress": ingress_rules, "egress": [dns]}}


def build_objects(cfg: PlatformConfig, *, namespace: str = NAMESPACE, models_claim: str = MODELS_CLAIM,
                  images: Optional[Mapping[str, str]] = None) -> dict[str, dict[str, Any]]:
    """Every object the component creates, keyed by the Pulumi name suffix (absent ones left out)."""
    p = plan(cfg, images)
    objs = {
        "sa": service_account(namespace),
        "deployment": deployment(cfg, p, namespace=namespace, models_claim=models_claim),
        "service": service(cfg, p, namespace=namespace),
        "hpa": hpa(cfg, p, namespace=namespace),
        "scaledobject": scaled_object(cfg, p, namespace=namespace),
        "pdb": pdb(p, namespace=namespace),
        "netpol": network_policy(cfg, p, namespace=namespace),
        "ingress": ingress(cfg, p, namespace=namespace),
    }
    return {k: v for k, v in objs.items() if v is not None}


def to_yaml(objs: dict[str, dict[str, Any]]) -> str:
    """The objects as one multi-document YAML with sorted keys (stable diffs; handy for review)."""
    import yaml

    return "---\n".join(yaml.safe_dump(o, sort_keys=True) for o in objs.values())


# ---------------------------------------------------------------- the component
def _name_of(resource: Optional[pulumi.CustomResource], default: str) -> pulumi.Output[str]:
    """``metadata.name`` of a Kubernetes resource as an Output (an implicit dependency), or the default name."""
    if resource is None:
        return pulumi.Output.from_input(default)
    return resource.metadata.apply(lambda m: (m.get("name") if isinstance(m, dict) else m.name) or default)


@dataclass(frozen=True)
class SentimentServingArgs:
    ctx: "PlatformContext"
    """Config, providers and the cluster-ready gate."""
    namespace: Optional[k8s.core.v1.Namespace]
    """The shared ``ml-workloads`` Namespace (workloads/shared.py); never created here. ``None``: refer to
    it by name only (a warning is logged; the objects then wait for nothing that creates it)."""
    models_pvc: Optional[k8s.core.v1.PersistentVolumeClaim]
    """The RWX ``models`` PVC the trainer writes to; mounted read-only at /models. ``None``: by name only."""
    priority_class: Optional[pulumi.Resource] = None
    """The ``ml-serving`` PriorityClass (components/priority.py): pods naming it are rejected until it exists."""
    images: Optional["WorkloadImages"] = None
    """The workload images (components/images.py): the Deployment runs its server ref (by digest when built).
    ``None``: the release image of infra/versions.py."""


class SentimentServing(pulumi.ComponentResource):
    """The sentiment-analysis API: see the module docstring for what it creates."""

    namespace: pulumi.Output[str]
    service_name: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    autoscaler: str

    def __init__(self, name: str, args: SentimentServingArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("eks-ml-platform:sentiment:SentimentServing", name, None, opts)
        cfg = args.ctx.cfg
        if args.namespace is None or args.models_pvc is None:
            pulumi.log.warn(f"sentiment serving: no workload_storage add-on; referring to namespace {NAMESPACE!r} "
                            f"and PVC {MODELS_CLAIM!r} by name (workloads/shared.py creates them)", self)
        ns = _name_of(args.namespace, NAMESPACE)
        claim = _name_of(args.models_pvc, MODELS_CLAIM)
        objs = build_objects(cfg)
        p = plan(cfg)
        # Explicit on the children too (a component's depends_on does not hold its children back).
        deps = [*args.ctx.cluster_ready, *(r for r in (args.namespace, args.models_pvc) if r is not None)]
        child = pulumi.ResourceOptions(parent=self, depends_on=deps)

        def meta(obj: dict[str, Any]) -> dict[str, Any]:
            return {**obj["metadata"], "namespace": ns}

        self.resources: dict[str, pulumi.Resource] = {}
        sa = objs["sa"]
        self.resources["sa"] = k8s.core.v1.ServiceAccount(
            f"{name}-sa", metadata=meta(sa), automount_service_account_token=False, opts=child)
        refs = dict(args.images.refs) if args.images is not None else {}

        def with_claim(dep: dict[str, Any], claim_name: Any) -> dict[str, Any]:
            tmpl = dep["spec"]["template"]
            vols = [dict(v) for v in tmpl["spec"]["volumes"]]
            for v in vols:
                if "persistentVolumeClaim" in v:
                    v["persistentVolumeClaim"] = {**v["persistentVolumeClaim"], "claimName": claim_name}
            return {**dep["spec"], "template": {**tmpl, "spec": {**tmpl["spec"], "volumes": vols}}}

        if refs:  # the built image's reference (an Output: by digest once pushed); the builder takes strings
            dep_out = pulumi.Output.all(**refs).apply(lambda r: build_objects(cfg, images=r)["deployment"])
            dep_meta: Any = pulumi.Output.all(dep_out, ns).apply(lambda a: {**a[0]["metadata"], "namespace": a[1]})
            spec: Any = pulumi.Output.all(dep_out, claim).apply(lambda a: with_claim(a[0], a[1]))
        else:
            dep_meta, spec = meta(objs["deployment"]), with_claim(objs["deployment"], claim)
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment", metadata=dep_meta, spec=spec,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[
                *deps, self.resources["sa"], *([args.priority_class] if args.priority_class is not None else [])]))
        self.resources["deployment"] = self.deployment
        svc = objs["service"]
        self.service = k8s.core.v1.Service(f"{name}-service", metadata=meta(svc), spec=svc["spec"], opts=child)
        self.resources["service"] = self.service
        after_deploy = pulumi.ResourceOptions(parent=self, depends_on=[*deps, self.deployment])
        if "hpa" in objs:
            self.resources["hpa"] = k8s.autoscaling.v2.HorizontalPodAutoscaler(
                f"{name}-hpa", metadata=meta(objs["hpa"]), spec=objs["hpa"]["spec"], opts=after_deploy)
        if "scaledobject" in objs:
            pulumi.log.warn("serving.keda: the ScaledObject needs KEDA (its keda.sh CRDs and operator) in the cluster; "
                            "this platform does not install it, so install KEDA before `pulumi up`", self)
            so = objs["scaledobject"]
            self.resources["scaledobject"] = k8s.apiextensions.CustomResource(
                f"{name}-scaledobject", api_version=so["apiVersion"], kind=so["kind"], metadata=meta(so),
                spec=so["spec"], opts=after_deploy)
        self.resources["pdb"] = k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb", metadata=meta(objs["pdb"]), spec=objs["pdb"]["spec"], opts=child)
        self.resources["netpol"] = k8s.networking.v1.NetworkPolicy(
            f"{name}-netpol", metadata=meta(objs["netpol"]), spec=objs["netpol"]["spec"], opts=child)
        if "ingress" in objs:
            self.resources["ingress"] = k8s.networking.v1.Ingress(
                f"{name}-ingress", metadata=meta(objs["ingress"]), spec=objs["ingress"]["spec"],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[*deps, self.service]))

        self.namespace = ns
        self.service_name = pulumi.Output.from_input(NAME)
        self.endpoint = ns.apply(lambda n: f"http://{NAME}.{n}.svc.cluster.local/analyze")
        self.autoscaler = p.autoscaler
        self.register_outputs({
            "namespace": self.namespace,
            "serviceName": self.service_name,
            "endpoint": self.endpoint,
            "autoscaler": p.autoscaler,
            "exposure": p.exposure,
            "scheme": p.scheme,
        })
