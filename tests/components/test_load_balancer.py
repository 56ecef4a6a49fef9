"""The AWS Load Balancer Controller (components/load_balancer.py): values, IAM, ordering, config."""
from __future__ import annotations

import json

import pytest

from components import load_balancer as lb
from infra import upstream
from infra.conventions import SYSTEM_TOLERATION
from infra.config import ConfigError, from_flat, merged_stack_config, parse_config
from infra.preview.render import REPO, build_manifests, build_preview, run_program
from infra.conventions import TAG_LBC_CLUSTER
from infra.versions import CHARTS
from tests.conftest import by_name, manifests, states

pytestmark = pytest.mark.unit

RELEASE = "kubernetes:helm.sh/v3:Release"
SERVING = "eks-ml-platform:sentiment:SentimentServing"
COMPONENT = "eks-ml-platform:load_balancer:LoadBalancerController"
# upstream's files at v3.5.0 (sha256 of the release's docs/install/*.json, recorded independently of the registry)
UPSTREAM_SHA256 = {
    "iam_policy.json": "16f232c9d9f79366fe949c4550ad517a202380058a9e48d45a4e215044a20a6a",
    "iam_policy_us-gov.json": "eff0caf0b8f205e63e09ee1ea37a90fba6a87a417ac40fc83da50b204a55f372",
    "iam_policy_cn.json": "b1ac7c188d27a2cdb3095c7efd8376cd21705fe75d6ce91715558a85987b25bc",
}


@pytest.fixture(params=("dev", "staging", "prod"))
def stack(request):
    return request.getfixturevalue(request.param)


def lb_release(result) -> dict:
    found = [s for s in states(result, RELEASE) if s["inputs"].get("name") == lb.RELEASE_NAME]
    assert len(found) == 1
    return found[0]


def gate_urns(result) -> set[str]:
    """The cluster_ready gate: the EKS cluster, the system node group and the EKS add-ons."""
    return {s["urn"] for s in states(result) if s["type"] in ("eks:index:Cluster", "aws:eks/nodeGroup:NodeGroup",
                                                               "aws:eks/addon:Addon")}


# ------------------------------------------------------------------------------- pure helpers
def test_values_cluster_vpc_system_nodes_and_webhook_off():
    cfg = parse_config({"cluster": {"name": "ml-x"}, "region": "eu-west-1"}, stack="dev")
    v = lb.controller_values(lb.LoadBalancerSettings.from_config(cfg), vpc_id="vpc-0123456789abcdef0")
    assert v["clusterName"] == "ml-x" and v["region"] == "eu-west-1" and v["vpcId"] == "vpc-0123456789abcdef0"
    assert v["serviceAccount"] == {"create": True, "name": "aws-load-balancer-controller"}
    assert v["replicaCount"] == 2 and v["podDisruptionBudget"] == {"maxUnavailable": 1}
    assert v["tolerations"] == [SYSTEM_TOLERATION]
    assert v["nodeSelector"]["eks-ml-platform/node-role"] == "system"
    assert v["enableServiceMutatorWebhook"] is False  # not the default for every Service of type LoadBalancer
    assert v["ingressClass"] == "alb" and v["createIngressClassResource"] is True
    assert v["keepTLSSecret"] is True and v["serviceMonitor"] == {"enabled": False}
    res = v["resources"]
    assert set(res["requests"]) == set(res["limits"]) == {"cpu", "memory"}


def test_ingress_class_follows_serving_config():
    cfg = parse_config({"serving": {"ingress": {"className": "alb-internal"}}}, stack="dev")
    assert lb.controller_values(lb.LoadBalancerSettings.from_config(cfg), vpc_id="vpc-1")["ingressClass"] == "alb-internal"


def test_default_tags_carry_the_cluster_and_never_a_tracking_key():
    cfg = parse_config({"cluster": {"name": "ml-x"}, "tags": {"team": "ml", TAG_LBC_CLUSTER: "other"}}, stack="dev")
    tags = lb.default_tags(lb.LoadBalancerSettings.from_config(cfg))
    assert tags["eks-ml-platform/cluster"] == "ml-x" and tags["team"] == "ml"
    # the controller sets elbv2.k8s.aws/cluster itself and exits if --default-tags names it
    assert TAG_LBC_CLUSTER in lb.TRACKING_TAG_KEYS and not set(tags) & lb.TRACKING_TAG_KEYS
    # a ',' would split the chart's k=v,k=v flag: AWS refuses it in tags anyway, and so does the config
    with pytest.raises(ConfigError, match=r"tags: tag value 'a,b' holds ','"):
        parse_config({"tags": {"bad": "a,b"}}, stack="dev")
    assert "managed-by" not in tags  # Pulumi does not manage the load balancers


