"""The names every part of the platform agrees on, defined once.

The components create resources with these names, tags and labels; teardown finds what a cluster
left behind by them; the policy rules and ``check`` expect them. This module is a leaf: it imports
nothing from the repository and no third-party package, so the policy pack, the tooling and the
components can all import it.
"""
from __future__ import annotations

import json
import re
from typing import Any

# ---------------------------------------------------------------- namespaces, priority classes, storage
#: The shared workload namespace: a PVC cannot be mounted across namespaces, and serving reads the
#: trainer's ``models`` volume.
WORKLOADS_NAMESPACE = "ml-workloads"
#: PriorityClasses (components/priority.py): inference outranks batch training.
SERVING_PRIORITY_CLASS = "ml-serving"
TRAINING_PRIORITY_CLASS = "ml-training"
#: The CephFS (RWX) and RBD (RWO) StorageClasses of the storage add-on.
FILE_STORAGE_CLASS = "ceph-filesystem"
BLOCK_STORAGE_CLASS = "ceph-block"

# ---------------------------------------------------------------- system nodes: label, taint, placement
#: The managed system node group's label and taint; the controllers run there.
SYSTEM_LABEL = ("eks-ml-platform/node-role", "system")
SYSTEM_TAINT = {"key": "CriticalAddonsOnly", "value": "true", "effect": "NO_SCHEDULE"}
SYSTEM_TOLERATION = {"key": "CriticalAddonsOnly", "operator": "Exists", "effect": "NoSchedule"}
#: For the charts whose pods take only a nodeSelector (with ``SYSTEM_TOLERATION``).
SYSTEM_NODE_SELECTOR = {SYSTEM_LABEL[0]: SYSTEM_LABEL[1]}


def required_node_affinity(key: str, values: list[str]) -> dict[str, Any]:
    """``{"nodeAffinity": ...}``: schedule only on nodes whose label ``key`` is one of ``values``."""
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": key, "operator": "In", "values": list(values)}]}]}}}


def system_placement() -> dict[str, Any]:
    """On the system node group, through its taint: ``{"affinity": ..., "tolerations": [...]}``.

    The one shape used everywhere (a pod spec, a chart's values, Rook's ``placement`` once its
    ``affinity`` is flattened): required node affinity to the system label, not a nodeSelector, so a
    chart or a CR can add terms of its own.
    """
    return {"affinity": required_node_affinity(SYSTEM_LABEL[0], [SYSTEM_LABEL[1]]),
            "tolerations": [dict(SYSTEM_TOLERATION)]}


# ---------------------------------------------------------------- labels and annotations
def std_labels(name: str) -> dict[str, str]:
    """The recommended app.kubernetes.io labels on every object the platform creates itself."""
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "eks-ml-platform",
            "app.kubernetes.io/managed-by": "pulumi"}



def checkov_annotations(skips: dict[str, str]) -> dict[str, str]:
    """``checkov.io/skipN: CKV_ID=reason`` for each skip (checkov reads them from the object's metadata)."""
    return {f"checkov.io/skip{i}": f"{cid}={reason}" for i, (cid, reason) in enumerate(sorted(skips.items()), 1)}


# ---------------------------------------------------------------- IAM trust
def assume_role_policy(service: str) -> str:
    """A role trust policy for an AWS service principal (with session tags, which Pod Identity needs)."""
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": service}, "Action": ["sts:AssumeRole", "sts:TagSession"]}
    ]}, sort_keys=True)


def pod_identity_trust() -> str:
    """The trust policy of a role that an EKS Pod Identity association hands to a service account."""
    return assume_role_policy("pods.eks.amazonaws.com")


# ---------------------------------------------------------------- the Karpenter interruption queue
INTERRUPTION_QUEUE_SUFFIX = "-karpenter-interruption"


def interruption_queue_name(cluster_name: str) -> str:
    """The Karpenter interruption queue: ``<cluster>-karpenter-interruption``.

    The Karpenter component names its SQS queue with this function and passes the same name to the
    chart (``settings.interruptionQueue``); teardown finds a left-over queue by it.
    """
    return f"{cluster_name}{INTERRUPTION_QUEUE_SUFFIX}"


# ---------------------------------------------------------------- tag keys
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
#: The project's own tags (``PlatformConfig.common_tags``) on every resource Pulumi creates; teardown
#: trusts them, so a stack may not set a tag under any of OWNERSHIP_TAG_PREFIXES.
TAG_PROJECT_CLUSTER = "eks-ml-platform/cluster"
TAG_PROJECT_STACK = "eks-ml-platform/stack"
TAG_PROJECT_ENVIRONMENT = "eks-ml-platform/environment"
TAG_PROJECT_EPHEMERAL = "eks-ml-platform/ephemeral"
OWNERSHIP_TAG_PREFIXES = ("eks-ml-platform/", "karpenter.sh/", "karpenter.k8s.aws/", TAG_K8S_CLUSTER_PREFIX)

# ---------------------------------------------------------------- Pulumi's wire format
#: The key and value that mark a secret in Pulumi's serialized properties (sdk/go/common/resource/sig).
PULUMI_SIG_KEY = "4dabf18193072939515e22adb298388d"
PULUMI_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"

# ---------------------------------------------------------------- Pulumi type tokens and config keys
#: The Karpenter NodePools, destroyed before the rest of the stack.
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
