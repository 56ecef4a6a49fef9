"""What training and serving share: the ``ml-workloads`` namespace and the RWX PVCs ``datasets`` and ``models``.

One namespace for both, because a PVC can only be mounted in its own namespace and the serving
pods must read the model the trainer writes:

- Namespace ``ml-workloads``: Pod Security ``restricted`` is enforced, audited and warned; the
  NetworkPolicy ``default-deny`` denies ingress to every pod of it that no other policy admits
  (serving and training add their own).
- PVC ``datasets`` (ReadWriteMany, ``ceph-filesystem``): data prep writes ``/data/<dataset>``,
  and every trainer replica reads it.
- PVC ``models`` (ReadWriteMany, ``ceph-filesystem``): the trainer writes checkpoints
  (``/models/checkpoints/<job>``) and model versions, plus the ``latest`` pointer. The
  serving pods mount it read-only.

``Platform.addons["workload_storage"]`` is this component, and it exists whenever training or
serving is enabled. Consumers use ``.namespace`` (the Namespace resource), ``.namespace_name``,
``.datasets_pvc`` and ``.models_pvc`` (the PVC resources), and ``depends_on`` them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s

from components.monitoring import former_scrape_urn
from components.netpol import default_deny
from components.scrape import API_VERSION as SCRAPE_API_VERSION
from infra.conventions import FILE_STORAGE_CLASS, WORKLOADS_NAMESPACE

if TYPE_CHECKING:  # pragma: no cover - typing only
    from infra.config import PlatformConfig

NAMESPACE = WORKLOADS_NAMESPACE
DATASETS_PVC = "datasets"
MODELS_PVC = "models"
STORAGE_CLASS = FILE_STORAGE_CLASS  # the CephFS StorageClass of components/storage.py (RWX)
PART_OF = "eks-ml-platform"


def standard_labels(name: str, **extra: str) -> dict[str, str]:
    """The labels every object of the platform carries."""
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": PART_OF,
            "app.kubernetes.io/managed-by": "pulumi", **extra}


def namespace_manifest(name: str = NAMESPACE) -> dict[str, Any]:
    """Pure: the shared namespace (Pod Security restricted: every pod in it must run as non-root, etc.)."""
    return {
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "labels": {
            **standard_labels(name),
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
            "pod-security.kubernetes.io/audit": "restricted",
            "pod-security.kubernetes.io/warn": "restricted",
            # The AWS Load Balancer Controller injects readiness gates here, so a rolling update never takes
            # an old serving pod out before its replacement is registered behind the ALB/NLB.
            "elbv2.k8s.aws/pod-readiness-gate-inject": "enabled",
        }},
    }


def pvc_manifest(name: str, size_gib: int, *, namespace: str = NAMESPACE,
                 storage_class: str = STORAGE_CLASS) -> dict[str, Any]:
    """Pure: one ReadWriteMany claim on CephFS."""
    if size_gib < 1:
        raise ValueError(f"PVC {name}: size must be at least 1 GiB (got {size_gib})")
    return {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": standard_labels(name, **{"app.kubernetes.io/component": "workload-storage"})},
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "storageClassName": storage_class,
            "volumeMode": "Filesystem",
            "resources": {"requests": {"storage": f"{size_gib}Gi"}},
        },
    }


def scrape_object(resource_name: str, kind: str, doc: dict[str, Any], *, parent: pulumi.Resource,
                  release: pulumi.Resource, ready: Sequence[pulumi.Resource]) -> k8s.apiextensions.CustomResource:
    """A workload's own ServiceMonitor/PodMonitor (``doc``: components/scrape.py).

    After ``release`` (kube-prometheus-stack, which installs the CRD; pulumi-kubernetes #1712) and the
    cluster-ready gate, as the monitoring component's scrapes. The monitoring component created it
    before the workloads did: the alias to that URN makes the move a state move, not a replacement.
    """
    alias = release.urn.apply(lambda urn: former_scrape_urn(urn, kind, doc))
    return k8s.apiextensions.CustomResource(
        resource_name, api_version=SCRAPE_API_VERSION, kind=kind, metadata=doc["metadata"], spec=doc["spec"],
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[*ready, release], aliases=[alias]))


@dataclass(frozen=True)
class WorkloadStorageSettings:
    """What the shared storage takes from the stack config (:meth:`from_config`)."""

    datasets_size_gib: int = 20
    """Size of the ``datasets`` PVC (``training.datasetsSizeGib``)."""
    models_size_gib: int = 20
    """Size of the ``models`` PVC (``training.modelsSizeGib``)."""
    protect: bool = False
    """Protect the PVCs (the stack's ``protect``, on in prod): deleting them deletes every trained model."""

    @classmethod
    def from_config(cls, cfg: "PlatformConfig") -> "WorkloadStorageSettings":
        tr = cfg.training
        return cls(datasets_size_gib=tr.datasets_size_gib, models_size_gib=tr.models_size_gib, protect=cfg.protect)


@dataclass(frozen=True)
class WorkloadStorageArgs:
    settings: WorkloadStorageSettings = field(default_factory=WorkloadStorageSettings)
    storage_dependencies: tuple[pulumi.Resource, ...] = ()
    """What must exist before a claim can bind: the storage add-on (its CephFS StorageClass)."""
    bind_timeout: str = "20m"
    """How long Pulumi waits for a claim to bind. On a new cluster that includes the Ceph cluster coming up."""


class WorkloadStorage(pulumi.ComponentResource):
    """The ``ml-workloads`` Namespace and the ``datasets`` / ``models`` PVCs."""

    namespace: k8s.core.v1.Namespace
    namespace_name: pulumi.Output[str]
    datasets_pvc: k8s.core.v1.PersistentVolumeClaim
    models_pvc: k8s.core.v1.PersistentVolumeClaim

    def __init__(self, name: str, args: WorkloadStorageArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("eks-ml-platform:workloads:WorkloadStorage", name, None, opts)
        ns = namespace_manifest()
        self.namespace = k8s.core.v1.Namespace(f"{name}-namespace", metadata=ns["metadata"],
                                               opts=pulumi.ResourceOptions(parent=self))
        self.namespace_name = self.namespace.metadata.apply(lambda m: m["name"] if isinstance(m, dict) else m.name)
        deny = default_deny(NAMESPACE)
        self.default_deny = k8s.networking.v1.NetworkPolicy(
            f"{name}-netpol-default-deny", metadata=deny["metadata"], spec=deny["spec"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.namespace]))
        pvc_opts = pulumi.ResourceOptions(
            parent=self, depends_on=[self.namespace, *args.storage_dependencies], protect=args.settings.protect,
            custom_timeouts=pulumi.CustomTimeouts(create=args.bind_timeout, update=args.bind_timeout))
        pvcs = {}
        st = args.settings
        for claim, size in ((DATASETS_PVC, st.datasets_size_gib), (MODELS_PVC, st.models_size_gib)):
            m = pvc_manifest(claim, size)
            pvcs[claim] = k8s.core.v1.PersistentVolumeClaim(f"{name}-{claim}", metadata=m["metadata"], spec=m["spec"],
                                                            opts=pvc_opts)
        self.datasets_pvc = pvcs[DATASETS_PVC]
        self.models_pvc = pvcs[MODELS_PVC]
        self.register_outputs({
            "namespace": self.namespace_name,
            "datasetsPvc": self.datasets_pvc.metadata.apply(lambda m: m["name"] if isinstance(m, dict) else m.name),
            "modelsPvc": self.models_pvc.metadata.apply(lambda m: m["name"] if isinstance(m, dict) else m.name),
        })
