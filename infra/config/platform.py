"""The top level: ``PlatformConfig`` (field order is the order of the generated docs and Pulumi.yaml),
its derived settings and the cross-section checks, reported together through ``_CrossProblems``."""
from __future__ import annotations

import re
from typing import Any, Literal, Optional

from pydantic import Field, field_validator, model_validator

from infra.config.addons import AddonsConfig, MonitoringConfig, StorageConfig
from infra.config.base import _Model, aws_tag_problem
from infra.config.cluster import ClusterConfig
from infra.conventions import (OWNERSHIP_TAG_PREFIXES, TAG_PROJECT_CLUSTER, TAG_PROJECT_ENVIRONMENT,
                               TAG_PROJECT_EPHEMERAL, TAG_PROJECT_STACK)
from infra.config.cross import images_problems, platform_problems, serving_problems, training_problems
from infra.config.images import ImagesConfig
from infra.config.network import VpcConfig
from infra.config.regions import AWS_REGIONS, TABLE as REGIONS_TABLE
from infra.config.node_pools import NodePoolConfig, default_node_pools
from infra.config.serving import ServingConfig
from infra.config.training import TrainingConfig

# Tag keys the platform owns: teardown's sweep, Karpenter's discovery and the EKS/ELB integrations read them.

AWS_REGION_RE = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")


PROD_OSD_SIZE_GIB = 200



def _section_default(data: dict, section: str, key: str, value: Any, *, unless: set[str]) -> dict:
    """``data`` with ``section.key = value`` when the section is absent or sets none of ``unless``."""
    current = data.get(section)
    if current is None:
        return {**data, section: {key: value}}
    if isinstance(current, dict) and not (unless & set(current)):
        return {**data, section: {**current, key: value}}
    return data


