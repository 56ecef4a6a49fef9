"""The training workload component: data prep, then a PyTorchJob (or TFJob), plus optional periodic retraining.

Pulumi side only: ``manifests.py`` builds every object as a plain dict (what each one is and why is
documented there), and ``TrainingWorkload`` turns them into resources, in order: the
ServiceAccounts and NetworkPolicies, data prep's S3 credentials (an ``s3://`` source), the data-prep
Job (Pulumi waits for it), then the training job and the retraining CronJob. With monitoring
(``monitoring_release``), the PodMonitor ``sentiment-trainer`` too.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.conventions import pod_identity_trust
from workloads.shared import NAMESPACE, scrape_object
from workloads.training.manifests import build_objects, job_image, s3_read_policy, trainer_pod_monitor
from workloads.training.pods import DATA_PREP, JOB_NAME, PRIORITY_CLASS, TRAINER, plan
from workloads.training.settings import TrainingSettings

if TYPE_CHECKING:  # pragma: no cover - typing only
    from components.images import WorkloadImages
    from infra.context import PlatformContext

__all__ = ["PRIORITY_CLASS", "TrainingSettings", "TrainingWorkload", "TrainingWorkloadArgs"]


# ---------------------------------------------------------------- the component
@dataclass(frozen=True)
class TrainingWorkloadArgs:
    settings: TrainingSettings
    """The ``training`` section and the node pools (``TrainingSettings.from_config``)."""
    ctx: "PlatformContext"
    """Providers, the cluster name (for the Pod Identity association), the ``cluster_ready`` gate."""
    namespace: k8s.core.v1.Namespace
    """The shared ``ml-workloads`` Namespace (workloads/shared.py)."""
    datasets_pvc: k8s.core.v1.PersistentVolumeClaim
    models_pvc: k8s.core.v1.PersistentVolumeClaim
    operator_ready: tuple[pulumi.Resource, ...] = ()
    """The training operator's CRDs, webhook and Deployment: jobs are created after them."""
    priority_classes: tuple[pulumi.Resource, ...] = ()
    """The ``ml-training`` PriorityClass (components/priority.py): pods are rejected without it."""
    images: Optional["WorkloadImages"] = None
    """The workload images (components/images.py): the jobs run its ``refs`` (by digest when built).
    ``None``: the release images of infra/versions.py."""
    data_prep_timeout: str = "30m"
    """How long Pulumi waits for the data-prep Job (an S3/hub download on a fresh node)."""
    monitoring_release: Optional[pulumi.Resource] = None
    """kube-prometheus-stack's Helm release (components/monitoring.py ``Monitoring.release``): it installs
    the PodMonitor CRD, so the trainer's PodMonitor is created after it. ``None`` (no monitoring): no PodMonitor."""


