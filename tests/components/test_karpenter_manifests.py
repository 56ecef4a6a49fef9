"""Karpenter and the accelerator add-ons as the stacks render them (the real program under mocks)."""
from __future__ import annotations

import json
import shutil

import pytest

from infra.check.checkov import run_checkov
from infra.check.objects import validate_objects
from infra.preview.render import dump_yaml, render
from policy.manifest_rules import check_manifest
from tests.conftest import REPO, by_name, manifests, states

pytestmark = pytest.mark.manifests

RELEASE = "kubernetes:helm.sh/v3:Release"
STACKS = ("dev", "staging", "prod")
MY_KINDS = ("NodePool", "EC2NodeClass", "PriorityClass")


@pytest.fixture(params=STACKS)
def stack(request):
    return request.getfixturevalue(request.param)


def urn_of(result, type_, name):
    return by_name(result, type_, name)["urn"]


def release(result, release_name):
    found = [s for s in states(result, RELEASE) if s["inputs"].get("name") == release_name]
    assert len(found) == 1, f"release {release_name}: {len(found)} found"
    return found[0]


def deps(state):
    return set(state["dependencies"])


def cluster_ready_urns(result):
    """The cluster_ready gate: the EKS cluster, the system node group and the EKS add-ons."""
    gate = [s["urn"] for s in states(result) if s["type"] in ("eks:index:Cluster", "aws:eks/nodeGroup:NodeGroup",
                                                               "aws:eks/addon:Addon")]
    assert len(gate) >= 7, gate
    return set(gate)


# ------------------------------------------------------------------ NodePools and EC2NodeClasses
def test_three_nodepools_and_their_nodeclasses(stack):
    pools = {m["metadata"]["name"]: m for m in manifests(stack, "NodePool")}
    classes = {m["metadata"]["name"]: m for m in manifests(stack, "EC2NodeClass")}
    # dev: the seed's three; staging and prod add inf2 beside inf1 (they serve on it)
    assert sorted(pools) == (["cpu", "gpu", "inf1"] if stack.cfg.environment == "dev" else ["cpu", "gpu", "inf1", "inf2"])
    assert sorted(classes) == sorted(pools)
    for name, pool in pools.items():
        assert pool["apiVersion"] == "karpenter.sh/v1" and classes[name]["apiVersion"] == "karpenter.k8s.aws/v1"
        assert pool["spec"]["template"]["spec"]["nodeClassRef"]["name"] in classes
        assert pool["spec"]["template"]["metadata"]["labels"]["eks-ml-platform/pool"] == name
        assert "cpu" in pool["spec"]["limits"]


def test_manifests_validate_against_upstream_crds(stack):
    for group, kind in (("karpenter.sh", "NodePool"), ("karpenter.k8s.aws", "EC2NodeClass")):
        objs = manifests(stack, kind)
        report = validate_objects(objs, k8s_version=stack.cfg.cluster.version, crd_dir=None)
        assert [str(f) for f in report.findings] == []
        cov = report.coverage[f"{objs[0]['apiVersion']}/{kind}"]
        assert cov.objects == len(stack.cfg.pools) >= 3 and cov.how.startswith("CRD schema")
    core = [m for m in manifests(stack) if m["kind"] in ("PriorityClass", "DaemonSet", "Namespace", "Service", "NetworkPolicy")
            and m["metadata"]["name"] in ("ml-serving", "ml-training", "neuron-monitor", "nvidia-device-plugin")]
    assert len(core) >= 4
    report = validate_objects(core, k8s_version=stack.cfg.cluster.version, crd_dir=None)
    assert [str(f) for f in report.findings] == []


def test_gpu_and_inf1_pools(stack):
    pools = {m["metadata"]["name"]: m["spec"] for m in manifests(stack, "NodePool")}
    for name, taint, family, resource, kind in (("gpu", "nvidia.com/gpu", "g5", "nvidia.com/gpu", "nvidia"),
                                                 ("inf1", "aws.amazon.com/neuron", "inf1", "aws.amazon.com/neuron", "neuron")):
        spec = pools[name]
        req = {r["key"]: r["values"] for r in spec["template"]["spec"]["requirements"]}
        assert family in req["karpenter.k8s.aws/instance-family"]
        assert spec["template"]["spec"]["taints"] == [{"key": taint, "effect": "NoSchedule"}]
        assert int(spec["limits"][resource]) > 0
        assert spec["template"]["metadata"]["labels"]["eks-ml-platform/accelerator"] == kind
        assert spec["disruption"]["consolidationPolicy"] == "WhenEmpty" and spec["disruption"]["budgets"]
    inf1_req = {r["key"]: r["values"] for r in pools["inf1"]["template"]["spec"]["requirements"]}
    assert set(inf1_req["karpenter.k8s.aws/instance-family"]) == {"inf1"}
    if stack.cfg.environment == "dev":
        assert inf1_req["karpenter.sh/capacity-type"] == ["spot"] and inf1_req["karpenter.k8s.aws/instance-size"] == ["xlarge"]
    else:
        assert inf1_req["karpenter.sh/capacity-type"] == ["spot", "on-demand"]


