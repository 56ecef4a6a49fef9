"""The Kueue objects (``kueue.x-k8s.io/v1beta2``, the storage version of the v0.19.2 CRDs), built from the
Karpenter NodePools so that no quota is typed twice (pure).

- one **ResourceFlavor** per pool the queue hands out: node labels ``karpenter.sh/nodepool: <pool>`` and the
  platform's own pool labels (the training pods select ``eks-ml-platform/pool``, so Kueue only assigns a pod
  a flavor its nodeSelector agrees with), and the pool's taints as tolerations, which Kueue adds to the pods
  it admits on that flavor;
- the **ClusterQueue** ``ml-training``: one resource group over cpu, memory and the pools' devices, a flavor
  per pool whose nominal quota is exactly that NodePool's ``spec.limits`` (times ``training.queue.share``;
  a device the pool lacks has quota 0), so Kueue never admits what Karpenter could not launch. Preemption
  inside the queue by priority; only jobs of ``ml-workloads``;
- the **Cohort** ``eks-ml-platform`` (``training.queue.borrow``): it holds the rest of the limits
  (1 - share), which the ClusterQueue may borrow while nothing else uses it;
- the **LocalQueue** ``training`` in ``ml-workloads`` (the name jobs give in ``kueue.x-k8s.io/queue-name``);
- the **WorkloadPriorityClasses** ``ml-training`` (the PriorityClass's value) and ``ml-training-urgent``
  (scheduled retraining): Kueue orders and preempts by them. Serving never goes through Kueue.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Any

from components.karpenter import node_pool_spec
from components.kueue.settings import KueueSettings
from components.priority import PRIORITY_CLASSES
from infra.config import (CLUSTER_QUEUE, COHORT, LOCAL_QUEUE, URGENT_PRIORITY_CLASS, NodePoolConfig, cpu_millis,
                          memory_bytes)
from infra.conventions import TAG_KARPENTER_NODEPOOL, TRAINING_PRIORITY_CLASS, std_labels

API_VERSION = "kueue.x-k8s.io/v1beta2"
PLATFORM_LABEL_PREFIX = "eks-ml-platform/"  # the pool labels the platform sets on a NodePool's nodes
BASE_RESOURCES = ("cpu", "memory")
DEVICE_RESOURCES = ("nvidia.com/gpu", "aws.amazon.com/neuron")
#: Scheduled retraining goes ahead of ad-hoc training in the queue, and stays far below ml-serving.
URGENT_PRIORITY_VALUE = 10000
MIB = 2 ** 20


def _obj(kind: str, name: str, spec: dict[str, Any], namespace: str = "") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": std_labels(name)}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": meta, "spec": spec}


def flavor_name(pool: NodePoolConfig) -> str:
    """A flavor is named after its pool (Kueue's metrics label ``flavor`` then reads as the pool)."""
    return pool.name


def resource_flavor(pool: NodePoolConfig) -> dict[str, Any]:
    """The ResourceFlavor of one pool: its nodes' labels, and its taints as tolerations."""
    template = node_pool_spec(pool)["template"]
    labels = {k: v for k, v in template["metadata"]["labels"].items() if k.startswith(PLATFORM_LABEL_PREFIX)}
    spec: dict[str, Any] = {"nodeLabels": {TAG_KARPENTER_NODEPOOL: pool.name, **labels}}
    tolerations = []
    for taint in template["spec"].get("taints", []):
        tol = {"key": taint["key"], "operator": "Equal" if taint.get("value") else "Exists", "effect": taint["effect"]}
        if taint.get("value"):
            tol["value"] = taint["value"]
        tolerations.append(tol)
    if tolerations:
        spec["tolerations"] = tolerations
    return _obj("ResourceFlavor", flavor_name(pool), spec)


def covered_resources(pools: tuple[NodePoolConfig, ...]) -> list[str]:
    """cpu, memory and every device some pool limits (one resource group covers them all)."""
    limited = {r for p in pools for r in node_pool_spec(p)["limits"]}
    return [*BASE_RESOURCES, *(r for r in DEVICE_RESOURCES if r in limited)]


def scaled(resource: str, value: str, share: Fraction) -> str:
    """``share`` of a NodePool limit, rounded down (the limit itself, unchanged, at share 1)."""
    if share == 1:
        return str(value)
    if resource == "cpu":
        millis = int(cpu_millis(value) * share)
        return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"
    if resource == "memory":
        return f"{int(memory_bytes(value) * share) // MIB}Mi"
    return str(int(int(value) * share))


def _remainder(resource: str, value: str, share: Fraction) -> str:
    """What the ClusterQueue's share leaves of a limit (the Cohort's quota)."""
    if resource == "cpu":
        millis = cpu_millis(value) - cpu_millis(scaled(resource, value, share))
        return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"
    if resource == "memory":
        return f"{(memory_bytes(value) - memory_bytes(scaled(resource, value, share))) // MIB}Mi"
    return str(int(value) - int(scaled(resource, value, share)))


def flavor_quotas(pool: NodePoolConfig, covered: list[str], share: float, *, rest: bool = False) -> dict[str, Any]:
    """One flavor of the resource group: per covered resource, the pool's limit (0 where it has none)."""
    limits = node_pool_spec(pool)["limits"]
    frac = Fraction(str(share))
    amount = _remainder if rest else scaled
    return {"name": flavor_name(pool),
            "resources": [{"name": r, "nominalQuota": amount(r, limits[r], frac) if r in limits else "0"}
                          for r in covered]}


def resource_groups(s: KueueSettings, *, rest: bool = False) -> list[dict[str, Any]]:
    covered = covered_resources(s.pools)
    return [{"coveredResources": covered, "flavors": [flavor_quotas(p, covered, s.share, rest=rest) for p in s.pools]}]


def cluster_queue(s: KueueSettings) -> dict[str, Any]:
    """The ClusterQueue: the pools' limits as quota, BestEffortFIFO, preemption by priority inside it."""
    preemption: dict[str, Any] = {"withinClusterQueue": "LowerPriority", "reclaimWithinCohort": "Never"}
    spec: dict[str, Any] = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": s.workloads_namespace}},
        "queueingStrategy": "BestEffortFIFO",
        "preemption": preemption,
        "resourceGroups": resource_groups(s),
    }
    if s.borrow:
        spec["cohortName"] = COHORT
        preemption["reclaimWithinCohort"] = "Any"  # a queue you add to the cohort gets its lent quota back
    return _obj("ClusterQueue", CLUSTER_QUEUE, spec)


