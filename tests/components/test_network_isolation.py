"""Network isolation of the rendered stacks: who may reach which pods, recomputed from the NetworkPolicies.

For every namespace the platform creates, the rendered policies are flattened into
``(namespace, pods, source, port)`` rows (components/netpol.py builds them; the README's "Network
isolation" table lists them) and compared with the expected table exactly, so a widened allow (the
VPC CIDR back on the serving port, an open probe port, a rule without ``from``) fails here.
"""
from __future__ import annotations

import copy

import pytest

from tests.conftest import manifests

pytestmark = pytest.mark.render

PLATFORM_NAMESPACES = {"ml-workloads", "monitoring", "rook-ceph", "kubeflow", "nvidia-device-plugin", "neuron-monitor",
                       "kueue-system"}
#: Namespaces whose namespace-wide default deny is still to come (none).
NAMESPACE_DENY_PENDING: set[str] = set()

PROMETHEUS = "monitoring/app.kubernetes.io/name=prometheus"
STACKS = {  # vpc.cidr, the private (node) subnets plan_subnets carves from it
    "dev": ("10.42.0.0/16", ["10.42.0.0/18", "10.42.64.0/18"]),
    "prod": ("10.44.0.0/16", ["10.44.0.0/18", "10.44.64.0/18", "10.44.128.0/18"]),
}
SENTIMENT = "app.kubernetes.io/name=sentiment"
TRAINER = "app.kubernetes.io/name=sentiment-trainer"
OPERATOR = "app=kube-prometheus-stack-operator,release=kube-prometheus-stack"
KUEUE = "app.kubernetes.io/instance=kueue,app.kubernetes.io/name=kueue,control-plane=controller-manager"


def expected(vpc: str, private: list[str]) -> set[tuple[str, str, str, str]]:
    rows = {
        # serving: Prometheus and the internal ALB's subnets (the private ones); no client namespace configured
        ("ml-workloads", SENTIMENT, PROMETHEUS, "8080/TCP"),
        *(("ml-workloads", SENTIMENT, c, "8080/TCP") for c in private),
        # training: the trainer pods from each other (every port: gloo/NCCL), metrics from Prometheus
        ("ml-workloads", TRAINER, f"ml-workloads/{TRAINER}", "*"),
        ("ml-workloads", TRAINER, PROMETHEUS, "9464/TCP"),
        # monitoring: its own pods; the operator's webhook from the API server; Prometheus from the Ceph mgr
        ("monitoring", "*", "monitoring/*", "*"),
        ("monitoring", OPERATOR, vpc, "10250/TCP"),
        ("monitoring", "app.kubernetes.io/name=prometheus", "rook-ceph/app=rook-ceph-mgr", "9090/TCP"),
        # rook-ceph: the daemons from each other; node-side clients to mons and OSD/MDS; metrics from Prometheus
        ("rook-ceph", "*", "rook-ceph/*", "*"),
        *(("rook-ceph", "app=rook-ceph-mon", c, p) for c in private for p in ("3300/TCP", "6789/TCP")),
        *(("rook-ceph", "app in (rook-ceph-mds|rook-ceph-osd)", c, "6800-7300/TCP") for c in private),
        ("rook-ceph", "app=rook-ceph-mgr", PROMETHEUS, "9283/TCP"),
        ("rook-ceph", "app=rook-ceph-exporter", PROMETHEUS, "9926/TCP"),
        # the training operator: its webhook from the API server, metrics from Prometheus
        ("kubeflow", "control-plane=kubeflow-training-operator", vpc, "9443/TCP"),
        ("kubeflow", "control-plane=kubeflow-training-operator", PROMETHEUS, "8080/TCP"),
        # Kueue: its webhooks and visibility API from the API server, metrics (HTTPS) from Prometheus
        *(("kueue-system", KUEUE, vpc, p) for p in ("9443/TCP", "8082/TCP")),
        ("kueue-system", KUEUE, PROMETHEUS, "8443/TCP"),
        # exporters: Prometheus only
        ("nvidia-device-plugin", "app.kubernetes.io/instance=dcgm-exporter,app.kubernetes.io/name=dcgm-exporter",
         PROMETHEUS, "9400/TCP"),
        ("neuron-monitor", "app.kubernetes.io/name=neuron-monitor", PROMETHEUS, "8000/TCP"),
    }
    return rows


# ---------------------------------------------------------------- flattening the policies
def selector_text(sel: dict) -> str:
    """A label selector as text: ``*`` (every pod), ``k=v,...`` or ``k in (a|b)``."""
    parts = [f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items())]
    for e in sel.get("matchExpressions") or []:
        assert e["operator"] == "In", e
        parts.append(f"{e['key']} in ({'|'.join(sorted(e['values']))})")
    return ",".join(parts) or "*"


