"""The NetworkPolicy building blocks (components/netpol.py) and the per-namespace policy builders, as pure functions."""
from __future__ import annotations

import pytest

from components import accelerators as acc
from components import monitoring as mon
from components import netpol
from components.storage import netpol as ceph
from components.storage.settings import StorageSettings
from infra.config import parse_config

pytestmark = pytest.mark.unit

BYO = {"id": "vpc-0123456789abcdef0", "privateSubnetIds": ["subnet-01234567", "subnet-89abcdef"], "cidr": "172.20.0.0/16"}


def test_default_deny_selects_every_pod_and_admits_nothing():
    doc = netpol.default_deny("team-a")
    assert doc["metadata"]["name"] == "default-deny" and doc["metadata"]["namespace"] == "team-a"
    assert doc["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": []}


def test_peers_select_namespaces_by_their_name_label():
    assert netpol.namespace_peer("monitoring", {"app": "x"}) == {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
        "podSelector": {"matchLabels": {"app": "x"}}}
    assert netpol.namespaces_peer(["b", "a"])["namespaceSelector"]["matchExpressions"] == [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["a", "b"]}]
    assert netpol.allow([netpol.same_namespace_peer()]) == {"from": [{"podSelector": {}}]}  # every port
    assert netpol.tcp_range(6800, 7300) == [{"port": 6800, "endPort": 7300, "protocol": "TCP"}]


def test_node_and_api_server_sources():
    cfg = parse_config({"vpc": {"cidr": "10.50.0.0/16", "azCount": 3}}, stack="dev")
    assert netpol.node_cidrs(cfg.vpc) == ["10.50.0.0/18", "10.50.64.0/18", "10.50.128.0/18"]  # the private subnets
    assert netpol.api_server_cidrs(cfg.vpc) == ["10.50.0.0/16"]
    byo = parse_config({"vpc": BYO, "serving": {"loadBalancerCidrs": ["172.20.8.0/24"]}}, stack="dev")
    assert netpol.node_cidrs(byo.vpc) == ["172.20.0.0/16"]  # your subnets are not known here: vpc.cidr


@pytest.mark.parametrize("scheme, want", [
    ("internal", ["10.42.0.0/18", "10.42.64.0/18"]),
    ("internet-facing", ["10.42.192.0/22", "10.42.196.0/22"]),
])
def test_load_balancer_sources_follow_the_scheme(scheme, want):
    assert netpol.load_balancer_cidrs(parse_config({}, stack="dev").vpc, scheme) == want


def test_load_balancer_cidrs_override_the_subnets():
    cfg = parse_config({"serving": {"loadBalancerCidrs": ["10.42.250.0/24"]}}, stack="dev")
    assert netpol.load_balancer_cidrs(cfg.vpc, "internal", cfg.serving.load_balancer_cidrs) == ["10.42.250.0/24"]


def _by_name(docs: list[dict]) -> dict[str, dict]:
    return {d["metadata"]["name"]: d["spec"] for d in docs}


def test_monitoring_policies():
    cfg = parse_config({}, stack="dev")
    pols = _by_name(mon.network_policies(mon.MonitoringSettings.from_config(cfg), storage=True))
    assert sorted(pols) == ["default-deny", "prometheus-clients", "prometheus-operator-webhook", "same-namespace"]
    assert pols["prometheus-operator-webhook"]["ingress"] == [
        {"from": [{"ipBlock": {"cidr": "10.42.0.0/16"}}], "ports": [{"port": 10250, "protocol": "TCP"}]}]
    # without Ceph (no dashboard) and without KEDA nothing outside the namespace queries Prometheus
    assert "prometheus-clients" not in _by_name(mon.network_policies(mon.MonitoringSettings.from_config(cfg), storage=False))
    keda = parse_config({"serving": {"keda": True, "replicas": 2, "maxReplicas": 4}}, stack="dev")
    (rule,) = _by_name(mon.network_policies(mon.MonitoringSettings.from_config(keda), storage=False))["prometheus-clients"]["ingress"]
    assert rule == {"from": [netpol.namespace_peer("keda")], "ports": [{"port": 9090, "protocol": "TCP"}]}


def test_ceph_policies_admit_node_clients_only_on_mon_and_daemon_ports():
    pols = _by_name(ceph.network_policies(StorageSettings.from_config(parse_config({}, stack="dev"))))
    assert sorted(pols) == ["ceph-daemon-clients", "ceph-exporter-metrics", "ceph-mgr-metrics", "ceph-mon-clients",
                            "default-deny", "same-namespace"]
    nodes = [{"ipBlock": {"cidr": "10.42.0.0/18"}}, {"ipBlock": {"cidr": "10.42.64.0/18"}}]
    assert pols["ceph-mon-clients"]["ingress"] == [{"from": nodes, "ports": netpol.tcp(3300, 6789)}]
    assert pols["ceph-daemon-clients"]["ingress"] == [{"from": nodes, "ports": netpol.tcp_range(6800, 7300)}]
    assert pols["ceph-mgr-metrics"]["ingress"] == [{"from": [netpol.prometheus_peer()], "ports": netpol.tcp(9283)}]


def test_exporter_policies_admit_only_prometheus():
    for doc, port in ((acc.dcgm_network_policy(), 9400), (acc.neuron_monitor_network_policy(), 8000)):
        assert doc["spec"]["ingress"] == [{"from": [netpol.prometheus_peer()], "ports": netpol.tcp(port)}]
        assert doc["spec"]["podSelector"]["matchLabels"]
