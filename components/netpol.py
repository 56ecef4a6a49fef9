"""NetworkPolicy building blocks shared by every component: default deny, peers, ports and source CIDRs.

Pure (plain dicts, no Pulumi resources). Every namespace the platform creates gets
``default_deny`` (ingress), and each component then admits only what it needs, with these
helpers, so the shapes (namespace selection by ``kubernetes.io/metadata.name``, the Prometheus
peer, the port lists) are written once. The README's "Network isolation" section tabulates the
result, and tests/components/test_network_isolation.py recomputes that table from the render.

Two sources cannot be selected by pod labels, so they are CIDRs computed here:

- the **API server** (admission webhooks): the EKS control plane calls from its ENIs in the
  cluster's subnets (private and public), so the VPC CIDR, on the webhook port only;
- **host-network sources** (kubelets, the CSI node plugins and kernel Ceph clients): the node
  subnets, i.e. the private subnets ``infra/network.py`` ``plan_subnets`` carves (with a
  bring-your-own VPC, whose subnets this program does not know: ``vpc.cidr``). With the VPC CNI
  the pods live in the same subnets, so such an allow is only as narrow as its port list.

Kubelet probes need no rule: the VPC CNI's network policy agent always admits the node's own IP.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

from infra.config import VpcConfig
from infra.conventions import std_labels
from infra.network import plan_subnets

NAMESPACE_LABEL = "kubernetes.io/metadata.name"  # set by the API server on every namespace
MONITORING_NAMESPACE = "monitoring"  # where kube-prometheus-stack runs (components/scrape.py)
PROMETHEUS_POD = {"app.kubernetes.io/name": "prometheus"}  # the prometheus-operator's label on its pods
DEFAULT_DENY = "default-deny"
SAME_NAMESPACE = "same-namespace"


# ---------------------------------------------------------------- peers and ports
def namespace_peer(namespace: str, pods: Optional[dict[str, str]] = None) -> dict[str, Any]:
    """Pods of one namespace (all of them, or those with the labels ``pods``)."""
    peer: dict[str, Any] = {"namespaceSelector": {"matchLabels": {NAMESPACE_LABEL: namespace}}}
    if pods:
        peer["podSelector"] = {"matchLabels": dict(pods)}
    return peer


def namespaces_peer(namespaces: Sequence[str]) -> dict[str, Any]:
    """Every pod of the listed namespaces (one ``In`` expression, sorted)."""
    return {"namespaceSelector": {"matchExpressions": [
        {"key": NAMESPACE_LABEL, "operator": "In", "values": sorted(namespaces)}]}}


def prometheus_peer() -> dict[str, Any]:
    """The Prometheus pods of the monitoring namespace: the only scraper of every metrics port."""
    return namespace_peer(MONITORING_NAMESPACE, PROMETHEUS_POD)


def same_namespace_peer() -> dict[str, Any]:
    """Every pod of the policy's own namespace."""
    return {"podSelector": {}}


def cidr_peers(cidrs: Sequence[str]) -> list[dict[str, Any]]:
    return [{"ipBlock": {"cidr": c}} for c in cidrs]


def tcp(*ports: int) -> list[dict[str, Any]]:
    return [{"port": p, "protocol": "TCP"} for p in ports]


def tcp_range(first: int, last: int) -> list[dict[str, Any]]:
    return [{"port": first, "endPort": last, "protocol": "TCP"}]


def allow(peers: Sequence[dict[str, Any]], ports: Optional[list[dict[str, Any]]] = None) -> dict[str, Any]:
    """One ingress rule: from ``peers``, to ``ports`` (None: every port)."""
    rule: dict[str, Any] = {"from": list(peers)}
    if ports is not None:
        rule["ports"] = ports
    return rule


#: Egress to the cluster DNS (CoreDNS in kube-system), for the pods that restrict their egress.
DNS_EGRESS = {"to": [namespace_peer("kube-system", {"k8s-app": "kube-dns"})],
              "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}
#: Egress to HTTPS anywhere (the API server, S3, registries, the Hugging Face hub).
HTTPS_EGRESS = {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": tcp(443)}


# ---------------------------------------------------------------- policies
def network_policy(metadata: dict[str, Any], selector: dict[str, Any], ingress: list[dict[str, Any]],
                   egress: Optional[list[dict[str, Any]]] = None) -> dict[str, Any]:
    """A NetworkPolicy for the pods ``selector`` selects: ingress always restricted, egress when given."""
    types = ["Ingress", "Egress"] if egress is not None else ["Ingress"]
    spec: dict[str, Any] = {"podSelector": selector, "policyTypes": types, "ingress": ingress}
    if egress is not None:
        spec["egress"] = egress
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": metadata, "spec": spec}


def ingress_policy(name: str, namespace: str, pods: Optional[dict[str, Any]],
                   ingress: list[dict[str, Any]]) -> dict[str, Any]:
    """An ingress-only policy named ``name`` for the pods with labels ``pods`` (None: every pod)."""
    selector: dict[str, Any] = {"matchLabels": dict(pods)} if pods else {}
    return network_policy({"name": name, "namespace": namespace, "labels": std_labels(name)}, selector, ingress)


def default_deny(namespace: str) -> dict[str, Any]:
    """No ingress to any pod of ``namespace`` but what another policy admits (egress stays open)."""
    return ingress_policy(DEFAULT_DENY, namespace, None, [])


def same_namespace(namespace: str) -> dict[str, Any]:
    """Every pod of ``namespace`` from every pod of it, on every port (a component's own daemons)."""
    return ingress_policy(SAME_NAMESPACE, namespace, None, [allow([same_namespace_peer()])])


# ---------------------------------------------------------------- source CIDRs
def api_server_cidrs(vpc: VpcConfig) -> list[str]:
    """Where admission webhook calls come from: the control plane's ENIs sit in the cluster subnets
    (private and public, or yours), which pod labels cannot select, so the VPC CIDR."""
    return [vpc.cidr]


def node_cidrs(vpc: VpcConfig) -> list[str]:
    """Where host-network traffic comes from: the private (node) subnets; ``vpc.cidr`` for your own VPC."""
    if vpc.byo:
        return [vpc.cidr]
    return [s.private_cidr for s in plan_subnets(vpc.cidr, vpc.az_count)]


def load_balancer_cidrs(vpc: VpcConfig, scheme: str, configured: Optional[Sequence[str]] = None) -> list[str]:
    """Where ALB/NLB traffic to ``ip`` targets comes from: the load balancer's ENIs.

    ``configured`` (``serving.loadBalancerCidrs``) when set (it is required with your own VPC unless ``vpc.cidr`` is
    set, which is then the fallback). In the VPC this program creates, an ``internet-facing`` load
    balancer lives in the public subnets (``kubernetes.io/role/elb``) and an ``internal`` one in the
    private subnets (``kubernetes.io/role/internal-elb``); ``plan_subnets`` gives their CIDRs."""
    if configured:
        return list(configured)
    if vpc.byo:
        return [vpc.cidr]
    plan = plan_subnets(vpc.cidr, vpc.az_count)
    return [s.public_cidr if scheme == "internet-facing" else s.private_cidr for s in plan]