def test_nodeclasses_imdsv2_encrypted_volumes_pinned_ami(stack):
    for nc in manifests(stack, "EC2NodeClass"):
        spec = nc["spec"]
        assert spec["metadataOptions"]["httpTokens"] == "required"
        assert spec["metadataOptions"]["httpPutResponseHopLimit"] == 1
        (root,) = spec["blockDeviceMappings"]
        assert root["rootVolume"] is True and root["ebs"]["encrypted"] is True and root["ebs"]["volumeType"] == "gp3"
        alias = spec["amiSelectorTerms"][0]["alias"]
        assert alias.startswith("al2023@v") and not alias.endswith("latest")
        assert spec["tags"]["eks-ml-platform/cluster"] == stack.cfg.cluster_name
        assert spec["subnetSelectorTerms"] == [{"tags": {"karpenter.sh/discovery": stack.cfg.cluster_name}}]
    sizes = {nc["metadata"]["name"]: int(nc["spec"]["blockDeviceMappings"][0]["ebs"]["volumeSize"].removesuffix("Gi"))
             for nc in manifests(stack, "EC2NodeClass")}
    assert sizes["gpu"] > sizes["cpu"] and sizes["inf1"] > sizes["cpu"]


# ------------------------------------------------------------------ releases and dependency edges
def test_releases_pinned_and_crds_owned_by_one_release(stack):
    crd, ctl = release(stack, "karpenter-crd"), release(stack, "karpenter")
    assert crd["inputs"]["chart"] == "oci://public.ecr.aws/karpenter/karpenter-crd"
    assert ctl["inputs"]["chart"] == "oci://public.ecr.aws/karpenter/karpenter"
    assert crd["inputs"]["version"] == ctl["inputs"]["version"] == "1.14.1"
    assert ctl["inputs"]["skipCrds"] is True  # karpenter-crd alone owns the CRDs
    assert not crd["inputs"].get("skipCrds")
    for r in (crd, ctl):
        assert r["inputs"]["namespace"] == "kube-system" and r["inputs"]["skipAwait"] is False
        assert r["inputs"]["atomic"] is True and r["inputs"]["cleanupOnFail"] is True
    assert crd["urn"] in deps(ctl)


def test_release_depends_on_cluster_ready(stack):
    gate = cluster_ready_urns(stack)
    for name in ("karpenter-crd", "karpenter"):
        assert gate <= deps(release(stack, name)), name


def test_nodepools_and_nodeclasses_depend_on_the_release(stack):
    ctl, crd = release(stack, "karpenter")["urn"], release(stack, "karpenter-crd")["urn"]
    for kind, prefix in (("NodePool", "nodepool"), ("EC2NodeClass", "nodeclass")):
        for pool in ("cpu", "gpu", "inf1"):
            st = by_name(stack, f"kubernetes:{'karpenter.sh' if kind == 'NodePool' else 'karpenter.k8s.aws'}/v1:{kind}",
                         f"ml-karpenter-{prefix}-{pool}")
            assert {ctl, crd} <= deps(st), (kind, pool)
            if kind == "NodePool":
                assert urn_of(stack, "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass", f"ml-karpenter-nodeclass-{pool}") in deps(st)
                assert urn_of(stack, "aws:eks/accessEntry:AccessEntry", "ml-karpenter-node") in deps(st)
            else:
                assert urn_of(stack, "aws:iam/role:Role", "ml-karpenter-node") in deps(st)  # spec.role


def test_release_on_system_nodes(stack):
    values = release(stack, "karpenter")["inputs"]["values"]
    assert values["nodeSelector"]["eks-ml-platform/node-role"] == "system"
    assert {"key": "CriticalAddonsOnly", "operator": "Exists", "effect": "NoSchedule"} in values["tolerations"]
    assert values["settings"]["clusterName"] == stack.cfg.cluster_name


