"""What the monitoring add-on takes from the stack config: a pure slice, built by :meth:`MonitoringSettings.from_config`.

kube-prometheus-stack's values, its NetworkPolicies, the ServiceMonitors it owns and the alert
rules (``components/alerts.py``) read this slice, never the whole ``PlatformConfig``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from infra.config import MonitoringConfig, PlatformConfig, VpcConfig, kueue_enabled, queue_settings


@dataclass(frozen=True)
class MonitoringSettings:
    #: prod: larger requests, on-demand capacity, StatefulSet PVCs retained.
    prod: bool = False
    #: With Karpenter the stack runs on the general pool (and its alerts are on), without it on the system nodes.
    karpenter: bool = True
    rook_ceph: bool = True  # the Ceph alerts
    training_operator: bool = True  # its ServiceMonitor
    keda: bool = False  # serving scales with KEDA, which queries Prometheus
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)
    vpc: VpcConfig = field(default_factory=VpcConfig)  # where the operator's webhook calls come from
    version: Optional[str] = None  # ``addons.monitoring.version`` (None: the pinned chart)
    kueue: bool = False  # the training queue's alert (components/alerts.py kueue_rules)
    queue_max_wait_minutes: int = 60  # ``training.queue.maxWaitMinutes``

    @classmethod
    def from_config(cls, cfg: PlatformConfig) -> "MonitoringSettings":
        a = cfg.addons
        return cls(prod=cfg.environment == "prod", karpenter=a.karpenter.enabled, rook_ceph=a.rook_ceph.enabled,
                   training_operator=a.training_operator.enabled, keda=cfg.serving.enabled and cfg.serving.keda,
                   monitoring=cfg.monitoring, vpc=cfg.vpc, version=a.monitoring.version, kueue=kueue_enabled(cfg),
                   queue_max_wait_minutes=queue_settings(cfg.training).max_wait_minutes)
