"""The NodePool and EC2NodeClass specs Karpenter gets for each configured pool (pure).

- **EC2NodeClass**: pinned AL2023 alias (resolves to the NVIDIA or Neuron AMI variant by instance
  type), discovery selectors, IMDSv2 only (hop limit 1 unless the pool says otherwise), an
  encrypted gp3 root volume sized for the pool, this platform's tags.
- **NodePool** (``karpenter.sh/v1``): requirements, taints, limits, disruption.

components/accelerators.py reads the pool kinds, labels and taints from here, so the device
plugins select exactly the nodes these pools launch.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

from components.karpenter.settings import KarpenterSettings
from infra.config import NodePoolConfig
from infra.conventions import (
    TAG_EKS_CLUSTER_NAME,
    TAG_K8S_CLUSTER_PREFIX,
    TAG_KARPENTER_NODECLASS,
    TAG_KARPENTER_NODEPOOL,
    TAG_PROJECT_CLUSTER,
)
from infra.versions import AMI_ALIAS

POOL_LABEL = "eks-ml-platform/pool"  # nodeSelector: {"eks-ml-platform/pool": "inf1"}
RESERVATION_TYPE_LABEL = "karpenter.k8s.aws/capacity-reservation-type"  # default | capacity-block (reserved nodes)
ACCELERATOR_LABEL = "eks-ml-platform/accelerator"  # "nvidia" or "neuron" on accelerator pools
EFA_LABEL = "eks-ml-platform/efa"  # "true" on pools with efa (the EFA device plugin's nodeSelector)
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
NVIDIA = "nvidia"
NEURON = "neuron"
GPU_TAINT = {"key": "nvidia.com/gpu", "effect": "NoSchedule"}
NEURON_TAINT = {"key": "aws.amazon.com/neuron", "effect": "NoSchedule"}
GPU_RESOURCE = "nvidia.com/gpu"
NEURON_RESOURCE = "aws.amazon.com/neuron"
DISCOVERY_TAG = "karpenter.sh/discovery"
CLUSTER_TAG = TAG_PROJECT_CLUSTER
ROOT_DEVICE = "/dev/xvda"  # AL2023
# EC2NodeClass spec.tags may not set these (Karpenter sets them itself; the CRD rejects them).
RESTRICTED_TAG_PREFIXES = (TAG_K8S_CLUSTER_PREFIX.rstrip("/"), TAG_EKS_CLUSTER_NAME, TAG_KARPENTER_NODEPOOL,
                           "karpenter.sh/nodeclaim", TAG_KARPENTER_NODECLASS)


def pool_kind(pool: NodePoolConfig) -> Optional[str]:
    """``nvidia``, ``neuron`` or None: which device stack the pool's nodes carry."""
    if pool.accelerator == "nvidia":
        return NVIDIA
    if pool.neuron:
        return NEURON
    return None


def pool_labels(pool: NodePoolConfig) -> dict[str, str]:
    labels = dict(pool.labels)
    labels[POOL_LABEL] = pool.name
    kind = pool_kind(pool)
    if kind:
        labels[ACCELERATOR_LABEL] = kind
    if pool.efa:
        labels[EFA_LABEL] = "true"
    return labels


def pool_taints(pool: NodePoolConfig) -> list[dict[str, str]]:
    kind = pool_kind(pool)
    if kind == NVIDIA:
        return [dict(GPU_TAINT)]
    if kind == NEURON:
        return [dict(NEURON_TAINT)]
    return []


def pool_limits(pool: NodePoolConfig) -> dict[str, Any]:
    limits: dict[str, Any] = {"cpu": str(pool.limits.cpu), "memory": pool.limits.memory}
    if pool.limits.gpu is not None:
        limits[GPU_RESOURCE] = str(pool.limits.gpu)
    if pool.limits.neuron is not None:
        limits[NEURON_RESOURCE] = str(pool.limits.neuron)
    return limits


def pool_requirements(pool: NodePoolConfig) -> list[dict[str, Any]]:
    reqs = [
        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
        {"key": "kubernetes.io/arch", "operator": "In", "values": list(pool.architectures)},
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": pool.capacity_types_by_priority},
        {"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": list(pool.instance_families)},
    ]
    if pool.instance_sizes:
        reqs.append({"key": "karpenter.k8s.aws/instance-size", "operator": "In", "values": list(pool.instance_sizes)})
    if pool.capacity_reservation_type:
        reqs.append({"key": RESERVATION_TYPE_LABEL, "operator": "In", "values": [pool.capacity_reservation_type]})
    if pool.efa:  # only the sizes with EFA interfaces (trn1.2xlarge, p4d's smaller kin have none)
        reqs.append({"key": INSTANCE_TYPE_LABEL, "operator": "In", "values": pool.efa_instance_types})
    return reqs


