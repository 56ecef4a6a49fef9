"""The sentiment server's Kubernetes objects: Deployment, Service, autoscaler, PDB, NetworkPolicy and exposure.

Pure: every object is a plain dict (sorted keys when serialised), so it is tested without Pulumi;
``component.py`` (``SentimentServing``) only turns them into resources. The settings they share
are in ``plan.py``, the autoscalers in ``autoscaling.py``. The server (``server.py``) never imports
these modules, and they never import the server (its settings are passed as environment variables).

What it creates in the shared ``ml-workloads`` namespace (namespace and the ``models`` PVC come from
``workloads/shared.py``, registered as ``Platform.addons["workload_storage"]``):

- ServiceAccount ``sentiment`` (no API token mounted: the server never talks to the API server);
- Deployment ``sentiment``: on the inf1 pool by default (``aws.amazon.com/neuron: 1``, the Neuron
  taint tolerated), inf2 (``aws.amazon.com/neuroncore: 1``, two replicas per device), gpu
  (``nvidia.com/gpu: 1``) or cpu by ``serving.device``; spread over zones and
  nodes; the ``ml-serving`` PriorityClass; restricted security context with a read-only root
  filesystem (``/tmp`` is an emptyDir); the ``models`` PVC mounted read-only at ``/models``;
- Service ``sentiment`` (port ``http`` 80 -> 8080; ``/metrics`` on the same port, which the
  ServiceMonitor ``sentiment`` in ``monitoring`` selects by ``app.kubernetes.io/name: sentiment``
  when monitoring is on), type LoadBalancer
  (an NLB through the AWS Load Balancer Controller) when ``serving.exposure`` is ``loadBalancer``;
- HorizontalPodAutoscaler on CPU, or, with ``serving.keda``, a KEDA ScaledObject on request rate
  plus CPU (KEDA then owns the HPA, so none is created here); neither when ``maxReplicas`` equals
  ``replicas``;
- PodDisruptionBudget (maxUnavailable 1);
- NetworkPolicy: ingress only from Prometheus, the load balancer (its subnets) and listed client
  namespaces; egress only to cluster DNS (the namespace's default deny comes with it);
- Ingress (an ALB, internal unless ``serving.public``) when ``serving.exposure`` is ``ingress``;
- on inf1/inf2, the CronJob ``sentiment-neuron-compile`` and its NetworkPolicy (``compile_job.py``), which
  compile the served version for ``serving.neuron``'s shapes next to it on the ``models`` PVC.

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
- NetworkPolicy: ALB/NLB ``ip`` targets reach the pods from the load balancer's ENIs, hence ipBlocks of
  the subnets its scheme uses: the public subnets for ``internet-facing``, the private ones for
  ``internal`` (``serving.loadBalancerCidrs`` overrides them; with your own VPC it is required, or
  ``vpc.cidr``). Not the VPC CIDR: with the VPC CNI every pod has a VPC address, so that would admit
  every pod and make ``serving.clientNamespaces`` moot. An internal load balancer shares the private
  subnets with the nodes and pods, so there the ipBlock is as wide as those subnets. The VPC CNI
  enforces the policy (``enableNetworkPolicy``); its agent always admits the node's own IP (probes).
"""
from __future__ import annotations

import json
import math
from typing import Any, Mapping, Optional

from components.netpol import DNS_EGRESS, allow, cidr_peers, namespaces_peer, prometheus_peer, tcp
from components.netpol import network_policy as network_policy_doc
from components.scrape import service_monitor
from infra.conventions import checkov_annotations
from infra.config import cpu_millis
from workloads.sentiment.autoscaling import hpa, scaled_object
from workloads.sentiment.compile_job import compile_cronjob, compile_network_policy, neuron_env
from workloads.sentiment.plan import (
    CONTAINER_PORT, DEREGISTRATION_DELAY_S, GRACEFUL_TIMEOUT_S, MODEL_MOUNT, MODELS_CLAIM, NAME, NAMESPACE,
    POOL_LABEL, PORT_NAME, PRIORITY_CLASS, SELECTOR, SERVICE_PORT, SHUTDOWN_DELAY_S, SKIP_AWAIT, TMP_SIZE,
    ServingPlan, container_security_context, image_checkov_skips, labels, meta, plan, pod_security_context,
    writable_env)
from workloads.sentiment.settings import ServingSettings

def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def engine_threads(device: str, cpu_engine: str, cpu_limit: str) -> int:
    """The inference threads of a pod, from its CPU limit (an engine's default is every core of the node, and a
    throttled pod is slow): all of it for ONNX Runtime, whose threads sleep when idle, so the event loop gets a
    core when it needs one (measured: 2 threads on 2 cores, 1.6x 1 thread at the server); one fewer for fp32
    PyTorch on the CPU, whose OpenMP threads spin (2 threads on 2 busy cores measured 5x slower than 1)."""
    cores = max(1, math.ceil(cpu_millis(cpu_limit) / 1000))
    return max(1, cores - 1) if device == "cpu" and cpu_engine == "torch-fp32" else cores


