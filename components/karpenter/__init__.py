"""Karpenter: node autoscaling with cpu, GPU (NVIDIA) and Neuron (inf1) NodePools.

What this component creates (``Karpenter``), in dependency order:

- **IAM**
  - the controller role, assumed through **EKS Pod Identity** (``pods.eks.amazonaws.com``) by the
    ``kube-system/karpenter`` service account, with the six policies of upstream's CloudFormation
    reference (``website/content/en/v1.14/getting-started/getting-started-with-karpenter/
    cloudformation.yaml``): every write is scoped to this cluster's tags
    (``aws:RequestTag``/``aws:ResourceTag`` ``kubernetes.io/cluster/<cluster>: owned``,
    ``eks:eks-cluster-name``, ``karpenter.sh/nodepool``). ``iam:ListInstanceProfiles`` is in it:
    without it the EC2NodeClass finalizer hangs on destroy;
  - the node role (EKS worker, CNI, ECR pull-only, SSM policies) and its EKS access entry of type
    ``EC2_LINUX``, so nodes join without the aws-auth ConfigMap.
- **Interruption handling**: the SQS queue ``<cluster>-karpenter-interruption`` (SSE on, 5 min
  retention, TLS-only policy) and EventBridge rules for spot interruption, rebalance
  recommendation, instance state change, scheduled change (AWS Health) and capacity-reservation
  interruption; the queue name goes to the chart as ``settings.interruptionQueue``.
- **Helm**: ``karpenter-crd`` first (it owns the CRDs, so chart upgrades upgrade them), then
  ``karpenter`` with ``skip_crds`` (never two owners of one CRD: the karpenter-crd/karpenter
  ownership trap), both after ``cluster_ready``; the controller runs on the system node group.
- **EC2NodeClass** per pool: pinned AL2023 alias (resolves to the NVIDIA or Neuron AMI variant
  by instance type), discovery selectors, IMDSv2 only (hop limit 1 unless the pool says
  otherwise), an encrypted gp3 root volume sized for the pool, this platform's tags, and the
  pool's ``capacityReservationSelectorTerms`` when it uses reserved capacity (ODCRs, Capacity Blocks).
- **NodePool** per pool (``karpenter.sh/v1``): requirements (capacity types reserved first; a
  ``capacity-reservation-type`` requirement for Capacity Block pools), taints, limits, disruption;
  each depends on the release (its CRD) and on its EC2NodeClass.
- the chart's ``NodeRepair`` gate with the EKS node monitoring agent (``addons.nodeMonitoringAgent``).
- a **ServiceMonitor** for the controller's metrics, only when the monitoring add-on exists.

Layout: the pure builders, which the unit tests check without Pulumi, are ``iam`` (controller and
node IAM documents, interruption queue policy and event patterns), ``node_pools`` (NodePool and
EC2NodeClass specs, pool labels and taints) and ``values`` (chart values, ServiceMonitor); the
``component`` module holds the ``Karpenter`` ComponentResource that wires them into resources.

The names below are this package's public API: the ones other modules import from
``components.karpenter`` (infra.platform, components.accelerators, the dashboard and accelerator
tests). New code imports from the defining submodule.
"""
from __future__ import annotations

from components.karpenter.component import Karpenter, KarpenterArgs
from components.karpenter.settings import KarpenterSettings
from components.karpenter.node_pools import (
                                             ACCELERATOR_LABEL,
                                             EFA_LABEL,
                                             GPU_TAINT,
                                             NEURON,
                                             NEURON_TAINT,
                                             NVIDIA,
                                             node_pool_spec,
                                             pool_kind,
                                             pool_taints,
)
from components.karpenter.values import (
                                             KARPENTER_METRICS,
                                             karpenter_service_monitor,
                                             service_monitor,
)

__all__ = [
    "ACCELERATOR_LABEL", "EFA_LABEL", "GPU_TAINT", "KARPENTER_METRICS", "Karpenter", "KarpenterArgs", "KarpenterSettings", "NEURON", "NEURON_TAINT",
    "NVIDIA", "karpenter_service_monitor", "node_pool_spec", "pool_kind", "pool_taints", "service_monitor",
]
