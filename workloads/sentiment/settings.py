"""What the serving workload takes from the stack config: a pure slice, built by :meth:`ServingSettings.from_config`.

The plan (``plan.py``), the manifests, the autoscalers and the component read this slice, never
the whole ``PlatformConfig``. (The server's own runtime settings, from its environment, are
``config.py``'s ``Settings``.)
"""
from __future__ import annotations

from dataclasses import dataclass

from infra.config import NodePoolConfig, PlatformConfig, ServingConfig, VpcConfig


@dataclass(frozen=True)
class ServingSettings:
    serving: ServingConfig
    pools: tuple[NodePoolConfig, ...]
    environment: str  # dev | staging | prod: the zone spread's default
    allow_public_load_balancers: bool  # the stack's guard on ``serving.public``
    vpc: VpcConfig  # where load-balancer traffic comes from

    @classmethod
    def from_config(cls, cfg: PlatformConfig) -> "ServingSettings":
        return cls(serving=cfg.serving, pools=tuple(cfg.pools), environment=cfg.environment,
                   allow_public_load_balancers=cfg.allow_public_load_balancers, vpc=cfg.vpc)
