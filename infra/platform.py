"""The ``Platform`` component: the AWS provider, the network, the cluster, then the add-ons.

The add-ons come from the registry (``infra/addons.py``), built in dependency order; each gets the
Kubernetes provider and ``depends_on`` only what it needs (the ``cluster_ready`` gate, and the
release that installs the CRDs it uses). Nothing here is specific to one add-on.
"""
from __future__ import annotations

import pulumi
import pulumi_aws as aws

from infra.addons import build_all
from infra.cluster import EksCluster
from infra.config import PlatformConfig
from infra.context import PlatformContext
from infra.network import Network


class Platform(pulumi.ComponentResource):
    def __init__(self, name: str, cfg: PlatformConfig, opts: pulumi.ResourceOptions | None = None):
        super().__init__("eks-ml-platform:platform:Platform", name, None, opts)
        self.cfg = cfg
        self.aws_provider = aws.Provider(
            f"{name}-aws", region=cfg.region, default_tags={"tags": cfg.common_tags},
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws_opts = pulumi.ResourceOptions(parent=self, providers={"aws": self.aws_provider})
        self.network = Network(f"{name}-net", cfg, opts=aws_opts)
        self.cluster = EksCluster(
            f"{name}-cluster", cfg, vpc_id=self.network.vpc_id, private_subnet_ids=self.network.private_subnet_ids,
            public_subnet_ids=self.network.public_subnet_ids, opts=aws_opts,
        )
        self.ctx = PlatformContext(
            cluster=self.cluster.outputs, cluster_ready=self.cluster.cluster_ready,
            aws_provider=self.aws_provider, k8s_provider=self.cluster.provider,
            private_subnet_ids=self.network.private_subnet_ids, vpc_id=self.network.vpc_id,
        )
        # The add-ons, in the registry's dependency order (infra/addons.py); each depends only on what it needs.
        self.addons, addon_outputs = build_all(cfg, self.ctx, parent=self, name=name)
        self.outputs = {
            "clusterName": self.cluster.outputs.name,
            "clusterEndpoint": self.cluster.outputs.endpoint,
            "oidcProviderArn": self.cluster.outputs.oidc_provider_arn,
            "kubeconfig": self.cluster.outputs.kubeconfig,
            "vpcId": self.network.vpc_id,
            "privateSubnetIds": self.network.private_subnet_ids,
            **addon_outputs,
        }
        self.register_outputs(self.outputs)
