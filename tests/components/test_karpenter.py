"""Karpenter's pure builders: NodePool and EC2NodeClass specs, Helm values, IAM and interruption documents."""
from __future__ import annotations

import json

import pytest

from components.karpenter.iam import INTERRUPTION_EVENTS, controller_policies, queue_policy
from components.karpenter.node_pools import node_class_spec, node_pool_spec
from components.karpenter.settings import KarpenterSettings
from components.karpenter.values import KARPENTER_METRICS, karpenter_values
from infra.config import parse_config
from infra.versions import AMI_ALIAS
from policy.manifest_rules import check_ami_pinned, check_imdsv2, check_nodepool_limits

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def cfg():
    return parse_config({"cluster": {"name": "ml-test"}, "tags": {"team": "ml"}}, stack="dev")


@pytest.fixture(scope="module")
def pools(cfg):
    return {p.name: p for p in cfg.pools}


def reqs(spec):
    return {r["key"]: (r["operator"], r["values"]) for r in spec["template"]["spec"]["requirements"]}


# ------------------------------------------------------------------ NodePools
def test_gpu_pool_requirements_taints_limits(pools):
    spec = node_pool_spec(pools["gpu"])
    r = reqs(spec)
    assert r["karpenter.k8s.aws/instance-family"] == ("In", ["g5", "g6", "g6e"])
    assert r["karpenter.sh/capacity-type"] == ("In", ["spot", "on-demand"])  # spot with on-demand fallback
    assert r["kubernetes.io/arch"] == ("In", ["amd64"]) and r["kubernetes.io/os"] == ("In", ["linux"])
    assert spec["template"]["spec"]["taints"] == [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}]
    assert spec["limits"] == {"cpu": "96", "memory": "768Gi", "nvidia.com/gpu": "4"}
    assert spec["template"]["metadata"]["labels"] == {"eks-ml-platform/pool": "gpu", "eks-ml-platform/accelerator": "nvidia"}
    d = spec["disruption"]
    assert d["consolidationPolicy"] == "WhenEmpty" and d["consolidateAfter"] == "5m"
    assert d["budgets"] == [{"nodes": "20%"}]
    assert spec["template"]["spec"]["nodeClassRef"] == {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "gpu"}


def test_inf1_pool_requirements_taints_limits(pools):
    spec = node_pool_spec(pools["inf1"])
    r = reqs(spec)
    assert r["karpenter.k8s.aws/instance-family"] == ("In", ["inf1"])
    assert r["karpenter.k8s.aws/instance-size"] == ("In", ["xlarge"])  # inf1.xlarge, as in the seed
    assert r["karpenter.sh/capacity-type"] == ("In", ["spot"])  # dev: spot
    assert spec["template"]["spec"]["taints"] == [{"key": "aws.amazon.com/neuron", "effect": "NoSchedule"}]
    assert spec["limits"]["aws.amazon.com/neuron"] == "4" and spec["limits"]["cpu"] == "32"
    assert "nvidia.com/gpu" not in spec["limits"]
    assert spec["template"]["metadata"]["labels"] == {"eks-ml-platform/pool": "inf1", "eks-ml-platform/accelerator": "neuron"}
    assert spec["disruption"]["consolidationPolicy"] == "WhenEmpty"


def test_cpu_pool_is_untainted_and_consolidates_underutilized(pools):
    spec = node_pool_spec(pools["cpu"])
    assert "taints" not in spec["template"]["spec"]
    assert "instance-size" not in json.dumps(spec)
    assert spec["disruption"]["consolidationPolicy"] == "WhenEmptyOrUnderutilized"
    assert spec["template"]["metadata"]["labels"] == {"eks-ml-platform/pool": "cpu"}
    assert check_nodepool_limits({"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "cpu"},
                                  "spec": spec}) == []