def sources(peer: dict, namespace: str) -> list[str]:
    """What one ``from`` peer admits: a CIDR, or ``<namespace>/<pods>``."""
    if "ipBlock" in peer:
        assert not peer["ipBlock"].get("except"), peer
        return [peer["ipBlock"]["cidr"]]
    pods = selector_text(peer.get("podSelector") or {})
    ns_sel = peer.get("namespaceSelector")
    if ns_sel is None:
        return [f"{namespace}/{pods}"]
    names = dict(ns_sel.get("matchLabels") or {})
    assert set(names) <= {"kubernetes.io/metadata.name"}, f"namespaces not selected by name: {peer}"
    if names:
        return [f"{names['kubernetes.io/metadata.name']}/{pods}"]
    (expr,) = ns_sel["matchExpressions"]  # an empty namespaceSelector (every namespace) fails here
    assert expr["key"] == "kubernetes.io/metadata.name" and expr["operator"] == "In", peer
    return [f"{n}/{pods}" for n in expr["values"]]


def ports(rule: dict) -> list[str]:
    out = []
    for p in rule.get("ports") or [{"port": "*"}]:
        port = f"{p['port']}-{p['endPort']}" if "endPort" in p else str(p["port"])
        out.append(port if port == "*" else f"{port}/{p.get('protocol', 'TCP')}")
    return out


def reachability(policies: list[dict]) -> set[tuple[str, str, str, str]]:
    """``(namespace, pods, source, port)`` for every ingress allow of every policy."""
    rows = set()
    for pol in policies:
        ns, spec = pol["metadata"]["namespace"], pol["spec"]
        assert "Ingress" in spec["policyTypes"], pol["metadata"]["name"]
        for rule in spec.get("ingress") or []:
            assert rule.get("from"), f"{ns}/{pol['metadata']['name']}: a rule without from admits every source"
            for peer in rule["from"]:
                rows |= {(ns, selector_text(spec["podSelector"]), src, port)
                         for src in sources(peer, ns) for port in ports(rule)}
    return rows


@pytest.fixture(params=sorted(STACKS))
def stack(request):
    return request.getfixturevalue(request.param)


# ---------------------------------------------------------------- the tests
def test_who_may_reach_what_is_exactly_the_documented_table(stack):
    vpc, private = STACKS[stack.cfg.environment]
    assert stack.cfg.vpc.cidr == vpc
    assert reachability(manifests(stack, "NetworkPolicy")) == expected(vpc, private)


def test_every_platform_namespace_denies_ingress_by_default(stack):
    created = {m["metadata"]["name"] for m in manifests(stack, "Namespace")}
    assert created == PLATFORM_NAMESPACES
    denied = {p["metadata"]["namespace"] for p in manifests(stack, "NetworkPolicy")
              if p["spec"]["podSelector"] == {} and p["spec"]["policyTypes"] == ["Ingress"]
              and p["spec"]["ingress"] == [] and p["metadata"]["name"] == "default-deny"}
    assert denied == PLATFORM_NAMESPACES - NAMESPACE_DENY_PENDING
    # kube-system is not the platform's: no policy there (Karpenter, the LB controller, the Neuron plugin run there)
    assert not [p for p in manifests(stack, "NetworkPolicy") if p["metadata"]["namespace"] not in created]


def _templates(obj: dict) -> list[dict]:
    """The pod templates of a rendered workload object."""
    spec = obj["spec"]
    if obj["kind"] in ("Deployment", "DaemonSet", "Job"):
        return [spec["template"]]
    if obj["kind"] == "CronJob":
        return [spec["jobTemplate"]["spec"]["template"]]
    replicas = spec.get("pytorchReplicaSpecs") or spec.get("tfReplicaSpecs") or {}
    return [r["template"] for r in replicas.values()]


def _selects(selector: dict, labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    return all(labels.get(e["key"]) in e["values"] for e in selector.get("matchExpressions") or [])


def test_every_rendered_pod_is_isolated_by_a_policy_of_its_own(stack):
    # even without the namespace-wide deny, each pod the platform renders is selected by a policy
    policies = [p for p in manifests(stack, "NetworkPolicy") if p["spec"]["podSelector"]]
    pods = [(o["metadata"]["namespace"], o["metadata"]["name"], t["metadata"]["labels"])
            for o in manifests(stack) if o["kind"] in ("Deployment", "DaemonSet", "Job", "CronJob", "PyTorchJob", "TFJob")
            for t in _templates(o)]
    assert len(pods) >= 5
    open_pods = [(ns, n) for ns, n, labels in pods
                 if not any(p["metadata"]["namespace"] == ns and _selects(p["spec"]["podSelector"], labels)
                            for p in policies)]
    assert open_pods == []


def test_a_widened_allow_changes_the_table(dev):
    # the old serving allow (the whole VPC, where every pod has its address) or an open port is caught
    vpc, private = STACKS["dev"]
    policies = copy.deepcopy(manifests(dev, "NetworkPolicy"))
    assert reachability(policies) == expected(vpc, private)
    (serving,) = [p for p in policies if p["metadata"]["name"] == "sentiment"]
    serving["spec"]["ingress"][1]["from"] = [{"ipBlock": {"cidr": vpc}}]
    assert ("ml-workloads", SENTIMENT, vpc, "8080/TCP") in reachability(policies) - expected(vpc, private)
    (operator,) = [p for p in policies if p["metadata"]["name"] == "training-operator"]
    operator["spec"]["ingress"].append({"ports": [{"port": 8081, "protocol": "TCP"}]})
    with pytest.raises(AssertionError, match="without from"):
        reachability(policies)
