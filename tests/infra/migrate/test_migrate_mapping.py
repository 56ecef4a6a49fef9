"""infra/migrate/: each field of each legacy Karpenter API mapped to v1, as the library does it (no CLI, no CRDs).

The expected mappings are the ones Karpenter's upgrade guides give (v1beta1-migration, v1-migration);
what has no v1 equivalent, or behaves differently in v1, must come back as a warning on its object.
"""
from __future__ import annotations

import pytest
import yaml

from infra.check.objects import LEGACY_KARPENTER
from infra.migrate.common import MigrationError, duration
from infra.migrate.karpenter import MAPPERS, migrate
from infra.versions import AMI_ALIAS

pytestmark = pytest.mark.unit

REF = {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"}
PROVIDER = {"subnetSelector": {"karpenter.sh/discovery": "demo"},
            "securityGroupSelector": {"karpenter.sh/discovery": "demo"},
            "instanceProfile": "KarpenterNodeInstanceProfile-demo", "amiFamily": "AL2023"}


def provisioner(**spec) -> dict:
    spec.setdefault("provider", dict(PROVIDER))
    return {"apiVersion": "karpenter.sh/v1alpha5", "kind": "Provisioner", "metadata": {"name": "default"},
            "spec": spec}


def node_template(name: str = "default", **spec) -> dict:
    return {"apiVersion": "karpenter.k8s.aws/v1alpha1", "kind": "AWSNodeTemplate", "metadata": {"name": name},
            "spec": {**{k: v for k, v in PROVIDER.items()}, **spec}}


def beta_pool(name: str = "default", cls: str = "default", disruption: dict | None = None, **tspec) -> dict:
    template_spec = {"nodeClassRef": {"apiVersion": "karpenter.k8s.aws/v1beta1", "kind": "EC2NodeClass", "name": cls},
                     "requirements": [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]}],
                     **tspec}
    spec: dict = {"template": {"spec": template_spec}, "limits": {"cpu": 100}}
    if disruption is not None:
        spec["disruption"] = disruption
    return {"apiVersion": "karpenter.sh/v1beta1", "kind": "NodePool", "metadata": {"name": name}, "spec": spec}


def beta_class(name: str = "default", **spec) -> dict:
    base = {"amiFamily": "AL2023", "role": "KarpenterNodeRole-demo",
            "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "demo"}}],
            "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "demo"}}]}
    return {"apiVersion": "karpenter.k8s.aws/v1beta1", "kind": "EC2NodeClass", "metadata": {"name": name},
            "spec": {**base, **spec}}


def one(objs, kind: str, name: str = "default") -> dict:
    (found,) = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def notes(m, kind: str, name: str = "default") -> str:
    return "\n".join(n.message for n in m.notes if n.resource == f"{kind}/{name}")


def test_every_legacy_kind_check_reports_is_one_migrate_maps():
    assert set(MAPPERS) == set(LEGACY_KARPENTER)


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (30, "30s"), (120, "2m"), (90, "1m30s"),
                                           (2592000, "720h"), (5400, "1h30m"), (3661, "1h1m1s")])
def test_durations_are_go_duration_strings(seconds, text):
    assert duration(seconds) == text


# --- karpenter.sh/v1alpha5 Provisioner ------------------------------------------------------------------