class TrainingWorkload(pulumi.ComponentResource):
    """Data prep, the PyTorchJob/TFJob and the optional retraining CronJob (see the module docstring)."""

    job_name: pulumi.Output[str]
    job_kind: str
    data_dir: str

    def __init__(self, name: str, args: TrainingWorkloadArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("eks-ml-platform:training:TrainingWorkload", name, None, opts)
        st = args.settings
        objs = build_objects(st)  # the static shape (which objects exist, names)
        p = plan(st)
        # The pods' objects with the built images' references (Outputs: by digest once pushed). The pure
        # builders take plain strings, so they run again inside the apply.
        refs = dict(args.images.refs) if args.images is not None else {}
        live: Optional[pulumi.Output[dict[str, dict[str, Any]]]] = (
            pulumi.Output.all(**refs).apply(lambda r: build_objects(st, r)) if refs else None)

        def part(key: str, field_: str) -> Any:
            return live.apply(lambda o: o[key][field_]) if live is not None else objs[key][field_]

        base_deps = [args.namespace, args.datasets_pvc, args.models_pvc, *args.priority_classes]
        child = pulumi.ResourceOptions(parent=self, depends_on=base_deps)
        self.resources: dict[str, pulumi.Resource] = {}
        for key in ("sa-" + TRAINER, "sa-" + DATA_PREP):
            sa = objs[key]
            self.resources[key] = k8s.core.v1.ServiceAccount(
                f"{name}-{key}", metadata=sa["metadata"], automount_service_account_token=False, opts=child)

        # network policies first, so no pod ever runs unrestricted
        netpols = []
        for key in sorted(k for k in objs if k.startswith("netpol-")):
            np_ = objs[key]
            self.resources[key] = k8s.networking.v1.NetworkPolicy(
                f"{name}-{key}", metadata=np_["metadata"], spec=np_["spec"], opts=child)
            netpols.append(self.resources[key])
        prep_deps: list[pulumi.Resource] = [*base_deps, self.resources["sa-" + DATA_PREP], *netpols]
        src = st.training.dataset_source or ""
        if src.startswith("s3://"):
            prep_deps += self._s3_identity(name, args, src)
        self.data_prep = k8s.batch.v1.Job(
            f"{name}-data-prep", metadata=part("data-prep", "metadata"), spec=part("data-prep", "spec"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=prep_deps, delete_before_replace=True,
                                        custom_timeouts=pulumi.CustomTimeouts(create=args.data_prep_timeout,
                                                                              update=args.data_prep_timeout)))
        self.resources["data-prep"] = self.data_prep

        tj = objs["job"]
        # A finished job ignores spec updates: replace it (same name, so delete first) when its spec
        # changes; the new run resumes from the same checkpoint folder (one per dataset).
        self.job = k8s.apiextensions.CustomResource(
            f"{name}-{tj['kind'].lower()}", api_version=tj["apiVersion"], kind=tj["kind"], metadata=part("job", "metadata"),
            spec=part("job", "spec"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*base_deps, *args.operator_ready, self.data_prep,
                                                                 self.resources["sa-" + TRAINER], *netpols],
                                        replace_on_changes=["spec"], delete_before_replace=True))
        self.resources["job"] = self.job
        if "cronjob" in objs:
            self.resources["cronjob"] = k8s.batch.v1.CronJob(
                f"{name}-cronjob", metadata=part("cronjob", "metadata"), spec=part("cronjob", "spec"),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[*prep_deps, self.data_prep]))
        if args.monitoring_release is not None:
            self.resources["podmonitor"] = scrape_object(
                f"{name}-podmonitor", "PodMonitor", trainer_pod_monitor(), parent=self,
                release=args.monitoring_release, ready=args.ctx.cluster_ready)

        self.job_kind = p.kind
        self.data_dir = p.data_dir
        self.job_name = pulumi.Output.from_input(JOB_NAME)
        self.register_outputs({
            "jobKind": p.kind, "jobName": self.job_name, "namespace": NAMESPACE, "dataDir": p.data_dir,
            "image": (live.apply(lambda o: job_image(o["job"])) if live is not None else p.image), "pool": p.pool,
            "schedule": st.training.schedule or "",
        })

    def _s3_identity(self, name: str, args: TrainingWorkloadArgs, src: str) -> list[pulumi.Resource]:
        """Data prep's S3 read access: an IAM role handed to its ServiceAccount by EKS Pod Identity."""
        role = aws.iam.Role(
            f"{name}-data-prep-role", assume_role_policy=pod_identity_trust(),
            description="eks-ml-platform data prep: read the training dataset from S3",
            opts=pulumi.ResourceOptions(parent=self))
        policy = aws.iam.RolePolicy(f"{name}-data-prep-s3", role=role.id, policy=s3_read_policy(src),
                                    opts=pulumi.ResourceOptions(parent=self))
        assoc = aws.eks.PodIdentityAssociation(
            f"{name}-data-prep-identity", cluster_name=args.ctx.cluster.name, namespace=NAMESPACE,
            service_account=DATA_PREP, role_arn=role.arn,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*args.ctx.cluster_ready]))
        self.resources.update({"data-prep-role": role, "data-prep-s3": policy, "data-prep-identity": assoc})
        return [policy, assoc]
