"""The Rook-Ceph documents, built from the platform config (pure, so the unit tests read them).

- the ``rook-ceph`` operator chart's and the ``ceph-csi-drivers`` chart's values;
- the CephCluster spec (OSDs on PVCs as upstream's ``deploy/examples/cluster-on-pvc.yaml``, mons
  on PVCs, daemon placement and resources), the CephBlockPool and CephFilesystem specs;
- the StorageClasses (``ebs-gp3-encrypted`` for Ceph's own disks, ``ceph-block``,
  ``ceph-filesystem``) and the VolumeSnapshotClasses.

Where Ceph runs: mons, mgrs, OSDs and MDSes carry ``karpenter.sh/do-not-disrupt: "true"`` and, when
Karpenter is on, require on-demand capacity; without Karpenter they run on the system node group.
"""
from __future__ import annotations

from typing import Any, Optional

from components.storage.names import (
    BLOCK_POOL,
    BLOCK_SNAPSHOT_CLASS,
    CAPACITY_TYPE_KEY,
    CEPHFS_DRIVER,
    CSI_IMAGE_SET,
    DATA_DIR_HOST_PATH,
    DEFAULT_CLASS_ANNOTATION,
    DEFAULT_SNAPSHOT_CLASS_ANNOTATION,
    DO_NOT_DISRUPT,
    EBS_STORAGE_CLASS,
    FILE_SNAPSHOT_CLASS,
    FILESYSTEM,
    FORCE_DELETION_ANNOTATION,
    FS_DATA_POOL,
    HOST_KEY,
    NAMESPACE,
    RBD_DRIVER,
    WAIT_FOR_ANNOTATION,
    WAIT_FOR_READY,
    ZONE_KEY,
)
from components.storage.teardown import cleanup_policy
from components.storage.settings import StorageSettings
from infra.conventions import (
    BLOCK_STORAGE_CLASS,
    FILE_STORAGE_CLASS,
    SYSTEM_NODE_SELECTOR,
    SYSTEM_TOLERATION,
    TAG_PROJECT_CLUSTER,
    required_node_affinity,
    std_labels,
    system_placement,
)
from infra.versions import IMAGES


def reclaim_policy(s: StorageSettings) -> str:
    """Retain in prod (a deleted PVC keeps its data), Delete elsewhere (dev tears down cleanly)."""
    return "Retain" if s.prod else "Delete"


def rook_placement(placement: dict[str, Any]) -> dict[str, Any]:
    """A pod-spec placement (``affinity`` + ``tolerations``) in Rook's shape (the affinity kinds at the top)."""
    return {**placement.get("affinity", {}), **({"tolerations": placement["tolerations"]}
                                                 if "tolerations" in placement else {})}


def daemon_placement(s: StorageSettings) -> dict[str, Any]:
    """Where the Ceph daemons run (``placement.all``).

    With Karpenter: on-demand capacity only (never a spot node that can vanish under an OSD), on
    any untainted pool; together with the do-not-disrupt annotation Karpenter never consolidates
    those nodes. Without Karpenter there is only the system node group.
    """
    if s.karpenter:
        return required_node_affinity(CAPACITY_TYPE_KEY, ["on-demand"])
    return rook_placement(system_placement())


def _spread(key: str, app: str, *, hard: bool) -> dict[str, Any]:
    return {"maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": "DoNotSchedule" if hard else "ScheduleAnyway",
            "labelSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": [app]}]}}


def _resources(cpu: str, memory: str, memory_limit: str) -> dict[str, Any]:
    # Memory limits (Ceph sizes its caches from them); no CPU limits: throttling a mon or an OSD
    # turns into slow ops and flapping, which is worse than a busy node.
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory_limit}}


def daemon_resources(s: StorageSettings) -> dict[str, dict[str, Any]]:
    """Per-daemon requests/limits; memory limits stay at or above Rook's minimums (mon 1Gi, mgr 512Mi,
    OSD 2Gi: pkg/operator/ceph/cluster/{mon,mgr,osd})."""
    if s.prod:
        return {"mon": _resources("500m", "1Gi", "2Gi"), "mgr": _resources("500m", "1Gi", "2Gi"),
                "osd": _resources("1", "4Gi", "4Gi"), "prepareosd": _resources("250m", "512Mi", "2Gi"),
                "mds": _resources("500m", "2Gi", "4Gi")}
    return {"mon": _resources("100m", "512Mi", "1Gi"), "mgr": _resources("100m", "512Mi", "1Gi"),
            "osd": _resources("250m", "2Gi", "2Gi"), "prepareosd": _resources("100m", "256Mi", "2Gi"),
            "mds": _resources("100m", "512Mi", "1Gi")}


