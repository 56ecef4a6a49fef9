"""Rook-Ceph storage: block (RBD, RWO) and shared file (CephFS, RWX) volumes on EKS.

What this component creates (``RookCeph``), in dependency order:

- the ``rook-ceph`` Namespace and ``ebs-gp3-encrypted``, an encrypted gp3 EBS StorageClass
  (EBS CSI driver, an EKS add-on) that backs Ceph's own disks;
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

Pure helpers build every document, so the unit tests check them without Pulumi.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

import pulumi
import pulumi_kubernetes as k8s

from infra.conventions import (BLOCK_STORAGE_CLASS, FILE_STORAGE_CLASS, SYSTEM_NODE_SELECTOR, SYSTEM_TOLERATION,
                               required_node_affinity, system_placement)
from infra.config import PlatformConfig
from infra.versions import CHARTS, IMAGES, chart_version

if TYPE_CHECKING:  # pragma: no cover - typing only (infra.platform imports this module at run time)
    from infra.context import PlatformContext

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
# use these and nothing else from Ceph (tests/unit/test_dashboards.py checks).
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


# ------------------------------------------------------------------------------------- helpers
def std_labels(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "eks-ml-platform",
            "app.kubernetes.io/managed-by": "pulumi"}


def reclaim_policy(cfg: PlatformConfig) -> str:
    """Retain in prod (a deleted PVC keeps its data), Delete elsewhere (dev tears down cleanly)."""
    return "Retain" if cfg.environment == "prod" else "Delete"


def rook_placement(placement: dict[str, Any]) -> dict[str, Any]:
    """A pod-spec placement (``affinity`` + ``tolerations``) in Rook's shape (the affinity kinds at the top)."""
    return {**placement.get("affinity", {}), **({"tolerations": placement["tolerations"]}
                                                 if "tolerations" in placement else {})}


def daemon_placement(cfg: PlatformConfig) -> dict[str, Any]:
    """Where the Ceph daemons run (``placement.all``).

    With Karpenter: on-demand capacity only (never a spot node that can vanish under an OSD), on
    any untainted pool; together with the do-not-disrupt annotation Karpenter never consolidates
    those nodes. Without Karpenter there is only the system node group.
    """
    if cfg.addons.karpenter.enabled:
        return required_node_affinity(CAPACITY_TYPE_KEY, ["on-demand"])
    return rook_placement(system_placement())


def _spread(key: str, app: str, *, hard: bool) -> dict[str, Any]:
    return {"maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": "DoNotSchedule" if hard else "ScheduleAnyway",
            "labelSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": [app]}]}}


def _resources(cpu: str, memory: str, memory_limit: str) -> dict[str, Any]:
    # Memory limits (Ceph sizes its caches from them); no CPU limits: throttling a mon or an OSD
    # turns into slow ops and flapping, which is worse than a busy node.
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory_limit}}


def daemon_resources(cfg: PlatformConfig) -> dict[str, dict[str, Any]]:
    """Per-daemon requests/limits; memory limits stay at or above Rook's minimums (mon 1Gi, mgr 512Mi,
    OSD 2Gi: pkg/operator/ceph/cluster/{mon,mgr,osd})."""
    if cfg.environment == "prod":
        return {"mon": _resources("500m", "1Gi", "2Gi"), "mgr": _resources("500m", "1Gi", "2Gi"),
                "osd": _resources("1", "4Gi", "4Gi"), "prepareosd": _resources("250m", "512Mi", "2Gi"),
                "mds": _resources("500m", "2Gi", "4Gi")}
    return {"mon": _resources("100m", "512Mi", "1Gi"), "mgr": _resources("100m", "512Mi", "1Gi"),
            "osd": _resources("250m", "2Gi", "2Gi"), "prepareosd": _resources("100m", "256Mi", "2Gi"),
            "mds": _resources("100m", "512Mi", "1Gi")}


def pool_spec(cfg: PlatformConfig) -> dict[str, Any]:
    """Replication shared by the RBD pool and both CephFS pools."""
    size = cfg.ceph_replicas
    return {"failureDomain": cfg.ceph_failure_domain,
            "replicated": {"size": size, "requireSafeReplicaSize": size > 1}}


