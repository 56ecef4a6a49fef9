"""The real program under mocks: the VPC, the cluster and its node group, add-ons and their edges."""
from __future__ import annotations

import json

import pytest

from tests.conftest import by_name, states

pytestmark = pytest.mark.render

EKS = "eks:index:Cluster"
SUBNET = "aws:ec2/subnet:Subnet"
ADDON = "aws:eks/addon:Addon"


def test_dev_has_the_spine(dev):
    types = {s["type"] for s in states(dev)}
    for t in ("pulumi:pulumi:Stack", "aws:ec2/vpc:Vpc", SUBNET, EKS, "aws:eks/nodeGroup:NodeGroup", ADDON,
              "aws:kms/key:Key", "pulumi:providers:kubernetes", "pulumi:providers:aws"):
        assert t in types, t
    addons = {s["inputs"]["addonName"] for s in states(dev, ADDON)}
    assert addons == {"vpc-cni", "coredns", "kube-proxy", "eks-pod-identity-agent", "aws-ebs-csi-driver",
                      "snapshot-controller", "metrics-server", "eks-node-monitoring-agent"}


@pytest.mark.parametrize("fixture, azs, nats", [("dev", 2, 1), ("prod", 3, 3)])
def test_vpc_layout(request, fixture, azs, nats):
    result = request.getfixturevalue(fixture)
    subnets = states(result, SUBNET)
    private = [s for s in subnets if "-private-" in s["urn"]]
    public = [s for s in subnets if "-public-" in s["urn"]]
    assert len(private) == len(public) == azs
    assert len(states(result, "aws:ec2/natGateway:NatGateway")) == nats
    cluster = result.cfg.cluster_name
    for s in private:
        assert s["inputs"]["tags"]["karpenter.sh/discovery"] == cluster
        assert s["inputs"]["tags"]["kubernetes.io/role/internal-elb"] == "1"
    for s in public:
        assert s["inputs"]["tags"]["kubernetes.io/role/elb"] == "1"
        assert s["inputs"]["mapPublicIpOnLaunch"] is False
    # each private subnet routes through a NAT gateway, in its own AZ where there is one per AZ
    rts = states(result, "aws:ec2/routeTable:RouteTable")
    private_rts = [r for r in rts if "private-rt" in r["urn"]]
    assert len(private_rts) == azs
    assert len({r["inputs"]["routes"][0]["natGatewayId"] for r in private_rts}) == nats


def test_cluster_settings(dev):
    eks = by_name(dev, EKS, "ml-cluster-eks")["inputs"]
    assert eks["authenticationMode"] == "API"
    assert eks["createOidcProvider"] is True
    assert eks["encryptionConfigKeyArn"].startswith("arn:aws:kms:")
    assert eks["endpointPrivateAccess"] is True
    assert eks["publicAccessCidrs"] == ["203.0.113.0/24"]
    assert eks["skipDefaultNodeGroup"] is True
    assert set(eks["enabledClusterLogTypes"]) >= {"api", "audit", "authenticator"}
    assert eks["name"] == "ml-dev" and eks["version"] == "1.34"
    key = states(dev, "aws:kms/key:Key")[0]["inputs"]
    assert key["enableKeyRotation"] is True


def test_prod_endpoint_is_private_and_protected(prod):
    eks = by_name(prod, EKS, "ml-cluster-eks")
    assert eks["inputs"]["endpointPublicAccess"] is False and "publicAccessCidrs" not in eks["inputs"]
    assert eks["protect"] is True and eks["inputs"]["deletionProtection"] is True
    assert by_name(prod, "aws:ec2/vpc:Vpc", "ml-net-vpc")["protect"] is True
    entries = [e for e in states(prod, "aws:eks/accessEntry:AccessEntry") if e["inputs"].get("type") == "STANDARD"]
    assert {e["inputs"]["principalArn"] for e in entries} == {
        "arn:aws:iam::123456789012:role/platform-admins", "arn:aws:iam::123456789012:role/ml-engineers"}
    policies = {p["inputs"]["principalArn"]: p["inputs"]["policyArn"] for p in states(prod, "aws:eks/accessPolicyAssociation:AccessPolicyAssociation")}
    assert policies["arn:aws:iam::123456789012:role/ml-engineers"].endswith("/AmazonEKSViewPolicy")


