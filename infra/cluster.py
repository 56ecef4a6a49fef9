"""The EKS cluster: ``pulumi_eks.Cluster`` wrapped so the rest of the code sees plain outputs.

- authentication mode API with access entries (no aws-auth ConfigMap);
- KMS envelope encryption of Secrets, with key rotation;
- an OIDC provider, a private endpoint (public optional and CIDR-restricted), control-plane logs;
- a small managed on-demand **system node group**, tainted ``CriticalAddonsOnly``, that runs
  Karpenter and the other controllers (IMDSv2, encrypted gp3 root volume);
- the EKS add-ons vpc-cni, kube-proxy, eks-pod-identity-agent (before the nodes), coredns,
  aws-ebs-csi-driver, snapshot-controller, metrics-server and eks-node-monitoring-agent (after them;
  the agent unless ``addons.nodeMonitoringAgent.enabled`` is false), all as ``aws.eks.Addon`` so each
  is visible and versioned;
- one ``kubernetes.Provider`` and the ``cluster_ready`` list that Kubernetes add-ons depend on.
"""
from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks
import pulumi_kubernetes as k8s

from infra.config import PlatformConfig
from infra.context import ClusterOutputs
from infra.conventions import SYSTEM_LABEL, SYSTEM_TAINT, SYSTEM_TOLERATION, assume_role_policy, pod_identity_trust
from infra.versions import EKS_ADDONS

ACCESS_POLICIES = {
    "cluster-admin": "AmazonEKSClusterAdminPolicy",
    "admin": "AmazonEKSAdminPolicy",
    "edit": "AmazonEKSEditPolicy",
    "view": "AmazonEKSViewPolicy",
}
# Addons that need running nodes to become healthy go after the system node group.
ADDONS_BEFORE_NODES = ("vpc-cni", "kube-proxy", "eks-pod-identity-agent")
ADDONS_AFTER_NODES = ("coredns", "aws-ebs-csi-driver", "snapshot-controller", "metrics-server")
# The EKS node monitoring agent (addons.nodeMonitoringAgent.enabled, on by default): a DaemonSet on every
# node (its chart tolerates every taint, so GPU and Neuron nodes too) that turns GPU XID/ECC, Neuron,
# kernel, storage and networking faults into node conditions (AcceleratedHardwareReady ...), which
# Karpenter's NodeRepair gate (components/karpenter/values.py) acts on.
NODE_MONITORING_AGENT = "eks-node-monitoring-agent"


def addons_after_nodes(cfg: PlatformConfig) -> tuple[str, ...]:
    """The EKS add-ons that need running nodes, in creation order (pure)."""
    agent = (NODE_MONITORING_AGENT,) if cfg.addons.node_monitoring_agent.enabled else ()
    return ADDONS_AFTER_NODES + agent


def system_node_settings(cfg: PlatformConfig) -> dict[str, Any]:
    """Pure: the managed node group's spec (tested without Pulumi)."""
    sn = cfg.cluster.system_nodes
    return {
        "capacity_type": "ON_DEMAND",
        "instance_types": list(sn.instance_types),
        "scaling_config": {"desired_size": sn.desired_size, "min_size": sn.min_size, "max_size": sn.max_size},
        "taints": [dict(SYSTEM_TAINT)],
        "labels": {SYSTEM_LABEL[0]: SYSTEM_LABEL[1]},
        "update_config": {"max_unavailable": 1},
    }


def endpoint_from_kubeconfig(kubeconfig: Any) -> str:
    doc = json.loads(kubeconfig) if isinstance(kubeconfig, str) else kubeconfig
    return doc["clusters"][0]["cluster"]["server"]