def cohort(s: KueueSettings) -> dict[str, Any]:
    """The Cohort that holds the rest of each pool's limits, lent to the ClusterQueue while idle."""
    return _obj("Cohort", COHORT, {"resourceGroups": resource_groups(s, rest=True)})


def local_queue(s: KueueSettings) -> dict[str, Any]:
    return _obj("LocalQueue", LOCAL_QUEUE, {"clusterQueue": CLUSTER_QUEUE}, namespace=s.workloads_namespace)


def workload_priority_classes() -> list[dict[str, Any]]:
    """``ml-training`` at the PriorityClass's value, ``ml-training-urgent`` above it (below ml-serving)."""
    # tests/components/test_kueue.py holds the order: ml-training < ml-training-urgent < ml-serving
    training = next(p for p in PRIORITY_CLASSES if p.name == TRAINING_PRIORITY_CLASS)
    out = []
    for name, value, what in (
            (TRAINING_PRIORITY_CLASS, training.value, "Training jobs (the ml-training PriorityClass's value)."),
            (URGENT_PRIORITY_CLASS, URGENT_PRIORITY_VALUE,
             "Urgent retraining: admitted before ml-training jobs and may preempt them in the ClusterQueue.")):
        doc = _obj("WorkloadPriorityClass", name, {})
        doc.pop("spec")
        doc.update(value=value, description=what)
        out.append(doc)
    return out


def queue_objects(s: KueueSettings) -> list[dict[str, Any]]:
    """Every Kueue object, in apply order (flavors and priority classes before the queues naming them)."""
    objs = [resource_flavor(p) for p in s.pools] + workload_priority_classes()
    if s.borrow:
        objs.append(cohort(s))
    return objs + [cluster_queue(s), local_queue(s)]
