"""The network section: ``VpcConfig`` (a new VPC, or a bring-your-own one)."""
from __future__ import annotations

import ipaddress
import re
from typing import Literal, Optional

from pydantic import Field, field_validator, model_validator

from infra.config.base import _cidr, _Model


PRIVATE_RANGES = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))


class VpcConfig(_Model):
    """Create a VPC (cidr, azCount) or bring your own (id + subnet ids)."""

    cidr: str = "10.42.0.0/16"
    az_count: int = 2
    nat_gateways: Optional[Literal["single", "perAz"]] = None  # default: perAz in prod, single otherwise
    id: Optional[str] = None
    private_subnet_ids: list[str] = Field(default_factory=list)
    public_subnet_ids: list[str] = Field(default_factory=list)

    @field_validator("cidr")
    @classmethod
    def _cidr_ok(cls, v: str) -> str:
        net = ipaddress.ip_network(_cidr(v), strict=True)
        if net.version != 4 or not 16 <= net.prefixlen <= 20:
            raise ValueError(f"{v} must be an IPv4 CIDR between /16 and /20 (room for 2-3 AZs of private and public subnets)")
        if not any(net.subnet_of(private) for private in PRIVATE_RANGES):
            raise ValueError(f"{v} is not a private range; a VPC CIDR must lie in 10.0.0.0/8, 172.16.0.0/12 or "
                             "192.168.0.0/16 (RFC 1918)")
        return str(net)

    @field_validator("az_count")
    @classmethod
    def _az(cls, v: int) -> int:
        if v not in (2, 3):
            raise ValueError(f"{v} is out of range; use 2 or 3 (EKS needs subnets in at least 2 AZs)")
        return v

    @field_validator("id")
    @classmethod
    def _vpc_id(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not re.fullmatch(r"vpc-[0-9a-f]{8,17}", v):
            raise ValueError(f"{v!r} is not a VPC id (vpc-xxxxxxxx)")
        return v

    @field_validator("private_subnet_ids", "public_subnet_ids")
    @classmethod
    def _subnets(cls, v: list[str]) -> list[str]:
        bad = [s for s in v if not re.fullmatch(r"subnet-[0-9a-f]{8,17}", s)]
        if bad:
            raise ValueError(f"{bad} are not subnet ids (subnet-xxxxxxxx)")
        dupes = sorted({x for x in v if v.count(x) > 1})
        if dupes:
            raise ValueError(f"{', '.join(dupes)} listed more than once")
        return v

    @model_validator(mode="after")
    def _byo(self) -> "VpcConfig":
        if self.id and len(self.private_subnet_ids) < 2:
            raise ValueError("a bring-your-own VPC (vpc.id) needs privateSubnetIds in at least 2 AZs")
        both = sorted(set(self.private_subnet_ids) & set(self.public_subnet_ids))
        if both:
            raise ValueError(f"{', '.join(both)} is both a private and a public subnet; a subnet is one or the other")
        if not self.id and (self.private_subnet_ids or self.public_subnet_ids):
            raise ValueError("subnet ids were given without vpc.id; set vpc.id to bring your own VPC")
        return self

    @property
    def byo(self) -> bool:
        return self.id is not None
