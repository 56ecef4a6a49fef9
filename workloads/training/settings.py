"""What the training workload takes from the stack config: a pure slice, built by :meth:`TrainingSettings.from_config`.

The plan (``pods.py``), the manifests and the component read this slice: the ``training`` section
and the node pools its pods may land on, never the whole ``PlatformConfig``.
"""
from __future__ import annotations

from dataclasses import dataclass

from infra.config import NodePoolConfig, PlatformConfig, TrainingConfig, kueue_enabled


@dataclass(frozen=True)
class TrainingSettings:
    training: TrainingConfig
    pools: tuple[NodePoolConfig, ...]
    #: Kueue is installed: the jobs carry its queue and priority labels (infra/config/queue.py).
    kueue: bool = False

    @classmethod
    def from_config(cls, cfg: PlatformConfig) -> "TrainingSettings":
        return cls(training=cfg.training, pools=tuple(cfg.pools), kueue=kueue_enabled(cfg))
