"""Conventions shared with the components (queue name, tag keys, Pulumi type tokens, the
destroyData config key) and the pure tag predicates that prove a cloud resource belongs to a
cluster (see the package docstring for the ownership table)."""

from __future__ import annotations

import re
from typing import Iterable, Mapping


# --------------------------------------------------------------------------------------------
# Conventions shared with the components (the Karpenter component must use the same).
# --------------------------------------------------------------------------------------------

INTERRUPTION_QUEUE_SUFFIX = "-karpenter-interruption"


def interruption_queue_name(cluster_name: str) -> str:
    """The Karpenter interruption queue's name: ``<cluster>-karpenter-interruption``.

    Defined once here; ``components/karpenter.py`` names its SQS queue with this function and
    passes the same name to the chart (``settings.interruptionQueue``).
    """
    return f"{cluster_name}{INTERRUPTION_QUEUE_SUFFIX}"


TAG_EKS_CLUSTER_NAME = "eks:eks-cluster-name"
TAG_K8S_CLUSTER_PREFIX = "kubernetes.io/cluster/"
TAG_KARPENTER_NODEPOOL = "karpenter.sh/nodepool"
TAG_KARPENTER_LT_CLUSTER = "karpenter.k8s.aws/cluster"
TAG_KARPENTER_NODECLASS = "karpenter.k8s.aws/ec2nodeclass"
TAG_TOPOLOGY_REGION = "topology.kubernetes.io/region"
TAG_VPC_CNI_CLUSTER = "cluster.k8s.amazonaws.com/name"
TAG_VPC_CNI_NODE = "node.k8s.amazonaws.com/instance_id"
TAG_EBS_CSI_CLUSTER = "ebs.csi.aws.com/cluster"
TAG_PVC_NAME = "kubernetes.io/created-for/pvc/name"
TAG_LEGACY_CLUSTER = "KubernetesCluster"
TAG_LBC_CLUSTER = "elbv2.k8s.aws/cluster"
#: The project's own tag (``PlatformConfig.common_tags``) on every resource Pulumi creates.
TAG_PROJECT_CLUSTER = "eks-ml-platform/cluster"

#: Pulumi type tokens destroyed before the rest of the stack.
NODEPOOL_TYPE_RE = re.compile(r"^kubernetes:karpenter\.sh/v[0-9a-z]+:NodePool$")
#: The workload components: WorkloadStorage (workloads/shared.py), SentimentServing
#: (workloads/sentiment/component.py), TrainingWorkload (workloads/training/component.py).
WORKLOAD_TYPE_PREFIXES = ("eks-ml-platform:workloads:", "eks-ml-platform:sentiment:",
                          "eks-ml-platform:training:")
WORKLOAD_TYPE_PREFIX = WORKLOAD_TYPE_PREFIXES[0]
#: The Rook-Ceph component (components/storage.py).
STORAGE_TYPE = "eks-ml-platform:storage:RookCeph"
#: The config key (a path into the structured ``storage`` key) that sets the CephCluster's
#: cleanupPolicy (components/storage.py ``cleanup_policy``).
DESTROY_DATA_KEY = "eks-ml-platform:storage.destroyData"


# --------------------------------------------------------------------------------------------
# Tag predicates (pure)
# --------------------------------------------------------------------------------------------


def tag_map(tags: Iterable[Mapping[str, str]] | Mapping[str, str] | None) -> dict[str, str]:
    """``[{"Key": k, "Value": v}]`` (EC2/ELB/IAM shape) or a plain dict -> ``{k: v}``."""
    if not tags:
        return {}
    if isinstance(tags, Mapping):
        return {str(k): str(v) for k, v in tags.items()}
    return {t["Key"]: t.get("Value", "") for t in tags}


def claims_other_cluster(tags: Mapping[str, str], cluster: str) -> bool:
    """True when the tags name a cluster other than ``cluster`` anywhere."""
    for key, value in tags.items():
        if key.startswith(TAG_K8S_CLUSTER_PREFIX) and key[len(TAG_K8S_CLUSTER_PREFIX):] != cluster:
            return True
    for key in (TAG_EKS_CLUSTER_NAME, TAG_LEGACY_CLUSTER, TAG_VPC_CNI_CLUSTER, TAG_LBC_CLUSTER,
                TAG_KARPENTER_LT_CLUSTER, TAG_PROJECT_CLUSTER):
        if key in tags and tags[key] != cluster:
            return True
    return False


def has_cluster_identity(tags: Mapping[str, str], cluster: str) -> bool:
    """``eks:eks-cluster-name=C`` or ``kubernetes.io/cluster/C=owned``, and no other cluster."""
    if claims_other_cluster(tags, cluster):
        return False
    return (tags.get(TAG_EKS_CLUSTER_NAME) == cluster
            or tags.get(TAG_K8S_CLUSTER_PREFIX + cluster) == "owned")


def is_karpenter_instance(tags: Mapping[str, str], cluster: str) -> bool:
    return TAG_KARPENTER_NODEPOOL in tags and has_cluster_identity(tags, cluster)


def is_karpenter_launch_template(tags: Mapping[str, str], cluster: str) -> bool:
    return tags.get(TAG_KARPENTER_LT_CLUSTER) == cluster and not claims_other_cluster(tags, cluster)


def is_karpenter_instance_profile(tags: Mapping[str, str], cluster: str, region: str) -> bool:
    return (TAG_KARPENTER_NODECLASS in tags and has_cluster_identity(tags, cluster)
            and tags.get(TAG_TOPOLOGY_REGION) == region)


def is_cluster_eni(tags: Mapping[str, str], cluster: str) -> bool:
    if claims_other_cluster(tags, cluster):
        return False
    return tags.get(TAG_VPC_CNI_CLUSTER) == cluster or has_cluster_identity(tags, cluster)


def is_cluster_pv_volume(tags: Mapping[str, str], cluster: str) -> bool:
    if claims_other_cluster(tags, cluster):
        return False
    made_for_pv = TAG_PVC_NAME in tags or tags.get(TAG_EBS_CSI_CLUSTER) == "true"
    owned = (tags.get(TAG_K8S_CLUSTER_PREFIX + cluster) == "owned"
             or tags.get(TAG_LEGACY_CLUSTER) == cluster)
    return made_for_pv and owned


def is_lbc_resource(tags: Mapping[str, str], cluster: str) -> bool:
    return tags.get(TAG_LBC_CLUSTER) == cluster and not claims_other_cluster(tags, cluster)


def is_cluster_queue(name: str, tags: Mapping[str, str], cluster: str) -> bool:
    if claims_other_cluster(tags, cluster):
        return False
    return (name == interruption_queue_name(cluster) or has_cluster_identity(tags, cluster)
            or tags.get(TAG_PROJECT_CLUSTER) == cluster)
