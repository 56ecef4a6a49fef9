"""The EKS cluster section: ``ClusterConfig`` (version, endpoint access, admins, system nodes)."""
from __future__ import annotations

import re
from typing import Any, Literal, Optional

from pydantic import Field, field_validator, model_validator

from infra.config.base import _cidr, _Model, check_each
from infra.config.instances import instance_type_problem

SUPPORTED_K8S = ("1.30", "1.31", "1.32", "1.33", "1.34", "1.35", "1.36")
DEFAULT_K8S = "1.34"


class EndpointConfig(_Model):
    """API server endpoint access. Private access is on; public access is optional and CIDR-restricted."""

    private_access: bool = True
    public_access: bool = False
    public_access_cidrs: list[str] = Field(default_factory=list)

    @field_validator("public_access_cidrs")
    @classmethod
    def _cidrs(cls, v: list[str]) -> list[str]:
        return [_cidr(c) for c in v]

    @model_validator(mode="after")
    def _check(self) -> "EndpointConfig":
        if not self.private_access and not self.public_access:
            raise ValueError("privateAccess and publicAccess cannot both be false (the API server would be unreachable)")
        if self.public_access and not self.public_access_cidrs:
            raise ValueError("publicAccess is true but publicAccessCidrs is empty; list the CIDRs allowed to reach the API "
                             "(0.0.0.0/0 must be written out on purpose)")
        if not self.public_access and self.public_access_cidrs:
            raise ValueError("publicAccessCidrs is set but publicAccess is false")
        return self


class AdminPrincipal(_Model):
    """An IAM principal given cluster access through an EKS access entry."""

    principal_arn: str
    policy: Literal["cluster-admin", "admin", "edit", "view"] = "cluster-admin"

    @field_validator("principal_arn")
    @classmethod
    def _arn(cls, v: str) -> str:
        if not re.match(r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/.+$", v):
            raise ValueError(f"{v!r} is not an IAM role or user ARN (arn:aws:iam::<account>:role/<name>)")
        return v


class SystemNodesConfig(_Model):
    """The managed on-demand node group (tainted CriticalAddonsOnly) that runs Karpenter and controllers."""

    instance_types: list[str] = Field(default_factory=lambda: ["m6i.large"], min_length=1)
    desired_size: int = Field(2, ge=1, le=20)
    min_size: int = Field(2, ge=1, le=20)
    max_size: int = Field(3, ge=1, le=50)
    disk_size_gib: int = Field(50, ge=20, le=1000)

    @field_validator("instance_types")
    @classmethod
    def _types(cls, v: list[str]) -> list[str]:
        check_each(v, instance_type_problem)
        if len(set(v)) != len(v):
            raise ValueError("an instance type is listed more than once")
        return v

    @model_validator(mode="after")
    def _sizes(self) -> "SystemNodesConfig":
        if not self.min_size <= self.desired_size <= self.max_size:
            raise ValueError(f"need minSize <= desiredSize <= maxSize (got {self.min_size}, {self.desired_size}, {self.max_size})")
        return self


LOG_TYPES = Literal["api", "audit", "authenticator", "controllerManager", "scheduler"]


class ClusterConfig(_Model):
    name: str = ""
    version: str = DEFAULT_K8S
    endpoint: EndpointConfig = EndpointConfig()
    logging: list[LOG_TYPES] = Field(default_factory=lambda: ["api", "audit", "authenticator"])
    admins: list[AdminPrincipal] = Field(default_factory=list)
    system_nodes: SystemNodesConfig = SystemNodesConfig()
    deletion_protection: Optional[bool] = None

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> str:
        text = str(v).strip()
        if isinstance(v, float) or re.fullmatch(r"1\.\d", text):
            # YAML reads 1.30 as the float 1.3: ask for a quoted string rather than guess.
            if isinstance(v, float) and f"{v}" + "0" in SUPPORTED_K8S:
                raise ValueError(f"{v} was read as a number; quote it: \"{v}0\"")
        if text not in SUPPORTED_K8S:
            raise ValueError(f"{text} is not supported; use {SUPPORTED_K8S[0]}-{SUPPORTED_K8S[-1]}")
        return text

    @field_validator("admins")
    @classmethod
    def _admins(cls, v: list[AdminPrincipal]) -> list[AdminPrincipal]:
        arns = [a.principal_arn for a in v]
        dupes = sorted({a for a in arns if arns.count(a) > 1})
        if dupes:
            raise ValueError(f"{dupes[0]} is listed more than once (one access entry per principal); keep one")
        return v

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if v and not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{0,37}", v):
            raise ValueError(f"{v!r} must start with a letter and hold only letters, digits and '-' (max 38 chars)")
        return v