# ------------------------------------------------------------------ interruption queue
def test_interruption_queue_rules_and_chart_wiring(stack):
    cluster = stack.cfg.cluster_name
    queue = by_name(stack, "aws:sqs/queue:Queue", "ml-karpenter-interruption")
    assert queue["inputs"]["name"] == f"{cluster}-karpenter-interruption"
    assert queue["inputs"]["sqsManagedSseEnabled"] is True
    ctl = release(stack, "karpenter")
    assert ctl["inputs"]["values"]["settings"]["interruptionQueue"] == f"{cluster}-karpenter-interruption"
    assert queue["urn"] in deps(ctl)
    rules = [s for s in states(stack, "aws:cloudwatch/eventRule:EventRule") if "::ml-karpenter-" in s["urn"]]
    kinds = {json.loads(r["inputs"]["eventPattern"])["detail-type"][0] for r in rules}
    assert kinds == {"EC2 Spot Instance Interruption Warning", "EC2 Instance Rebalance Recommendation",
                     "EC2 Instance State-change Notification", "AWS Health Event",
                     "EC2 Capacity Reservation Instance Interruption Warning"}
    targets = [s for s in states(stack, "aws:cloudwatch/eventTarget:EventTarget") if "::ml-karpenter-" in s["urn"]]
    assert len(targets) == 5
    queue_arn = f"arn:aws:sqs:{stack.cfg.region}:123456789012:{cluster}-karpenter-interruption"
    assert {t["inputs"]["arn"] for t in targets} == {queue_arn}
    qp = json.loads(by_name(stack, "aws:sqs/queuePolicy:QueuePolicy", "ml-karpenter-interruption")["inputs"]["policy"])
    assert any(s["Effect"] == "Deny" and s["Condition"]["Bool"]["aws:SecureTransport"] == "false" for s in qp["Statement"])