def server_env(s: ServingSettings, p: ServingPlan) -> list[dict[str, str]]:
    """The server's settings (workloads/sentiment/config.py ENV_DOC), sorted by name."""
    sv = s.serving
    env = {
        "MODEL_DIR": MODEL_MOUNT,
        "MODEL_VERSION": sv.model_version,  # latest: follow the trainer's promotions; a name: pinned
        "HOST": "0.0.0.0",
        "PORT": str(CONTAINER_PORT),
        "BACKEND": p.backend,
        "WORKERS": str(sv.workers),
        "MAX_BATCH_SIZE": str(sv.max_batch_size),
        "MAX_BATCH_WAIT_MS": _num(sv.max_batch_wait_ms),
        "MAX_QUEUE": str(sv.max_queue),
        "TORCH_THREADS": str(engine_threads(sv.device, sv.cpu_engine, sv.resources.cpu_limit)),
        **({"CPU_ENGINE": sv.cpu_engine} if sv.device == "cpu" else {}),
        "SHUTDOWN_DELAY_S": str(SHUTDOWN_DELAY_S),
        "GRACEFUL_TIMEOUT_S": str(GRACEFUL_TIMEOUT_S),
        # read-only root filesystem: everything writable lives on the /tmp emptyDir
        **writable_env(),
        "NEURON_CACHE_DIR": "/tmp/neuron",  # where a start-up compile goes (BACKEND=neuron/neuronx only)
        # inf1/inf2: the compiled shapes, and whether a pod may compile at start-up (default: never)
        **neuron_env(sv),
    }
    return [{"name": k, "value": v} for k, v in sorted(env.items())]


def container_resources(s: ServingSettings, p: ServingPlan) -> dict[str, dict[str, str]]:
    r = s.serving.resources
    memory = r.memory_for(p.device)
    requests = {"cpu": r.cpu, "memory": memory}
    limits = {"cpu": r.cpu_limit, "memory": memory}
    if p.device_resource:
        requests[p.device_resource] = "1"  # extended resources: request == limit (a device, or one inf2 NeuronCore)
        limits[p.device_resource] = "1"
    return {"limits": limits, "requests": requests}


def probes(s: ServingSettings) -> dict[str, dict[str, Any]]:
    """startup: model load (readyz), readiness: readyz, liveness: healthz (answers while loading)."""
    def get(path: str, period: int, failures: int) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": PORT_NAME, "scheme": "HTTP"}, "periodSeconds": period,
                "timeoutSeconds": 3, "failureThreshold": failures, "successThreshold": 1}

    startup_period = 10
    return {
        "startupProbe": get("/readyz", startup_period, math.ceil(s.serving.startup_timeout_seconds / startup_period)),
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
        # a shared GPU (gpuSharing) or an inf2 device takes pods_per_device replicas before Karpenter adds a node
        {"maxSkew": p.pods_per_device, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
         "labelSelector": sel},
    ]


def pod_template(s: ServingSettings, p: ServingPlan, *, models_claim: str = MODELS_CLAIM) -> dict[str, Any]:
    container = {
        "name": "server",
        "image": p.image,
        "imagePullPolicy": "Always",
        "command": ["python", "-m", "workloads.sentiment.server"],
        "env": server_env(s, p),
        "ports": [{"name": PORT_NAME, "containerPort": CONTAINER_PORT, "protocol": "TCP"}],
        "resources": container_resources(s, p),
        "securityContext": container_security_context(),
        "volumeMounts": [
            {"name": "models", "mountPath": MODEL_MOUNT, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
        **probes(s),
    }
    tolerations = []
    if p.toleration_key:
        tolerations.append({"key": p.toleration_key, "operator": "Exists", "effect": "NoSchedule"})
    spec: dict[str, Any] = {
        "serviceAccountName": NAME,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "priorityClassName": PRIORITY_CLASS,
        "nodeSelector": {POOL_LABEL: p.pool, **dict(p.shared_gpu_labels)},
        "topologySpreadConstraints": topology_spread(p),
        "terminationGracePeriodSeconds": SHUTDOWN_DELAY_S + GRACEFUL_TIMEOUT_S + 5,
        "securityContext": pod_security_context(),
        "containers": [container],
        "volumes": [
            {"name": "models", "persistentVolumeClaim": {"claimName": models_claim, "readOnly": True}},
            {"name": "tmp", "emptyDir": {"sizeLimit": TMP_SIZE[p.device]}},
        ],
    }
    if tolerations:
        spec["tolerations"] = tolerations
    return {"metadata": {"labels": labels()}, "spec": spec}


def deployment(s: ServingSettings, p: ServingPlan, *, namespace: str = NAMESPACE,
               models_claim: str = MODELS_CLAIM) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": dict(SELECTOR)},
        "strategy": {"type": "RollingUpdate",
                     "rollingUpdate": {"maxSurge": p.max_surge, "maxUnavailable": p.max_unavailable}},
        "revisionHistoryLimit": 5,
        "minReadySeconds": 5,
        # node launch (Karpenter, minutes for inf1/GPU) + model load
        "progressDeadlineSeconds": s.serving.startup_timeout_seconds + 600,
        "template": pod_template(s, p, models_claim=models_claim),
    }
    if p.autoscaler == "none":
        spec["replicas"] = p.replicas
    # With an autoscaler, replicas is left out: the HPA (or KEDA's) owns it, and a `pulumi up` must not
    # reset a scaled-out Deployment. The HPA raises it to minReplicas (= serving.replicas) at once.
    ann = {**SKIP_AWAIT, **checkov_annotations(image_checkov_skips(p.image))}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(namespace, annotations=ann), "spec": spec}


