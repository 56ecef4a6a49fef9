"""The ``RookCeph`` ComponentResource: it only wires the pure builders of this package into resources.

Each private method creates one layer (namespace and EBS class, charts, Ceph objects, classes) in
the dependency order the package docstring lists; the dependencies are what makes ``pulumi
destroy`` follow Rook's cleanup guide. Names, parents and options are those of the single-module
component this replaced, so no URN moved.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

import pulumi
import pulumi_kubernetes as k8s

from components.storage.names import (
    BLOCK_SNAPSHOT_CLASS,
    CLUSTER_NAME,
    CSI_RELEASE,
    EBS_STORAGE_CLASS,
    FILE_SNAPSHOT_CLASS,
    FILESYSTEM,
    NAMESPACE,
    OPERATOR_RELEASE,
    WAIT_FOR_ANNOTATION,
    WAIT_FOR_READY,
)
from components.storage.netpol import network_policies
from components.storage.settings import StorageSettings
from components.storage.values import (
    block_pool_spec,
    block_storage_class,
    ceph_cluster_spec,
    csi_driver_values,
    ebs_storage_class,
    file_storage_class,
    filesystem_spec,
    operator_values,
    pool_metadata,
    snapshot_classes,
)
from infra.conventions import (
    BLOCK_STORAGE_CLASS,
    FILE_STORAGE_CLASS,
    STORAGE_TYPE,
    std_labels,
)
from infra.versions import CHARTS, IMAGES, chart_version

if TYPE_CHECKING:  # pragma: no cover - typing only (infra.platform imports this module at run time)
    from infra.context import PlatformContext


class _ClusterCustomResource(pulumi.CustomResource):
    """A custom resource whose fields sit at the top level (VolumeSnapshotClass: driver, deletionPolicy,
    parameters), which ``kubernetes.apiextensions.CustomResource`` (spec only) cannot express."""

    def __init__(self, name: str, doc: dict[str, Any], opts: pulumi.ResourceOptions):
        super().__init__(f"kubernetes:{doc['apiVersion']}:{doc['kind']}", name, dict(doc), opts)


@dataclass(frozen=True)
class StorageArgs:
    """Inputs of the storage component."""

    settings: StorageSettings
    ctx: "PlatformContext"
    """Cluster outputs, providers and the ``cluster_ready`` gate."""
    prometheus_url: Optional[str] = None
    """In-cluster Prometheus URL for the Ceph dashboard's graphs (None: no monitoring add-on)."""


