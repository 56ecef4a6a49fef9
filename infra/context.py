"""What the add-ons receive from the program: the cluster's outputs and the shared context.

A leaf of the program: it imports Pulumi only, never the config, a component or the tooling, so
every component can import it without a cycle. It carries no config: each component receives its
own settings slice (``<Component>Settings.from_config``) beside this context.
"""
from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s


@dataclass(frozen=True)
class ClusterOutputs:
    name: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    oidc_issuer: pulumi.Output[str]
    node_role_arn: pulumi.Output[str]
    node_role_name: pulumi.Output[str]
    cluster_security_group_id: pulumi.Output[str]
    node_security_group_id: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]


@dataclass(frozen=True)
class PlatformContext:
    """What every add-on component receives besides its settings: cluster outputs, providers, the readiness gate."""

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
