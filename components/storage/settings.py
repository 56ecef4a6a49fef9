"""What the storage add-on takes from the stack config: a pure slice, built by :meth:`StorageSettings.from_config`.

The Rook-Ceph documents (``values``), the NetworkPolicies (``netpol``), the teardown steps
(``teardown``) and the component read this slice, never the whole ``PlatformConfig``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from infra.config import PlatformConfig, StorageConfig, VpcConfig


@dataclass(frozen=True)
class StorageSettings:
    cluster_name: str
    stack: str
    #: prod keeps data (Retain, preserved filesystem), runs two CSI controller replicas and larger daemons.
    prod: bool = False
    #: With Karpenter the Ceph daemons run on on-demand pool nodes, without it on the system node group.
    karpenter: bool = True
    replicas: int = 2  # ``storage.replicas`` or the environment's default
    failure_domain: str = "host"  # ``storage.failureDomain`` or the environment's default
    protect: bool = False  # the stack's ``protect``: the operator, the CephCluster and the pools
    storage: StorageConfig = field(default_factory=StorageConfig)
    vpc: VpcConfig = field(default_factory=VpcConfig)  # the node subnets that mount volumes
    version: Optional[str] = None  # ``addons.rookCeph.version`` (None: the pinned chart)

    @classmethod
    def from_config(cls, cfg: PlatformConfig) -> "StorageSettings":
        return cls(cluster_name=cfg.cluster_name, stack=cfg.stack, prod=cfg.environment == "prod",
                   karpenter=cfg.addons.karpenter.enabled, replicas=cfg.ceph_replicas,
                   failure_domain=cfg.ceph_failure_domain, protect=cfg.protect, storage=cfg.storage, vpc=cfg.vpc,
                   version=cfg.addons.rook_ceph.version)