def pool_spec(s: StorageSettings) -> dict[str, Any]:
    """Replication shared by the RBD pool and both CephFS pools."""
    size = s.replicas
    return {"failureDomain": s.failure_domain,
            "replicated": {"size": size, "requireSafeReplicaSize": size > 1}}


def device_set(s: StorageSettings) -> dict[str, Any]:
    """The OSDs: ``osdCount`` PVC-backed OSDs of ``osdSizeGib`` on encrypted gp3 (as cluster-on-pvc.yaml)."""
    zonal = s.failure_domain == "zone"
    res = daemon_resources(s)
    return {
        "name": "set1",
        "count": s.storage.osd_count,
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
            "spec": {"resources": {"requests": {"storage": f"{s.storage.osd_size_gib}Gi"}},
                     "storageClassName": EBS_STORAGE_CLASS, "volumeMode": "Block", "accessModes": ["ReadWriteOnce"]},
        }],
    }


def ceph_cluster_spec(s: StorageSettings, *, prometheus_url: Optional[str] = None) -> dict[str, Any]:
    prod = s.prod
    zonal = s.failure_domain == "zone"
    res = daemon_resources(s)
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
        "mon": {"count": s.storage.mon_count, "allowMultiplePerNode": False,
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
        "placement": {"all": daemon_placement(s), **({"mon": mon_placement} if mon_placement else {})},
        "priorityClassNames": {"mon": "system-node-critical", "osd": "system-node-critical",
                               "mgr": "system-cluster-critical"},
        "resources": {k: v for k, v in res.items() if k in ("mon", "mgr", "prepareosd")},
        "storage": {"useAllNodes": False, "useAllDevices": False, "allowDeviceClassUpdate": False,
                    "allowOsdCrushWeightUpdate": True, "onlyApplyOSDPlacement": False,
                    "storageClassDeviceSets": [device_set(s)]},
        "disruptionManagement": {"managePodBudgets": True, "osdMaintenanceTimeout": 30},
    }
    if s.replicas == 1:
        spec["cephConfig"] = {"global": {"mon_warn_on_pool_no_redundancy": "false"}}
    policy = cleanup_policy(s)
    if policy:
        spec["cleanupPolicy"] = policy
    return spec


def pool_metadata(s: StorageSettings) -> dict[str, Any]:
    annotations = {WAIT_FOR_ANNOTATION: WAIT_FOR_READY}
    if s.storage.destroy_data:
        annotations[FORCE_DELETION_ANNOTATION] = "true"  # Rook deletes the pool's images, then the pool
    return {"name": BLOCK_POOL, "namespace": NAMESPACE, "labels": std_labels(BLOCK_POOL), "annotations": annotations}


def block_pool_spec(s: StorageSettings) -> dict[str, Any]:
    return {**pool_spec(s), "parameters": {"compression_mode": "none"}}


def filesystem_spec(s: StorageSettings) -> dict[str, Any]:
    res = daemon_resources(s)
    zonal = s.failure_domain == "zone"
    anti = {"requiredDuringSchedulingIgnoredDuringExecution": [{
        "labelSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["rook-ceph-mds"]}]},
        "topologyKey": ZONE_KEY if zonal else HOST_KEY}]}
    placement = {**daemon_placement(s), "podAntiAffinity": anti}
    return {
        "metadataPool": {**pool_spec(s), "parameters": {"compression_mode": "none"}},
        "dataPools": [{"name": FS_DATA_POOL, **pool_spec(s), "parameters": {"compression_mode": "none"}}],
        # prod keeps the Ceph filesystem when the CR is deleted by mistake; elsewhere it goes with it
        "preserveFilesystemOnDelete": s.prod and not s.storage.destroy_data,
        "metadataServer": {"activeCount": 1, "activeStandby": True, "annotations": dict(DO_NOT_DISRUPT),
                           "placement": placement, "priorityClassName": "system-cluster-critical",
                           "resources": res["mds"]},
    }


