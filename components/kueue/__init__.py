"""Kueue (kubernetes-sigs/kueue v0.19.2): the training jobs queue for quota the node pools can really provide.

Without it a PyTorchJob's pods wait in Pending until Karpenter finds capacity, or forever when the pool is
at its limits, and two jobs that each need the whole pool can deadlock holding half of it each. With it:

- **the chart** ``oci://registry.k8s.io/kueue/charts/kueue`` 0.19.2 (``infra/versions.py``; its CRDs and
  ``values.yaml`` are pinned in ``infra/upstream.py``) in ``kueue-system`` (Pod Security restricted, default
  deny, the webhook and visibility ports from the API server, metrics from Prometheus), on the system
  nodes, with only the integrations the platform uses and ``waitForPodsReady`` (``values``);
- **the queue objects** (``queues``): a ResourceFlavor per Karpenter NodePool the training jobs may use, a
  ClusterQueue whose nominal quota per flavor is that NodePool's ``limits`` (times ``training.queue.share``),
  an optional Cohort to borrow the rest, the LocalQueue ``training`` in ``ml-workloads`` and the
  WorkloadPriorityClasses ``ml-training`` and ``ml-training-urgent``. They depend on the release (its CRDs);
- with monitoring, a **ServiceMonitor** for the manager's HTTPS metrics and the binding that lets
  Prometheus read them.

The training workload labels its jobs ``kueue.x-k8s.io/queue-name: training`` (workloads/training/manifests.py)
and is built after this component, so Kueue's webhook creates them suspended and they start only once all
of their replicas fit.
"""
from __future__ import annotations

from components.kueue.component import Kueue, KueueArgs
from components.kueue.queues import cluster_queue, queue_objects, resource_flavor
from components.kueue.settings import KueueSettings
from components.kueue.values import KUEUE_METRICS, kueue_values, manager_config

__all__ = ["KUEUE_METRICS", "Kueue", "KueueArgs", "KueueSettings", "cluster_queue", "kueue_values",
           "manager_config", "queue_objects", "resource_flavor"]
