"""Add-on switches (``AddonsConfig``), Rook-Ceph storage (``StorageConfig``) and monitoring (``MonitoringConfig``)."""
from __future__ import annotations

import re
from typing import Literal, Optional

from pydantic import Field, field_validator, model_validator

from infra.config.base import SEMVER_RE, _Model


class AddonToggle(_Model):
    """Per add-on switch and version override (defaults live in infra/versions.py)."""

    enabled: bool = True
    version: Optional[str] = None

    @field_validator("version")
    @classmethod
    def _semver(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not SEMVER_RE.match(v):
            raise ValueError(f"{v!r} is not a chart version such as 1.8.0 (a pinned semantic version, never latest)")
        return v


class AddonsConfig(_Model):
    karpenter: AddonToggle = AddonToggle()
    nvidia_device_plugin: AddonToggle = AddonToggle()
    dcgm_exporter: AddonToggle = AddonToggle()
    neuron: AddonToggle = AddonToggle()
    rook_ceph: AddonToggle = AddonToggle()
    monitoring: AddonToggle = AddonToggle()
    training_operator: AddonToggle = AddonToggle()
    # The AWS Load Balancer Controller (components/load_balancer.py): the ALB of serving.exposure ingress
    # and the NLB of serving.exposure loadBalancer.
    load_balancer_controller: AddonToggle = AddonToggle()
    # Kueue (components/kueue): the training jobs queue for quota derived from the node pools' limits. On by
    # default where training is enabled (infra/config/queue.py kueue_enabled); set enabled: true to install it
    # for your own jobs without the sample training.
    kueue: AddonToggle = AddonToggle()
    # The EKS node monitoring agent add-on (infra/cluster.py) with Karpenter's NodeRepair gate: GPU, kernel,
    # storage and networking faults become node conditions, and Karpenter replaces the failed nodes.
    node_monitoring_agent: AddonToggle = AddonToggle()


class StorageConfig(_Model):
    """Rook-Ceph: OSDs on PVCs backed by encrypted gp3 EBS (see README)."""

    osd_count: int = Field(3, ge=1, le=64)
    osd_size_gib: int = Field(100, ge=10, le=16000)
    replicas: Optional[int] = Field(None, ge=1, le=5)  # default: 3 in prod, 2 otherwise
    failure_domain: Optional[Literal["host", "zone"]] = None  # default: zone in prod, host otherwise
    mon_count: int = 3
    # Teardown switch (Rook's cleanup guide): sets the CephCluster cleanupPolicy so that deleting it wipes
    # the data. Rook stops reconciling the moment this is applied, so it is the step right before
    # `pulumi destroy` (set it, `pulumi up`, then destroy), never a standing setting.
    destroy_data: bool = False

    @field_validator("mon_count")
    @classmethod
    def _mons(cls, v: int) -> int:
        if v not in (1, 3, 5):
            raise ValueError(f"{v} is not allowed; use 1, 3 or 5 (an odd count keeps a quorum)")
        return v

    @model_validator(mode="after")
    def _layout(self) -> "StorageConfig":
        if self.replicas is not None and self.replicas > self.osd_count:
            raise ValueError(f"replicas {self.replicas} needs at least {self.replicas} OSDs; osdCount is {self.osd_count}")
        return self


class MonitoringConfig(_Model):
    retention: str = "15d"
    storage_gib: int = Field(50, ge=5, le=16000)
    gpu_idle_minutes: int = Field(30, ge=1, le=1440)
    serving_p99_target_ms: int = Field(250, ge=1, le=60000)
    #: How long serving pods may disagree on the model version before SentimentModelVersionSkew fires.
    model_version_skew_minutes: int = Field(15, ge=1, le=1440)

    @field_validator("retention")
    @classmethod
    def _retention(cls, v: str) -> str:
        if not re.fullmatch(r"\d+(ms|s|m|h|d|w|y)", v):
            raise ValueError(f"{v!r} must be a Prometheus duration such as 15d")
        return v