def test_provisioner_template_fields_move_under_the_template():
    m = migrate([provisioner(
        labels={"team": "ml"}, annotations={"example.com/owner": "ml"},
        taints=[{"key": "aws.amazon.com/neuron", "effect": "NoSchedule"}],
        startupTaints=[{"key": "example.com/init", "value": "true", "effect": "NoSchedule"}],
        requirements=[{"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["inf1.xlarge"]}],
        limits={"resources": {"cpu": "16", "memory": "64Gi"}}, weight=50)])
    pool = one(m.objects, "NodePool")
    assert pool["apiVersion"] == "karpenter.sh/v1"
    t = pool["spec"]["template"]
    assert t["metadata"] == {"labels": {"team": "ml"}, "annotations": {"example.com/owner": "ml"}}
    assert t["spec"]["taints"] == [{"key": "aws.amazon.com/neuron", "effect": "NoSchedule"}]
    assert t["spec"]["startupTaints"] == [{"key": "example.com/init", "value": "true", "effect": "NoSchedule"}]
    assert t["spec"]["nodeClassRef"] == REF
    assert pool["spec"]["limits"] == {"cpu": "16", "memory": "64Gi"}
    assert pool["spec"]["weight"] == 50


def test_provisioner_requirement_defaults_of_v1alpha5_are_written_out_and_warned():
    m = migrate([provisioner(requirements=[
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]},
        {"key": "karpenter.k8s.aws/instance-pods", "operator": "Gt", "values": ["10"]}])])
    reqs = one(m.objects, "NodePool")["spec"]["template"]["spec"]["requirements"]
    assert reqs == [
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]},
        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
        {"key": "karpenter.k8s.aws/instance-category", "operator": "In", "values": ["c", "m", "r"]},
        {"key": "karpenter.k8s.aws/instance-generation", "operator": "Gt", "values": ["2"]},
    ]
    text = notes(m, "NodePool")
    assert "kubernetes.io/os In ['linux'] added: v1alpha5 defaulted it" in text
    assert "karpenter.k8s.aws/instance-pods was dropped as a label in v1beta1" in text
    assert "karpenter.sh/capacity-type In ['on-demand']" not in text  # given, so not defaulted


@pytest.mark.parametrize("spec, disruption, warned", [
    ({"ttlSecondsAfterEmpty": 30}, {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "30s"},
     "v1alpha5 removed every empty node when its TTL passed"),
    ({"consolidation": {"enabled": True}}, {"consolidationPolicy": "WhenEmptyOrUnderutilized", "consolidateAfter": "0s"},
     "v1 disrupts only within the disruption budgets"),
    ({}, {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "Never"}, "v1alpha5 never removed or replaced"),
    ({"consolidation": {"enabled": False}}, {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "Never"},
     "consolidateAfter Never keeps that"),
])
def test_provisioner_empty_ttl_and_consolidation_become_disruption(spec, disruption, warned):
    m = migrate([provisioner(**spec)])
    assert one(m.objects, "NodePool")["spec"]["disruption"] == disruption
    assert warned in notes(m, "NodePool")


def test_provisioner_expiry_moves_into_the_template():
    m = migrate([provisioner(ttlSecondsUntilExpired=2592000)])
    assert one(m.objects, "NodePool")["spec"]["template"]["spec"]["expireAfter"] == "720h"
    assert "expiry is forceful in v1" in notes(m, "NodePool")
    never = migrate([provisioner()])
    assert one(never.objects, "NodePool")["spec"]["template"]["spec"]["expireAfter"] == "Never"
    assert "v1alpha5 never expired nodes" in notes(never, "NodePool")


def test_provisioner_kubelet_goes_to_the_generated_class_without_container_runtime():
    m = migrate([provisioner(kubeletConfiguration={"maxPods": 20, "containerRuntime": "containerd",
                                                   "systemReserved": {"cpu": "100m"}})])
    cls = one(m.objects, "EC2NodeClass")
    assert cls["spec"]["kubelet"] == {"maxPods": 20, "systemReserved": {"cpu": "100m"}}
    assert "kubelet" not in one(m.objects, "NodePool")["spec"]["template"]["spec"]
    assert "containerRuntime: dropped in v1beta1" in notes(m, "NodePool")


def test_provisioner_provider_ref_names_the_migrated_node_template():
    m = migrate([provisioner(provider=None, providerRef={"name": "neuron"},
                             kubeletConfiguration={"maxPods": 8}),
                 node_template("neuron")])
    assert one(m.objects, "NodePool")["spec"]["template"]["spec"]["nodeClassRef"] == {**REF, "name": "neuron"}
    assert one(m.objects, "EC2NodeClass", "neuron")["spec"]["kubelet"] == {"maxPods": 8}
    assert [o["kind"] for o in m.objects] == ["NodePool", "EC2NodeClass"]


