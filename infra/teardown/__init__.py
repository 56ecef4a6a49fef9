"""Safe teardown of an ephemeral (dev) stack, and the sweep of what Pulumi does not own.

``python -m infra teardown --stack dev --region R [--dry-run] [--yes] [--sweep-only]``

Order of a full run (see :func:`run_teardown`). With Rook-Ceph enabled in the stack's config
(``addons.rookCeph.enabled``) and present in its state:

1. **Release Ceph's data** (``components/storage.py`` ``teardown_steps``): set
   ``storage.destroyData: true`` in the stack's config through the Automation API
   (``Stack.set_config("eks-ml-platform:storage.destroyData", ConfigValue("true"), path=True)``,
   i.e. ``pulumi config set --path``, which stores a boolean) and run a ``pulumi up`` targeted at
   the Rook-Ceph component's resources: the CephCluster gets its ``cleanupPolicy``
   (``yes-really-destroy-data``) and the block pool Rook's force-deletion annotation. Nothing is
   destroyed if this fails.
2. Targeted ``pulumi destroy`` of the workloads (the components ``eks-ml-platform:workloads:*``,
   ``:sentiment:*`` and ``:training:*`` and their children) and of the Rook-Ceph component with
   its children, with ``target_dependents`` (the monitoring release, whose volumes are on
   ``ceph-block``, comes along). Pulumi deletes them in dependency order: consumers and their
   PVCs (the ``ml-workloads`` namespace, and with it every PVC Pulumi does not own), then the
   StorageClasses, pools, CephCluster, CSI drivers and operator, while the Ceph daemons still
   run on their Karpenter nodes.
3. Targeted ``pulumi destroy`` of every Karpenter ``NodePool``: Karpenter is still running, so it
   drains and terminates its nodes. Only now: Ceph's daemons run on those nodes with
   ``karpenter.sh/do-not-disrupt`` and Rook's PodDisruptionBudgets, so a NodePool deleted before
   the CephCluster either never drains or takes the mons and OSDs away while Rook still needs
   them to delete the pools.
4. Wait until no Karpenter instance of this cluster is left running (bounded by a timeout).
5. ``pulumi destroy`` of the whole stack. If it fails (an orphan blocks the VPC, a security group
   or an IAM role), run the sweep and try once more.
6. :func:`sweep`: delete, by this cluster's tags only, what Karpenter and the controllers left
   behind outside Pulumi's state.

After a successful destroy ``storage.destroyData`` is removed from the stack's config again (it
must never stay set: Rook stops reconciling a cluster that carries a cleanup policy). Without
Rook-Ceph, steps 1 and 2 are skipped (and said so) and the workloads go together with the
NodePools: (1) targeted destroy of workloads and NodePools, (2) wait for the nodes, (3) destroy,
(4) sweep. ``--dry-run`` prints every step and changes nothing.

Ownership: what proves that a cloud resource belongs to cluster ``C``
---------------------------------------------------------------------
The sweep never deletes by name pattern or by VPC alone; every resource needs a tag proof. A
resource that *also* carries another cluster's identity (``eks:eks-cluster-name=<other>``,
``kubernetes.io/cluster/<other>``, ``KubernetesCluster=<other>``, ``cluster.k8s.amazonaws.com/name
=<other>``) is never touched, whatever else it carries.

Cluster identity (``CLUSTER_IDENTITY``): ``eks:eks-cluster-name = C`` or
``kubernetes.io/cluster/C = owned``. ``kubernetes.io/cluster/C = shared`` means *not* owned.
``karpenter.sh/discovery = C`` is only a selector (it sits on Pulumi-owned, possibly shared
subnets and security groups) and is never a proof of ownership.

========================  ================================================================
EC2 instance              tag key ``karpenter.sh/nodepool`` present AND cluster identity
                          (Karpenter sets both itself: ``eks:eks-cluster-name``,
                          ``kubernetes.io/cluster/C=owned``, ``karpenter.sh/nodepool``),
                          state pending/running/stopping/stopped.
Launch template           ``karpenter.k8s.aws/cluster = C`` (set by Karpenter).
IAM instance profile      named ``C_<hash>`` AND ``karpenter.k8s.aws/ec2nodeclass`` present AND
                          cluster identity AND ``topology.kubernetes.io/region = <session
                          region>`` (Karpenter sets all of them; IAM is global, hence the
                          region check). Its role (Pulumi's) is detached, never deleted.
Network interface         status ``available`` (or attached, without delete-on-termination,
                          to an instance this sweep terminates) AND
                          (``cluster.k8s.amazonaws.com/name = C`` [VPC CNI] or cluster identity).
EBS volume                created for a PV: ``kubernetes.io/created-for/pvc/name`` present or
                          ``ebs.csi.aws.com/cluster = true`` AND (``kubernetes.io/cluster/C =
                          owned`` or ``KubernetesCluster = C``). The EBS CSI driver sets the
                          latter two only when started with ``k8sTagClusterId = C``, which the
                          storage add-on must set. Volume state ``available`` (or attached to an
                          instance this sweep terminates). Snapshots are never deleted.
ELBv2 load balancer,      ``elbv2.k8s.aws/cluster = C`` (set by the AWS Load Balancer Controller).
target group
Security group            ``elbv2.k8s.aws/cluster = C`` (the LBC's managed frontend/backend
                          groups). Rules in other groups that reference them are revoked first
                          (the rule ids ``sgr-...`` are part of the returned list).
SQS queue                 named exactly :func:`interruption_queue_name` (``C-karpenter-
                          interruption``), or tagged with cluster identity or with the
                          project tag ``eks-ml-platform/cluster = C``.
EventBridge rule          has the interruption queue above as a target.
========================  ================================================================

``sweep(..., dry_run=True)`` computes the same plan as a real run and deletes nothing: both
return the plan's ids in the order a real run deletes them.

Modules: :mod:`.tags` (conventions and the tag predicates), :mod:`.plan` (the read-only sweep
plan), :mod:`.execute` (the sweep's deletions and the node wait), :mod:`.stack` (Automation API
and destroy targets), :mod:`.guards` (which stacks may go), :mod:`.steps` (the orchestration),
:mod:`.cli` (argparse and ``main``). The package's public API is :func:`main` (``python -m infra
teardown``); everything else is imported from the module that defines it.
"""

from __future__ import annotations

from .cli import main

__all__ = ["main"]
