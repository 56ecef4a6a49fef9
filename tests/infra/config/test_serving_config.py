"""ServingConfig (``eks-ml-platform:serving``): defaults, derived settings, and one clear line per bad value."""
from __future__ import annotations

from pathlib import Path

import pytest

from infra.config import ConfigError, load_stack_config, parse_config

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
CERT = "arn:aws:acm:us-west-2:123456789012:certificate/12345678-1234-1234-1234-123456789012"
BYO_VPC = {"id": "vpc-0123456789abcdef0", "privateSubnetIds": ["subnet-01234567", "subnet-89abcdef"]}


def problems(raw: dict, stack: str = "dev") -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse_config(raw, stack=stack)
    assert exc.value.problems
    return exc.value.problems


def serving(**kw) -> dict:
    return {"serving": kw}


def test_defaults():
    sv = parse_config({}, stack="dev").serving
    assert (sv.enabled, sv.device, sv.replicas, sv.exposure, sv.public, sv.keda) == (True, "inf1", 3, "ingress", False, False)
    assert (sv.max_batch_size, sv.max_batch_wait_ms, sv.max_queue, sv.workers) == (32, 5, 512, 1)
    assert (sv.resources.cpu, sv.resources.cpu_limit, sv.resources.memory) == ("1", "2", None)
    assert [sv.resources.memory_for(d) for d in ("inf1", "gpu", "cpu")] == ["4Gi", "4Gi", "2Gi"]
    assert sv.target_cpu_percent == 70 and sv.keda_target_rps == 50
    n = sv.neuron  # the compiled shapes and the compile job's schedule; pods never compile at start-up by default
    assert (n.batch_size, n.seq_len, n.compile_at_startup, n.compile_schedule) == (8, 128, False, "*/10 * * * *")
    assert sv.ingress.class_name == "alb" and sv.ingress.host is None and sv.ingress.certificate_arn is None
    assert sv.load_balancer_cidrs is None and sv.client_namespaces == []


@pytest.mark.parametrize("stack, pool, max_replicas, zone", [
    # the dev inf1 pool may launch 4 devices: the default ceiling is capped there; staging and prod serve on inf2,
    # whose 4 (24) devices hold 8 (48) replicas at one NeuronCore each: twice the replicas fit
    ("dev", "inf1", 4, "preferred"),
    ("staging", "inf2", 6, "preferred"),
    ("prod", "inf2", 6, "required"),
])
def test_shipped_stacks_derive_pool_ceiling_and_spread(stack, pool, max_replicas, zone):
    cfg = load_stack_config(stack, REPO)
    chosen = cfg.serving.pool_for(cfg.pools)
    assert chosen.name == pool
    assert cfg.serving.max_replicas_for(chosen) == max_replicas
    assert cfg.serving.zone_spread_for(cfg.environment) == zone


def test_device_picks_matching_pool_and_cpu_ceiling():
    cfg = parse_config(serving(device="gpu"), stack="dev")
    assert cfg.serving.pool_for(cfg.pools).name == "gpu"
    cfg = parse_config(serving(device="cpu", replicas=4), stack="dev")
    pool = cfg.serving.pool_for(cfg.pools)
    assert pool.name == "cpu" and cfg.serving.device_limit(pool) is None
    assert cfg.serving.max_replicas_for(pool) == 8  # no device limit on CPU: twice replicas


def test_explicit_settings_are_kept():
    cfg = parse_config(serving(device="cpu", pool="cpu", maxReplicas=3, replicas=3, zoneSpread="required",
                               resources={"cpu": "500m", "cpuLimit": 1.5, "memory": "3Gi"},
                               ingress={"host": "sentiment.example.com", "certificateArn": CERT},
                               loadBalancerCidrs=["10.0.0.0/16", "10.1.0.0/16"], clientNamespaces=["apps"]),
                       stack="dev")
    sv = cfg.serving
    assert sv.max_replicas_for(sv.pool_for(cfg.pools)) == 3
    assert sv.zone_spread_for("dev") == "required"
    assert (sv.resources.cpu, sv.resources.cpu_limit) == ("500m", "1.5")
    assert sv.load_balancer_cidrs == ["10.0.0.0/16", "10.1.0.0/16"]


@pytest.mark.parametrize("image", ["ghcr.io/acme/sentiment:1.2.3", "localhost:5000/sentiment:dev-1",
                                   "123456789012.dkr.ecr.us-west-2.amazonaws.com/sentiment@sha256:" + "a" * 64,
                                   "public.ecr.aws/acme/sentiment-neuron:0.1.0-inf1"])