def pool_budgets(pool: NodePoolConfig) -> list[dict[str, Any]]:
    """The NodePool's disruption budgets (a schedule always comes with its duration)."""
    budgets = []
    for b in pool.budgets:
        budget: dict[str, Any] = {"nodes": b.nodes}
        if b.reasons:
            budget["reasons"] = list(b.reasons)
        if b.schedule is not None:
            budget.update(schedule=b.schedule, duration=b.duration)
        budgets.append(budget)
    return budgets


def node_pool_spec(pool: NodePoolConfig, extra_labels: Optional[Mapping[str, str]] = None) -> dict[str, Any]:
    """``spec`` of the karpenter.sh/v1 NodePool for one configured pool; ``extra_labels`` go on its nodes too
    (the NVIDIA device plugin's config label on the serving pool with ``serving.gpuSharing``)."""
    template_spec: dict[str, Any] = {
        "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": pool.name},
        "requirements": pool_requirements(pool),
        "expireAfter": pool.expire_after,
    }
    taints = pool_taints(pool)
    if taints:
        template_spec["taints"] = taints
    spec: dict[str, Any] = {
        "template": {"metadata": {"labels": {**pool_labels(pool), **(extra_labels or {})}}, "spec": template_spec},
        "limits": pool_limits(pool),
        "disruption": {"consolidationPolicy": pool.consolidation_policy, "consolidateAfter": pool.consolidate_after,
                       "budgets": pool_budgets(pool)},
    }
    if pool.weight is not None:
        spec["weight"] = pool.weight
    return spec


def node_class_tags(s: KarpenterSettings, pool: NodePoolConfig) -> dict[str, str]:
    """Tags on everything Karpenter launches for the pool, besides Karpenter's own."""
    tags = {k: v for k, v in s.common_tags.items() if not k.startswith(RESTRICTED_TAG_PREFIXES)}
    tags[CLUSTER_TAG] = s.cluster_name
    tags[POOL_LABEL] = pool.name
    return tags


def security_group_terms(cluster: str) -> list[dict[str, Any]]:
    """Security groups for Karpenter nodes (ORed terms).

    - anything tagged ``karpenter.sh/discovery: <cluster>`` (the upstream convention; tag an extra
      group with it to add it to every node);
    - the cluster security group EKS itself creates (tagged ``aws:eks:cluster-name`` by EKS, and
      re-tagged on every cluster update): the one the control plane and the managed system node
      group use, so Karpenter nodes reach both exactly as the system nodes do.
    """
    return [{"tags": {DISCOVERY_TAG: cluster}}, {"tags": {"aws:eks:cluster-name": cluster}}]


def node_class_spec(s: KarpenterSettings, pool: NodePoolConfig, *, role: Any) -> dict[str, Any]:
    """``spec`` of the karpenter.k8s.aws/v1 EC2NodeClass for one pool.

    A pool with reservations selects them (``capacityReservationSelectorTerms``, ORed terms).
    """
    spec = {
        "role": role,
        "amiSelectorTerms": [{"alias": pool.ami_alias or AMI_ALIAS}],
        "subnetSelectorTerms": [{"tags": {DISCOVERY_TAG: s.cluster_name}}],
        "securityGroupSelectorTerms": security_group_terms(s.cluster_name),
        "metadataOptions": {"httpEndpoint": "enabled", "httpProtocolIPv6": "disabled",
                            "httpPutResponseHopLimit": pool.imds_hop_limit, "httpTokens": "required"},
        "blockDeviceMappings": [{
            "deviceName": ROOT_DEVICE, "rootVolume": True,
            "ebs": {"volumeSize": f"{pool.root_volume}Gi", "volumeType": "gp3", "encrypted": True,
                    "deleteOnTermination": True},
        }],
        "tags": node_class_tags(s, pool),
    }
    if pool.capacity_reservations:
        spec["capacityReservationSelectorTerms"] = [r.term() for r in pool.capacity_reservations]
    return spec
