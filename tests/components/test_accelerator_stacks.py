"""The accelerator stacks of issue #23 (tests/components/accel_stacks/), rendered and checked.

Each stack renders under the preview mocks, passes ``python -m infra check --manifests`` (schemas,
the CRDs' CEL rules, policy; checkov aside) and shows the fields its capability adds.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from infra.check.cli import main as check_main
from infra.check.helm_values import check_preview
from infra.preview.render import REPO, render
from tests.conftest import manifests, states

pytestmark = pytest.mark.manifests

STACKS = Path(__file__).resolve().parent / "accel_stacks"
_RENDERS: dict[str, object] = {}


def rendered(stack: str, root: Path):
    """Render ``Pulumi.<stack>.yaml`` of accel_stacks once per session."""
    if stack not in _RENDERS:
        proj = root / stack
        proj.mkdir()
        shutil.copy(REPO / "Pulumi.yaml", proj / "Pulumi.yaml")
        shutil.copy(STACKS / f"Pulumi.{stack}.yaml", proj / f"Pulumi.{stack}.yaml")
        _RENDERS[stack] = render(stack, proj / "out", project_dir=proj)
    return _RENDERS[stack]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("accel")


def by_kind_name(result, kind: str) -> dict[str, dict]:
    return {m["metadata"]["name"]: m for m in manifests(result, kind)}


def requirements(pool: dict) -> dict[str, list[str]]:
    return {r["key"]: r["values"] for r in pool["spec"]["template"]["spec"]["requirements"]}


@pytest.mark.parametrize("stack", ["accel-reserved", "accel-efa"])
def test_the_stack_passes_check(stack, root, capsys):
    rendered(stack, root)
    assert check_main(["--manifests", str(root / stack / "out" / "manifests"), "--no-checkov"]) == 0, \
        capsys.readouterr().out
    assert "no findings" in capsys.readouterr().out


def test_reserved_pools_select_their_reservations(root):
    result = rendered("accel-reserved", root)
    classes, pools = by_kind_name(result, "EC2NodeClass"), by_kind_name(result, "NodePool")
    assert classes["block"]["spec"]["capacityReservationSelectorTerms"] == [{"id": "cr-0a1b2c3d4e5f60718"}]
    assert classes["odcr"]["spec"]["capacityReservationSelectorTerms"] == [
        {"tags": {"purpose": "serving", "team": "ml-platform"}, "ownerID": "123456789012"}]
    assert "capacityReservationSelectorTerms" not in classes["cpu"]["spec"]
    block = requirements(pools["block"])
    assert block["karpenter.sh/capacity-type"] == ["reserved"]
    assert block["karpenter.k8s.aws/capacity-reservation-type"] == ["capacity-block"]
    odcr = requirements(pools["odcr"])
    assert odcr["karpenter.sh/capacity-type"] == ["reserved", "on-demand"]  # reserved first, then the fallback
    assert "karpenter.k8s.aws/capacity-reservation-type" not in odcr  # on-demand nodes carry no such label


def test_node_health_is_on(root):
    result = rendered("accel-reserved", root)
    addons = {s["inputs"]["addonName"] for s in states(result, "aws:eks/addon:Addon")}
    assert "eks-node-monitoring-agent" in addons
    (ctl,) = [s for s in states(result, "kubernetes:helm.sh/v3:Release") if s["inputs"]["name"] == "karpenter"]
    assert ctl["inputs"]["values"]["settings"]["featureGates"] == {"nodeRepair": True, "reservedCapacity": True}
    (rule,) = manifests(result, "PrometheusRule")
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    assert "DCGM_FI_DEV_XID_ERRORS" in alerts["GpuXidError"]["expr"]
    assert "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL" in alerts["GpuEccDoubleBitErrors"]["expr"]
    (dcgm,) = [s for s in states(result, "kubernetes:helm.sh/v3:Release") if s["inputs"]["name"] == "dcgm-exporter"]
    assert "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL, counter" in dcgm["inputs"]["values"]["customMetrics"]


def release_values(result, name: str) -> dict:
    (rel,) = [s for s in states(result, "kubernetes:helm.sh/v3:Release") if s["inputs"]["name"] == name]
    return rel["inputs"]


def test_efa_training_pool_gets_the_efa_plugin_and_the_job_requests_efa(root):
    result = rendered("accel-efa", root)
    pools, classes = by_kind_name(result, "NodePool"), by_kind_name(result, "EC2NodeClass")
    assert requirements(pools["train"])["node.kubernetes.io/instance-type"] == ["p5.4xlarge", "p5.48xlarge"]
    assert pools["train"]["spec"]["template"]["metadata"]["labels"]["eks-ml-platform/efa"] == "true"
    # Karpenter attaches the EFA interfaces itself when a NodeClaim requests vpc.amazonaws.com/efa
    assert "networkInterfaces" not in classes["train"]["spec"]
    efa = release_values(result, "aws-efa-k8s-device-plugin")
    assert (efa["chart"], efa["version"], efa["namespace"]) == ("aws-efa-k8s-device-plugin", "v0.5.30", "kube-system")
    assert efa["values"]["nodeSelector"] == {"eks-ml-platform/efa": "true"}
    (job,) = manifests(result, "PyTorchJob")
    for replica in job["spec"]["pytorchReplicaSpecs"].values():
        (c,) = replica["template"]["spec"]["containers"]
        assert c["resources"]["limits"]["vpc.amazonaws.com/efa"] == "32"
        assert {"name": "FI_PROVIDER", "value": "efa"} in c["env"]


def test_kueue_admits_the_efa_job_every_resource_it_requests_is_quota_or_excluded(root):
    """Kueue never admits a job that requests a resource no flavor covers: the EFA interfaces must be
    excluded in its Configuration, and everything else the job asks for must be in the ClusterQueue."""
    result = rendered("accel-efa", root)
    (job,) = manifests(result, "PyTorchJob")
    requested = {r for replica in job["spec"]["pytorchReplicaSpecs"].values()
                 for c in replica["template"]["spec"]["containers"]
                 for part in ("requests", "limits") for r in c["resources"].get(part, {})}
    assert "vpc.amazonaws.com/efa" in requested
    (queue,) = [m for m in manifests(result, "ClusterQueue")]
    covered = {r for g in queue["spec"]["resourceGroups"] for r in g["coveredResources"]}
    kueue = release_values(result, "kueue")["values"]
    excluded = yaml.safe_load(kueue["managerConfig"]["controllerManagerConfigYaml"])["resources"][
        "excludeResourcePrefixes"]
    assert {r for r in requested if not any(r.startswith(p) for p in excluded)} <= covered


def test_time_sliced_serving_pool_shares_only_its_own_gpus(root):
    result = rendered("accel-efa", root)
    pools = by_kind_name(result, "NodePool")
    assert pools["serve"]["spec"]["template"]["metadata"]["labels"]["nvidia.com/device-plugin.config"] == \
        "serving-time-slicing"
    assert "nvidia.com/device-plugin.config" not in pools["train"]["spec"]["template"]["metadata"]["labels"]
    config = release_values(result, "nvidia-device-plugin")["values"]["config"]
    assert config["default"] == "default" and "replicas: 4" in config["map"]["serving-time-slicing"]
    (deploy,) = [d for d in manifests(result, "Deployment") if d["metadata"]["name"] == "sentiment"]
    pod = deploy["spec"]["template"]["spec"]
    assert pod["nodeSelector"]["nvidia.com/device-plugin.config"] == "serving-time-slicing"
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    report = check_preview(result.preview)
    assert report.ok and "aws-efa-k8s-device-plugin: aws-efa-k8s-device-plugin v0.5.30" in report.checked