def test_user_labels_weight_and_scheduled_budgets():
    cfg = parse_config({"nodePools": [{
        "name": "batch", "instanceFamilies": ["c7i"], "limits": {"cpu": 8}, "weight": 10, "labels": {"team": "ml"},
        "budgets": [{"nodes": "0", "reasons": ["Underutilized"], "schedule": "0 9 * * mon-fri", "duration": "8h"}],
    }], "training": {"enabled": False}, "serving": {"enabled": False}}, stack="dev")
    spec = node_pool_spec(cfg.pools[0])
    assert spec["weight"] == 10
    assert spec["template"]["metadata"]["labels"] == {"team": "ml", "eks-ml-platform/pool": "batch"}
    assert spec["disruption"]["budgets"] == [
        {"nodes": "0", "reasons": ["Underutilized"], "schedule": "0 9 * * mon-fri", "duration": "8h"}]


# ------------------------------------------------------------------ EC2NodeClass
def test_node_class_imdsv2_encrypted_gp3_and_pinned_alias(cfg, pools):
    for name, size in (("cpu", "50Gi"), ("gpu", "200Gi"), ("inf1", "150Gi")):
        spec = node_class_spec(KarpenterSettings.from_config(cfg), pools[name], role="node-role")
        assert spec["metadataOptions"] == {"httpEndpoint": "enabled", "httpProtocolIPv6": "disabled",
                                           "httpPutResponseHopLimit": 1, "httpTokens": "required"}
        (root,) = spec["blockDeviceMappings"]
        assert root == {"deviceName": "/dev/xvda", "rootVolume": True,
                        "ebs": {"volumeSize": size, "volumeType": "gp3", "encrypted": True, "deleteOnTermination": True}}
        assert spec["amiSelectorTerms"] == [{"alias": AMI_ALIAS}]
        assert spec["role"] == "node-role"
        obj = {"apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass", "metadata": {"name": name}, "spec": spec}
        assert check_imdsv2(obj) == [] and check_ami_pinned(obj) == []
    assert AMI_ALIAS.startswith("al2023@v") and "latest" not in AMI_ALIAS


def test_node_class_selectors_and_tags(cfg, pools):
    spec = node_class_spec(KarpenterSettings.from_config(cfg), pools["inf1"], role="r")
    assert spec["subnetSelectorTerms"] == [{"tags": {"karpenter.sh/discovery": "ml-test"}}]
    assert {"tags": {"karpenter.sh/discovery": "ml-test"}} in spec["securityGroupSelectorTerms"]
    assert {"tags": {"aws:eks:cluster-name": "ml-test"}} in spec["securityGroupSelectorTerms"]
    tags = spec["tags"]
    assert tags["eks-ml-platform/cluster"] == "ml-test" and tags["eks-ml-platform/pool"] == "inf1" and tags["team"] == "ml"
    # Karpenter sets these itself and its CRD rejects them in spec.tags
    assert not [k for k in tags if k.startswith(("kubernetes.io/cluster", "karpenter.sh/", "eks:"))]


def test_pool_overrides_for_alias_and_hop_limit():
    cfg = parse_config({"nodePools": [{
        "name": "ray", "instanceFamilies": ["m7i"], "limits": {"cpu": 8}, "amiAlias": "al2023@v20260625",
        "imdsHopLimit": 2, "rootVolumeGib": 80,
    }], "training": {"enabled": False}, "serving": {"enabled": False}}, stack="dev")
    spec = node_class_spec(KarpenterSettings.from_config(cfg), cfg.pools[0], role="r")
    assert spec["amiSelectorTerms"] == [{"alias": "al2023@v20260625"}]
    assert spec["metadataOptions"]["httpPutResponseHopLimit"] == 2
    assert spec["blockDeviceMappings"][0]["ebs"]["volumeSize"] == "80Gi"


# ------------------------------------------------------------------ Helm values
def test_values_wire_the_queue_and_run_on_system_nodes(cfg):
    values = karpenter_values(KarpenterSettings.from_config(cfg), queue_name="ml-test-karpenter-interruption", cluster_endpoint="https://x")
    assert values["settings"] == {"clusterName": "ml-test", "interruptionQueue": "ml-test-karpenter-interruption",
                                  "clusterEndpoint": "https://x",
                                  "featureGates": {"nodeRepair": True, "reservedCapacity": True}}
    assert values["nodeSelector"]["eks-ml-platform/node-role"] == "system"
    assert {"key": "CriticalAddonsOnly", "operator": "Exists", "effect": "NoSchedule"} in values["tolerations"]
    assert values["serviceAccount"] == {"create": True, "name": "karpenter"}
    res = values["controller"]["resources"]
    assert res["limits"]["memory"] and res["requests"]["cpu"]
    assert values["serviceMonitor"] == {"enabled": False}


