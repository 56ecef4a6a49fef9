"""The training queue (Kueue): ``TrainingQueueConfig`` (``training.queue``), the names the queue objects and the
jobs agree on, which node pools get a ResourceFlavor, and the checks that need the whole config.

The quotas themselves are not configured: ``components/kueue`` derives each flavor's nominal quota from
its Karpenter NodePool's ``limits`` (times ``share``), so what Kueue admits is what Karpenter may launch.
This module is pure data (no resource module), so the training manifests, the monitoring rules and the
Kueue component all read the same names from here.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Any, Optional

from pydantic import Field, field_validator

from infra.config.base import _Model, pool_name
from infra.config.node_pools import NodePoolConfig, cpu_pool

#: The LocalQueue in ml-workloads that the platform's jobs (and yours) name with ``QUEUE_LABEL``.
LOCAL_QUEUE = "training"
#: The ClusterQueue behind it (its quotas are the node pools' limits) and the Cohort it borrows from.
CLUSTER_QUEUE = "ml-training"
COHORT = "eks-ml-platform"
#: Kueue's job labels (kueue.sigs.k8s.io: "Run a PyTorchJob", "Workload priority").
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"
#: The WorkloadPriorityClass of scheduled retraining: ahead of ad-hoc training in the queue.
URGENT_PRIORITY_CLASS = "ml-training-urgent"


class TrainingQueueConfig(_Model):
    """``training.queue``: how much of the pools the queue may hand out, and how long a job may take to start."""

    share: float = Field(1.0, description="Fraction of each pool's limits the ClusterQueue's quota gets "
                                          "(0 < share <= 1).")
    pools: Optional[list[str]] = Field(None, description="Node pools with a ResourceFlavor; default: the "
                                                         "training pool and the CPU pool.")
    borrow: bool = Field(False, description="Join the Cohort that holds the rest of the pools' limits "
                                            "(1 - share), so training may borrow it while it is idle.")
    pods_ready_timeout_minutes: int = Field(20, ge=1, le=1440, description=(
        "waitForPodsReady: an admitted job whose pods are not all ready by then is evicted and requeued."))
    max_wait_minutes: int = Field(60, ge=1, le=10080, description=(
        "Alert (TrainingQueueWaitingTooLong) when workloads have been pending this long."))

    @field_validator("share")
    @classmethod
    def _share(cls, v: float) -> float:
        if not 0 < v <= 1:
            raise ValueError(f"{v:g} is not a share of the node pools' limits; use 0 < share <= 1 (a quota above "
                             "a pool's limits would admit jobs Karpenter cannot launch)")
        return v

    @field_validator("pools")
    @classmethod
    def _pools(cls, v: Optional[list[str]]) -> Optional[list[str]]:
        if v is not None and not v:
            raise ValueError("is empty; name the node pools the queue hands out, or leave it out")
        dupes = sorted({n for n in v or [] if v.count(n) > 1})
        if dupes:
            raise ValueError(f"{', '.join(dupes)} listed more than once")
        return None if v is None else [str(pool_name(n)) for n in v]


def queue_settings(training: Any) -> TrainingQueueConfig:
    """``training.queue``, or its defaults when the stack leaves it out."""
    return training.queue if training.queue is not None else TrainingQueueConfig()


def kueue_enabled(cfg: Any) -> bool:
    """Kueue is installed when ``addons.kueue.enabled`` (default true) and training is on, or when the stack
    sets ``addons.kueue.enabled: true`` itself (your own jobs through the queue, without the sample)."""
    toggle = cfg.addons.kueue
    return toggle.enabled and (cfg.training.enabled or "enabled" in toggle.model_fields_set)


def queue_pools(training: Any, pools: list[NodePoolConfig]) -> list[NodePoolConfig]:
    """The pools that get a ResourceFlavor, plain pools first: Kueue tries a resource group's flavors in
    order, so a CPU-only pod (data prep, a TFJob PS) lands on a plain pool, never on a GPU node."""
    names = queue_settings(training).pools
    if names is None:
        chosen = [p for p in (cpu_pool(pools), training.pool_for(pools)) if p is not None]
    else:
        chosen = [p for p in pools if p.name in names]
    unique = list({p.name: p for p in chosen}.values())
    return sorted(unique, key=lambda p: p.accelerator != "none")


def scaled_devices(limit: Optional[int], share: float) -> int:
    """Whole devices (GPUs, Neuron devices) in ``share`` of a pool's ``limit``, rounded down."""
    return int(Fraction(limit or 0) * Fraction(str(share)))


def queue_problems(cfg: Any, pools: list[NodePoolConfig]) -> list[tuple[str, str]]:
    """``training.queue`` against ``addons.kueue`` and the node pools (infra/config/cross.py calls it)."""
    from infra.versions import CHARTS  # pinned data only (no resource module)

    tr, toggle = cfg.training, cfg.addons.kueue
    if tr.queue is not None and not toggle.enabled:
        return [("training.queue", "is set while addons.kueue.enabled is false: the queue, its quotas and "
                 "priorities are Kueue's; enable addons.kueue or remove training.queue")]
    if not kueue_enabled(cfg):
        return []
    out: list[tuple[str, str]] = []
    pinned = CHARTS["kueue"].version
    if toggle.version is not None and toggle.version.lstrip("v") != pinned:
        out.append(("addons.kueue.version", f"{toggle.version} is not pinned; the platform installs Kueue {pinned} "
                    "(its CRDs and chart values are pinned in infra/upstream.py and checked by `check`)"))
    q = queue_settings(tr)
    names = [p.name for p in pools]
    missing = [n for n in q.pools or [] if n not in names]
    if missing:
        return out + [("training.queue.pools", f"no node pool named {missing[0]!r} for a ResourceFlavor "
                       f"(pools: {', '.join(names)})")]
    if not tr.enabled:
        return out
    chosen = [p.name for p in queue_pools(tr, pools)]
    for pool, what in ((tr.pool_for(pools), "the training job"), (cpu_pool(pools), "data prep")):
        if pool is not None and pool.name not in chosen:
            out.append(("training.queue.pools", f"leaves out pool {pool.name!r}, where {what} runs: Kueue would "
                        "never admit it; add the pool"))
    trainer = tr.pool_for(pools)
    if trainer is not None and tr.device == "gpu" and not q.borrow:
        quota, need = scaled_devices(trainer.limits.gpu, q.share), tr.gpus_per_worker * tr.gpu_replicas
        if quota < need <= (trainer.limits.gpu or 0):  # beyond the limit itself: training.gpusPerWorker says so
            out.append(("training.queue.share", f"{q.share:g} of the {trainer.limits.gpu} GPUs of pool "
                        f"{trainer.name!r} is a quota of {quota}, but the training job needs {need}: Kueue would "
                        "never admit it; raise the share or set training.queue.borrow: true"))
    return out
