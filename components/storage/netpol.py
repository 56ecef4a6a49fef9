"""The ``rook-ceph`` namespace's NetworkPolicies (pure).

Default deny, then what Ceph really needs:

- the Ceph daemons, the Rook operator and the CSI controller plugins talk to each other: every pod
  of the namespace from every other, on every port (mons, mgrs, OSDs and MDSes pick ports in
  6800-7300, the operator runs ``ceph`` commands against all of them);
- the clients that mount volumes run on the nodes' network: the CSI node plugins (host network)
  and the kernel's RBD and CephFS clients. They reach the mons (msgr2 3300, msgr1 6789) and the
  OSDs and MDSes (6800-7300) from the node subnets (components/netpol.py ``node_cidrs``);
- Prometheus scrapes the active mgr's prometheus module (9283) and ceph-exporter (9926).

The mgr dashboard (8443) stays inside the namespace: reach it with ``kubectl port-forward``.
"""
from __future__ import annotations

from typing import Any

from components.netpol import (allow, cidr_peers, default_deny, ingress_policy, network_policy, node_cidrs,
                               prometheus_peer, same_namespace, tcp, tcp_range)
from components.storage.names import NAMESPACE
from components.storage.settings import StorageSettings
from infra.conventions import std_labels

MON_PORTS = (3300, 6789)  # msgr2, msgr1
DAEMON_PORTS = (6800, 7300)  # Ceph's ms_bind_port_min/max: OSDs and MDSes
MGR_METRICS_PORT = 9283  # the mgr prometheus module
EXPORTER_PORT = 9926  # ceph-exporter
# Rook's pod labels (``app``) for each daemon (pkg/operator/ceph/cluster/*/spec.go at v1.20.6)
MON, MGR, OSD, MDS, EXPORTER = "rook-ceph-mon", "rook-ceph-mgr", "rook-ceph-osd", "rook-ceph-mds", "rook-ceph-exporter"


def _daemons_policy(name: str, apps: list[str], ingress: list[dict[str, Any]]) -> dict[str, Any]:
    """A policy for the pods of the Ceph daemons ``apps`` (label ``app`` in the list)."""
    selector = {"matchExpressions": [{"key": "app", "operator": "In", "values": sorted(apps)}]}
    return network_policy({"name": name, "namespace": NAMESPACE, "labels": std_labels(name)}, selector, ingress)


def network_policies(s: StorageSettings) -> list[dict[str, Any]]:
    """Every NetworkPolicy of the namespace (see the module docstring)."""
    nodes = cidr_peers(node_cidrs(s.vpc))
    return [
        default_deny(NAMESPACE),
        same_namespace(NAMESPACE),
        ingress_policy("ceph-mon-clients", NAMESPACE, {"app": MON}, [allow(nodes, tcp(*MON_PORTS))]),
        _daemons_policy("ceph-daemon-clients", [OSD, MDS], [allow(nodes, tcp_range(*DAEMON_PORTS))]),
        ingress_policy("ceph-mgr-metrics", NAMESPACE, {"app": MGR}, [allow([prometheus_peer()], tcp(MGR_METRICS_PORT))]),
        ingress_policy("ceph-exporter-metrics", NAMESPACE, {"app": EXPORTER},
                       [allow([prometheus_peer()], tcp(EXPORTER_PORT))]),
    ]