def test_pinned_images_are_accepted(image):
    assert parse_config(serving(image=image), stack="dev").serving.image == image


def test_byo_vpc_with_cidr_or_lb_cidrs_is_accepted():
    parse_config({"vpc": {**BYO_VPC, "cidr": "10.50.0.0/16"}}, stack="dev")
    parse_config({"vpc": {**BYO_VPC, "cidr": "10.50.0.0/16"}, **serving(loadBalancerCidrs=["10.50.0.0/16"])}, stack="dev")
    parse_config({"vpc": {**BYO_VPC, "cidr": "10.50.0.0/16"}, **serving(exposure="none")}, stack="dev")


def test_byo_vpc_needs_its_cidr_for_the_network_policies():
    with pytest.raises(ConfigError) as exc:
        parse_config({"vpc": BYO_VPC, **serving(exposure="none")}, stack="dev")
    assert any(p.startswith("eks-ml-platform:vpc.cidr: with a bring-your-own VPC") for p in exc.value.problems)


def test_public_with_permission_is_accepted():
    cfg = parse_config({"allowPublicLoadBalancers": True, **serving(public=True)}, stack="dev")
    assert cfg.serving.public


P = "eks-ml-platform:serving"


@pytest.mark.parametrize("raw, expected", [
    # enums
    (serving(device="tpu"), f"{P}.device: 'tpu' is not allowed; use one of 'inf1', 'inf2', 'gpu' or 'cpu'"),
    (serving(exposure="nodePort"), f"{P}.exposure: 'nodePort' is not allowed; use one of 'ingress', 'loadBalancer' or 'none'"),
    (serving(zoneSpread="always"), f"{P}.zoneSpread: 'always' is not allowed; use one of 'required' or 'preferred'"),
    # typos
    (serving(replica=3), f"{P}.replica: unknown key; did you mean 'replicas'?"),
    (serving(resources={"cpuLimits": "2"}), f"{P}.resources.cpuLimits: unknown key; did you mean 'cpuLimit'?"),
    # numbers out of range
    (serving(replicas=0), f"{P}.replicas: Input should be greater than or equal to 1"),
    (serving(maxReplicas=0), f"{P}.maxReplicas: Input should be greater than or equal to 1"),
    (serving(targetCpuPercent=5), f"{P}.targetCpuPercent: Input should be greater than or equal to 10"),
    (serving(targetCpuPercent=150), f"{P}.targetCpuPercent: Input should be less than or equal to 100"),
    (serving(kedaTargetRps=0), f"{P}.kedaTargetRps: Input should be greater than or equal to 1"),
    (serving(maxBatchSize=0), f"{P}.maxBatchSize: Input should be greater than or equal to 1"),
    (serving(maxBatchSize=5000), f"{P}.maxBatchSize: Input should be less than or equal to 4096"),
    (serving(maxBatchWaitMs=-1), f"{P}.maxBatchWaitMs: Input should be greater than or equal to 0"),
    (serving(maxQueue=0), f"{P}.maxQueue: Input should be greater than or equal to 1"),
    (serving(workers=0), f"{P}.workers: Input should be greater than or equal to 1"),
    (serving(startupTimeoutSeconds=10), f"{P}.startupTimeoutSeconds: Input should be greater than or equal to 30"),
    (serving(replicas="three"), f"{P}.replicas: 'three' has the wrong type"),
    # resources
    (serving(resources={"cpu": "abc"}), f"{P}.resources.cpu: 'abc' is not a CPU quantity such as 500m, 1 or 1.5"),
    (serving(resources={"cpu": "0"}), f"{P}.resources.cpu: '0' must be more than 0"),
    (serving(resources={"cpuLimit": "2Gi"}), f"{P}.resources.cpuLimit: '2Gi' is not a CPU quantity"),
    (serving(resources={"memory": "-1Gi"}), f"{P}.resources.memory: '-1Gi' must be a positive Kubernetes quantity"),
    (serving(resources={"memory": "lots"}), f"{P}.resources.memory: 'lots' must be a positive Kubernetes quantity"),
    (serving(resources={"cpu": 3, "cpuLimit": "2"}),
     f"{P}.resources: cpu 3 is more than cpuLimit 2; the request cannot exceed the limit"),
    # consistency inside serving
    (serving(maxQueue=16, maxBatchSize=32), f"{P}: maxQueue 16 is smaller than maxBatchSize 32"),
    (serving(replicas=3, maxReplicas=2), f"{P}: maxReplicas 2 is below replicas 3 (replicas is the minimum)"),
    (serving(public=True, exposure="none"), f"{P}: public is true but exposure is none"),
    (serving(exposure="loadBalancer", ingress={"host": "a.example.com"}),
     f"{P}: ingress.host/ingress.certificateArn apply to exposure ingress only (exposure is loadBalancer)"),
    (serving(exposure="none", loadBalancerCidrs=["10.0.0.0/16"]), f"{P}: loadBalancerCidrs is set but exposure is none"),
    # ingress settings
    (serving(ingress={"host": "http://x.example.com"}), f"{P}.ingress.host: 'http://x.example.com' is not a DNS host name"),
    (serving(ingress={"host": "Sentiment"}), f"{P}.ingress.host: 'Sentiment' is not a DNS host name"),
    (serving(ingress={"certificateArn": "arn:aws:iam::123456789012:server-certificate/x"}),
     f"{P}.ingress.certificateArn: 'arn:aws:iam::123456789012:server-certificate/x' is not an ACM certificate ARN"),
    (serving(ingress={"className": "ALB!"}), f"{P}.ingress.className: 'ALB!' must be an IngressClass name"),
    # network settings
    (serving(loadBalancerCidrs=[]), f"{P}.loadBalancerCidrs: is empty"),
    (serving(loadBalancerCidrs=["10.0.0.0/33"]), f"{P}.loadBalancerCidrs: '10.0.0.0/33' is not a valid CIDR"),
    (serving(loadBalancerCidrs=["fd00::/64"]), f"{P}.loadBalancerCidrs: fd00::/64 is not an IPv4 CIDR"),
    (serving(clientNamespaces=["Bad_NS"]), f"{P}.clientNamespaces: ['Bad_NS'] are not namespace names"),
    (serving(pool="Inf1"), f"{P}.pool: 'Inf1' must be a node pool name"),
    (serving(image="ghcr.io/acme/sentiment"), f"{P}.image: 'ghcr.io/acme/sentiment' is not a pinned image reference"),
    (serving(image="ghcr.io/acme/sentiment:latest"), f"{P}.image: 'ghcr.io/acme/sentiment:latest' uses :latest"),
    (serving(image="ghcr.io/acme/sentiment@sha256:abc"), f"{P}.image: 'ghcr.io/acme/sentiment@sha256:abc' is not a pinned image reference"),
    (serving(image="not an image"), f"{P}.image: 'not an image' is not a pinned image reference"),
    # against the node pools, the VPC and the platform switches
    (serving(pool="nope"), f"{P}.pool: no node pool named 'nope' (pools: cpu, gpu, inf1)"),
    (serving(pool="cpu"), f"{P}.pool: pool 'cpu' has accelerator none; device inf1 needs accelerator inf1"),
    (serving(replicas=5), f"{P}.replicas: 5 replicas need 5 aws.amazon.com/neuron devices but pool 'inf1' may launch 4"),
    (serving(maxReplicas=10), f"{P}.maxReplicas: 10 replicas need 10 aws.amazon.com/neuron devices but pool 'inf1' may launch 4"),
    (serving(device="gpu", maxReplicas=6), f"{P}.maxReplicas: 6 replicas need 6 GPUs but pool 'gpu' may launch 4"),
    (serving(keda=True, maxReplicas=3), f"{P}.keda: KEDA needs room to scale: maxReplicas (3) must be above replicas (3)"),
    (serving(public=True), f"{P}.public: a public endpoint needs allowPublicLoadBalancers: true"),
    ({"vpc": BYO_VPC}, f"{P}.loadBalancerCidrs: with a bring-your-own VPC, set serving.loadBalancerCidrs (or vpc.cidr)"),
])
def test_bad_values_are_one_clear_line(raw, expected):
    found = problems(raw)
    assert any(p.startswith(expected) for p in found), found


def test_inf1_without_an_inf1_pool():
    raw = {"nodePools": [{"name": "cpu", "instanceFamilies": ["m6i"], "limits": {"cpu": 10}}],
           "training": {"device": "cpu"}}
    (msg,) = [m for m in problems(raw) if m.startswith(f"{P}.device: inf1 needs a node pool with accelerator inf1")]
    assert "nodePools has none (pools: cpu (none))" in msg  # what there is, and the key to change


def test_cpu_without_a_plain_pool():
    raw = {"nodePools": [{"name": "g", "accelerator": "nvidia", "instanceFamilies": ["g5"], "limits": {"cpu": 10, "gpu": 2}}],
           **serving(device="cpu")}
    assert f"{P}.device: cpu needs a node pool without an accelerator" in problems(raw)


def test_disabled_serving_skips_the_pool_checks():
    cfg = parse_config(serving(enabled=False, replicas=50), stack="dev")
    assert not cfg.serving.enabled