class PlatformConfig(_Model):
    stack: str = "dev"
    environment: Literal["dev", "staging", "prod"] = "dev"
    ephemeral: bool = False
    protect: bool = False
    region: str = "us-west-2"
    cluster: ClusterConfig = ClusterConfig()
    vpc: VpcConfig = VpcConfig()
    addons: AddonsConfig = AddonsConfig()
    node_pools: Optional[list[NodePoolConfig]] = None
    storage: StorageConfig = StorageConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    training: TrainingConfig = TrainingConfig()
    serving: ServingConfig = ServingConfig()
    images: ImagesConfig = ImagesConfig()
    allow_public_load_balancers: bool = False
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("region")
    @classmethod
    def _region(cls, v: str) -> str:
        if not AWS_REGION_RE.match(v):
            raise ValueError(f"{v!r} is not an AWS region such as us-west-2")
        if v not in AWS_REGIONS:
            raise ValueError(f"{v!r} is not an AWS region in {REGIONS_TABLE}; add it there if AWS opened it")
        return v

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: dict[str, str]) -> dict[str, str]:
        for k in v:
            problem = aws_tag_problem(k, v[k])
            if problem:
                raise ValueError(problem)
            if k.lower().startswith("aws:"):
                raise ValueError(f"tag key {k!r} uses the reserved aws: prefix")
            if k.lower().startswith(OWNERSHIP_TAG_PREFIXES):
                raise ValueError(f"tag key {k!r} is one the platform sets for ownership or discovery "
                                 f"({', '.join(p + '*' for p in OWNERSHIP_TAG_PREFIXES)}): teardown and Karpenter "
                                 "trust it, so a stack may not set it")
        return v

    @model_validator(mode="before")
    @classmethod
    def _environment_defaults(cls, data: Any) -> Any:
        """prod spreads over 3 AZs and sizes OSDs at 200 GiB unless told otherwise (Ceph size 3 across zones:
        3 replicas of the default volumes, about 105 GiB, need more than 3 x 100 GiB below 85% full)."""
        if isinstance(data, dict) and data.get("environment") == "prod":
            data = _section_default(data, "vpc", "azCount", 3, unless={"azCount", "az_count", "id"})
            data = _section_default(data, "storage", "osdSizeGib", PROD_OSD_SIZE_GIB,
                                    unless={"osdSizeGib", "osd_size_gib"})
        return data

    @model_validator(mode="after")
    def _cross(self) -> "PlatformConfig":
        problems = []
        if self.environment == "prod":
            if not self.cluster.admins:
                problems.append(("cluster.admins", "prod needs at least one admin principal (an access entry), "
                                 "or nobody can reach the cluster"))
            if self.ephemeral:
                problems.append(("ephemeral", "prod cannot be ephemeral (ephemeral stacks may be torn down by automation)"))
        pools = self.pools
        names = [p.name for p in pools]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            problems.append(("nodePools", f"duplicate pool names: {', '.join(dupes)}"))
        if self.addons.rook_ceph.enabled:
            problems += self._storage_problems(pools)
        if self.training.enabled:
            problems += training_problems(self, pools)
        problems += self._load_balancer_problems()
        if self.serving.enabled:
            problems += serving_problems(self, pools)
        problems += images_problems(self)
        problems += platform_problems(self)
        if problems:
            raise _CrossProblems(problems)
        return self

    def _storage_problems(self, pools: list[NodePoolConfig]) -> list[tuple[str, str]]:
        """Ceph layouts that would never become healthy (components/storage.py)."""
        out = []
        size, domain = self.ceph_replicas, self.ceph_failure_domain
        if self.storage.osd_count < size:
            out.append(("storage.osdCount", f"{self.storage.osd_count} OSDs cannot hold {size} replicas; "
                        f"use at least {size} (or lower storage.replicas)"))
        if domain == "zone" and not self.vpc.byo and self.vpc.az_count < size:
            out.append(("storage.failureDomain", f"zone needs at least {size} AZs for {size} replicas; "
                        f"vpc.azCount is {self.vpc.az_count} (use failureDomain host or more AZs)"))
        if self.addons.karpenter.enabled and not any(
                p.accelerator == "none" and "on-demand" in p.capacity_types for p in pools):
            out.append(("nodePools", "Rook-Ceph runs on on-demand nodes of an untainted pool: add 'on-demand' to "
                        "the capacityTypes of a pool with accelerator none"))
        return out

    def _load_balancer_problems(self) -> list[tuple[str, str]]:
        """The AWS Load Balancer Controller's IAM policy is vendored for one chart version (components/load_balancer.py)."""
        from infra.versions import CHARTS  # pinned data only (no resource module)

        lbc, pinned = self.addons.load_balancer_controller, CHARTS["load_balancer_controller"].version
        if lbc.enabled and lbc.version is not None and lbc.version != pinned:
            return [("addons.loadBalancerController.version", f"{lbc.version} is not pinned; the platform has the "
                     f"controller's IAM policy for chart {pinned} (infra/upstream.py): pin the new version's policy "
                     "there and bump infra/versions.py")]
        return []

    def _training_problems(self, pools: list[NodePoolConfig]) -> list[tuple[str, str]]:
        """Training checks that need the node pools (infra/config/cross.py training_problems)."""
        return training_problems(self, pools)

    # ---- derived settings (one place, so every consumer agrees)
    @property
    def pools(self) -> list[NodePoolConfig]:
        return list(self.node_pools) if self.node_pools is not None else default_node_pools(self.environment)

    @property
    def cluster_name(self) -> str:
        return self.cluster.name or f"ml-{self.stack}"

    @property
    def nat_mode(self) -> str:
        return self.vpc.nat_gateways or ("perAz" if self.environment == "prod" else "single")

    @property
    def ceph_replicas(self) -> int:
        return self.storage.replicas or (3 if self.environment == "prod" else 2)

    @property
    def ceph_failure_domain(self) -> str:
        return self.storage.failure_domain or ("zone" if self.environment == "prod" else "host")

    @property
    def deletion_protection(self) -> bool:
        if self.cluster.deletion_protection is not None:
            return self.cluster.deletion_protection
        return self.protect

    @property
    def common_tags(self) -> dict[str, str]:
        tags = {TAG_PROJECT_STACK: self.stack, TAG_PROJECT_ENVIRONMENT: self.environment,
                TAG_PROJECT_CLUSTER: self.cluster_name, "managed-by": "pulumi"}
        if self.ephemeral:
            tags[TAG_PROJECT_EPHEMERAL] = "true"
        # the platform's ownership tags last: no user tag can replace them (the validator refuses them too)
        return {**tags, **{k: v for k, v in self.tags.items() if k not in tags}}


class _CrossProblems(ValueError):
    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{k}: {m}" for k, m in problems))
