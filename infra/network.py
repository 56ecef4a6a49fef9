"""The VPC: 2 or 3 AZs, private and public subnets, NAT (one per AZ in prod, one in dev).

Bring-your-own VPCs are used as given; their subnets get the Karpenter discovery tag
through ``aws.ec2.Tag`` so Karpenter can find them without editing the VPC's own stack.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.config import PlatformConfig


@dataclass(frozen=True)
class SubnetPlan:
    az_index: int
    private_cidr: str
    public_cidr: str


def plan_subnets(vpc_cidr: str, az_count: int) -> list[SubnetPlan]:
    """Carve the VPC: one large private subnet per AZ (nodes and pods), a small public one (load balancers, NAT).

    The VPC is split into quarters; AZ i gets quarter i as its private subnet and the last
    quarter is cut into /(prefix+6) public subnets. A /16 gives /18 private (16k IPs each,
    enough for VPC-CNI pod IPs) and /22 public subnets.
    """
    vpc = ipaddress.ip_network(vpc_cidr)
    quarters = list(vpc.subnets(prefixlen_diff=2))
    publics = list(quarters[3].subnets(new_prefix=vpc.prefixlen + 6))
    return [SubnetPlan(i, str(quarters[i]), str(publics[i])) for i in range(az_count)]


def subnet_tags(cluster_name: str, *, public: bool) -> dict[str, str]:
    """ELB role tags for the AWS Load Balancer Controller; Karpenter discovery on private subnets."""
    tags = {f"kubernetes.io/cluster/{cluster_name}": "shared"}
    if public:
        tags["kubernetes.io/role/elb"] = "1"
    else:
        tags["kubernetes.io/role/internal-elb"] = "1"
        tags["karpenter.sh/discovery"] = cluster_name
    return tags


def nat_count(mode: str, az_count: int) -> int:
    return az_count if mode == "perAz" else 1


class Network(pulumi.ComponentResource):
    """Outputs: ``vpc_id``, ``private_subnet_ids``, ``public_subnet_ids``, ``azs``."""

    vpc_id: pulumi.Output[str]
    private_subnet_ids: pulumi.Output[list[str]]
    public_subnet_ids: pulumi.Output[list[str]]

    def __init__(self, name: str, cfg: PlatformConfig, opts: pulumi.ResourceOptions | None = None):
        super().__init__("eks-ml-platform:network:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, protect=cfg.protect)
        cluster = cfg.cluster_name
        if cfg.vpc.byo:
            self._byo(name, cfg, child)
        else:
            self._create(name, cfg, child)
        self.register_outputs({
            "vpc_id": self.vpc_id, "private_subnet_ids": self.private_subnet_ids,
            "public_subnet_ids": self.public_subnet_ids, "cluster": cluster,
        })

    def _byo(self, name: str, cfg: PlatformConfig, child: pulumi.ResourceOptions) -> None:
        self.vpc_id = pulumi.Output.from_input(cfg.vpc.id)
        self.private_subnet_ids = pulumi.Output.from_input(list(cfg.vpc.private_subnet_ids))
        self.public_subnet_ids = pulumi.Output.from_input(list(cfg.vpc.public_subnet_ids))
        # Tag the user's subnets so Karpenter's subnetSelectorTerms and the LB controller find them.
        opts = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(protect=False))
        for i, subnet in enumerate(cfg.vpc.private_subnet_ids):
            for key, value in subnet_tags(cfg.cluster_name, public=False).items():
                aws.ec2.Tag(f"{name}-private-{i}-{key.replace('/', '-').replace('.', '-')}",
                            resource_id=subnet, key=key, value=value, opts=opts)
        for i, subnet in enumerate(cfg.vpc.public_subnet_ids):
            for key, value in subnet_tags(cfg.cluster_name, public=True).items():
                aws.ec2.Tag(f"{name}-public-{i}-{key.replace('/', '-').replace('.', '-')}",
                            resource_id=subnet, key=key, value=value, opts=opts)

    def _create(self, name: str, cfg: PlatformConfig, child: pulumi.ResourceOptions) -> None:
        azs = aws.get_availability_zones_output(state="available", opts=pulumi.InvokeOptions(parent=self))
        plan = plan_subnets(cfg.vpc.cidr, cfg.vpc.az_count)
        cluster = cfg.cluster_name
        vpc = aws.ec2.Vpc(
            f"{name}-vpc", cidr_block=cfg.vpc.cidr, enable_dns_hostnames=True, enable_dns_support=True,
            tags={"Name": f"{cluster}-vpc"}, opts=child,
        )
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags={"Name": f"{cluster}-igw"}, opts=child)
        public_rt = aws.ec2.RouteTable(
            f"{name}-public-rt", vpc_id=vpc.id, routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": igw.id}],
            tags={"Name": f"{cluster}-public"}, opts=child,
        )
        publics, privates, nats = [], [], []
        for p in plan:
            az = azs.names.apply(lambda names, i=p.az_index: names[i])
            pub = aws.ec2.Subnet(
                f"{name}-public-{p.az_index}", vpc_id=vpc.id, cidr_block=p.public_cidr, availability_zone=az,
                map_public_ip_on_launch=False,
                tags={"Name": f"{cluster}-public-{p.az_index}", **subnet_tags(cluster, public=True)}, opts=child,
            )
            aws.ec2.RouteTableAssociation(f"{name}-public-{p.az_index}", subnet_id=pub.id, route_table_id=public_rt.id, opts=child)
            publics.append(pub)
        for i in range(nat_count(cfg.nat_mode, cfg.vpc.az_count)):
            eip = aws.ec2.Eip(f"{name}-nat-{i}", domain="vpc", tags={"Name": f"{cluster}-nat-{i}"}, opts=child)
            nats.append(aws.ec2.NatGateway(
                f"{name}-nat-{i}", allocation_id=eip.id, subnet_id=publics[i].id, tags={"Name": f"{cluster}-nat-{i}"},
                opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[igw])),
            ))
        for p in plan:
            az = azs.names.apply(lambda names, i=p.az_index: names[i])
            priv = aws.ec2.Subnet(
                f"{name}-private-{p.az_index}", vpc_id=vpc.id, cidr_block=p.private_cidr, availability_zone=az,
                tags={"Name": f"{cluster}-private-{p.az_index}", **subnet_tags(cluster, public=False)}, opts=child,
            )
            nat = nats[p.az_index % len(nats)]
            rt = aws.ec2.RouteTable(
                f"{name}-private-rt-{p.az_index}", vpc_id=vpc.id, routes=[{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nat.id}],
                tags={"Name": f"{cluster}-private-{p.az_index}"}, opts=child,
            )
            aws.ec2.RouteTableAssociation(f"{name}-private-{p.az_index}", subnet_id=priv.id, route_table_id=rt.id, opts=child)
            privates.append(priv)
        self.vpc_id = vpc.id
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in privates])
        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in publics])