# ------------------------------------------------------------------ IAM and interruption
@pytest.fixture(scope="module")
def policies():
    return controller_policies(cluster="ml-test", region="us-west-2", partition="aws", account_id="123456789012",
                                  node_role_arn="arn:aws:iam::123456789012:role/node", queue_arn="arn:aws:sqs:q")


def statements(policies):
    return [s for doc in policies.values() for s in doc["Statement"]]


def actions(stmt):
    a = stmt["Action"]
    return [a] if isinstance(a, str) else a


def test_policy_has_list_instance_profiles(policies):
    assert any("iam:ListInstanceProfiles" in actions(s) for s in statements(policies))


def test_every_write_is_scoped_to_this_clusters_tags(policies):
    writes = ("ec2:CreateFleet", "ec2:CreateLaunchTemplate", "ec2:CreateTags", "ec2:TerminateInstances",
              "ec2:DeleteLaunchTemplate", "iam:CreateInstanceProfile", "iam:TagInstanceProfile",
              "iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile", "iam:DeleteInstanceProfile")
    for s in statements(policies):
        if s["Sid"] == "AllowScopedEC2InstanceAccessActions":
            continue  # RunInstances/CreateFleet on images, subnets, SGs: shared resources, no tags to match
        for action in actions(s):
            if action in writes:
                cond = json.dumps(s.get("Condition", {}))
                assert ("aws:RequestTag/kubernetes.io/cluster/ml-test" in cond
                        or "aws:ResourceTag/kubernetes.io/cluster/ml-test" in cond), (s["Sid"], action)
    deletion = next(s for s in statements(policies) if s["Sid"] == "AllowScopedDeletion")
    assert deletion["Condition"]["StringEquals"] == {"aws:ResourceTag/kubernetes.io/cluster/ml-test": "owned"}
    assert deletion["Condition"]["StringLike"] == {"aws:ResourceTag/karpenter.sh/nodepool": "*"}


def test_pass_role_only_the_node_role_to_ec2(policies):
    (stmt,) = [s for s in statements(policies) if "iam:PassRole" in actions(s)]
    assert stmt["Resource"] == "arn:aws:iam::123456789012:role/node"
    assert stmt["Condition"]["StringEquals"]["iam:PassedToService"] == ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"]


def test_queue_access_and_cluster_discovery(policies):
    q = policies["interruption"]["Statement"][0]
    assert q["Resource"] == "arn:aws:sqs:q" and set(q["Action"]) == {"sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"}
    assert policies["eks-integration"]["Statement"][0]["Resource"] == "arn:aws:eks:us-west-2:123456789012:cluster/ml-test"
    for doc in policies.values():
        assert len(json.dumps(doc)) < 6144  # the IAM managed-policy size limit


def test_queue_policy_allows_eventbridge_and_denies_plain_http():
    doc = queue_policy("arn:aws:sqs:us-west-2:1:q")
    allow, deny = doc["Statement"]
    assert allow["Principal"]["Service"] == ["events.amazonaws.com", "sqs.amazonaws.com"]
    assert allow["Action"] == "sqs:SendMessage"
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_interruption_events_cover_the_five_event_kinds():
    kinds = {d for p in INTERRUPTION_EVENTS.values() for d in p["detail-type"]}
    assert kinds == {"EC2 Spot Instance Interruption Warning", "EC2 Instance Rebalance Recommendation",
                     "EC2 Instance State-change Notification", "AWS Health Event",
                     "EC2 Capacity Reservation Instance Interruption Warning"}


def test_metric_names_are_karpenter_v1_names():
    assert {"karpenter_nodeclaims_created_total", "karpenter_nodepools_usage",
            "karpenter_nodeclaims_disrupted_total"} <= set(KARPENTER_METRICS)
    assert all(m.startswith("karpenter_") for m in KARPENTER_METRICS)
    assert len(set(KARPENTER_METRICS)) == len(KARPENTER_METRICS)