def test_system_node_group(dev):
    ng = by_name(dev, "aws:eks/nodeGroup:NodeGroup", "ml-cluster-system")
    inputs = ng["inputs"]
    assert inputs["capacityType"] == "ON_DEMAND"
    assert inputs["taints"] == [{"effect": "NO_SCHEDULE", "key": "CriticalAddonsOnly", "value": "true"}]
    assert inputs["labels"] == {"eks-ml-platform/node-role": "system"}
    lt = by_name(dev, "aws:ec2/launchTemplate:LaunchTemplate", "ml-cluster-system-lt")
    assert lt["inputs"]["metadataOptions"]["httpTokens"] == "required"
    ebs = lt["inputs"]["blockDeviceMappings"][0]["ebs"]
    assert ebs["encrypted"] == "true" and ebs["volumeType"] == "gp3"
    assert lt["urn"] in ng["dependencies"]


def test_addon_order(dev):
    """CNI, kube-proxy and pod identity go before the nodes; CoreDNS and EBS CSI need nodes to run."""
    ng = by_name(dev, "aws:eks/nodeGroup:NodeGroup", "ml-cluster-system")
    eks = by_name(dev, EKS, "ml-cluster-eks")
    for name in ("vpc-cni", "kube-proxy", "eks-pod-identity-agent"):
        addon = by_name(dev, ADDON, f"ml-cluster-addon-{name}")
        assert addon["urn"] in ng["dependencies"], name
        assert eks["urn"] in addon["dependencies"], name
    for name in ("coredns", "aws-ebs-csi-driver", "snapshot-controller", "metrics-server", "eks-node-monitoring-agent"):
        addon = by_name(dev, ADDON, f"ml-cluster-addon-{name}")
        assert ng["urn"] in addon["dependencies"], name
    cni = json.loads(by_name(dev, ADDON, "ml-cluster-addon-vpc-cni")["inputs"]["configurationValues"])
    assert cni["enableNetworkPolicy"] == "true"  # NetworkPolicies are enforced, not decorative
    ebs = by_name(dev, ADDON, "ml-cluster-addon-aws-ebs-csi-driver")["inputs"]
    assert ebs["podIdentityAssociations"][0]["serviceAccount"] == "ebs-csi-controller-sa"
    values = json.loads(ebs["configurationValues"])
    assert values["controller"]["tolerations"][0]["key"] == "CriticalAddonsOnly"
    assert values["controller"]["k8sTagClusterId"] == "ml-dev"  # PVC volumes carry the cluster tag for teardown


def test_providers_and_tags(dev):
    aws_provider = [s for s in states(dev, "pulumi:providers:aws")]
    assert len(aws_provider) == 1
    tags = json.loads(aws_provider[0]["inputs"]["defaultTags"])["tags"] if isinstance(
        aws_provider[0]["inputs"]["defaultTags"], str) else aws_provider[0]["inputs"]["defaultTags"]["tags"]
    assert tags["eks-ml-platform/cluster"] == "ml-dev" and tags["eks-ml-platform/ephemeral"] == "true"
    assert tags["team"] == "ml-platform"
    # every AWS resource goes through that explicit provider (region and default tags)
    for s in states(dev):
        if s["type"].startswith("aws:") and s["custom"]:
            assert s["provider"].startswith(aws_provider[0]["urn"]), s["urn"]
    k8s = states(dev, "pulumi:providers:kubernetes")[0]
    assert k8s["inputs"]["kubeconfig"] == "[secret]"
    assert by_name(dev, EKS, "ml-cluster-eks")["urn"] in k8s["dependencies"]
