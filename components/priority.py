"""PriorityClasses: real-time inference outranks batch training.

- ``ml-serving`` (100000, ``PreemptLowerPriority``): a pending serving pod evicts lower-priority
  pods (training) when no node has room, instead of waiting minutes for Karpenter to launch an
  accelerator node. Inference latency is user-facing; training resumes from its checkpoint.
- ``ml-training`` (1000, ``Never``): training pods queue for capacity (Karpenter provisions it) and
  never evict anything to start, including other training jobs or unclassified pods (priority 0);
  they can still be pre-empted by ``ml-serving``. The trainer checkpoints every epoch and on
  SIGTERM, so a pre-empted job loses little.

Both stay well below ``system-cluster-critical`` (2000000000) used by Karpenter, CoreDNS and the
device plugins. Neither is the global default: unclassified pods get priority 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s

from infra.conventions import SERVING_PRIORITY_CLASS, TRAINING_PRIORITY_CLASS

SERVING = SERVING_PRIORITY_CLASS
TRAINING = TRAINING_PRIORITY_CLASS


@dataclass(frozen=True)
class PriorityClassSpec:
    name: str
    value: int
    preemption_policy: str
    description: str


PRIORITY_CLASSES = (
    PriorityClassSpec(SERVING, 100000, "PreemptLowerPriority",
                      "Real-time inference (eks-ml-platform): may pre-empt batch training to get capacity now."),
    PriorityClassSpec(TRAINING, 1000, "Never",
                      "Batch training (eks-ml-platform): waits for capacity, never pre-empts; pre-emptible by ml-serving."),
)


def priority_class_manifest(spec: PriorityClassSpec) -> dict[str, Any]:
    return {
        "metadata": {"name": spec.name, "labels": {"app.kubernetes.io/name": spec.name,
                                                   "app.kubernetes.io/part-of": "eks-ml-platform",
                                                   "app.kubernetes.io/managed-by": "pulumi"}},
        "value": spec.value,
        "preemption_policy": spec.preemption_policy,
        "global_default": False,
        "description": spec.description,
    }


@dataclass(frozen=True)
class PriorityClassesArgs:
    """Inputs of the PriorityClasses component (the classes are fixed: nothing comes from the config)."""

    ready: Sequence[pulumi.Resource] = ()
    """What the objects wait for (the cluster's ``cluster_ready`` gate)."""


class PriorityClasses(pulumi.ComponentResource):
    """Creates ``ml-serving`` and ``ml-training``. Output: ``names``."""

    def __init__(self, name: str, args: PriorityClassesArgs = PriorityClassesArgs(),
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("eks-ml-platform:priority:PriorityClasses", name, None, opts)
        ready = args.ready
        self.classes: dict[str, k8s.scheduling.v1.PriorityClass] = {}
        for spec in PRIORITY_CLASSES:
            m = priority_class_manifest(spec)
            self.classes[spec.name] = k8s.scheduling.v1.PriorityClass(
                f"{name}-{spec.name}", metadata=m["metadata"], value=m["value"],
                preemption_policy=m["preemption_policy"], global_default=m["global_default"],
                description=m["description"], opts=pulumi.ResourceOptions(parent=self, depends_on=list(ready)),
            )
        self.names = sorted(self.classes)
        self.register_outputs({"names": self.names})
