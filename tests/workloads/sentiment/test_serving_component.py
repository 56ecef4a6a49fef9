"""The sentiment-serving component's pure builders (workloads/sentiment/component.py), without Pulumi."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from components.monitoring import PROMETHEUS_URL
from infra.config import ConfigError, parse_config
from infra.versions import IMAGES
from workloads.sentiment import manifests as sc
from workloads.sentiment.config import ENV_DOC, Settings
from workloads.sentiment.settings import ServingSettings

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
CERT = "arn:aws:acm:us-west-2:123456789012:certificate/12345678-1234-1234-1234-123456789012"


def objs(raw: dict | None = None, stack: str = "dev") -> dict:
    return sc.build_objects(ServingSettings.from_config(parse_config(raw or {}, stack=stack)))


def pod(o: dict) -> dict:
    return o["deployment"]["spec"]["template"]["spec"]


def container(o: dict) -> dict:
    (c,) = pod(o)["containers"]
    return c


def env(o: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(o)["env"]}


# ---------------------------------------------------------------- placement by device
@pytest.mark.parametrize("device, resource, taint, pool, image, backend", [
    ("inf1", "aws.amazon.com/neuron", "aws.amazon.com/neuron", "inf1", IMAGES["sentiment_neuron"], "neuron"),
    ("gpu", "nvidia.com/gpu", "nvidia.com/gpu", "gpu", IMAGES["sentiment"], "cuda"),
    ("cpu", None, None, "cpu", IMAGES["sentiment"], "cpu"),
])
def test_device_placement(device, resource, taint, pool, image, backend):
    o = objs({"serving": {"device": device}})
    spec, c = pod(o), container(o)
    assert spec["nodeSelector"] == {"eks-ml-platform/pool": pool}
    assert c["image"] == image and env(o)["BACKEND"] == backend
    res = c["resources"]
    if resource:
        assert res["requests"][resource] == res["limits"][resource] == "1"
        assert spec["tolerations"] == [{"key": taint, "operator": "Exists", "effect": "NoSchedule"}]
    else:
        assert set(res["requests"]) == set(res["limits"]) == {"cpu", "memory"}
        assert "tolerations" not in spec


def test_default_is_inf1_with_priority_class_and_resources():
    o = objs()
    assert pod(o)["priorityClassName"] == "ml-serving"
    assert container(o)["resources"] == {
        "requests": {"cpu": "1", "memory": "4Gi", "aws.amazon.com/neuron": "1"},
        "limits": {"cpu": "2", "memory": "4Gi", "aws.amazon.com/neuron": "1"},
    }


@pytest.mark.parametrize("device, memory, tmp", [("inf1", "4Gi", "4Gi"), ("gpu", "4Gi", "1Gi"), ("cpu", "2Gi", "1Gi")])
def test_memory_and_tmp_follow_the_device(device, memory, tmp):
    o = objs({"serving": {"device": device}})
    res = container(o)["resources"]
    assert res["requests"]["memory"] == res["limits"]["memory"] == memory
    assert {v["name"]: v for v in pod(o)["volumes"]}["tmp"]["emptyDir"]["sizeLimit"] == tmp
    o = objs({"serving": {"device": device, "resources": {"memory": "3Gi"}}})
    assert container(o)["resources"]["limits"]["memory"] == "3Gi"


def test_image_override_and_named_pool():
    raw = {"serving": {"device": "cpu", "pool": "cpu", "image": "registry.example.com/sentiment@sha256:" + "a" * 64}}
    o = objs(raw)
    assert container(o)["image"].endswith("a" * 64)
    assert pod(o)["nodeSelector"] == {"eks-ml-platform/pool": "cpu"}


# ---------------------------------------------------------------- the server's settings
def test_env_is_what_the_server_reads_and_it_accepts_it():
    o = objs({"serving": {"maxBatchSize": 64, "maxBatchWaitMs": 2.5, "maxQueue": 1024, "workers": 2,
                          "resources": {"cpu": "500m", "cpuLimit": "3"}}})
    e = env(o)
    server_keys = set(ENV_DOC)
    runtime_keys = {"TMPDIR", "HOME", "HF_HOME", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"}
    assert set(e) - runtime_keys <= server_keys, set(e) - runtime_keys - server_keys
    assert e["MODEL_DIR"] == "/models" and e["PORT"] == "8080"
    assert (e["MAX_BATCH_SIZE"], e["MAX_BATCH_WAIT_MS"], e["MAX_QUEUE"], e["WORKERS"]) == ("64", "2.5", "1024", "2")
    assert e["TORCH_THREADS"] == "3"  # the CPU limit, not every core of the node
    s = Settings.from_env(e)  # the server's own validation accepts every value
    assert (s.port, s.max_batch_size, s.max_batch_wait_ms, s.max_queue, s.workers, s.backend) == (8080, 64, 2.5, 1024, 2, "neuron")
    assert container(o)["env"] == sorted(container(o)["env"], key=lambda x: x["name"])


@pytest.mark.parametrize("device, engine, cpu_limit, threads", [
    ("cpu", "auto", "2", "2"),          # ONNX Runtime (the default engine): every core of the limit
    ("cpu", "onnx-int8", "1500m", "2"),  # a fractional limit rounds up
    ("cpu", "torch-fp32", "2", "1"),    # fp32 PyTorch's OpenMP threads spin: one core left to the event loop
    ("cpu", "torch-fp32", "1", "1"),
    ("gpu", "auto", "3", "3"),          # CUDA: host threads only tokenize
    ("inf1", "auto", "2", "2"),
])
def test_inference_threads_and_engine_follow_the_device_and_the_cpu_limit(device, engine, cpu_limit, threads):
    pool = {"gpu": "gpu", "inf1": "inf1", "cpu": "cpu"}[device]
    serving = {"device": device, "pool": pool, "resources": {"cpu": "500m", "cpuLimit": cpu_limit}}
    if engine != "auto":
        serving["cpuEngine"] = engine
    e = env(objs({"serving": serving}))
    assert e["TORCH_THREADS"] == threads
    assert e.get("CPU_ENGINE") == (engine if device == "cpu" else None)  # only the CPU server reads it
    assert e["WORKERS"] == "1"  # every device: see README "Threads" (no GPU machine to measure more)
    s = Settings.from_env(e)
    assert s.torch_threads == int(threads) and s.cpu_engine == (engine if device == "cpu" else "auto")


def test_cpu_engine_needs_the_cpu_device():
    with pytest.raises(ConfigError, match=r"cpuEngine.*needs device cpu \(device is gpu\)"):
        parse_config({"serving": {"device": "gpu", "cpuEngine": "onnx-int8"}}, stack="dev")
    with pytest.raises(ConfigError, match=r"cpuEngine.*onnx-int8"):
        parse_config({"serving": {"device": "cpu", "cpuEngine": "int4"}}, stack="dev")


def test_termination_grace_covers_the_servers_drain():
    o = objs()
    e = env(o)
    assert pod(o)["terminationGracePeriodSeconds"] > float(e["SHUTDOWN_DELAY_S"]) + float(e["GRACEFUL_TIMEOUT_S"])


def test_probes():
    c = container(objs({"serving": {"startupTimeoutSeconds": 300}}))
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http", "scheme": "HTTP"}
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    start = c["startupProbe"]
    assert start["httpGet"]["path"] == "/readyz"
    assert start["periodSeconds"] * start["failureThreshold"] >= 300
    assert c["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]


# ---------------------------------------------------------------- security and storage
def test_security_context_is_restricted():
    o = objs()
    spec, c = pod(o), container(o)
    sc_ = c["securityContext"]
    assert sc_["runAsNonRoot"] is True and sc_["runAsUser"] >= 10000
    assert sc_["allowPrivilegeEscalation"] is False and sc_["privileged"] is False
    assert sc_["readOnlyRootFilesystem"] is True
    assert sc_["capabilities"] == {"drop": ["ALL"]}
    assert sc_["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False and spec["serviceAccountName"] == "sentiment"
    assert o["sa"]["automountServiceAccountToken"] is False
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        assert key not in spec


def test_models_pvc_is_mounted_read_only_and_tmp_is_writable():
    o = objs()
    vols = {v["name"]: v for v in pod(o)["volumes"]}
    assert vols["models"]["persistentVolumeClaim"] == {"claimName": "models", "readOnly": True}
    assert vols["tmp"]["emptyDir"]["sizeLimit"]
    mounts = {m["name"]: m for m in container(o)["volumeMounts"]}
    assert mounts["models"] == {"name": "models", "mountPath": "/models", "readOnly": True}
    assert mounts["tmp"]["mountPath"] == "/tmp" and not mounts["tmp"].get("readOnly")
    e = env(o)
    assert e["TMPDIR"] == "/tmp" and e["HF_HOME"].startswith("/tmp") and e["NEURON_CACHE_DIR"].startswith("/tmp")


def test_deployment_checkov_skip_has_a_reason():
    ann = objs()["deployment"]["metadata"]["annotations"]
    skips = {k: v for k, v in ann.items() if k.startswith("checkov.io/skip")}
    assert skips and all(v.startswith("CKV_K8S_43=") and len(v) > 40 for v in skips.values())
    assert ann["pulumi.com/skipAwait"] == "true"  # the model arrives after training: `pulumi up` must not wait on it


# ---------------------------------------------------------------- spread, rollout, disruption
@pytest.mark.parametrize("stack, raw, zone", [
    ("dev", {}, "ScheduleAnyway"),
    ("dev", {"serving": {"zoneSpread": "required"}}, "DoNotSchedule"),
    ("prod", {"environment": "prod", "cluster": {"admins": [{"principalArn": "arn:aws:iam::123456789012:role/a"}]},
              "vpc": {"azCount": 3}}, "DoNotSchedule"),
])
def test_topology_spread(stack, raw, zone):
    tsc = {t["topologyKey"]: t for t in pod(objs(raw, stack=stack))["topologySpreadConstraints"]}
    assert set(tsc) == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    assert tsc["topology.kubernetes.io/zone"]["whenUnsatisfiable"] == zone
    assert tsc["kubernetes.io/hostname"]["whenUnsatisfiable"] == "DoNotSchedule"
    for t in tsc.values():
        assert t["maxSkew"] == 1 and t["labelSelector"] == {"matchLabels": {"app.kubernetes.io/name": "sentiment"}}


@pytest.mark.parametrize("raw, surge, unavailable", [
    ({}, 0, 1),  # dev inf1: up to 4 replicas on a 4-device pool, no spare device for a surge pod
    ({"serving": {"maxReplicas": 3}}, 1, 0),  # a spare device: surge first, never below capacity
    ({"serving": {"device": "cpu"}}, 1, 0),
])
def test_rollout_strategy_fits_the_device_budget(raw, surge, unavailable):
    ru = objs(raw)["deployment"]["spec"]["strategy"]["rollingUpdate"]
    assert (ru["maxSurge"], ru["maxUnavailable"]) == (surge, unavailable)


def test_pdb():
    spec = objs()["pdb"]["spec"]
    assert spec["maxUnavailable"] == 1 and "minAvailable" not in spec
    assert spec["selector"] == {"matchLabels": {"app.kubernetes.io/name": "sentiment"}}
    assert spec["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


# ---------------------------------------------------------------- autoscaling
def test_hpa_on_cpu_and_no_replicas_on_the_deployment():
    o = objs({"serving": {"targetCpuPercent": 60}})
    assert "scaledobject" not in o
    spec = o["hpa"]["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "sentiment"}
    assert (spec["minReplicas"], spec["maxReplicas"]) == (3, 4)
    assert spec["metrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}}]
    assert spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 60
    assert "replicas" not in o["deployment"]["spec"]  # the HPA owns it; `pulumi up` must not reset a scale-out


def test_keda_replaces_the_hpa():
    o = objs({"serving": {"keda": True, "kedaTargetRps": 80}})
    assert "hpa" not in o
    so = o["scaledobject"]
    assert so["apiVersion"] == "keda.sh/v1alpha1" and so["kind"] == "ScaledObject"
    spec = so["spec"]
    assert spec["scaleTargetRef"]["name"] == "sentiment"
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (3, 4)
    triggers = {t["type"]: t for t in spec["triggers"]}
    prom = triggers["prometheus"]["metadata"]
    assert prom["serverAddress"] == PROMETHEUS_URL == "http://kube-prometheus-stack-prometheus.monitoring.svc:9090"
    assert prom["query"] == 'sum(rate(sentiment_requests_total{namespace="ml-workloads"}[1m]))'
    assert prom["threshold"] == "80" and triggers["prometheus"]["metricType"] == "AverageValue"
    assert triggers["cpu"]["metricType"] == "Utilization" and triggers["cpu"]["metadata"] == {"value": "70"}
    assert "replicas" not in o["deployment"]["spec"]


def test_fixed_replicas_without_autoscaler():
    o = objs({"serving": {"maxReplicas": 3}})
    assert "hpa" not in o and "scaledobject" not in o
    assert o["deployment"]["spec"]["replicas"] == 3


# ---------------------------------------------------------------- exposure
def test_service_is_what_the_servicemonitor_selects():
    svc = objs({"serving": {"exposure": "none"}})["service"]
    assert svc["metadata"]["labels"]["app.kubernetes.io/name"] == "sentiment"
    assert svc["metadata"]["namespace"] == "ml-workloads"
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    assert svc["spec"]["selector"] == {"app.kubernetes.io/name": "sentiment"}


def test_ingress_is_an_internal_alb_by_default():
    o = objs()
    ing = o["ingress"]
    ann = ing["metadata"]["annotations"]
    assert ann["alb.ingress.kubernetes.io/scheme"] == "internal"
    assert ann["alb.ingress.kubernetes.io/target-type"] == "ip"
    assert ann["alb.ingress.kubernetes.io/healthcheck-path"] == "/readyz"
    assert ann["alb.ingress.kubernetes.io/listen-ports"] == '[{"HTTP": 80}]'
    assert ing["spec"]["ingressClassName"] == "alb"
    (rule,) = ing["spec"]["rules"]
    assert "host" not in rule
    (path,) = rule["http"]["paths"]
    assert (path["path"], path["pathType"]) == ("/analyze", "Exact")  # /metrics stays inside the cluster
    assert path["backend"] == {"service": {"name": "sentiment", "port": {"name": "http"}}}
    assert o["service"]["spec"]["type"] == "ClusterIP"


def test_ingress_tls_host_and_public_scheme():
    ing = objs({"allowPublicLoadBalancers": True,
                "serving": {"public": True, "ingress": {"host": "sentiment.example.com", "certificateArn": CERT,
                                                        "className": "alb-shared"}}})["ingress"]
    ann = ing["metadata"]["annotations"]
    assert ann["alb.ingress.kubernetes.io/scheme"] == "internet-facing"
    assert ann["alb.ingress.kubernetes.io/certificate-arn"] == CERT
    assert ann["alb.ingress.kubernetes.io/ssl-redirect"] == "443"
    assert ann["alb.ingress.kubernetes.io/listen-ports"] == '[{"HTTP": 80}, {"HTTPS": 443}]'
    assert ing["spec"]["rules"][0]["host"] == "sentiment.example.com"
    assert ing["spec"]["ingressClassName"] == "alb-shared"


def test_load_balancer_service_is_an_internal_nlb():
    o = objs({"serving": {"exposure": "loadBalancer"}})
    assert "ingress" not in o
    svc = o["service"]
    ann = svc["metadata"]["annotations"]
    assert svc["spec"]["type"] == "LoadBalancer"
    assert ann["service.beta.kubernetes.io/aws-load-balancer-scheme"] == "internal"
    assert ann["service.beta.kubernetes.io/aws-load-balancer-type"] == "external"
    assert ann["service.beta.kubernetes.io/aws-load-balancer-nlb-target-type"] == "ip"
    assert ann["service.beta.kubernetes.io/aws-load-balancer-healthcheck-path"] == "/readyz"
    assert svc["spec"]["ports"][0]["name"] == "http"


def test_public_load_balancer_only_with_permission():
    o = objs({"allowPublicLoadBalancers": True, "serving": {"exposure": "loadBalancer", "public": True}})
    assert o["service"]["metadata"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-scheme"] == "internet-facing"
    o = objs({"allowPublicLoadBalancers": True, "serving": {"exposure": "loadBalancer"}})
    assert o["service"]["metadata"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-scheme"] == "internal"


def test_no_exposure_creates_no_load_balancer():
    o = objs({"serving": {"exposure": "none"}})
    assert "ingress" not in o and o["service"]["spec"]["type"] == "ClusterIP"


# ---------------------------------------------------------------- network policy
def _rules(o: dict) -> list[dict]:
    return o["netpol"]["spec"]["ingress"]


def test_network_policy_ingress_and_dns_only_egress():
    o = objs()
    spec = o["netpol"]["spec"]
    assert spec["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "sentiment"}}
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    prom, lb = _rules(o)
    assert prom["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                             "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}]
    # dev's internal ALB (ip targets) sits in the private subnets of vpc.cidr 10.42.0.0/16; never the whole VPC
    assert lb["from"] == [{"ipBlock": {"cidr": "10.42.0.0/18"}}, {"ipBlock": {"cidr": "10.42.64.0/18"}}]
    for rule in (prom, lb):
        assert rule["ports"] == [{"port": 8080, "protocol": "TCP"}]
    (dns,) = spec["egress"]
    assert dns["to"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                          "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}]
    assert sorted((p["protocol"], p["port"]) for p in dns["ports"]) == [("TCP", 53), ("UDP", 53)]


def test_network_policy_without_exposure_admits_only_prometheus_and_clients():
    o = objs({"serving": {"exposure": "none", "clientNamespaces": ["batch", "apps"]}})
    prom, clients = _rules(o)
    assert "ipBlock" not in str(o["netpol"])
    assert clients["from"][0]["namespaceSelector"]["matchExpressions"] == [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["apps", "batch"]}]


def test_network_policy_admits_an_internet_facing_load_balancer_from_the_public_subnets_only():
    o = objs({"serving": {"public": True}, "allowPublicLoadBalancers": True, "vpc": {"cidr": "10.50.0.0/16", "azCount": 3}})
    assert o["ingress"]["metadata"]["annotations"]["alb.ingress.kubernetes.io/scheme"] == "internet-facing"
    assert _rules(o)[1]["from"] == [{"ipBlock": {"cidr": c}} for c in ("10.50.192.0/22", "10.50.196.0/22", "10.50.200.0/22")]


def test_network_policy_of_an_internal_nlb_follows_the_private_subnets():
    o = objs({"serving": {"exposure": "loadBalancer", "device": "cpu"}, "vpc": {"cidr": "10.60.0.0/18", "azCount": 2}})
    assert _rules(o)[1]["from"] == [{"ipBlock": {"cidr": "10.60.0.0/20"}}, {"ipBlock": {"cidr": "10.60.16.0/20"}}]


def test_network_policy_with_your_own_vpc_uses_its_cidr_or_load_balancer_cidrs():
    byo = {"id": "vpc-0123456789abcdef0", "privateSubnetIds": ["subnet-01234567", "subnet-89abcdef"]}
    o = objs({"vpc": {**byo, "cidr": "172.20.0.0/16"}})
    assert _rules(o)[1]["from"] == [{"ipBlock": {"cidr": "172.20.0.0/16"}}]  # the subnets are not known here
    o = objs({"vpc": {**byo, "cidr": "172.20.0.0/16"}, "serving": {"loadBalancerCidrs": ["172.20.8.0/24"]}})
    assert _rules(o)[1]["from"] == [{"ipBlock": {"cidr": "172.20.8.0/24"}}]


def test_network_policy_uses_configured_lb_cidrs():
    o = objs({"serving": {"exposure": "loadBalancer", "loadBalancerCidrs": ["10.0.0.0/16", "100.64.0.0/16"]}})
    assert _rules(o)[1]["from"] == [{"ipBlock": {"cidr": "10.0.0.0/16"}}, {"ipBlock": {"cidr": "100.64.0.0/16"}}]


# ---------------------------------------------------------------- every object
@pytest.mark.parametrize("raw", [{}, {"serving": {"keda": True}}, {"serving": {"exposure": "loadBalancer", "device": "cpu"}}])
def test_every_object_is_named_namespaced_and_labelled(raw):
    for key, o in objs(raw).items():
        meta = o["metadata"]
        # the Neuron compile job's objects are named for it, so the server's selectors never match its pods
        name = "sentiment-neuron-compile" if key.startswith("compile-") else "sentiment"
        assert meta["name"] == name and meta["namespace"] == "ml-workloads"
        assert {("app.kubernetes.io/name", name), ("app.kubernetes.io/part-of", "eks-ml-platform"),
                ("app.kubernetes.io/managed-by", "pulumi")} <= set(meta["labels"].items())


def test_yaml_is_stable_and_sorted():
    cfg = parse_config({}, stack="dev")
    settings = ServingSettings.from_config(cfg)
    a, b = sc.to_yaml(sc.build_objects(settings)), sc.to_yaml(sc.build_objects(settings))
    assert a == b
    docs = [d for d in yaml.safe_load_all(a)]
    assert [d["kind"] for d in docs] == ["ServiceAccount", "Deployment", "Service", "HorizontalPodAutoscaler",
                                         "PodDisruptionBudget", "NetworkPolicy", "Ingress", "CronJob", "NetworkPolicy"]
    assert list(docs[1]) == sorted(docs[1])


# ---------------------------------------------------------------- import directions
def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


#: The Pulumi side of workloads/sentiment: the component and the pure builders it turns into resources.
PULUMI_SIDE = ("component.py", "manifests.py", "plan.py", "autoscaling.py", "settings.py", "compile_job.py")
PULUMI_SIDE_MODULES = tuple(f"workloads.sentiment.{f.removesuffix('.py')}" for f in PULUMI_SIDE)


def test_the_server_never_imports_the_component_or_pulumi():
    app_files = [p for p in (REPO / "workloads" / "sentiment").glob("*.py") if p.name not in PULUMI_SIDE]
    assert app_files
    for path in app_files:
        bad = {m for m in _imports(path) if m.startswith(("pulumi", "infra", "components", *PULUMI_SIDE_MODULES))}
        assert not bad, f"{path.name} imports {bad}"


def test_the_component_never_imports_the_server_or_the_preview_harness():
    for name in PULUMI_SIDE:
        mods = _imports(REPO / "workloads" / "sentiment" / name)
        assert not {m for m in mods if m.startswith(("workloads.sentiment.server", "workloads.sentiment.model",
                                                     "infra.preview.mocks", "infra.preview.render", "infra.check",
                                                     "torch"))}, name


def test_the_pure_builders_never_create_resources():
    """manifests.py, plan.py and autoscaling.py build dicts; only component.py talks to Pulumi."""
    for name in PULUMI_SIDE[1:]:
        assert not {m for m in _imports(REPO / "workloads" / "sentiment" / name) if m.startswith("pulumi")}, name


def test_the_service_monitor_scrapes_the_services_http_port():
    svc = sc.build_objects(ServingSettings.from_config(parse_config({}, stack="dev")))["service"]
    sm = sc.server_service_monitor()
    assert sm["metadata"]["namespace"] == "monitoring"  # next to Prometheus, selecting the workloads' namespace
    assert sm["spec"]["namespaceSelector"] == {"matchNames": [svc["metadata"]["namespace"]]}
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    (endpoint,) = sm["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in svc["spec"]["ports"]} and endpoint["path"] == "/metrics"
    assert endpoint["honorLabels"] is True  # the server's own `endpoint` label (the HTTP path) wins
