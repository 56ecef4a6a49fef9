"""What the Karpenter component takes from the stack config: a pure slice, built by :meth:`KarpenterSettings.from_config`.

The spec builders (``node_pools``, ``values``, ``iam``) and the component read this slice, never
the whole ``PlatformConfig``, so what Karpenter depends on is visible in one place.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional

from infra.config import NodePoolConfig, PlatformConfig


@dataclass(frozen=True)
class KarpenterSettings:
    cluster_name: str
    region: str
    pools: tuple[NodePoolConfig, ...] = ()
    #: The stack's tags (``tags`` plus the platform's own), copied onto what Karpenter launches.
    common_tags: Mapping[str, str] = field(default_factory=dict)
    version: Optional[str] = None  # ``addons.karpenter.version`` (None: the pinned chart)
    #: Karpenter's NodeRepair feature gate: on with the EKS node monitoring agent, which reports the
    #: accelerator, kernel, storage and networking conditions Karpenter repairs on.
    node_repair: bool = True
    #: Extra node labels per pool name: the NVIDIA device plugin's sharing config on the serving pool
    #: (``serving.gpuSharing``), so only that pool's GPUs are shared.
    node_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: PlatformConfig) -> "KarpenterSettings":
        return cls(cluster_name=cfg.cluster_name, region=cfg.region, pools=tuple(cfg.pools),
                   common_tags=dict(cfg.common_tags), version=cfg.addons.karpenter.version,
                   node_repair=cfg.addons.node_monitoring_agent.enabled, node_labels=shared_gpu_labels(cfg))


def shared_gpu_labels(cfg: PlatformConfig) -> dict[str, dict[str, str]]:
    """{serving pool: its device plugin config labels} with ``serving.gpuSharing`` on gpu serving, else {}."""
    sv = cfg.serving
    pool = sv.pool_for(cfg.pools) if sv.enabled and sv.device == "gpu" and sv.gpu_sharing else None
    return {pool.name: sv.gpu_sharing.node_labels()} if pool and sv.gpu_sharing else {}
