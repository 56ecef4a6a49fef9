"""The ``Platform`` component: network, then the cluster, then the add-ons in parallel.

Each add-on gets the Kubernetes provider and ``depends_on`` only what it needs (the
``cluster_ready`` gate, and the release that installs the CRDs it uses).
"""
from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.cluster import ClusterOutputs, EksCluster
from infra.config import PlatformConfig
from infra.network import Network


@dataclass(frozen=True)
class PlatformContext:
    """What every add-on component receives: config, cluster outputs, providers, the readiness gate."""

    cfg: PlatformConfig
    cluster: ClusterOutputs
    cluster_ready: list[pulumi.Resource]
    aws_provider: aws.Provider
    k8s_provider: k8s.Provider
    private_subnet_ids: pulumi.Output[list[str]]
    vpc_id: pulumi.Output[str]

    def opts(self, parent: pulumi.Resource, *, depends_on: list[pulumi.Resource] | None = None,
             cluster_gate: bool = True) -> pulumi.ResourceOptions:
        deps = [*(self.cluster_ready if cluster_gate else []), *(depends_on or [])]
        return pulumi.ResourceOptions(parent=parent, providers={"aws": self.aws_provider, "kubernetes": self.k8s_provider},
                                      depends_on=deps or None)


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
            cfg=cfg, cluster=self.cluster.outputs, cluster_ready=self.cluster.cluster_ready,
            aws_provider=self.aws_provider, k8s_provider=self.cluster.provider,
            private_subnet_ids=self.network.private_subnet_ids, vpc_id=self.network.vpc_id,
        )
        # Add-ons install in parallel after the cluster; each depends only on what it needs.
        # Later blocks may look up earlier ones in self.addons (e.g. a ServiceMonitor needs the
        # monitoring release that installs its CRD).
        self.addons: dict[str, pulumi.ComponentResource] = {}
        # >>> storage + monitoring (components/storage.py, components/monitoring.py)
        # <<< storage + monitoring
        # >>> karpenter + accelerators (components/karpenter.py, components/accelerators.py)
        # <<< karpenter + accelerators
        # >>> training operator + training workload (components/training_operator.py, workloads/training/component.py)
        # <<< training operator + training workload
        # >>> sentiment serving (workloads/sentiment/component.py)
        # <<< sentiment serving
        self.outputs = {
            "clusterName": self.cluster.outputs.name,
            "clusterEndpoint": self.cluster.outputs.endpoint,
            "oidcProviderArn": self.cluster.outputs.oidc_provider_arn,
            "kubeconfig": self.cluster.outputs.kubeconfig,
            "vpcId": self.network.vpc_id,
            "privateSubnetIds": self.network.private_subnet_ids,
        }
        self.register_outputs(self.outputs)