def test_policies_are_pinned_to_the_apps_tag():
    # the IAM policy is upstream's for exactly the chart's app version, obtained by pinned URL + sha256
    assert CHARTS["load_balancer_controller"].version == "3.5.0"
    for partition, key in lb.POLICY_ARTIFACTS.items():
        art = upstream.artifact(key)
        assert art.repo == "kubernetes-sigs/aws-load-balancer-controller" and art.tag == "v3.5.0"
        assert art.sha256 == UPSTREAM_SHA256[art.path.rsplit("/", 1)[1]], partition
    assert {upstream.artifact(k).path for k in lb.POLICY_ARTIFACTS.values()} == {
        "docs/install/iam_policy.json", "docs/install/iam_policy_cn.json", "docs/install/iam_policy_us-gov.json"}


@pytest.mark.parametrize("region,partition", [("us-west-2", "aws"), ("us-gov-west-1", "aws-us-gov"),
                                              ("cn-north-1", "aws-cn")])
def test_policy_follows_the_partition(region, partition):
    doc = lb.iam_policy_document(region)
    text = json.dumps(doc)
    assert f'"arn:{partition}:elasticloadbalancing:' in text
    actions = {a for s in doc["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert {"elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:DeleteLoadBalancer",
            "ec2:CreateSecurityGroup"} <= actions


def test_metrics_service_and_service_monitor_agree():
    svc, sm = lb.metrics_service(), lb.service_monitor()
    assert svc["spec"]["selector"] == lb.SELECTOR
    assert svc["spec"]["ports"] == [{"name": "metrics-server", "port": 8080, "targetPort": "metrics-server",
                                     "protocol": "TCP"}]
    for key, value in sm["spec"]["selector"]["matchLabels"].items():
        assert svc["metadata"]["labels"][key] == value
    assert sm["spec"]["endpoints"][0]["port"] == "metrics-server"
    assert sm["spec"]["namespaceSelector"] == {"matchNames": ["kube-system"]}


# ------------------------------------------------------------------------------- rendered stacks
def test_iam_policy_is_the_vendored_file_and_attached(dev):
    policy = by_name(dev, "aws:iam/policy:Policy", "ml-load-balancer-controller")
    assert json.loads(policy["inputs"]["policy"]) == json.loads(upstream.read_text("aws-load-balancer-controller/iam-policy/aws"))
    role = by_name(dev, "aws:iam/role:Role", "ml-load-balancer-controller")
    trust = json.loads(role["inputs"]["assumeRolePolicy"])
    assert trust["Statement"] == [{"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"},
                                   "Action": ["sts:AssumeRole", "sts:TagSession"]}]
    attach = by_name(dev, "aws:iam/rolePolicyAttachment:RolePolicyAttachment", "ml-load-balancer-controller")
    assert {policy["urn"], role["urn"]} <= set(attach["dependencies"])


def test_pod_identity_association(dev):
    assoc = by_name(dev, "aws:eks/podIdentityAssociation:PodIdentityAssociation", "ml-load-balancer-controller")
    assert assoc["inputs"]["namespace"] == "kube-system"
    assert assoc["inputs"]["serviceAccount"] == "aws-load-balancer-controller"
    assert assoc["inputs"]["clusterName"] == "ml-dev"
    assert gate_urns(dev) <= set(assoc["dependencies"])
    assert by_name(dev, "aws:iam/role:Role", "ml-load-balancer-controller")["urn"] in assoc["dependencies"]


def test_release_after_cluster_gate_and_credentials(stack):
    rel = lb_release(stack)
    deps = set(rel["dependencies"])
    assert gate_urns(stack) <= deps
    assert by_name(stack, "aws:eks/podIdentityAssociation:PodIdentityAssociation",
                   "ml-load-balancer-controller")["urn"] in deps
    assert by_name(stack, "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
                   "ml-load-balancer-controller")["urn"] in deps
    inputs = rel["inputs"]
    assert inputs["chart"] == "aws-load-balancer-controller" and inputs["version"] == "3.5.0"
    assert inputs["repositoryOpts"]["repo"] == "https://aws.github.io/eks-charts"
    assert inputs["namespace"] == "kube-system" and inputs["atomic"] and inputs["skipAwait"] is False
    values = inputs["values"]
    assert values["clusterName"] == stack.cfg.cluster_name and values["region"] == stack.cfg.region
    assert values["vpcId"].startswith("vpc-")
    assert any(d.endswith("::ml-net-vpc") for d in deps)  # vpcId is the network's output
    assert values["enableServiceMutatorWebhook"] is False
    assert values["defaultTags"]["eks-ml-platform/cluster"] == stack.cfg.cluster_name