def ebs_storage_class(s: StorageSettings) -> dict[str, Any]:
    """Encrypted gp3 for Ceph's own disks (OSDs, mon stores). Not the default class."""
    return {
        "metadata": {"name": EBS_STORAGE_CLASS, "labels": std_labels(EBS_STORAGE_CLASS)},
        "provisioner": "ebs.csi.aws.com",
        "parameters": {"type": "gp3", "encrypted": "true",
                       # tag the volumes so cost reports and the teardown sweep can find them
                       "tagSpecification_1": f"{TAG_PROJECT_CLUSTER}={s.cluster_name}",
                       "tagSpecification_2": f"eks-ml-platform/stack={s.stack}"},
        "reclaimPolicy": reclaim_policy(s),
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


def block_storage_class(s: StorageSettings) -> dict[str, Any]:
    """``ceph-block``: RBD, RWO, the cluster default (deploy/examples/csi/rbd/storageclass.yaml)."""
    return {
        "metadata": {"name": BLOCK_STORAGE_CLASS, "labels": std_labels(BLOCK_STORAGE_CLASS),
                     "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
        "provisioner": RBD_DRIVER,
        "parameters": {"clusterID": NAMESPACE, "pool": BLOCK_POOL, "imageFormat": "2", "imageFeatures": "layering",
                       **_csi_secrets("rbd"), "csi.storage.k8s.io/fstype": "ext4"},
        "reclaimPolicy": reclaim_policy(s),
        "allowVolumeExpansion": True,
        "volumeBindingMode": "Immediate",
    }


def file_storage_class(s: StorageSettings) -> dict[str, Any]:
    """``ceph-filesystem``: CephFS, RWX (deploy/examples/csi/cephfs/storageclass.yaml)."""
    return {
        "metadata": {"name": FILE_STORAGE_CLASS, "labels": std_labels(FILE_STORAGE_CLASS)},
        "provisioner": CEPHFS_DRIVER,
        "parameters": {"clusterID": NAMESPACE, "fsName": FILESYSTEM, "pool": f"{FILESYSTEM}-{FS_DATA_POOL}",
                       **_csi_secrets("cephfs")},
        "reclaimPolicy": reclaim_policy(s),
        "allowVolumeExpansion": True,
        "volumeBindingMode": "Immediate",
    }


def snapshot_class(s: StorageSettings, *, name: str, driver: str, kind: str) -> dict[str, Any]:
    """A VolumeSnapshotClass (deploy/examples/csi/{rbd,cephfs}/snapshotclass.yaml). Prod keeps the
    snapshot when its VolumeSnapshot is deleted (Retain): they are the backups of datasets and models."""
    return {
        "apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshotClass",
        "metadata": {"name": name, "labels": std_labels(name), "annotations": {DEFAULT_SNAPSHOT_CLASS_ANNOTATION: "true"}},
        "driver": driver,
        "deletionPolicy": "Retain" if s.prod else "Delete",
        "parameters": {"clusterID": NAMESPACE,
                       "csi.storage.k8s.io/snapshotter-secret-name": f"rook-csi-{kind}-provisioner",
                       "csi.storage.k8s.io/snapshotter-secret-namespace": NAMESPACE},
    }


def snapshot_classes(s: StorageSettings) -> list[dict[str, Any]]:
    return [snapshot_class(s, name=BLOCK_SNAPSHOT_CLASS, driver=RBD_DRIVER, kind="rbd"),
            snapshot_class(s, name=FILE_SNAPSHOT_CLASS, driver=CEPHFS_DRIVER, kind="cephfs")]


def operator_values(s: StorageSettings) -> dict[str, Any]:
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


def _plugin_settings(s: StorageSettings) -> dict[str, Any]:
    return {
        # the node plugin mounts volumes wherever pods run: GPU, Neuron and system nodes included
        "nodePlugin": {"priorityClassName": "system-node-critical", "tolerations": [{"operator": "Exists"}]},
        "controllerPlugin": {"priorityClassName": "system-cluster-critical",
                             "replicas": 2 if s.prod else 1,
                             "tolerations": [dict(SYSTEM_TOLERATION)],
                             "affinity": system_placement()["affinity"]},
    }


def csi_driver_values(s: StorageSettings) -> dict[str, Any]:
    """ceph-csi-drivers chart values: Rook's recommended file (deploy/charts/ceph-csi-drivers/values.yaml at
    v1.20.6) plus placement. Placement is set on each driver as well: the chart writes the driver's
    own (empty) tolerations into the Driver CR, and the operator only falls back to the defaults for
    unset fields."""
    plugin = _plugin_settings(s)
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