def test_provisioner_provider_ref_to_a_class_not_given_warns_where_kubelet_must_go():
    m = migrate([provisioner(provider=None, providerRef={"name": "elsewhere"}, kubeletConfiguration={"maxPods": 8})])
    text = notes(m, "NodePool")
    assert 'EC2NodeClass/elsewhere is not in the input: set spec.kubelet on it to {"maxPods": 8}' in text
    assert "nodeClassRef names EC2NodeClass/elsewhere, which is not in the input" in text


def test_provisioner_node_annotations_removed_in_v1_are_renamed():
    m = migrate([provisioner(annotations={"karpenter.sh/do-not-consolidate": "true"})])
    assert one(m.objects, "NodePool")["spec"]["template"]["metadata"]["annotations"] == {
        "karpenter.sh/do-not-disrupt": "true"}
    assert "karpenter.sh/do-not-consolidate: removed in v1" in notes(m, "NodePool")


def test_provisioner_unknown_field_is_left_out_with_a_warning():
    m = migrate([provisioner(ttlSecondsAfterEmpy=30)])
    assert "ttlSecondsAfterEmpy" not in str(m.objects)
    assert "spec.ttlSecondsAfterEmpy: not a karpenter.sh/v1alpha5 Provisioner field" in notes(m, "NodePool")


@pytest.mark.parametrize("spec, message", [
    ({"ttlSecondsAfterEmpty": 30, "consolidation": {"enabled": True}}, "spec: ttlSecondsAfterEmpty and consolidation"),
    ({"providerRef": {"name": "x"}}, "spec: provider and providerRef exclude each other"),
    ({"provider": None}, "spec: neither provider nor providerRef"),
    ({"ttlSecondsAfterEmpty": "30s"}, "spec.ttlSecondsAfterEmpty: expected a whole number of seconds, got '30s'"),
    ({"consolidation": {"enabled": "yes"}}, "spec.consolidation.enabled: expected true or false"),
    ({"requirements": "spot"}, "spec.requirements: expected a list, got str"),
    ({"provider": {**PROVIDER, "subnetSelector": ["a"]}}, "spec.provider.subnetSelector: expected a mapping"),
])
def test_provisioner_bad_input_is_a_one_line_error_naming_the_field(spec, message):
    with pytest.raises(MigrationError) as exc:
        migrate([provisioner(**spec)], sources=["seed.yaml, document 2"])
    assert str(exc.value).startswith("seed.yaml, document 2: Provisioner/default: ")
    assert message in str(exc.value) and "\n" not in str(exc.value)


# --- karpenter.k8s.aws/v1alpha1 AWSNodeTemplate (and a Provisioner's provider) -------------------------

def test_selectors_become_terms_comma_lists_one_term_each():
    m = migrate([node_template(subnetSelector={"karpenter.sh/discovery": "demo", "tier": "private,intra"},
                               securityGroupSelector={"aws::ids": "sg-123, sg-456"})])
    spec = one(m.objects, "EC2NodeClass")["spec"]
    assert spec["subnetSelectorTerms"] == [{"tags": {"karpenter.sh/discovery": "demo", "tier": "private"}},
                                           {"tags": {"karpenter.sh/discovery": "demo", "tier": "intra"}}]
    assert spec["securityGroupSelectorTerms"] == [{"id": "sg-123"}, {"id": "sg-456"}]


def test_selector_ids_beside_tags_keep_the_ids_alone_with_a_warning():
    m = migrate([node_template(subnetSelector={"aws-ids": "subnet-1", "karpenter.sh/discovery": "demo"})])
    assert one(m.objects, "EC2NodeClass")["spec"]["subnetSelectorTerms"] == [{"id": "subnet-1"}]
    assert "karpenter.sh/discovery left out" in notes(m, "EC2NodeClass")
    with pytest.raises(MigrationError, match=r"spec.subnetSelector.aws::name: not a v1alpha1 selector key"):
        migrate([node_template(subnetSelector={"aws::name": "x"})])