def device_set(cfg: PlatformConfig) -> dict[str, Any]:
    """The OSDs: ``osdCount`` PVC-backed OSDs of ``osdSizeGib`` on encrypted gp3 (as cluster-on-pvc.yaml)."""
    zonal = cfg.ceph_failure_domain == "zone"
    res = daemon_resources(cfg)
    return {
        "name": "set1",
        "count": cfg.storage.osd_count,
        "portable": True,           # EBS volumes reattach on another node of the zone
        "tuneDeviceClass": True,    # Ceph cannot tell that EBS is network storage; tune for it
        "tuneFastDeviceClass": False,
        "encrypted": False,         # EBS encrypts at rest (KMS); a second dm-crypt layer only costs CPU
        "placement": {"topologySpreadConstraints": [_spread(HOST_KEY, "rook-ceph-osd", hard=False)]},
        "preparePlacement": {"topologySpreadConstraints": [
            _spread(ZONE_KEY if zonal else HOST_KEY, "rook-ceph-osd-prepare", hard=zonal)]},
        "resources": res["osd"],
        "volumeClaimTemplates": [{
            "metadata": {"name": "data"},
            "spec": {"resources": {"requests": {"storage": f"{cfg.storage.osd_size_gib}Gi"}},
                     "storageClassName": EBS_STORAGE_CLASS, "volumeMode": "Block", "accessModes": ["ReadWriteOnce"]},
        }],
    }


def cleanup_policy(cfg: PlatformConfig) -> Optional[dict[str, Any]]:
    """Rook's cleanup policy, only when teardown was asked for (it stops all reconciling)."""
    if not cfg.storage.destroy_data:
        return None
    return {"confirmation": DESTROY_CONFIRMATION,
            "sanitizeDisks": {"method": "quick", "dataSource": "zero", "iteration": 1},
            # Do not wait forever for PVs that nobody will delete: the pool is force-deleted anyway.
            "allowUninstallWithVolumes": True}


def ceph_cluster_spec(cfg: PlatformConfig, *, prometheus_url: Optional[str] = None) -> dict[str, Any]:
    prod = cfg.environment == "prod"
    zonal = cfg.ceph_failure_domain == "zone"
    res = daemon_resources(cfg)
    mon_placement: dict[str, Any] = {}
    if zonal:
        mon_placement["topologySpreadConstraints"] = [_spread(ZONE_KEY, "rook-ceph-mon", hard=True)]
    dashboard: dict[str, Any] = {"enabled": True, "ssl": True}
    if prometheus_url:
        dashboard["prometheusEndpoint"] = prometheus_url
    spec: dict[str, Any] = {
        "cephVersion": {"image": IMAGES["ceph"], "allowUnsupported": False},
        "dataDirHostPath": DATA_DIR_HOST_PATH,
        "skipUpgradeChecks": False,
        "continueUpgradeAfterChecksEvenIfNotHealthy": False,
        "mon": {"count": cfg.storage.mon_count, "allowMultiplePerNode": False,
                "volumeClaimTemplate": {"spec": {"storageClassName": EBS_STORAGE_CLASS,
                                                 "resources": {"requests": {"storage": "10Gi"}}}}},
        "mgr": {"count": 2 if prod else 1, "allowMultiplePerNode": False,
                "modules": [{"name": "pg_autoscaler", "enabled": True}, {"name": "rook", "enabled": False}]},
        "dashboard": dashboard,
        # The prometheus mgr module and ceph-exporter are on (metricsDisabled: false). Rook's own
        # ServiceMonitor stays off (enabled: false): components/monitoring.py creates explicit ones,
        # validated against the CRD, and two would scrape everything twice.
        "monitoring": {"enabled": False, "metricsDisabled": False},
        "crashCollector": {"disable": False, "daysToRetain": 30},
        "logCollector": {"enabled": True, "periodicity": "daily", "maxLogSize": "500M"},
        "annotations": {"all": dict(DO_NOT_DISRUPT)},
        "placement": {"all": daemon_placement(cfg), **({"mon": mon_placement} if mon_placement else {})},
        "priorityClassNames": {"mon": "system-node-critical", "osd": "system-node-critical",
                               "mgr": "system-cluster-critical"},
        "resources": {k: v for k, v in res.items() if k in ("mon", "mgr", "prepareosd")},
        "storage": {"useAllNodes": False, "useAllDevices": False, "allowDeviceClassUpdate": False,
                    "allowOsdCrushWeightUpdate": True, "onlyApplyOSDPlacement": False,
                    "storageClassDeviceSets": [device_set(cfg)]},
        "disruptionManagement": {"managePodBudgets": True, "osdMaintenanceTimeout": 30},
    }
    if cfg.ceph_replicas == 1:
        spec["cephConfig"] = {"global": {"mon_warn_on_pool_no_redundancy": "false"}}
    policy = cleanup_policy(cfg)
    if policy:
        spec["cleanupPolicy"] = policy
    return spec