def service_account(namespace: str = NAMESPACE) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(namespace),
            "automountServiceAccountToken": False}


def service(s: ServingSettings, p: ServingPlan, *, namespace: str = NAMESPACE) -> dict[str, Any]:
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
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta(namespace, annotations=ann), "spec": spec}


def ingress(s: ServingSettings, p: ServingPlan, *, namespace: str = NAMESPACE) -> Optional[dict[str, Any]]:
    if p.exposure != "ingress":
        return None
    ing = s.serving.ingress
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
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta(namespace, annotations=ann),
            "spec": {"ingressClassName": ing.class_name, "rules": [rule]}}


def pdb(p: ServingPlan, *, namespace: str = NAMESPACE) -> dict[str, Any]:
    """maxUnavailable 1 (not minAvailable 2): drains never deadlock at any replica count, and pods that are
    not Ready (e.g. no model yet) may always be evicted."""
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta(namespace),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": dict(SELECTOR)},
                     "unhealthyPodEvictionPolicy": "AlwaysAllow"}}


def network_policy(s: ServingSettings, p: ServingPlan, *, namespace: str = NAMESPACE) -> dict[str, Any]:
    """Ingress to the server's port from Prometheus, the load balancer's subnets and ``serving.clientNamespaces``;
    egress only to the cluster DNS (the server calls nothing)."""
    port = tcp(CONTAINER_PORT)
    ingress_rules = [allow([prometheus_peer()], port)]  # /metrics is on the API port
    if p.exposure != "none":
        # ALB/NLB ip targets: the load balancer connects to the pod IP from its ENIs, which live in the subnets
        # of its scheme (components/netpol.py load_balancer_cidrs); never the whole VPC, where every pod lives.
        ingress_rules.append(allow(cidr_peers(p.lb_cidrs), port))
    if s.serving.client_namespaces:
        ingress_rules.append(allow([namespaces_peer(s.serving.client_namespaces)], port))
    return network_policy_doc(meta(namespace), {"matchLabels": dict(SELECTOR)}, ingress_rules, [DNS_EGRESS])


def build_objects(s: ServingSettings, *, namespace: str = NAMESPACE, models_claim: str = MODELS_CLAIM,
                  images: Optional[Mapping[str, str]] = None) -> dict[str, dict[str, Any]]:
    """Every object the component creates, keyed by the Pulumi name suffix (absent ones left out)."""
    p = plan(s, images)
    objs = {
        "sa": service_account(namespace),
        "deployment": deployment(s, p, namespace=namespace, models_claim=models_claim),
        "service": service(s, p, namespace=namespace),
        "hpa": hpa(s, p, namespace=namespace),
        "scaledobject": scaled_object(s, p, namespace=namespace),
        "pdb": pdb(p, namespace=namespace),
        "netpol": network_policy(s, p, namespace=namespace),
        "ingress": ingress(s, p, namespace=namespace),
        # inf1/inf2: the CronJob that compiles the serving version next to it (compile_job.py)
        "compile-cronjob": compile_cronjob(s, p, namespace=namespace, models_claim=models_claim),
        "compile-netpol": compile_network_policy(p, namespace=namespace),
    }
    return {k: v for k, v in objs.items() if v is not None}


def to_yaml(objs: dict[str, dict[str, Any]]) -> str:
    """The objects as one multi-document YAML with sorted keys (stable diffs; handy for review)."""
    import yaml

    return "---\n".join(yaml.safe_dump(o, sort_keys=True) for o in objs.values())


def server_service_monitor() -> dict[str, Any]:
    """The ServiceMonitor ``sentiment`` (in ``monitoring``): the Service's ``http`` port, every 15 s.

    honorLabels: the server's own ``endpoint`` label (the HTTP path) must win over the target's
    ``endpoint`` (the port name); alerts and the dashboard filter on endpoint="/analyze".
    """
    return service_monitor(NAME, namespace=NAMESPACE, labels=SELECTOR, port=PORT_NAME, interval="15s",
                           honor_labels=True)
