"""Cost estimate of a stack from the price table shipped in ``infra/prices/<region>.json``.

``python -m infra cost --stack dev [--json]``

* **idle** $/hour: what the platform costs with no jobs running: EKS control plane, the system
  node group (and its root volumes), NAT gateways (and their public IPv4 addresses), the serving
  load balancer, and the **always-on pods that land on Karpenter's cpu pool**:

  - Rook-Ceph's mons, mgrs, OSDs and MDSes (``components/storage.py``). They require
    **on-demand** capacity (``daemon_placement``) and carry ``karpenter.sh/do-not-disrupt``, so
    Karpenter keeps those nodes up and never moves them to spot. Mons never share a host
    (``allowMultiplePerNode: false``), neither do mgrs nor the two MDSes (required
    anti-affinity), and the OSDs must sit on at least ``replicas`` hosts (``failureDomain:
    host``) or zones (``zone``): at least max(monCount, hosts of the failure domain) nodes;
  - Prometheus, Alertmanager and Grafana (``components/monitoring.py``): on Karpenter's
    general nodes (on-demand in prod), so they fill the room left on the Ceph nodes first.

  Their CPU/memory **requests are read from the components' own pure builders**
  (``ceph_cluster_spec``, ``filesystem_spec``, ``monitoring_values``), never copied here, then
  bin-packed (see :func:`pack`) onto nodes of one instance type of the cpu pool: every allowed
  type is tried and the cheapest packing wins. A node's room is Karpenter's allocatable estimate
  (:func:`node_allocatable`: kube-reserved by Karpenter's formula, 7.5 % VM memory overhead,
  100Mi eviction threshold) less the requests of the DaemonSets on every node. Nodes that hold
  only pods allowed on spot are priced at spot where the pool allows it. Plus the gp3 volumes:
  OSDs, Ceph mon stores, and the root volumes of those nodes. Without Karpenter, Ceph and
  monitoring run on the system node group instead (no extra nodes; a note says whether they fit).
* **reserved capacity** (:mod:`.reserved`): a pool's ODCRs and Capacity Blocks with
  ``instanceType``/``instanceCount`` are idle cost at the on-demand rate, counted once whether used
  or not (reservations are billed every hour); the nodes launched into them cost nothing more:
  they count against the pool's limits and serving replicas take their devices first.
* **serving**: the sample sentiment Deployment keeps ``serving.replicas`` pods on its device
  (one device each; one NeuronCore each on inf2, two per device; ``replicasPerGpu`` per shared GPU; or, on
  cpu, the pod's own requests and one pod per node) all the time;
  ``idle_with_serving_usd_per_hour`` adds that, priced at spot where the pool allows spot
  (Karpenter launches spot first), at on-demand otherwise.
* **max** $/hour: idle plus every NodePool filled to its ``limits`` (Karpenter never launches
  past them) with the instance types the pool allows, chosen greedily for the highest cost. The
  always-on nodes of the cpu pool count against its limits, so the pool is filled only with what
  its limits leave. ``max_usd_per_hour`` is the worst case: on-demand wherever the pool allows
  on-demand. ``max_spot_usd_per_hour`` is the same capacity at typical spot prices where spot is
  allowed.

Excluded (usage-based or transient): NAT data processing ($/GB), load balancer LCUs, data
transfer, CloudWatch logs, EBS snapshots, ECR storage, and transient pods (OSD prepare jobs,
data-prep and training jobs, the Neuron compile CronJob's short runs on the cpu pool) with the nodes
they start. PVCs on ``ceph-block`` /
``ceph-filesystem`` (Prometheus, Alertmanager, Grafana, datasets, models) are thin RBD/CephFS
images inside the OSD volumes, which are billed in full; a note compares what they may grow to
with Ceph's usable capacity. ``estimate(cfg)`` is pure: the same config and table give the same
numbers (time-dependent prices, like EKS extended support, are judged at the table's date).

Modules: :mod:`.table` (price table, quantities, pool pricing), :mod:`.pods` (the always-on pods
and DaemonSets), :mod:`.packing` (allocatable, bin-packing, :func:`always_on`), :mod:`.estimator`
(:func:`estimate`), :mod:`.report` (:func:`format_text`), :mod:`.cli` (``main``). The package's
public API is :func:`estimate`, :class:`PriceTableError` (a region or type the table lacks),
:func:`format_text` and :func:`main`; everything else is imported from the module that defines it.
"""

from __future__ import annotations

from .cli import main
from .estimator import estimate
from .report import format_text
from .table import PriceTableError

__all__ = ["PriceTableError", "estimate", "format_text", "main"]