def test_serving_exposure_waits_for_the_controller(stack):
    """The serving component (parent of the Ingress/Service) depends on the release: its children are
    created after the controller runs, and destroyed before it."""
    (serving,) = states(stack, SERVING)
    assert lb_release(stack)["urn"] in serving["dependencies"]
    exposed = [s for s in states(stack) if s.get("parent") == serving["urn"]
               and (s["type"] == "kubernetes:networking.k8s.io/v1:Ingress"
                    or (s["type"] == "kubernetes:core/v1:Service" and s["inputs"]["spec"].get("type") == "LoadBalancer"))]
    assert len(exposed) == 1


def test_service_monitor_after_monitoring_release(dev):
    sm = by_name(dev, "kubernetes:monitoring.coreos.com/v1:ServiceMonitor", "ml-load-balancer-servicemonitor")
    monitoring = [s["urn"] for s in states(dev, RELEASE) if s["inputs"].get("name") == "kube-prometheus-stack"]
    assert set(monitoring) | {lb_release(dev)["urn"]} <= set(sm["dependencies"])
    docs = [m for m in manifests(dev) if m["metadata"].get("namespace") == "kube-system"
            and m["metadata"]["name"].startswith("aws-load-balancer-controller")]
    assert sorted(m["kind"] for m in docs) == ["Service", "ServiceMonitor"]
    for m in docs:
        assert m["metadata"]["labels"]["app.kubernetes.io/part-of"] == "eks-ml-platform"


# ------------------------------------------------------------------------------- config
@pytest.mark.parametrize("exposure", ["ingress", "loadBalancer"])
def test_exposure_without_the_controller_is_an_error(exposure):
    with pytest.raises(ConfigError) as err:
        parse_config({"addons": {"loadBalancerController": {"enabled": False}}, "serving": {"exposure": exposure}},
                     stack="dev")
    assert (f"eks-ml-platform:addons.loadBalancerController.enabled: serving.exposure {exposure} needs the AWS "
            "Load Balancer Controller") in str(err.value)


def test_controller_off_is_fine_without_exposure():
    cfg = parse_config({"addons": {"loadBalancerController": {"enabled": False, "version": None}},
                        "serving": {"exposure": "none"}}, stack="dev")
    assert not cfg.addons.load_balancer_controller.enabled
    assert parse_config({}, stack="dev").addons.load_balancer_controller.enabled  # on by default


def test_version_override_needs_a_pinned_policy():
    with pytest.raises(ConfigError) as err:
        parse_config({"addons": {"loadBalancerController": {"version": "1.17.1"}}}, stack="dev")
    assert str(err.value) == ("eks-ml-platform:addons.loadBalancerController.version: 1.17.1 is not pinned; the "
                              "platform has the controller's IAM policy for chart 3.5.0 "
                              "(infra/upstream.py): pin the new version's policy there and bump infra/versions.py")
    assert parse_config({"addons": {"loadBalancerController": {"version": "3.5.0"}}}, stack="dev")


def test_unknown_addon_key_is_named():
    with pytest.raises(ConfigError) as err:
        parse_config({"addons": {"loadBalancerControler": {}}}, stack="dev")
    assert "did you mean 'loadBalancerController'?" in str(err.value)


def test_controller_off_renders_nothing_of_it():
    flat = merged_stack_config("dev", REPO)
    flat["eks-ml-platform:addons"] = {"loadBalancerController": {"enabled": False}}
    flat["eks-ml-platform:serving"] = {**flat.get("eks-ml-platform:serving", {}), "exposure": "none"}
    cfg = from_flat(flat, stack="dev")
    monitor, _ = run_program(cfg, flat)
    preview = build_preview(cfg, flat, monitor.registrations)
    types = {s["newState"]["type"] for s in preview["steps"]}
    assert COMPONENT not in types and SERVING in types
    assert not [s for s in preview["steps"] if s["newState"]["inputs"].get("name") == lb.RELEASE_NAME]
    names = {(m["kind"], m["metadata"]["name"]) for _, m in build_manifests(monitor.registrations)}
    assert ("Service", lb.METRICS_SERVICE) not in names and ("Ingress", "sentiment") not in names
