"""The pin table of :mod:`infra.upstream`: every upstream file the platform reads, by repository, release
tag, path and sha256 (data only; the loader and its cache/mirror/download order are in ``infra.upstream``,
which re-exports :class:`Artifact` and :data:`ARTIFACTS`, so import them from there).

Add a pin here: the tag (never a branch), the path inside the repository and the file's sha256, as
``python -m infra upstream verify`` checks them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

RAW_BASE = "https://raw.githubusercontent.com"


@dataclass(frozen=True)
class Artifact:
    """One upstream file at a release tag (never a branch)."""

    key: str
    repo: str      # GitHub owner/name
    tag: str
    path: str      # path inside the repository
    sha256: str
    license: str = "Apache-2.0"
    purpose: str = ""

    @property
    def rel(self) -> str:
        """The mirror and cache layout: the raw URL without its host."""
        return f"{self.repo}/{self.tag}/{self.path}"

    @property
    def url(self) -> str:
        return f"{RAW_BASE}/{self.rel}"


def _pins(repo: str, tag: str, purpose: str, rows: Iterable[tuple[str, str, str]]) -> dict[str, Artifact]:
    return {key: Artifact(key, repo, tag, path, sha, purpose=purpose) for key, path, sha in rows}


_KARPENTER = "aws/karpenter-provider-aws", "v1.14.1"
_ROOK = "rook/rook", "v1.20.6"
_CSI = "ceph/ceph-csi-operator", "v1.0.4"
_TRAINER = "kubeflow/trainer", "v1.9.4"
_PROM_OP = "prometheus-operator/prometheus-operator", "v0.93.0"
_KPS = "prometheus-community/helm-charts", "kube-prometheus-stack-82.18.0"
_KEDA = "kedacore/keda", "v2.20.2"
_SNAPSHOT = "kubernetes-csi/external-snapshotter", "v8.5.0"
_KUEUE = "kubernetes-sigs/kueue", "v0.19.2"
_LBC = "kubernetes-sigs/aws-load-balancer-controller", "v3.5.0"
_EKS_CHARTS = "aws/eks-charts", "v0.0.242"  # the commit that cut aws-load-balancer-controller chart 3.5.0 (and holds EFA v0.5.30)
_NVIDIA_DP = "NVIDIA/k8s-device-plugin", "v0.18.2"
_DCGM = "NVIDIA/dcgm-exporter", "4.5.3-4.8.2"

ARTIFACTS: dict[str, Artifact] = {
    **_pins(*_KARPENTER, "Karpenter CRDs and chart values", [
        ("karpenter/crd/nodepools", "pkg/apis/crds/karpenter.sh_nodepools.yaml",
         "3bb64a20c80776b77aa19a699ebdaf34480a7b2e7ec4ef890b43225b3517f878"),
        ("karpenter/crd/nodeclaims", "pkg/apis/crds/karpenter.sh_nodeclaims.yaml",
         "96037dc241031fe0f7a09ddf78183d885ce6a1dfe115f7b3fbf8a12c564be694"),
        ("karpenter/crd/ec2nodeclasses", "pkg/apis/crds/karpenter.k8s.aws_ec2nodeclasses.yaml",
         "62dec59f01c0972d4503ca3ed25f243ba9c2f561be0d964ce7a14c8df406132f"),
        ("karpenter/chart/values", "charts/karpenter/values.yaml",
         "18813aba28c48fd65d76007e8919d355acc3583d82c6c14ea797c8cd5bf09437"),
        ("karpenter-crd/chart/values", "charts/karpenter-crd/values.yaml",
         "8fcfe5dd6d8010b61d500148d6e2a91f1b8a40a11a6ef2e89ac3304649eee892"),
    ]),
    **_pins(*_ROOK, "Rook CRDs (one multi-document file) and the rook-ceph chart", [
        ("rook/crds", "deploy/examples/crds.yaml", "7fa7462d44b35d636703a03a88120030692a06a05ac91ec253200cb4ae8c37cf"),
        ("rook-ceph/chart/values", "deploy/charts/rook-ceph/values.yaml",
         "d29fe08beb96aba148ec508b3283b708ba0fa8b5be2b0625e38678aa415dd9c9"),
    ]),
    **_pins(*_CSI, "ceph-csi-operator charts (drivers; the operator is a subchart of rook-ceph)", [
        ("ceph-csi-drivers/chart/values", "deploy/charts/ceph-csi-drivers/values.yaml",
         "980bb85074b7678005b50ffa8ae1db5b7b49156d547b53241c014e12ef609310"),
        ("ceph-csi-operator/chart/values", "deploy/charts/ceph-csi-operator/values.yaml",
         "49912b895bf3ec9ecccc6fd4049387ac2517f7ed1f5e0de1209626682ab24795"),
    ]),
    **_pins(*_TRAINER, "the Kubeflow training operator v1 (kustomize manifests; no chart)", [
        ("training-operator/crd/pytorchjobs", "manifests/base/crds/kubeflow.org_pytorchjobs.yaml",
         "8b8a8a719cc94173169290251e817f7ac2bb425c20b6c2fa813397bcf4e932ed"),
        ("training-operator/crd/tfjobs", "manifests/base/crds/kubeflow.org_tfjobs.yaml",
         "6028ab677922ee558d279c9cc2028500372875eec327ed6819fc4dc2796cda9e"),
        ("training-operator/deployment", "manifests/base/deployment.yaml",
         "39ceb09edbeb534c3754406ff17ad4d3aab1fa54f5475d27a25b80141eba0f42"),
        ("training-operator/service", "manifests/base/service.yaml",
         "0f569f381983ee755057b6def5c6efbb0a0035ec5164c430e4770d3b8039be29"),
        ("training-operator/rbac/cluster-role-binding", "manifests/base/rbac/cluster-role-binding.yaml",
         "1ceb86a84c06df8c2f407a63bf622006688d5a471113f6c3799ce9ff02646a5e"),
        ("training-operator/rbac/role", "manifests/base/rbac/role.yaml",
         "59ea515dae86e0fd479ac8f4b88a17c10ee21f8da054a13edd5e120ed1f01d90"),
        ("training-operator/rbac/service-account", "manifests/base/rbac/service-account.yaml",
         "01459d2413879864fc0c4d792e982aa6cb5aede31a9004c28ede920933846a61"),
        ("training-operator/webhook/manifests", "manifests/base/webhook/manifests.yaml",
         "abc4ea6710c0eb760f30dff04a9e6a34f0aad351bf38bfaa878c27c0d5d00c63"),
        ("training-operator/webhook/patch", "manifests/base/webhook/patch.yaml",
         "ebdf0d8c5895a26f766568a98c9dd5fbdd0f682d2ce4813de06c6b3a42465b95"),
        ("training-operator/overlay/kustomization", "manifests/overlays/standalone/kustomization.yaml",
         "a992a582146a282543db480fe8bd42e6d6f5516eb38c46968b55731670c022c3"),
        ("training-operator/overlay/namespace", "manifests/overlays/standalone/namespace.yaml",
         "2fb035fc9616396197c0165a5947363220570750457a9ef7f2ddf434a774301d"),
    ]),
    **_pins(*_PROM_OP, "prometheus-operator CRDs (the kinds the platform creates)", [
        ("prometheus-operator/crd/servicemonitors",
         "example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml",
         "a99047972c9dd7679ce2050b9968e8a08773492e671b3e17abd476d42aa78a32"),
        ("prometheus-operator/crd/podmonitors", "example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml",
         "45a93443daa687d3654f7e9631909ff7edcdf3ec09c5e60251b74aa2722aee5d"),
        ("prometheus-operator/crd/prometheusrules",
         "example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml",
         "78be98554b9c8506ab2b4f4feb91c5f3a56e536a0a510f3a8e876a459970d56d"),
    ]),
    **_pins(*_KPS, "kube-prometheus-stack chart and its local crds subchart", [
        ("kube-prometheus-stack/chart/values", "charts/kube-prometheus-stack/values.yaml",
         "1f48bc745824dc620282a65903f979470f9845a304b3ada4952b9ca1b672f85b"),
        ("kube-prometheus-stack/chart/chart", "charts/kube-prometheus-stack/Chart.yaml",
         "3a98dbcd32b9f779e782c42dbd5c703e86c23a2418a91ab939726d446f608ce8"),
        ("kube-prometheus-stack/subchart/crds/values", "charts/kube-prometheus-stack/charts/crds/values.yaml",
         "9edf73692a7052a101fc6470a78dce0954d457ca85373ac5e14ec1d724593c66"),
    ]),
    **_pins("prometheus-community/helm-charts", "kube-state-metrics-7.2.2", "subchart of kube-prometheus-stack", [
        ("kube-state-metrics/chart/values", "charts/kube-state-metrics/values.yaml",
         "ced6a5278cdfd49f87b7dbe2a193918c77095f565e1be6454df84fa8e966c9e7"),
    ]),
    **_pins("prometheus-community/helm-charts", "prometheus-node-exporter-4.53.0", "subchart of kube-prometheus-stack", [
        ("prometheus-node-exporter/chart/values", "charts/prometheus-node-exporter/values.yaml",
         "d44dc8746d9134d2d6c048683042c491abe715301ced1f9131f035a5c8f1e772"),
    ]),
    **_pins("grafana-community/helm-charts", "grafana-11.3.7", "subchart of kube-prometheus-stack", [
        ("grafana/chart/values", "charts/grafana/values.yaml",
         "7a2d5385664191c74b3b5928c175b9905aef4416e26361328ff21a76dc616d90"),
    ]),
    **_pins(*_KEDA, "KEDA's ScaledObject CRD: the base file plus its kustomize patch", [
        ("keda/crd/scaledobjects", "config/crd/bases/keda.sh_scaledobjects.yaml",
         "af35555862a83933b074af14ad439c4b4ceabaf4daa3e9338e9b23e36d308d80"),
        ("keda/crd/scaledobjects-patch", "config/crd/patches/scaledobject_patch.yaml",
         "f21566df017a65b1116957bc379d4ef8ff129e69e0fe0389700f6a98ec7c7da5"),
    ]),
    **_pins(*_SNAPSHOT, "the VolumeSnapshotClass CRD (the snapshot-controller EKS add-on serves it)", [
        ("snapshot/crd/volumesnapshotclasses", "client/config/crd/snapshot.storage.k8s.io_volumesnapshotclasses.yaml",
         "75e6565aac2c0f2949ed13ea884bbaa388cb7be576b558b709cf1168e011828d"),
    ]),
    **_pins(*_KUEUE, "Kueue CRDs and chart", [
        (f"kueue/crd/{plural}", f"config/components/crd/bases/kueue.x-k8s.io_{plural}.yaml", sha)
        for plural, sha in (
            ("clusterqueues", "e0a5fc9b370c70f3d993d4f599865817338ecf94187b30b15b12ff33c579bd55"),
            ("localqueues", "dd10ef8d3578e7212fa52763549e7b6be0949793a5b924495fcd293330109fed"),
            ("resourceflavors", "19e339c47e9ca3fa2c9eeddd27715a512f765c4794ed859733408a9715720173"),
            ("cohorts", "61fbe5ec55d45e7fae2d65321fb32517b197257ab78ad55316673183aac911c2"),
            ("workloadpriorityclasses", "0b755726aab05b8def9a53ee15b201eed3846bcffd1ff5528fed123f4ae03519"),
            ("admissionchecks", "2bf4003c0a3ea3d6ceab940c7a271ad211372dab59d2739acfa8b2bdb0724acb"),
            ("provisioningrequestconfigs", "0399b2689d7468c64a1ef4e3c8bf9603c261a152f822b6698903b23f69e790dc"),
            ("topologies", "f703575d3bb64d26f6e839f831e01646367ed41a89b3abf163f8e842ca1c4d2b"),
        )
    ] + [
        ("kueue/chart/values", "charts/kueue/values.yaml", "b09fa9b4ab3db548fab0cddffae88f71599f4f3697b3635a044c2d531b2e97c0"),
    ]),
    **_pins(*_LBC, "the AWS Load Balancer Controller's IAM policy for its app version, per partition", [
        ("aws-load-balancer-controller/iam-policy/aws", "docs/install/iam_policy.json",
         "16f232c9d9f79366fe949c4550ad517a202380058a9e48d45a4e215044a20a6a"),
        ("aws-load-balancer-controller/iam-policy/aws-cn", "docs/install/iam_policy_cn.json",
         "b1ac7c188d27a2cdb3095c7efd8376cd21705fe75d6ce91715558a85987b25bc"),
        ("aws-load-balancer-controller/iam-policy/aws-us-gov", "docs/install/iam_policy_us-gov.json",
         "eff0caf0b8f205e63e09ee1ea37a90fba6a87a417ac40fc83da50b204a55f372"),
    ]),
    **_pins(*_EKS_CHARTS, "the aws-load-balancer-controller chart 3.5.0 as published", [
        ("aws-load-balancer-controller/chart/values", "stable/aws-load-balancer-controller/values.yaml",
         "c330e0b3aaeed9d6b75e70564563dcdb231ee970db587f23eff5c013461f2dd4"),
    ]),
    **_pins(*_EKS_CHARTS, "the aws-efa-k8s-device-plugin chart v0.5.30 (app v0.5.20) as published", [
        ("aws-efa-k8s-device-plugin/chart/values", "stable/aws-efa-k8s-device-plugin/values.yaml",
         "a2ca624e12b53dab0317a8437c8a4d095d695daad40bc616299c50083efd2441"),
        ("aws-efa-k8s-device-plugin/chart/chart", "stable/aws-efa-k8s-device-plugin/Chart.yaml",
         "d040cb7de43b3f1815ec85e58c628ca1ed42c8430231aadebf57120bba00035f"),
    ]),
    **_pins(*_NVIDIA_DP, "the NVIDIA device plugin chart", [
        ("nvidia-device-plugin/chart/values", "deployments/helm/nvidia-device-plugin/values.yaml",
         "a4a46a7f6b521dc3b3329175f1e11288805c21ef1a23914ea827ee19d864e2e3"),
    ]),
    **_pins(*_DCGM, "the DCGM exporter chart and its default counters", [
        ("dcgm-exporter/chart/values", "deployment/values.yaml",
         "f3d8522a4c720e2f7fcda86bbd4aa852d39b3908a4ffd202b7479aab1dbac4fa"),
        ("dcgm-exporter/default-counters", "etc/default-counters.csv",
         "13d8c92cffa649f17c4c0938bb16707daf27260e845c77eacf89dbb68a46eaf9"),
    ]),
}