def pool_metadata(cfg: PlatformConfig) -> dict[str, Any]:
    annotations = {WAIT_FOR_ANNOTATION: WAIT_FOR_READY}
    if cfg.storage.destroy_data:
        annotations[FORCE_DELETION_ANNOTATION] = "true"  # Rook deletes the pool's images, then the pool
    return {"name": BLOCK_POOL, "namespace": NAMESPACE, "labels": std_labels(BLOCK_POOL), "annotations": annotations}


def block_pool_spec(cfg: PlatformConfig) -> dict[str, Any]:
    return {**pool_spec(cfg), "parameters": {"compression_mode": "none"}}


def filesystem_spec(cfg: PlatformConfig) -> dict[str, Any]:
    res = daemon_resources(cfg)
    zonal = cfg.ceph_failure_domain == "zone"
    anti = {"requiredDuringSchedulingIgnoredDuringExecution": [{
        "labelSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["rook-ceph-mds"]}]},
        "topologyKey": ZONE_KEY if zonal else HOST_KEY}]}
    placement = {**daemon_placement(cfg), "podAntiAffinity": anti}
    return {
        "metadataPool": {**pool_spec(cfg), "parameters": {"compression_mode": "none"}},
        "dataPools": [{"name": FS_DATA_POOL, **pool_spec(cfg), "parameters": {"compression_mode": "none"}}],
        # prod keeps the Ceph filesystem when the CR is deleted by mistake; elsewhere it goes with it
        "preserveFilesystemOnDelete": cfg.environment == "prod" and not cfg.storage.destroy_data,
        "metadataServer": {"activeCount": 1, "activeStandby": True, "annotations": dict(DO_NOT_DISRUPT),
                           "placement": placement, "priorityClassName": "system-cluster-critical",
                           "resources": res["mds"]},
    }


def ebs_storage_class(cfg: PlatformConfig) -> dict[str, Any]:
    """Encrypted gp3 for Ceph's own disks (OSDs, mon stores). Not the default class."""
    return {
        "metadata": {"name": EBS_STORAGE_CLASS, "labels": std_labels(EBS_STORAGE_CLASS)},
        "provisioner": "ebs.csi.aws.com",
        "parameters": {"type": "gp3", "encrypted": "true",
                       # tag the volumes so cost reports and the teardown sweep can find them
                       "tagSpecification_1": f"eks-ml-platform/cluster={cfg.cluster_name}",
                       "tagSpecification_2": f"eks-ml-platform/stack={cfg.stack}"},
        "reclaimPolicy": reclaim_policy(cfg),
        "allowVolumeExpansion": True,
        "volumeBindingMode": "WaitForFirstConsumer",  # the volume is created in the zone of its pod
    }


def _csi_secrets(kind: str) -> dict[str, str]:
    prov, node = f"rook-csi-{kind}-provisioner", f"rook-csi-{kind}-node"
    return {
        "csi.storage.k8s.io/provisioner-secret-name": prov, "csi.storage.k8s.io/provisioner-secret-namespace": NAMESPACE,
        "csi.storage.k8s.io/controller-expand-secret-name": prov,
        "csi.storage.k8s.io/controller-expand-secret-namespace": NAMESPACE,
        "csi.storage.k8s.io/controller-publish-secret-name": prov,
        "csi.storage.k8s.io/controller-publish-secret-namespace": NAMESPACE,
        "csi.storage.k8s.io/node-stage-secret-name": node, "csi.storage.k8s.io/node-stage-secret-namespace": NAMESPACE,
    }


