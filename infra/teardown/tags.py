"""The pure tag predicates that prove a cloud resource belongs to a cluster (see the package
docstring for the ownership table). The tag keys and names themselves are ``infra.conventions``."""

from __future__ import annotations

from typing import Iterable, Mapping

from infra.conventions import (
    TAG_EBS_CSI_CLUSTER, TAG_EKS_CLUSTER_NAME, TAG_K8S_CLUSTER_PREFIX, TAG_KARPENTER_LT_CLUSTER,
    TAG_KARPENTER_NODECLASS, TAG_KARPENTER_NODEPOOL, TAG_LBC_CLUSTER, TAG_LEGACY_CLUSTER, TAG_PROJECT_CLUSTER,
    TAG_PVC_NAME, TAG_TOPOLOGY_REGION, TAG_VPC_CNI_CLUSTER, interruption_queue_name,
)


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