class RookCeph(pulumi.ComponentResource):
    """See the ``components.storage`` docstring. Outputs: ``storage_classes`` (``ceph-block``,
    ``ceph-filesystem``: PVCs depend on them), ``snapshot_classes``, ``ebs_storage_class``, ``cluster``
    (the CephCluster), ``operator_release``, ``csi_release``."""

    def __init__(self, name: str, args: StorageArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(STORAGE_TYPE, name, None, opts)
        self._prefix, self._ctx, self._settings = name, args.ctx, args.settings

        self._namespace_and_disks()
        version = chart_version("rook_ceph", args.settings.version)
        self._charts(version)
        self._ceph(args.prometheus_url)
        self._classes()

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

    def _child(self, *deps: pulumi.Resource, protect: bool = False, create_timeout: Optional[str] = None,
               delete_timeout: Optional[str] = None) -> pulumi.ResourceOptions:
        """Options of a child: the context's providers and gate, ``deps``, protection (only where the
        config protects) and custom timeouts (the create timeout applies to updates too)."""
        timeouts = None
        if create_timeout or delete_timeout:
            timeouts = pulumi.CustomTimeouts(create=create_timeout, update=create_timeout, delete=delete_timeout)
        extra = pulumi.ResourceOptions(protect=protect and self._settings.protect, custom_timeouts=timeouts)
        return pulumi.ResourceOptions.merge(self._ctx.opts(self, depends_on=list(deps)), extra)

    def _storage_class(self, resource_name: str, doc: dict[str, Any],
                       opts: pulumi.ResourceOptions) -> k8s.storage.v1.StorageClass:
        return k8s.storage.v1.StorageClass(
            resource_name, metadata=doc["metadata"], provisioner=doc["provisioner"], parameters=doc["parameters"],
            reclaim_policy=doc["reclaimPolicy"], allow_volume_expansion=doc["allowVolumeExpansion"],
            volume_binding_mode=doc["volumeBindingMode"], opts=opts,
        )

    def _namespace_and_disks(self) -> None:
        """The privileged ``rook-ceph`` Namespace, its NetworkPolicies (``netpol``) and the encrypted gp3 class
        behind Ceph's own disks."""
        name = self._prefix
        self.namespace = k8s.core.v1.Namespace(
            f"{name}-ns",
            metadata={"name": NAMESPACE, "labels": {**std_labels("rook-ceph"),
                                                    # Ceph and the CSI node plugins need host access
                                                    "pod-security.kubernetes.io/enforce": "privileged"}},
            opts=self._child(),
        )
        for doc in network_policies(self._settings):
            k8s.networking.v1.NetworkPolicy(f"{name}-netpol-{doc['metadata']['name']}", metadata=doc["metadata"],
                                            spec=doc["spec"], opts=self._child(self.namespace))
        self.ebs_storage_class = self._storage_class(f"{name}-ebs-gp3", ebs_storage_class(self._settings),
                                                     self._child())

    def _charts(self, version: str) -> None:
        """The rook-ceph operator chart, then ceph-csi-drivers (Rook v1.20 configures CSI only through it)."""
        name, st = self._prefix, self._settings
        self.operator_release = k8s.helm.v3.Release(
            f"{name}-operator", name=OPERATOR_RELEASE, chart=CHARTS["rook_ceph"].chart, version=version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=CHARTS["rook_ceph"].repo),
            namespace=NAMESPACE, create_namespace=False, skip_await=False, atomic=True, cleanup_on_fail=True,
            timeout=600, values=operator_values(st), opts=self._child(self.namespace, protect=True),
        )
        self.csi_release = k8s.helm.v3.Release(
            f"{name}-csi", name=CSI_RELEASE, chart=CHARTS["ceph_csi_drivers"].chart,
            version=chart_version("ceph_csi_drivers"),
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=CHARTS["ceph_csi_drivers"].repo),
            namespace=NAMESPACE, create_namespace=False, skip_await=False, atomic=True, cleanup_on_fail=True,
            timeout=600, values=csi_driver_values(st), opts=self._child(self.operator_release),
        )

    def _ceph(self, prometheus_url: Optional[str]) -> None:
        """The CephCluster, then the block pool and the filesystem on it."""
        name, st, child = self._prefix, self._settings, self._child
        # The CephCluster depends on the CSI release too, so destroy removes it (and waits for its
        # volumes) while the CSI provisioner still runs.
        self.cluster = k8s.apiextensions.CustomResource(
            f"{name}-cluster", api_version="ceph.rook.io/v1", kind="CephCluster",
            metadata={"name": CLUSTER_NAME, "namespace": NAMESPACE, "labels": std_labels("ceph-cluster")},
            spec=ceph_cluster_spec(st, prometheus_url=prometheus_url),
            opts=child(self.operator_release, self.csi_release, self.ebs_storage_class, protect=True,
                       delete_timeout="30m"),
        )
        # The pool and the filesystem are awaited until Rook reports them Ready (the first time that
        # includes Karpenter launching the nodes and Ceph bootstrapping), so the StorageClasses, and
        # the PVCs behind them, only appear once volumes can actually be provisioned.
        self.block_pool = k8s.apiextensions.CustomResource(
            f"{name}-blockpool", api_version="ceph.rook.io/v1", kind="CephBlockPool", metadata=pool_metadata(st),
            spec=block_pool_spec(st),
            opts=child(self.cluster, protect=True, create_timeout="45m", delete_timeout="20m"),
        )
        self.filesystem = k8s.apiextensions.CustomResource(
            f"{name}-filesystem", api_version="ceph.rook.io/v1", kind="CephFilesystem",
            metadata={"name": FILESYSTEM, "namespace": NAMESPACE, "labels": std_labels(FILESYSTEM),
                      "annotations": {WAIT_FOR_ANNOTATION: WAIT_FOR_READY}},
            spec=filesystem_spec(st),
            opts=child(self.cluster, protect=True, create_timeout="45m", delete_timeout="20m"),
        )

    def _classes(self) -> None:
        """The RBD and CephFS StorageClasses and VolumeSnapshotClasses, after their pool and the CSI drivers."""
        name, st = self._prefix, self._settings
        self.block_storage_class = self._storage_class(f"{name}-block", block_storage_class(st),
                                                       self._child(self.block_pool, self.csi_release))
        self.file_storage_class = self._storage_class(f"{name}-filesystem", file_storage_class(st),
                                                      self._child(self.filesystem, self.csi_release))
        self.storage_classes: list[k8s.storage.v1.StorageClass] = [self.block_storage_class, self.file_storage_class]
        self.snapshot_classes: list[pulumi.CustomResource] = []
        for doc, dep in zip(snapshot_classes(st), (self.block_pool, self.filesystem)):
            self.snapshot_classes.append(_ClusterCustomResource(
                f"{name}-{doc['metadata']['name']}", doc, self._child(dep, self.csi_release)))
