"""Rook-Ceph storage: block (RBD, RWO) and shared file (CephFS, RWX) volumes on EKS.

What this component creates (``RookCeph``), in dependency order:

- the ``rook-ceph`` Namespace with its NetworkPolicies (default deny; the daemons from each other,
  the node-side clients to the mons and OSDs, Prometheus to the metrics ports), and
  ``ebs-gp3-encrypted``, an encrypted gp3 EBS StorageClass (EBS CSI driver, an EKS add-on) that
  backs Ceph's own disks;
- **Helm**: the ``rook-ceph`` operator chart (CRDs, operator, and ceph-csi-operator as its
  subchart), then ``ceph-csi-drivers`` (Rook v1.20 configures the RBD and CephFS CSI drivers only
  through ceph-csi-operator resources; installed with Rook's values from
  ``deploy/charts/ceph-csi-drivers/values.yaml``). Both pinned in ``infra/versions.py``;
- the **CephCluster** ``rook-ceph`` as an explicit object (not the rook-ceph-cluster chart), so it
  shows in ``build/<stack>/manifests`` and is validated against the upstream CRD. OSDs run on PVCs
  (``storageClassDeviceSets``, as upstream's ``deploy/examples/cluster-on-pvc.yaml``) from
  ``ebs-gp3-encrypted``; mons keep their store on PVCs too, so every Ceph daemon can move to
  another node of its zone. The dashboard and the prometheus mgr module are on;
- the **CephBlockPool** ``ceph-blockpool`` and the **CephFilesystem** ``ceph-filesystem`` with the
  same replication settings (size 3 across zones in prod, 2 across hosts elsewhere, from config),
  awaited until Rook reports them Ready (``pulumi.com/waitFor``);
- **StorageClasses** ``ceph-block`` (RBD, RWO, the cluster default: Prometheus, Grafana) and
  ``ceph-filesystem`` (CephFS, RWX: datasets and models shared by trainers and servers), both with
  volume expansion, reclaim policy Retain in prod and Delete elsewhere;
- **VolumeSnapshotClasses** for RBD and CephFS (``snapshot.storage.k8s.io/v1``; the CRDs and the
  snapshot controller come from the EKS ``snapshot-controller`` add-on).

Where Ceph runs: mons, mgrs, OSDs and MDSes carry ``karpenter.sh/do-not-disrupt: "true"`` and, when
Karpenter is on, require on-demand capacity, so Karpenter neither consolidates nor spot-interrupts
a node under them; without Karpenter they run on the system node group. Prod spreads mons and OSDs
across zones. Controllers (the Rook operator, ceph-csi-operator, CSI provisioners) run on the
system node group; the CSI node plugins tolerate every taint, so GPU and Neuron nodes can mount.

Teardown (Rook's cleanup guide, as Pulumi dependencies): consumers (PVCs, the monitoring release)
depend on the StorageClasses, the StorageClasses and SnapshotClasses on the pool/filesystem and the
CSI drivers, the pool and filesystem on the CephCluster, the CephCluster on the CSI drivers and the
operator. ``pulumi destroy`` therefore deletes in the guide's order (applications, pools and
StorageClasses, the CephCluster, the CSI resources, the operator) while the operator and the CSI
provisioner are still there to release finalizers and volumes. ``storage.destroyData: true``
(applied with ``pulumi up`` right before ``pulumi destroy``) sets the CephCluster's
``cleanupPolicy`` (``yes-really-destroy-data``) and force-deletion on the pool; see ``teardown_steps``.

Layout: the pure builders, which the unit tests check without Pulumi, are ``names`` (the names
Rook and this add-on create, the scrape targets and metric names), ``values`` (chart values, the
Ceph specs, StorageClasses and VolumeSnapshotClasses), ``netpol`` (the NetworkPolicies) and
``teardown`` (cleanup policy, teardown steps); the ``component`` module holds the ``RookCeph`` ComponentResource that wires them in.

The names below are this package's public API: the ones other modules import from
``components.storage`` (infra.platform, components.monitoring, infra.teardown, infra.cost, the
dashboard and teardown tests). New code imports from the defining submodule.
"""
from __future__ import annotations

from components.storage.component import RookCeph, StorageArgs
from components.storage.names import (
                                      CEPH_METRICS,
                                      EXPORTER_METRICS,
                                      FORCE_DELETION_ANNOTATION,
                                      MGR_METRICS,
                                      NAMESPACE,
)
from components.storage.settings import StorageSettings
from components.storage.teardown import teardown_steps
from components.storage.values import (
                                      ceph_cluster_spec,
                                      device_set,
                                      filesystem_spec,
                                      pool_metadata,
)
from infra.conventions import BLOCK_STORAGE_CLASS

__all__ = [
    "BLOCK_STORAGE_CLASS", "CEPH_METRICS", "EXPORTER_METRICS", "FORCE_DELETION_ANNOTATION", "MGR_METRICS",
    "NAMESPACE", "RookCeph", "StorageArgs", "StorageSettings", "ceph_cluster_spec", "device_set", "filesystem_spec", "pool_metadata",
    "teardown_steps",
]