def test_ami_selector_becomes_terms_beside_the_family():
    m = migrate([node_template(amiFamily=None, amiSelector={"aws::name": "my-a,my-b", "aws::owners": "123456789012"})])
    spec = one(m.objects, "EC2NodeClass")["spec"]
    assert spec["amiFamily"] == "AL2"  # v1alpha5's default, which v1 needs beside explicit terms
    assert spec["amiSelectorTerms"] == [{"name": "my-a", "owner": "123456789012"},
                                        {"name": "my-b", "owner": "123456789012"}]
    assert "unset, so Karpenter defaulted it to AL2" in notes(m, "EC2NodeClass")
    ids = migrate([node_template(amiSelector={"aws::ids": "ami-1,ami-2"})])
    assert one(ids.objects, "EC2NodeClass")["spec"]["amiSelectorTerms"] == [{"id": "ami-1"}, {"id": "ami-2"}]


@pytest.mark.parametrize("family, warned", [("AL2023", None), ("AL2", "EKS stopped publishing AL2 AMIs"),
                                            (None, "unset (Karpenter defaulted it to AL2)")])
def test_ami_family_becomes_the_pinned_alias(family, warned):
    m = migrate([node_template(amiFamily=family)])
    spec = one(m.objects, "EC2NodeClass")["spec"]
    assert spec["amiSelectorTerms"] == [{"alias": AMI_ALIAS}]
    assert "@latest" not in str(spec) and "amiFamily" not in spec
    text = notes(m, "EC2NodeClass")
    assert (warned in text) if warned else ("amiFamily" not in text)


def test_al2_user_data_is_warned_to_need_rewriting_for_al2023():
    m = migrate([node_template(amiFamily="AL2", userData="#!/bin/bash\n/etc/eks/bootstrap.sh demo\n")])
    assert one(m.objects, "EC2NodeClass")["spec"]["userData"].startswith("#!/bin/bash")
    assert "must be rewritten as a NodeConfig" in notes(m, "EC2NodeClass")


@pytest.mark.parametrize("family, message", [
    ("Bottlerocket", "Bottlerocket has no alias pinned in infra/versions.py"),
    ("Windows2022", "Windows aliases exist only as @latest"),
    ("Ubuntu", "Karpenter v1 dropped Ubuntu"),
    ("Custom", "Custom needs amiSelector"),
    ("Gentoo", "'Gentoo' is not an amiFamily"),
])
def test_ami_families_without_a_pinned_alias_are_errors(family, message):
    with pytest.raises(MigrationError, match="spec.amiFamily: .*" + message.replace("(", r"\(")):
        migrate([node_template(amiFamily=family)])


def test_ubuntu_with_an_ami_selector_becomes_al2_with_ubuntus_root_device():
    m = migrate([node_template(amiFamily="Ubuntu", amiSelector={"aws::ids": "ami-0abc"})])
    spec = one(m.objects, "EC2NodeClass")["spec"]
    assert spec["amiFamily"] == "AL2" and spec["amiSelectorTerms"] == [{"id": "ami-0abc"}]
    assert spec["blockDeviceMappings"][0]["deviceName"] == "/dev/sda1"
    assert "dropped Ubuntu" in notes(m, "EC2NodeClass")


def test_instance_profile_is_kept_and_a_missing_one_becomes_the_node_role():
    m = migrate([node_template()])
    spec = one(m.objects, "EC2NodeClass")["spec"]
    assert spec["instanceProfile"] == "KarpenterNodeInstanceProfile-demo" and "role" not in spec
    assert "Karpenter creates the profile itself" in notes(m, "EC2NodeClass")
    none = migrate([node_template(instanceProfile=None)], cluster="prod-ml")
    assert one(none.objects, "EC2NodeClass")["spec"]["role"] == "KarpenterNodeRole-prod-ml"
    assert "settings.aws.defaultInstanceProfile, which v1 removed" in notes(none, "EC2NodeClass")


def test_metadata_options_default_to_imdsv2_hop_limit_1_and_an_explicit_hop_limit_is_kept():
    m = migrate([node_template()])
    assert one(m.objects, "EC2NodeClass")["spec"]["metadataOptions"] == {
        "httpEndpoint": "enabled", "httpProtocolIPv6": "disabled", "httpPutResponseHopLimit": 1,
        "httpTokens": "required"}
    assert "defaulted it to 2" in notes(m, "EC2NodeClass")
    kept = migrate([node_template(metadataOptions={"httpPutResponseHopLimit": 2})])
    assert one(kept.objects, "EC2NodeClass")["spec"]["metadataOptions"]["httpPutResponseHopLimit"] == 2
    assert "httpPutResponseHopLimit: 2 kept from the input" in notes(kept, "EC2NodeClass")


