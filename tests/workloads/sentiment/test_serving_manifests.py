"""The sentiment-serving objects validate (core schemas, the KEDA CRD) and checkov has no unjustified finding.

Covers what the shipped stacks render (dev, staging, prod) and the variants they do not (gpu + KEDA +
public TLS Ingress, cpu + LoadBalancer, no exposure with fixed replicas), at the oldest and newest
Kubernetes versions the platform supports. Checkov runs once over all of them.
"""
from __future__ import annotations

import pytest
import yaml

from infra.check.checkov import run_checkov
from infra.check.objects import validate_objects
from infra.config import SUPPORTED_K8S, parse_config
from policy import rules
from tests.conftest import manifests
from workloads.sentiment.manifests import build_objects
from workloads.sentiment.settings import ServingSettings

pytestmark = pytest.mark.manifests

CERT = "arn:aws:acm:us-west-2:123456789012:certificate/12345678-1234-1234-1234-123456789012"
VARIANTS = {
    "gpu-keda-public": {"allowPublicLoadBalancers": True, "serving": {
        "device": "gpu", "keda": True, "public": True, "clientNamespaces": ["apps"],
        "ingress": {"host": "sentiment.example.com", "certificateArn": CERT}}},
    "cpu-loadbalancer": {"serving": {"device": "cpu", "exposure": "loadBalancer", "loadBalancerCidrs": ["10.0.0.0/8"]}},
    "cpu-none-fixed": {"serving": {"device": "cpu", "exposure": "none", "replicas": 2, "maxReplicas": 2}},
    "inf1-prod-shaped": {"serving": {"zoneSpread": "required", "maxReplicas": 3}},
}


def _sentiment(result) -> list[dict]:
    """The serving objects (the ServiceMonitor in ``monitoring`` shares the name label, not the namespace)."""
    return [m for m in manifests(result)
            if m["metadata"].get("namespace") == "ml-workloads" and m["metadata"]["name"] == "sentiment"]


# what components/images.py hands the workloads when the stack builds its images: references by digest
BUILT = {key: f"123456789012.dkr.ecr.us-west-2.amazonaws.com/ml-dev/{repo}@sha256:{'ab' * 32}"
         for key, repo in (("server", "sentiment"), ("serverNeuron", "sentiment-neuron"))}


def _variant(name: str, images: dict | None = BUILT) -> list[dict]:
    return list(build_objects(ServingSettings.from_config(parse_config(VARIANTS[name], stack="dev")), images=images).values())


@pytest.fixture(scope="module")
def rendered(dev, staging, prod) -> dict[str, list[dict]]:
    out = {"dev": _sentiment(dev), "staging": _sentiment(staging), "prod": _sentiment(prod)}
    out.update({name: _variant(name) for name in VARIANTS})
    return out


@pytest.fixture(scope="module")
def checkov_findings(rendered, tmp_path_factory) -> list:
    folder = tmp_path_factory.mktemp("serving-manifests")
    for group, objs in rendered.items():
        for obj in objs:
            (folder / f"{group}-{obj['kind'].lower()}.yaml").write_text(yaml.safe_dump(obj, sort_keys=True))
    return run_checkov(folder)


def test_stacks_render_the_serving_objects(rendered):
    for stack in ("dev", "staging", "prod"):
        kinds = sorted(o["kind"] for o in rendered[stack])
        assert kinds == ["Deployment", "HorizontalPodAutoscaler", "Ingress", "NetworkPolicy", "PodDisruptionBudget",
                         "Service", "ServiceAccount"], stack


@pytest.mark.parametrize("version", [SUPPORTED_K8S[0], SUPPORTED_K8S[-1]])
def test_schemas(rendered, version):
    objs = [o for group in rendered.values() for o in group]
    report = validate_objects(objs, k8s_version=version, crd_dir=None)
    assert [str(f) for f in report.findings] == []
    assert report.coverage["keda.sh/v1alpha1/ScaledObject"].how.startswith("CRD schema")
    assert not report.unchecked_kinds


def test_the_scaledobject_is_checked_against_the_keda_crd():
    (so,) = [o for o in _variant("gpu-keda-public") if o["kind"] == "ScaledObject"]
    bad = {**so, "spec": {**so["spec"], "maxReplicas": 4}}  # a field KEDA does not have
    report = validate_objects([bad], k8s_version="1.34", crd_dir=None)
    assert any(f.check == "crd-schema" and "maxReplicas" in f.message for f in report.findings)


def test_policy_rules_pass(rendered):
    for group, objs in rendered.items():
        allow = group == "gpu-keda-public"
        found = rules.evaluate(objs, [], allow_public_lb=allow)
        assert [str(f) for f in found] == [], group


def test_a_tag_pinned_server_image_is_a_finding():
    """Without the stack's own build (no images), the release image is pinned only by tag: check refuses it."""
    found = rules.evaluate(_variant("cpu-none-fixed", images=None), [])
    assert [(f.rule, f.resource) for f in found] == [("workload-image-pinned", "Deployment/ml-workloads/sentiment")]
    assert "ghcr.io/eks-ml-platform/sentiment:0.1.0" in found[0].message


def test_public_ingress_needs_the_permission(rendered):
    found = rules.evaluate(rendered["gpu-keda-public"], [], allow_public_lb=False)
    assert [f.rule for f in found] == ["no-public-load-balancer"]


def test_checkov_has_no_finding(checkov_findings):
    assert [str(f) for f in checkov_findings] == []


def test_checkov_skips_are_per_object_with_reasons(rendered):
    for group, objs in rendered.items():
        for obj in objs:
            for key, value in (obj["metadata"].get("annotations") or {}).items():
                if key.startswith("checkov.io/skip"):
                    cid, _, reason = value.partition("=")
                    assert obj["kind"] == "Deployment" and cid == "CKV_K8S_43" and len(reason) > 40, (group, value)


def test_the_servicemonitor_selects_the_service(dev, rendered):
    """The monitoring add-on scrapes /metrics through the Service's ``http`` port: the two must agree."""
    (svc,) = [o for o in rendered["dev"] if o["kind"] == "Service"]
    (sm,) = [m for m in manifests(dev, "ServiceMonitor") if m["metadata"]["name"] == "sentiment"]
    assert "ml-workloads" in sm["spec"]["namespaceSelector"]["matchNames"]
    assert set(sm["spec"]["selector"]["matchLabels"].items()) <= set(svc["metadata"]["labels"].items())
    ports = {p["name"] for p in svc["spec"]["ports"]}
    assert all(ep["port"] in ports and ep.get("path", "/metrics") == "/metrics" for ep in sm["spec"]["endpoints"])
