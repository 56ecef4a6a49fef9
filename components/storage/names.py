"""The names the Rook-Ceph storage add-on creates and the metrics it exposes (pure constants).

components/monitoring.py points its ServiceMonitors at ``MGR_METRICS`` and ``EXPORTER_METRICS``;
the dashboards may use only ``CEPH_METRICS`` from Ceph. The StorageClass names themselves are shared
conventions (``infra.conventions``: ``BLOCK_STORAGE_CLASS``, ``FILE_STORAGE_CLASS``).
"""
from __future__ import annotations

NAMESPACE = "rook-ceph"          # operator and cluster namespace (the CSI driver names are prefixed with it)
CLUSTER_NAME = "rook-ceph"
OPERATOR_RELEASE = "rook-ceph"
CSI_RELEASE = "ceph-csi-drivers"
BLOCK_POOL = "ceph-blockpool"
FILESYSTEM = "ceph-filesystem"
FS_DATA_POOL = "data0"           # the CephFS data pool is named <filesystem>-<pool>
EBS_STORAGE_CLASS = "ebs-gp3-encrypted"
BLOCK_SNAPSHOT_CLASS = "ceph-block-snapshot"
FILE_SNAPSHOT_CLASS = "ceph-filesystem-snapshot"
RBD_DRIVER = f"{NAMESPACE}.rbd.csi.ceph.com"
CEPHFS_DRIVER = f"{NAMESPACE}.cephfs.csi.ceph.com"
CSI_IMAGE_SET = "rook-csi-operator-image-set-configmap"  # created by the rook-ceph chart (templates/configmap.yaml)
DATA_DIR_HOST_PATH = "/var/lib/rook"
DESTROY_CONFIRMATION = "yes-really-destroy-data"
FORCE_DELETION_ANNOTATION = "rook.io/force-deletion"
WAIT_FOR_ANNOTATION = "pulumi.com/waitFor"          # pulumi-kubernetes >= 4.18 user-defined await
WAIT_FOR_READY = "jsonpath={.status.phase}=Ready"   # Rook's ConditionReady phase
DO_NOT_DISRUPT = {"karpenter.sh/do-not-disrupt": "true"}
ZONE_KEY = "topology.kubernetes.io/zone"
HOST_KEY = "kubernetes.io/hostname"
CAPACITY_TYPE_KEY = "karpenter.sh/capacity-type"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
DEFAULT_SNAPSHOT_CLASS_ANNOTATION = "snapshot.storage.kubernetes.io/is-default-class"


# Scrape targets Rook creates (pkg/operator/ceph/cluster/mgr/spec.go, nodedaemon/exporter.go at v1.20.6):
# the active mgr's prometheus module and the per-node ceph-exporter. components/monitoring.py points
# ServiceMonitors at them.
MGR_METRICS = {"service_labels": {"app": "rook-ceph-mgr", "rook_cluster": NAMESPACE}, "port": "http-metrics"}
EXPORTER_METRICS = {"service_labels": {"app": "rook-ceph-exporter", "rook_cluster": NAMESPACE},
                    "port": "ceph-exporter-http-metrics"}

# Metric names the Ceph mgr prometheus module exports (src/pybind/mgr/prometheus/module.py: health,
# DF_CLUSTER, DF_POOL, OSD_STATUS, OSD_STATS, PG states, metadata series); dashboards and alerts may
# use these and nothing else from Ceph (tests/components/test_dashboards.py checks).
CEPH_METRICS = (
    "ceph_health_status",            # 0 OK, 1 WARN, 2 ERR
    "ceph_health_detail",            # {name, severity} per active health check
    "ceph_mon_quorum_status",
    "ceph_mon_metadata",
    "ceph_mgr_status",
    "ceph_mgr_metadata",
    "ceph_osd_up",
    "ceph_osd_in",
    "ceph_osd_weight",
    "ceph_osd_metadata",
    "ceph_osd_apply_latency_ms",
    "ceph_osd_commit_latency_ms",
    "ceph_cluster_total_bytes",
    "ceph_cluster_total_used_bytes",
    "ceph_cluster_total_used_raw_bytes",
    "ceph_pool_metadata",            # {pool_id, name, ...}
    "ceph_pool_max_avail",
    "ceph_pool_stored",
    "ceph_pool_stored_raw",
    "ceph_pool_objects",
    "ceph_pool_bytes_used",
    "ceph_pool_percent_used",
    "ceph_pool_rd",
    "ceph_pool_rd_bytes",
    "ceph_pool_wr",
    "ceph_pool_wr_bytes",
    "ceph_pg_total",
    "ceph_pg_active",
    "ceph_pg_clean",
    "ceph_pg_degraded",
    "ceph_pg_undersized",
    "ceph_num_objects_degraded",
    "ceph_fs_metadata",
    "ceph_mds_metadata",
)