def test_tags_karpenter_sets_itself_are_left_out_and_other_fields_copied():
    bdm = [{"deviceName": "/dev/xvda", "ebs": {"volumeSize": "100Gi", "volumeType": "gp3", "encrypted": True}}]
    m = migrate([node_template(tags={"team": "ml", "karpenter.sh/managed-by": "demo", "kubernetes.io/cluster/demo": "owned"},
                               blockDeviceMappings=bdm, detailedMonitoring=True, context="ctx-1",
                               launchTemplate="my-template")])
    spec = one(m.objects, "EC2NodeClass")["spec"]
    assert spec["tags"] == {"team": "ml"}
    assert spec["blockDeviceMappings"] == bdm and spec["detailedMonitoring"] is True and spec["context"] == "ctx-1"
    assert "launchTemplate" not in spec
    text = notes(m, "EC2NodeClass")
    assert "karpenter.sh/managed-by, kubernetes.io/cluster/demo left out" in text
    assert "spec.launchTemplate: no v1 equivalent" in text


# --- karpenter.sh/v1beta1 NodePool and karpenter.k8s.aws/v1beta1 EC2NodeClass ---------------------------

def test_beta_pool_consolidation_renamed_and_expiry_moved():
    m = migrate([beta_pool(disruption={"consolidationPolicy": "WhenUnderutilized", "expireAfter": "168h",
                                       "budgets": [{"nodes": "20%"}]},
                           taints=[{"key": "a", "effect": "NoSchedule"}]), beta_class()])
    pool = one(m.objects, "NodePool")
    assert pool["spec"]["disruption"] == {"consolidationPolicy": "WhenEmptyOrUnderutilized", "consolidateAfter": "0s",
                                          "budgets": [{"nodes": "20%"}]}
    t = pool["spec"]["template"]["spec"]
    assert t["expireAfter"] == "168h" and t["nodeClassRef"] == REF
    assert t["taints"] == [{"key": "a", "effect": "NoSchedule"}] and pool["spec"]["limits"] == {"cpu": 100}
    assert "expiry is forceful" in notes(m, "NodePool")


def test_beta_pool_defaults_and_when_empty_are_kept():
    m = migrate([beta_pool(), beta_pool("empty", disruption={"consolidationPolicy": "WhenEmpty",
                                                             "consolidateAfter": "5m", "expireAfter": "Never"})])
    assert one(m.objects, "NodePool")["spec"]["disruption"] == {"consolidationPolicy": "WhenEmptyOrUnderutilized",
                                                                "consolidateAfter": "0s"}
    assert "720h (the default)" in notes(m, "NodePool")
    empty = one(m.objects, "NodePool", "empty")
    assert empty["spec"]["disruption"] == {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "5m"}
    assert empty["spec"]["template"]["spec"]["expireAfter"] == "Never"
    assert "forceful" not in notes(m, "NodePool", "empty")


def test_beta_pools_sharing_a_class_with_different_kubelets_get_their_own_copy():
    m = migrate([beta_pool("a", kubelet={"maxPods": 10}), beta_pool("b", kubelet={"maxPods": 20}), beta_class()])
    assert [(o["kind"], o["metadata"]["name"]) for o in m.objects] == [
        ("NodePool", "a"), ("NodePool", "b"), ("EC2NodeClass", "default"), ("EC2NodeClass", "default-a"),
        ("EC2NodeClass", "default-b")]
    assert "kubelet" not in one(m.objects, "EC2NodeClass")["spec"]
    assert one(m.objects, "EC2NodeClass", "default-a")["spec"]["kubelet"] == {"maxPods": 10}
    assert one(m.objects, "NodePool", "b")["spec"]["template"]["spec"]["nodeClassRef"]["name"] == "default-b"
    assert "the pools sharing default differ in kubelet" in notes(m, "NodePool", "a")
    same = migrate([beta_pool("a", kubelet={"maxPods": 10}), beta_pool("b", kubelet={"maxPods": 10}), beta_class()])
    assert [o["metadata"]["name"] for o in same.objects] == ["a", "b", "default"]
    assert one(same.objects, "EC2NodeClass")["spec"]["kubelet"] == {"maxPods": 10}


