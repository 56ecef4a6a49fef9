"""Every Helm chart, image and AMI version the platform installs, pinned in one place.

Bump a version here and nowhere else; `make preview` shows the change as a chart
version bump in the PR comment. Config may override a chart version per stack
(`addons.<name>.version`), which the preview prints beside the pinned default.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Chart:
    chart: str
    version: str
    repo: str  # https Helm repo, or "" for OCI charts whose `chart` is the oci:// reference
    namespace: str


CHARTS: dict[str, Chart] = {
    # karpenter and karpenter-crd always move together (the CRDs are coupled to the controller);
    # the CRD chart owns the CRDs, the controller chart is installed with skip_crds.
    "karpenter": Chart("oci://public.ecr.aws/karpenter/karpenter", "1.14.1", "", "kube-system"),
    "karpenter_crd": Chart("oci://public.ecr.aws/karpenter/karpenter-crd", "1.14.1", "", "kube-system"),
    "nvidia_device_plugin": Chart("nvidia-device-plugin", "0.18.2", "https://nvidia.github.io/k8s-device-plugin", "nvidia-device-plugin"),
    "dcgm_exporter": Chart("dcgm-exporter", "4.8.2", "https://nvidia.github.io/dcgm-exporter/helm-charts", "nvidia-device-plugin"),
    "neuron": Chart("oci://public.ecr.aws/neuron/neuron-helm-chart", "1.9.0", "", "kube-system"),
    "rook_ceph": Chart("rook-ceph", "v1.20.6", "https://charts.rook.io/release", "rook-ceph"),
    # Rook v1.20 drives CSI through ceph-csi-operator (a subchart of rook-ceph, 1.0.4 at v1.20.6); the
    # drivers themselves come from this chart, installed with Rook's values (deploy/charts/ceph-csi-drivers).
    # The chart is published with the operator's release tag as its version.
    "ceph_csi_drivers": Chart("ceph-csi-drivers", "1.0.4", "https://ceph.github.io/ceph-csi-operator", "rook-ceph"),
    "monitoring": Chart("kube-prometheus-stack", "82.18.0", "https://prometheus-community.github.io/helm-charts", "monitoring"),
    # AWS Load Balancer Controller (app v3.5.0, kubernetes-sigs/aws-load-balancer-controller tag v3.5.0); its
    # IAM policy for that tag is pinned in infra/upstream.py.
    "load_balancer_controller": Chart("aws-load-balancer-controller", "3.5.0", "https://aws.github.io/eks-charts", "kube-system"),
    # Kueue (kubernetes-sigs/kueue v0.19.2): job queueing for the training jobs; its CRDs (templates/crd in the
    # chart) and values.yaml are pinned in infra/upstream.py. The chart is published only as an OCI artifact.
    "kueue": Chart("oci://registry.k8s.io/kueue/charts/kueue", "0.19.2", "", "kueue-system"),
    # The EFA device plugin (aws/eks-charts v0.0.242 stable/aws-efa-k8s-device-plugin: chart v0.5.30, app v0.5.20;
    # its values.yaml and Chart.yaml are pinned in infra/upstream_pins.py), only where some pool has efa: true.
    "efa_device_plugin": Chart("aws-efa-k8s-device-plugin", "v0.5.30", "https://aws.github.io/eks-charts", "kube-system"),
}


@dataclass(frozen=True)
class UpstreamManifests:
    """Upstream release manifests (for projects that ship no Helm chart), built in code from the files
    ``infra/upstream.py`` pins at the tag (never committed here)."""

    repo: str       # GitHub owner/name
    tag: str        # the release tag (never a branch)
    commit: str     # the tag's commit
    path: str       # the kustomize overlay the platform builds, inside the repository at the tag
    namespace: str


# The Kubeflow training operator v1 (PyTorchJob, TFJob) ships kustomize manifests, not a chart;
# components/training_operator.py builds manifests/overlays/standalone; its image is IMAGES["training_operator"].
MANIFESTS: dict[str, UpstreamManifests] = {
    "training_operator": UpstreamManifests(
        "kubeflow/trainer", "v1.9.4", "4445c12aa62e4345b0c2c6ac9b215a70eca46ed7",
        "manifests/overlays/standalone", "kubeflow",
    ),
}

# Amazon EKS add-ons: None lets EKS pick the default version for the cluster's Kubernetes version
# at create time and keeps it (resolve_conflicts_on_update=PRESERVE); pin here to upgrade on purpose.
EKS_ADDONS: dict[str, str | None] = {
    "vpc-cni": None,
    "coredns": None,
    "kube-proxy": None,
    "eks-pod-identity-agent": None,
    "aws-ebs-csi-driver": None,
    "snapshot-controller": None,
    "metrics-server": None,  # EKS community add-on
}

# Karpenter EC2NodeClass AMI aliases: pinned, never @latest (latest has shipped regressed AMIs).
# al2023 resolves to the NVIDIA or Neuron variant by instance type on its own (SSM parameter
# amazon-eks-node-al2023-<arch>-<standard|nvidia|neuron>-<k8s>-<version>). Must be v20260114 or
# newer: that release made the Neuron AMI load the legacy 2.21 driver on inf1 at boot
# (awslabs/amazon-eks-ami#2579); v20260714 ships all of 1.30-1.36.
AMI_ALIAS = "al2023@v20260714"

# The Neuron scheduler extension runs its own kube-scheduler ("my-scheduler"); it must match the
# control plane's minor version (version-skew policy). EKS Distro images, from aws/eks-distro
# docs/contents/releases/<minor>/<release>/index.md.
NEURON_KUBE_SCHEDULER: dict[str, str] = {
    "1.30": "public.ecr.aws/eks-distro/kubernetes/kube-scheduler:v1.30.14-eks-1-30-59",
    "1.31": "public.ecr.aws/eks-distro/kubernetes/kube-scheduler:v1.31.14-eks-1-31-48",
    "1.32": "public.ecr.aws/eks-distro/kubernetes/kube-scheduler:v1.32.13-eks-1-32-41",
    "1.33": "public.ecr.aws/eks-distro/kubernetes/kube-scheduler:v1.33.13-eks-1-33-31",
    "1.34": "public.ecr.aws/eks-distro/kubernetes/kube-scheduler:v1.34.9-eks-1-34-21",
    "1.35": "public.ecr.aws/eks-distro/kubernetes/kube-scheduler:v1.35.6-eks-1-35-13",
    "1.36": "public.ecr.aws/eks-distro/kubernetes/kube-scheduler:v1.36.2-eks-1-36-7",
}

IMAGES: dict[str, str] = {
    # The workload images' public release images, tag-pinned. The stack does not run these by default:
    # with images.build true (the default) components/images.py builds workloads/*/Dockerfile* into ECR
    # and the workloads run those by digest. With images.build false, point images.trainer, trainerGpu,
    # server, serverNeuron and serverNeuronx at these (or your own mirror of them). The pure manifest builders also
    # fall back to them when given no built image (tests, `describe`).
    "trainer": "ghcr.io/eks-ml-platform/trainer:0.1.0",
    "trainer_gpu": "ghcr.io/eks-ml-platform/trainer-gpu:0.1.0",
    "sentiment": "ghcr.io/eks-ml-platform/sentiment:0.1.0",
    "sentiment_neuron": "ghcr.io/eks-ml-platform/sentiment-neuron:0.1.0",
    "sentiment_neuronx": "ghcr.io/eks-ml-platform/sentiment-neuronx:0.1.0",
    "busybox": "public.ecr.aws/docker/library/busybox:1.37.0",
    # Ceph Tentacle: the image rook v1.20.6 pins in deploy/examples/cluster-on-pvc.yaml
    "ceph": "quay.io/ceph/ceph:v20.2.4",
    # neuron-monitor + its Prometheus exporter (aws-neuron-sdk src/k8/k8s-neuron-monitor-daemonset.yml)
    "neuron_monitor": "public.ecr.aws/neuron/neuron-monitor:1.3.0",
    # the tag kubeflow/trainer v1.9.4 pins in manifests/overlays/standalone (built from commit 93c54893e)
    "training_operator": "ghcr.io/kubeflow/training-v1/training-operator:v1-93c5489",
    # the controller image the kueue 0.19.2 chart ships with (hack/helm-chart-package.sh sets
    # registry.k8s.io/kueue/kueue:<tag> for a release; the values.yaml at the tag names the staging image)
    "kueue": "registry.k8s.io/kueue/kueue:v0.19.2",
}


def chart_version(name: str, override: str | None = None) -> str:
    """The pinned version of a chart, or the stack's explicit override."""
    return override or CHARTS[name].version
