"""What the Kueue add-on takes from the stack config: a pure slice, built by :meth:`KueueSettings.from_config`.

The queue builders (``queues``), the chart values and NetworkPolicies (``values``) and the component read
this slice, never the whole ``PlatformConfig``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from components.netpol import api_server_cidrs
from infra.config import NodePoolConfig, PlatformConfig, VpcConfig, kueue_enabled, queue_pools, queue_settings
from infra.conventions import WORKLOADS_NAMESPACE
from infra.versions import CHARTS


@dataclass(frozen=True)
class KueueSettings:
    #: The node pools with a ResourceFlavor, plain pools first (``infra/config/queue.py`` queue_pools).
    pools: tuple[NodePoolConfig, ...] = ()
    #: ``training.queue.share``: the fraction of each pool's limits that is the ClusterQueue's nominal quota.
    share: float = 1.0
    #: ``training.queue.borrow``: the ClusterQueue joins a Cohort holding the rest of the pools' limits.
    borrow: bool = False
    #: ``training.queue.podsReadyTimeoutMinutes`` (waitForPodsReady.timeout).
    pods_ready_timeout_minutes: int = 20
    #: The training operator is installed: the kubeflow.org/pytorchjob and tfjob integrations are enabled.
    kubeflow: bool = True
    prod: bool = False  # two controller replicas and a PodDisruptionBudget
    monitoring: bool = True  # the ServiceMonitor and Prometheus' right to read /metrics
    #: Where the API server's webhook and visibility API calls come from (components/netpol.py).
    api_server_cidrs: tuple[str, ...] = (VpcConfig().cidr,)
    version: Optional[str] = None  # ``addons.kueue.version`` (None: the pinned chart)
    namespace: str = CHARTS["kueue"].namespace
    #: The only namespace whose jobs Kueue manages (the LocalQueue's; serving never goes through Kueue).
    workloads_namespace: str = WORKLOADS_NAMESPACE

    @classmethod
    def from_config(cls, cfg: PlatformConfig) -> "KueueSettings":
        q = queue_settings(cfg.training)
        return cls(pools=tuple(queue_pools(cfg.training, cfg.pools)), share=q.share, borrow=q.borrow,
                   pods_ready_timeout_minutes=q.pods_ready_timeout_minutes,
                   kubeflow=cfg.addons.training_operator.enabled, prod=cfg.environment == "prod",
                   monitoring=cfg.addons.monitoring.enabled, api_server_cidrs=tuple(api_server_cidrs(cfg.vpc)),
                   version=cfg.addons.kueue.version)

    @staticmethod
    def enabled(cfg: PlatformConfig) -> bool:
        """Whether this stack installs Kueue (``infra/config/queue.py`` kueue_enabled)."""
        return kueue_enabled(cfg)