def test_beta_pool_resources_are_dropped_with_a_warning():
    m = migrate([beta_pool(resources={"requests": {"cpu": "1"}}), beta_class()])
    assert "resources" not in one(m.objects, "NodePool")["spec"]["template"]["spec"]
    assert "spec.template.spec.resources: not in v1" in notes(m, "NodePool")


def test_beta_class_without_ami_terms_gets_the_pinned_alias():
    m = migrate([beta_class(metadataOptions={"httpTokens": "required"}, instanceStorePolicy="RAID0")])
    spec = one(m.objects, "EC2NodeClass")["spec"]
    assert spec["amiSelectorTerms"] == [{"alias": AMI_ALIAS}] and "amiFamily" not in spec
    assert spec["metadataOptions"]["httpPutResponseHopLimit"] == 1 and spec["instanceStorePolicy"] == "RAID0"
    assert spec["role"] == "KarpenterNodeRole-demo"


def test_beta_class_with_ami_terms_keeps_them_and_its_family():
    terms = [{"name": "my-ami-*", "owner": "self"}]
    m = migrate([beta_class(amiFamily="Bottlerocket", amiSelectorTerms=terms)])
    spec = one(m.objects, "EC2NodeClass")["spec"]
    assert spec["amiSelectorTerms"] == terms and spec["amiFamily"] == "Bottlerocket"


# --- the whole input --------------------------------------------------------------------------------------

def test_unknown_kinds_are_left_out_with_a_warning_and_v1_passes_through():
    v1 = {"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "gpu"},
          "spec": {"template": {"spec": {"nodeClassRef": REF, "requirements": []}}}}
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {}}
    m = migrate([cm, v1, node_template()])
    assert m.objects[0] == v1 and m.objects[0] is not v1
    assert [o["kind"] for o in m.objects] == ["NodePool", "EC2NodeClass"]
    assert "v1 ConfigMap (document 1) is not a Karpenter object this command migrates; left out" in notes(m, "ConfigMap", "x")


def test_placeholders_resolve_with_cluster_and_are_warned_otherwise():
    tpl = node_template(subnetSelector={"karpenter.sh/discovery": "${CLUSTER_NAME}"},
                        tags={"account": "<account-id>"}, userData="echo $HOME")
    m = migrate([tpl], cluster="prod-ml")
    spec = one(m.objects, "EC2NodeClass")["spec"]
    assert spec["subnetSelectorTerms"] == [{"tags": {"karpenter.sh/discovery": "prod-ml"}}]
    assert spec["userData"] == "echo $HOME"  # scripts are left alone
    text = notes(m, "EC2NodeClass")
    assert 'placeholder <account-id> left unresolved in spec.tags.account: replace it' in text
    assert "CLUSTER_NAME" not in text and "$HOME" not in text
    unresolved = notes(migrate([tpl]), "EC2NodeClass")
    assert '${CLUSTER_NAME} left unresolved in spec.subnetSelectorTerms[0].tags["karpenter.sh/discovery"]: give ' \
           "--cluster NAME" in unresolved


@pytest.mark.parametrize("docs, message", [
    ([["a"]], "document 1: expected a mapping (a Kubernetes object), got list"),
    ([{"kind": "Provisioner"}], "document 1: a document without apiVersion/kind"),
    ([{"apiVersion": "karpenter.sh/v1alpha5", "kind": "Provisioner", "spec": {}}],
     "document 1: Provisioner: metadata.name: missing"),
    ([{"apiVersion": "karpenter.sh/v1alpha5", "kind": "Provisioner", "metadata": {"name": "../x"}}],
     "metadata.name: '../x' is not a Kubernetes object name"),
    ([yaml.safe_load(yaml.safe_dump(node_template())), beta_class()], "would be a second EC2NodeClass/default"),
])
def test_bad_documents_are_one_line_errors(docs, message):
    with pytest.raises(MigrationError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        migrate(docs)