def block_storage_class(cfg: PlatformConfig) -> dict[str, Any]:
    """``ceph-block``: RBD, RWO, the cluster default (deploy/examples/csi/rbd/storageclass.yaml)."""
    return {
        "metadata": {"name": BLOCK_STORAGE_CLASS, "labels": std_labels(BLOCK_STORAGE_CLASS),
                     "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
        "provisioner": RBD_DRIVER,
        "parameters": {"clusterID": NAMESPACE, "pool": BLOCK_POOL, "imageFormat": "2", "imageFeatures": "layering",
                       **_csi_secrets("rbd"), "csi.storage.k8s.io/fstype": "ext4"},
        "reclaimPolicy": reclaim_policy(cfg),
        "allowVolumeExpansion": True,
        "volumeBindingMode": "Immediate",
    }


def file_storage_class(cfg: PlatformConfig) -> dict[str, Any]:
    """``ceph-filesystem``: CephFS, RWX (deploy/examples/csi/cephfs/storageclass.yaml)."""
    return {
        "metadata": {"name": FILE_STORAGE_CLASS, "labels": std_labels(FILE_STORAGE_CLASS)},
        "provisioner": CEPHFS_DRIVER,
        "parameters": {"clusterID": NAMESPACE, "fsName": FILESYSTEM, "pool": f"{FILESYSTEM}-{FS_DATA_POOL}",
                       **_csi_secrets("cephfs")},
        "reclaimPolicy": reclaim_policy(cfg),
        "allowVolumeExpansion": True,
        "volumeBindingMode": "Immediate",
    }


def snapshot_class(cfg: PlatformConfig, *, name: str, driver: str, kind: str) -> dict[str, Any]:
    """A VolumeSnapshotClass (deploy/examples/csi/{rbd,cephfs}/snapshotclass.yaml). Prod keeps the
    snapshot when its VolumeSnapshot is deleted (Retain): they are the backups of datasets and models."""
    return {
        "apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshotClass",
        "metadata": {"name": name, "labels": std_labels(name), "annotations": {DEFAULT_SNAPSHOT_CLASS_ANNOTATION: "true"}},
        "driver": driver,
        "deletionPolicy": "Retain" if cfg.environment == "prod" else "Delete",
        "parameters": {"clusterID": NAMESPACE,
                       "csi.storage.k8s.io/snapshotter-secret-name": f"rook-csi-{kind}-provisioner",
                       "csi.storage.k8s.io/snapshotter-secret-namespace": NAMESPACE},
    }


def snapshot_classes(cfg: PlatformConfig) -> list[dict[str, Any]]:
    return [snapshot_class(cfg, name=BLOCK_SNAPSHOT_CLASS, driver=RBD_DRIVER, kind="rbd"),
            snapshot_class(cfg, name=FILE_SNAPSHOT_CLASS, driver=CEPHFS_DRIVER, kind="cephfs")]


def operator_values(cfg: PlatformConfig) -> dict[str, Any]:
    """rook-ceph chart values (deploy/charts/rook-ceph/values.yaml at v1.20.6)."""
    system_selector = dict(SYSTEM_NODE_SELECTOR)
    return {
        "crds": {"enabled": True},  # the chart's CRDs carry helm.sh/resource-policy: keep
        "nodeSelector": system_selector,
        "tolerations": [dict(SYSTEM_TOLERATION)],
        "priorityClassName": "system-cluster-critical",
        "resources": {"requests": {"cpu": "200m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
        "enableDiscoveryDaemon": False,  # OSDs come from PVCs, there are no host disks to discover
        "monitoring": {"enabled": False},  # our ServiceMonitors live in components/monitoring.py
        "csi": {"installCsiOperator": True},
        "ceph-csi-operator": {"controllerManager": {"nodeSelector": system_selector,
                                                    "tolerations": [dict(SYSTEM_TOLERATION)]}},
    }


def _plugin_settings(cfg: PlatformConfig) -> dict[str, Any]:
    return {
        # the node plugin mounts volumes wherever pods run: GPU, Neuron and system nodes included
        "nodePlugin": {"priorityClassName": "system-node-critical", "tolerations": [{"operator": "Exists"}]},
        "controllerPlugin": {"priorityClassName": "system-cluster-critical",
                             "replicas": 2 if cfg.environment == "prod" else 1,
                             "tolerations": [dict(SYSTEM_TOLERATION)],
                             "affinity": system_placement()["affinity"]},
    }


def csi_driver_values(cfg: PlatformConfig) -> dict[str, Any]:
    """ceph-csi-drivers chart values: Rook's recommended file (deploy/charts/ceph-csi-drivers/values.yaml at
    v1.20.6) plus placement. Placement is set on each driver as well: the chart writes the driver's
    own (empty) tolerations into the Driver CR, and the operator only falls back to the defaults for
    unset fields."""
    plugin = _plugin_settings(cfg)
    return {
        "operatorConfig": {"namespace": NAMESPACE,
                           "driverSpecDefaults": {"imageSet": {"name": CSI_IMAGE_SET}, **plugin}},
        "drivers": {
            "rbd": {"enabled": True, "name": RBD_DRIVER, **plugin},
            "cephfs": {"enabled": True, "name": CEPHFS_DRIVER, **plugin},
            "nfs": {"enabled": False, "name": f"{NAMESPACE}.nfs.csi.ceph.com"},
            "nvmeof": {"enabled": False, "name": f"{NAMESPACE}.nvmeof.csi.ceph.com"},
        },
    }


def teardown_steps(cfg: PlatformConfig) -> list[str]:
    """What a safe teardown of this storage does, in order (for infra.teardown and the README)."""
    stack = cfg.stack
    return [
        f"pulumi config set --path storage.destroyData true --stack {stack}",
        f"pulumi up --yes --stack {stack}   # CephCluster cleanupPolicy + force-deletion on the pool; Rook stops reconciling",
        "kubectl delete pvc --all -n ml-workloads   # PVCs Pulumi does not own (the stack's own go first on destroy)",
        f"pulumi destroy --yes --stack {stack}   # StorageClasses -> pool/filesystem -> CephCluster -> CSI -> operator",
    ]


# ------------------------------------------------------------------------------------- component
class _ClusterCustomResource(pulumi.CustomResource):
    """A custom resource whose fields sit at the top level (VolumeSnapshotClass: driver, deletionPolicy,
    parameters), which ``kubernetes.apiextensions.CustomResource`` (spec only) cannot express."""

    def __init__(self, name: str, doc: dict[str, Any], opts: pulumi.ResourceOptions):
        super().__init__(f"kubernetes:{doc['apiVersion']}:{doc['kind']}", name, dict(doc), opts)


@dataclass(frozen=True)
class StorageArgs:
    """Inputs of the storage component."""

    ctx: "PlatformContext"
    """Config, cluster outputs, providers and the ``cluster_ready`` gate."""
    prometheus_url: Optional[str] = None
    """In-cluster Prometheus URL for the Ceph dashboard's graphs (None: no monitoring add-on)."""


class RookCeph(pulumi.ComponentResource):
    """See the module docstring. Outputs: ``storage_classes`` (``ceph-block``, ``ceph-filesystem``: PVCs
    depend on them), ``snapshot_classes``, ``ebs_storage_class``, ``cluster`` (the CephCluster),
    ``operator_release``, ``csi_release``."""

    def __init__(self, name: str, args: StorageArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("eks-ml-platform:storage:RookCeph", name, None, opts)
        ctx, cfg = args.ctx, args.ctx.cfg

        def child(*deps: pulumi.Resource, protect: bool = False, create_timeout: Optional[str] = None,
                  delete_timeout: Optional[str] = None):
            timeouts = None
            if create_timeout or delete_timeout:
                timeouts = pulumi.CustomTimeouts(create=create_timeout, update=create_timeout, delete=delete_timeout)
            extra = pulumi.ResourceOptions(protect=protect and cfg.protect, custom_timeouts=timeouts)
            return pulumi.ResourceOptions.merge(ctx.opts(self, depends_on=list(deps)), extra)

        self.namespace = k8s.core.v1.Namespace(
            f"{name}-ns",
            metadata={"name": NAMESPACE, "labels": {**std_labels("rook-ceph"),
                                                    # Ceph and the CSI node plugins need host access
                                                    "pod-security.kubernetes.io/enforce": "privileged"}},
            opts=child(),
        )
        ebs = ebs_storage_class(cfg)
        self.ebs_storage_class = k8s.storage.v1.StorageClass(
            f"{name}-ebs-gp3", metadata=ebs["metadata"], provisioner=ebs["provisioner"], parameters=ebs["parameters"],
            reclaim_policy=ebs["reclaimPolicy"], allow_volume_expansion=ebs["allowVolumeExpansion"],
            volume_binding_mode=ebs["volumeBindingMode"], opts=child(),
        )

        version = chart_version("rook_ceph", cfg.addons.rook_ceph.version)
        self.operator_release = k8s.helm.v3.Release(
            f"{name}-operator", name=OPERATOR_RELEASE, chart=CHARTS["rook_ceph"].chart, version=version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=CHARTS["rook_ceph"].repo),
            namespace=NAMESPACE, create_namespace=False, skip_await=False, atomic=True, cleanup_on_fail=True,
            timeout=600, values=operator_values(cfg), opts=child(self.namespace, protect=True),
        )
        self.csi_release = k8s.helm.v3.Release(
            f"{name}-csi", name=CSI_RELEASE, chart=CHARTS["ceph_csi_drivers"].chart,
            version=chart_version("ceph_csi_drivers"),
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=CHARTS["ceph_csi_drivers"].repo),
            namespace=NAMESPACE, create_namespace=False, skip_await=False, atomic=True, cleanup_on_fail=True,
            timeout=600, values=csi_driver_values(cfg), opts=child(self.operator_release),
        )

        # The CephCluster depends on the CSI release too, so destroy removes it (and waits for its
        # volumes) while the CSI provisioner still runs.
        self.cluster = k8s.apiextensions.CustomResource(
            f"{name}-cluster", api_version="ceph.rook.io/v1", kind="CephCluster",
            metadata={"name": CLUSTER_NAME, "namespace": NAMESPACE, "labels": std_labels("ceph-cluster")},
            spec=ceph_cluster_spec(cfg, prometheus_url=args.prometheus_url),
            opts=child(self.operator_release, self.csi_release, self.ebs_storage_class, protect=True,
                       delete_timeout="30m"),
        )
        # The pool and the filesystem are awaited until Rook reports them Ready (the first time that
        # includes Karpenter launching the nodes and Ceph bootstrapping), so the StorageClasses, and
        # the PVCs behind them, only appear once volumes can actually be provisioned.
        self.block_pool = k8s.apiextensions.CustomResource(
            f"{name}-blockpool", api_version="ceph.rook.io/v1", kind="CephBlockPool", metadata=pool_metadata(cfg),
            spec=block_pool_spec(cfg),
            opts=child(self.cluster, protect=True, create_timeout="45m", delete_timeout="20m"),
        )
        self.filesystem = k8s.apiextensions.CustomResource(
            f"{name}-filesystem", api_version="ceph.rook.io/v1", kind="CephFilesystem",
            metadata={"name": FILESYSTEM, "namespace": NAMESPACE, "labels": std_labels(FILESYSTEM),
                      "annotations": {WAIT_FOR_ANNOTATION: WAIT_FOR_READY}},
            spec=filesystem_spec(cfg),
            opts=child(self.cluster, protect=True, create_timeout="45m", delete_timeout="20m"),
        )

        blk, fs = block_storage_class(cfg), file_storage_class(cfg)
        self.block_storage_class = k8s.storage.v1.StorageClass(
            f"{name}-block", metadata=blk["metadata"], provisioner=blk["provisioner"], parameters=blk["parameters"],
            reclaim_policy=blk["reclaimPolicy"], allow_volume_expansion=True, volume_binding_mode=blk["volumeBindingMode"],
            opts=child(self.block_pool, self.csi_release),
        )
        self.file_storage_class = k8s.storage.v1.StorageClass(
            f"{name}-filesystem", metadata=fs["metadata"], provisioner=fs["provisioner"], parameters=fs["parameters"],
            reclaim_policy=fs["reclaimPolicy"], allow_volume_expansion=True, volume_binding_mode=fs["volumeBindingMode"],
            opts=child(self.filesystem, self.csi_release),
        )
        self.storage_classes: list[k8s.storage.v1.StorageClass] = [self.block_storage_class, self.file_storage_class]
        self.snapshot_classes: list[pulumi.CustomResource] = []
        for doc, dep in zip(snapshot_classes(cfg), (self.block_pool, self.filesystem)):
            self.snapshot_classes.append(_ClusterCustomResource(
                f"{name}-{doc['metadata']['name']}", doc, child(dep, self.csi_release)))

        self.storage_class_names = [BLOCK_STORAGE_CLASS, FILE_STORAGE_CLASS]
        self.register_outputs({
            "namespace": NAMESPACE,
            "storageClasses": self.storage_class_names,
            "defaultStorageClass": BLOCK_STORAGE_CLASS,
            "sharedStorageClass": FILE_STORAGE_CLASS,
            "ebsStorageClass": EBS_STORAGE_CLASS,
            "snapshotClasses": [BLOCK_SNAPSHOT_CLASS, FILE_SNAPSHOT_CLASS],
            "cephCluster": CLUSTER_NAME,
            "operatorChartVersion": version,
            "cephImage": IMAGES["ceph"],
        })