# ------------------------------------------------------------------ IAM
def test_roles_pod_identity_and_node_access_entry(stack):
    controller = by_name(stack, "aws:iam/role:Role", "ml-karpenter-controller")
    trust = json.loads(controller["inputs"]["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    pia = by_name(stack, "aws:eks/podIdentityAssociation:PodIdentityAssociation", "ml-karpenter-controller")
    assert pia["inputs"]["namespace"] == "kube-system" and pia["inputs"]["serviceAccount"] == "karpenter"
    assert pia["inputs"]["clusterName"] == stack.cfg.cluster_name
    assert controller["urn"] in deps(pia)
    node = by_name(stack, "aws:iam/role:Role", "ml-karpenter-node")
    assert json.loads(node["inputs"]["assumeRolePolicy"])["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}
    entry = by_name(stack, "aws:eks/accessEntry:AccessEntry", "ml-karpenter-node")
    assert entry["inputs"]["type"] == "EC2_LINUX" and node["urn"] in deps(entry)
    node_policies = {s["inputs"]["policyArn"].rsplit("/", 1)[-1] for s in states(stack, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
                     if "::ml-karpenter-node-" in s["urn"]}
    assert node_policies == {"AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryPullOnly",
                             "AmazonSSMManagedInstanceCore"}


def test_controller_policy_scoped_and_lists_instance_profiles(stack):
    docs = [json.loads(s["inputs"]["policy"]) for s in states(stack, "aws:iam/policy:Policy")
            if "::ml-karpenter-controller-" in s["urn"]]
    assert len(docs) == 6
    text = json.dumps(docs)
    assert "iam:ListInstanceProfiles" in text
    assert f"aws:RequestTag/kubernetes.io/cluster/{stack.cfg.cluster_name}" in text
    assert f"aws:ResourceTag/kubernetes.io/cluster/{stack.cfg.cluster_name}" in text
    attached = [s for s in states(stack, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
                if "::ml-karpenter-controller-" in s["urn"]]
    assert len(attached) == 6
    ctl = release(stack, "karpenter")
    assert {a["urn"] for a in attached} <= deps(ctl)  # the controller starts with its permissions in place


# ------------------------------------------------------------------ accelerators
def test_accelerator_releases_pinned_and_placed(stack):
    plugin, dcgm, neuron = release(stack, "nvidia-device-plugin"), release(stack, "dcgm-exporter"), release(stack, "neuron")
    assert plugin["inputs"]["version"] == "0.18.2" and dcgm["inputs"]["version"] == "4.8.2"
    assert neuron["inputs"]["chart"] == "oci://public.ecr.aws/neuron/neuron-helm-chart"
    gpu_tol = [{"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"}]
    neuron_tol = [{"effect": "NoSchedule", "key": "aws.amazon.com/neuron", "operator": "Exists"}]
    assert plugin["inputs"]["values"]["tolerations"] == gpu_tol and dcgm["inputs"]["values"]["tolerations"] == gpu_tol
    assert neuron["inputs"]["values"]["devicePlugin"]["tolerations"] == neuron_tol
    gate = cluster_ready_urns(stack)
    for r in (plugin, dcgm, neuron):
        assert gate <= deps(r)
    ds = [m for m in manifests(stack, "DaemonSet") if m["metadata"]["name"] == "neuron-monitor"]
    assert len(ds) == 1 and ds[0]["spec"]["template"]["spec"]["tolerations"] == neuron_tol


def test_priority_classes(stack):
    pcs = {m["metadata"]["name"]: m for m in manifests(stack, "PriorityClass")}
    assert pcs["ml-serving"]["value"] == 100000 and pcs["ml-serving"]["preemptionPolicy"] == "PreemptLowerPriority"
    assert pcs["ml-training"]["value"] == 1000 and pcs["ml-training"]["preemptionPolicy"] == "Never"


def test_service_monitors_follow_the_monitoring_addon(stack):
    """ServiceMonitors exist only when kube-prometheus-stack (their CRD) is in the stack, and wait for it."""
    prom = [s for s in states(stack, RELEASE) if "kube-prometheus-stack" in str(s["inputs"].get("chart"))]
    mine = [s for s in states(stack, "kubernetes:monitoring.coreos.com/v1:ServiceMonitor")
            if any(f"::{n}" in s["urn"] for n in ("ml-karpenter-servicemonitor", "ml-accelerators-servicemonitor-"))]
    assert prom, "every shipped stack installs kube-prometheus-stack (the case without it is tested below)"
    names = sorted(s["urn"].split("::")[-1] for s in mine)
    assert names == ["ml-accelerators-servicemonitor-dcgm-exporter", "ml-accelerators-servicemonitor-neuron-monitor",
                     "ml-karpenter-servicemonitor"]
    for s in mine:
        assert prom[0]["urn"] in deps(s)


def test_my_manifests_pass_policy_and_checkov(dev, tmp_path):
    mine = [(f, m) for f, m in dev.manifests
            if m["kind"] in MY_KINDS or m["metadata"].get("namespace") in ("neuron-monitor", "nvidia-device-plugin")
            or m["metadata"]["name"] in ("neuron-monitor", "nvidia-device-plugin")]
    assert len(mine) >= 12
    assert [str(f) for _, m in mine for f in check_manifest(m)] == []
    for fname, obj in mine:
        (tmp_path / fname).write_text(dump_yaml(obj))
    assert [str(f) for f in run_checkov(tmp_path)] == []


# ------------------------------------------------------------------ a stack without accelerator pools
def test_cpu_only_stack_installs_no_device_plugins(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(REPO / "Pulumi.yaml", project / "Pulumi.yaml")
    (project / "Pulumi.cpuonly.yaml").write_text(dump_yaml({"config": {
        "aws:region": "us-west-2",
        "eks-ml-platform:cluster": {"name": "ml-cpuonly"},
        "eks-ml-platform:nodePools": [{"name": "general", "instanceFamilies": ["m7i"], "limits": {"cpu": 16}}],
        "eks-ml-platform:training": {"enabled": False},
        "eks-ml-platform:serving": {"enabled": False},
    }}))
    result = render("cpuonly", None, project_dir=project)
    assert [m["metadata"]["name"] for m in manifests(result, "NodePool")] == ["general"]
    names = {s["inputs"].get("name") for s in states(result, RELEASE)}
    assert {"karpenter", "karpenter-crd"} <= names
    assert not names & {"nvidia-device-plugin", "dcgm-exporter", "neuron"}
    assert [m for m in manifests(result, "DaemonSet") if m["metadata"]["name"] == "neuron-monitor"] == []
    assert sorted(m["metadata"]["name"] for m in manifests(result, "PriorityClass")) == ["ml-serving", "ml-training"]


def test_without_monitoring_no_scrape_object_is_created(tmp_path):
    """A stack with addons.monitoring off renders no ServiceMonitor or PodMonitor at all (their CRD would be
    missing), from any component: Karpenter, the accelerators, Ceph, the workloads."""
    from infra.preview.render import REPO, render

    (tmp_path / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
    stack = (REPO / "Pulumi.dev.yaml").read_text() + "  eks-ml-platform:addons:\n    monitoring:\n      enabled: false\n"
    (tmp_path / "Pulumi.dev.yaml").write_text(stack)
    result = render("dev", None, project_dir=tmp_path)
    assert not result.cfg.addons.monitoring.enabled
    kinds = {s["newState"]["type"] for s in result.preview["steps"]}
    assert not {k for k in kinds if k.startswith("kubernetes:monitoring.coreos.com/")}, kinds
    assert any(k == "kubernetes:karpenter.sh/v1:NodePool" for k in kinds)  # the rest of the stack is there