class EksCluster(pulumi.ComponentResource):
    """See the module docstring. ``outputs`` holds plain outputs; ``cluster_ready`` the gate."""

    def __init__(self, name: str, cfg: PlatformConfig, *, vpc_id: pulumi.Input[str],
                 private_subnet_ids: pulumi.Input[list[str]], public_subnet_ids: pulumi.Input[list[str]],
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("eks-ml-platform:cluster:EksCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, protect=cfg.protect)
        cluster_name = cfg.cluster_name
        self._partition = aws.get_partition_output(opts=pulumi.InvokeOptions(parent=self)).partition
        key = self._secrets_key(name, cfg, child)
        self.eks = self._control_plane(name, cfg, key, vpc_id, private_subnet_ids, public_subnet_ids, child)
        kubeconfig = pulumi.Output.secret(self.eks.kubeconfig_json)
        self._access_entries(name, cfg, child)

        # ---- addons that nodes need to become Ready, the system node group, then the other addons
        pre_addons = [self._addon(name, n, cluster_name, child, [self.eks]) for n in ADDONS_BEFORE_NODES]
        node_role = self._system_node_role(name, cluster_name, child)
        self.system_node_group = self._system_node_group(name, cfg, node_role, private_subnet_ids, pre_addons, child)
        post_addons = [self._addon(name, n, cluster_name, child, [self.system_node_group])
                       for n in addons_after_nodes(cfg)]

        self.provider = k8s.Provider(
            f"{name}-k8s", kubeconfig=kubeconfig, enable_server_side_apply=True,
            delete_unreachable=cfg.ephemeral, opts=pulumi.ResourceOptions(parent=self),
        )
        self.cluster_ready: list[pulumi.Resource] = [self.eks, self.system_node_group, *pre_addons, *post_addons]
        self.outputs = ClusterOutputs(
            name=self.eks.kubeconfig_json.apply(lambda _: cluster_name),  # resolves once the cluster exists
            endpoint=self.eks.kubeconfig_json.apply(endpoint_from_kubeconfig),
            oidc_provider_arn=self.eks.oidc_provider_arn,
            oidc_issuer=self.eks.oidc_issuer,
            node_role_arn=node_role.arn,
            node_role_name=node_role.name,
            cluster_security_group_id=self.eks.cluster_security_group_id,
            node_security_group_id=self.eks.node_security_group_id,
            kubeconfig=kubeconfig,
        )
        self.register_outputs({
            "name": self.outputs.name, "endpoint": self.outputs.endpoint, "oidc_provider_arn": self.outputs.oidc_provider_arn,
            "oidc_issuer": self.outputs.oidc_issuer, "node_role_arn": node_role.arn,
            "cluster_security_group_id": self.outputs.cluster_security_group_id, "kubeconfig": kubeconfig,
        })

    def _secrets_key(self, name: str, cfg: PlatformConfig, child: pulumi.ResourceOptions) -> aws.kms.Key:
        """The KMS key that envelope-encrypts the cluster's Secrets (rotated yearly)."""
        cluster_name = cfg.cluster_name
        key = aws.kms.Key(
            f"{name}-secrets-key", description=f"EKS secrets envelope encryption for {cluster_name}",
            enable_key_rotation=True, deletion_window_in_days=30 if cfg.environment == "prod" else 7, opts=child,
        )
        aws.kms.Alias(f"{name}-secrets-key", name=f"alias/{cluster_name}-eks-secrets", target_key_id=key.key_id, opts=child)
        return key

    def _control_plane(self, name: str, cfg: PlatformConfig, key: aws.kms.Key, vpc_id: pulumi.Input[str],
                       private_subnet_ids: pulumi.Input[list[str]], public_subnet_ids: pulumi.Input[list[str]],
                       child: pulumi.ResourceOptions) -> eks.Cluster:
        cluster_name, ep = cfg.cluster_name, cfg.cluster.endpoint
        return eks.Cluster(
            f"{name}-eks",
            name=cluster_name,
            version=cfg.cluster.version,
            vpc_id=vpc_id,
            private_subnet_ids=private_subnet_ids,
            public_subnet_ids=public_subnet_ids,
            endpoint_private_access=ep.private_access,
            endpoint_public_access=ep.public_access,
            public_access_cidrs=list(ep.public_access_cidrs) if ep.public_access else None,
            authentication_mode=eks.AuthenticationMode.API,
            encryption_config_key_arn=key.arn,
            create_oidc_provider=True,
            enabled_cluster_log_types=list(cfg.cluster.logging),
            skip_default_node_group=True,
            node_associate_public_ip_address=False,
            bootstrap_self_managed_addons=False,
            use_default_vpc_cni=True,  # pulumi-eks does not manage the CNI; the vpc-cni Addon below does
            coredns_addon_options={"enabled": False},
            kube_proxy_addon_options={"enabled": False},
            deletion_protection=cfg.deletion_protection,
            tags={"Name": cluster_name},
            opts=child,
        )

    def _access_entries(self, name: str, cfg: PlatformConfig, child: pulumi.ResourceOptions) -> None:
        """An access entry and a cluster-scoped policy association for each admin principal."""
        cluster_name = cfg.cluster_name
        for i, admin in enumerate(cfg.cluster.admins):
            entry = aws.eks.AccessEntry(
                f"{name}-admin-{i}", cluster_name=cluster_name, principal_arn=admin.principal_arn, type="STANDARD",
                opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[self.eks])),
            )
            aws.eks.AccessPolicyAssociation(
                f"{name}-admin-{i}", cluster_name=cluster_name, principal_arn=admin.principal_arn,
                policy_arn=self._partition.apply(
                    lambda p, pol=ACCESS_POLICIES[admin.policy]: f"arn:{p}:eks::aws:cluster-access-policy/{pol}"),
                access_scope={"type": "cluster"},
                opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[entry])),
            )

    def _system_node_role(self, name: str, cluster_name: str, child: pulumi.ResourceOptions) -> aws.iam.Role:
        node_role = aws.iam.Role(
            f"{name}-system-node-role", assume_role_policy=assume_role_policy("ec2.amazonaws.com"),
            description=f"EKS system nodes of {cluster_name}", opts=child,
        )
        for policy in ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryPullOnly",
                       "AmazonSSMManagedInstanceCore"):
            aws.iam.RolePolicyAttachment(
                f"{name}-system-node-{policy}", role=node_role.name,
                policy_arn=self._partition.apply(lambda p, pol=policy: f"arn:{p}:iam::aws:policy/{pol}"), opts=child,
            )
        return node_role

    def _system_node_group(self, name: str, cfg: PlatformConfig, node_role: aws.iam.Role,
                           private_subnet_ids: pulumi.Input[list[str]], pre_addons: list[pulumi.Resource],
                           child: pulumi.ResourceOptions) -> aws.eks.NodeGroup:
        """The managed on-demand system node group (IMDSv2 only, encrypted gp3 root), tainted CriticalAddonsOnly."""
        cluster_name = cfg.cluster_name
        lt = aws.ec2.LaunchTemplate(
            f"{name}-system-lt",
            description=f"{cluster_name} system nodes: IMDSv2 only, encrypted gp3 root",
            metadata_options={"http_endpoint": "enabled", "http_tokens": "required", "http_put_response_hop_limit": 1},
            block_device_mappings=[{"device_name": "/dev/xvda", "ebs": {
                "volume_size": cfg.cluster.system_nodes.disk_size_gib, "volume_type": "gp3", "encrypted": "true",
                "delete_on_termination": "true"}}],
            tag_specifications=[{"resource_type": "instance", "tags": {"Name": f"{cluster_name}-system"}},
                                {"resource_type": "volume", "tags": {"Name": f"{cluster_name}-system"}}],
            opts=child,
        )
        return aws.eks.NodeGroup(
            f"{name}-system",
            cluster_name=cluster_name,
            node_group_name_prefix=f"{cluster_name}-system-",
            node_role_arn=node_role.arn,
            subnet_ids=private_subnet_ids,
            ami_type="AL2023_x86_64_STANDARD",
            launch_template={"id": lt.id, "version": lt.latest_version.apply(str)},
            **system_node_settings(cfg),
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(
                depends_on=[self.eks, *pre_addons], ignore_changes=["scalingConfig.desiredSize"])),
        )

    def _addon(self, name: str, addon: str, cluster_name: str, child: pulumi.ResourceOptions,
               depends_on: list[pulumi.Resource]) -> aws.eks.Addon:
        extra: dict[str, Any] = {}
        if addon == "vpc-cni":
            # Enforce Kubernetes NetworkPolicies (the workloads and exporters ship them) with the VPC CNI's agent.
            extra["configuration_values"] = json.dumps({"enableNetworkPolicy": "true"}, sort_keys=True)
        if addon == "coredns":
            # CoreDNS is a critical controller: let it onto the tainted system nodes.
            extra["configuration_values"] = json.dumps({"tolerations": [SYSTEM_TOLERATION], "replicaCount": 2}, sort_keys=True)
        if addon == "metrics-server":
            # The EKS community add-on: resource metrics for the serving HPA; it runs on the system nodes.
            extra["configuration_values"] = json.dumps({"tolerations": [SYSTEM_TOLERATION]}, sort_keys=True)
        if addon == "snapshot-controller":
            # VolumeSnapshot CRDs + controller, so Ceph RBD/CephFS VolumeSnapshotClasses can back up datasets and models.
            extra["configuration_values"] = json.dumps({"tolerations": [SYSTEM_TOLERATION]}, sort_keys=True)
        if addon == "aws-ebs-csi-driver":
            # k8sTagClusterId tags every PVC volume with the cluster, so teardown's sweep can find orphans.
            extra["configuration_values"] = json.dumps(
                {"controller": {"tolerations": [SYSTEM_TOLERATION], "k8sTagClusterId": cluster_name}}, sort_keys=True)
            extra["pod_identity_associations"] = [{"role_arn": self._ebs_csi_role(name, child).arn,
                                                   "service_account": "ebs-csi-controller-sa"}]
        return aws.eks.Addon(
            f"{name}-addon-{addon}", cluster_name=cluster_name, addon_name=addon, addon_version=EKS_ADDONS.get(addon),
            resolve_conflicts_on_create="OVERWRITE", resolve_conflicts_on_update="PRESERVE",
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=depends_on)), **extra,
        )

    def _ebs_csi_role(self, name: str, child: pulumi.ResourceOptions) -> aws.iam.Role:
        role = aws.iam.Role(f"{name}-ebs-csi-role", assume_role_policy=pod_identity_trust(),
                            description="EBS CSI controller (EKS Pod Identity)", opts=child)
        partition = aws.get_partition_output(opts=pulumi.InvokeOptions(parent=self)).partition
        aws.iam.RolePolicyAttachment(
            f"{name}-ebs-csi-policy", role=role.name,
            policy_arn=partition.apply(lambda p: f"arn:{p}:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"), opts=child,
        )
        return role
