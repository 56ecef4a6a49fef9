"""The seed's own v1alpha5 Provisioner (the spot inf1.xlarge one) migrates to a v1 NodePool and EC2NodeClass
that pass ``check``, each field mapped as Karpenter's upgrade guides say, the placeholder warned about."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from infra.check.objects import LEGACY_KARPENTER, validate_objects
from infra.migrate.cli import check_objects
from infra.migrate.karpenter import migrate
from infra.versions import AMI_ALIAS

pytestmark = pytest.mark.manifests

FIXTURES = Path(__file__).parent / "fixtures"
SEED = FIXTURES / "seed-provisioner.yaml"

SEED_NODEPOOL = {
    "apiVersion": "karpenter.sh/v1",
    "kind": "NodePool",
    "metadata": {"name": "default"},
    "spec": {
        "template": {"spec": {
            "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
            "requirements": [
                {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["inf1.xlarge"]},
                {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]},
                {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
                {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
            ],
            "expireAfter": "Never",                    # no ttlSecondsUntilExpired: v1alpha5 never expired nodes
        }},
        "limits": {"cpu": "16"},                       # limits.resources.cpu
        "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "30s"},  # ttlSecondsAfterEmpty: 30
    },
}
SEED_NODECLASS = {
    "apiVersion": "karpenter.k8s.aws/v1",
    "kind": "EC2NodeClass",
    "metadata": {"name": "default"},
    "spec": {
        "instanceProfile": "KarpenterNodeInstanceProfile-<cluster-name>",
        "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "<cluster-name>"}}],
        "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "<cluster-name>"}}],
        "amiSelectorTerms": [{"alias": "al2023@v20260714"}],
        "metadataOptions": {"httpEndpoint": "enabled", "httpProtocolIPv6": "disabled",
                            "httpPutResponseHopLimit": 1, "httpTokens": "required"},
    },
}


def seed_docs() -> list:
    return list(yaml.safe_load_all(SEED.read_text()))


def test_the_seed_fixture_is_the_seed_provisioner():
    (p,) = seed_docs()
    assert (p["apiVersion"], p["kind"]) == ("karpenter.sh/v1alpha5", "Provisioner")
    spec = p["spec"]
    assert len(spec["requirements"]) == 4 and spec["limits"] == {"resources": {"cpu": "16"}}
    assert spec["ttlSecondsAfterEmpty"] == 30
    assert set(spec["provider"]) == {"instanceProfile", "subnetSelector", "securityGroupSelector"}


def test_the_seed_migrates_to_the_expected_nodepool_and_ec2nodeclass():
    m = migrate(seed_docs())
    assert m.objects == [SEED_NODEPOOL, SEED_NODECLASS]
    assert SEED_NODECLASS["spec"]["amiSelectorTerms"] == [{"alias": AMI_ALIAS}]  # the pin, never @latest


def test_the_seed_migration_warns_about_each_change_and_the_placeholder():
    m = migrate(seed_docs())
    pool = "\n".join(m.notes_for(SEED_NODEPOOL))
    cls = "\n".join(m.notes_for(SEED_NODECLASS))
    assert "ttlSecondsAfterEmpty: consolidationPolicy WhenEmpty with consolidateAfter 30s" in pool
    assert "expireAfter Never keeps that (v1's default is 720h)" in pool
    assert "instanceProfile: kept as spec.instanceProfile" in cls
    assert f"unset (Karpenter defaulted it to AL2), now the AL2023 alias {AMI_ALIAS}" in cls
    assert "httpPutResponseHopLimit 1" in cls
    assert ("placeholder <cluster-name> left unresolved in spec.instanceProfile, "
            'spec.subnetSelectorTerms[0].tags["karpenter.sh/discovery"], '
            'spec.securityGroupSelectorTerms[0].tags["karpenter.sh/discovery"]: give --cluster NAME') in cls
    assert {n.resource for n in m.notes} == {"NodePool/default", "EC2NodeClass/default"}


def test_the_migrated_seed_passes_check():
    m = migrate(seed_docs())
    assert check_objects(m.objects) == []
    report = validate_objects(m.objects, k8s_version="1.34", crd_dir=None)
    assert report.coverage["karpenter.k8s.aws/v1/EC2NodeClass"].cel_checked > 0  # CEL really ran


def test_the_seed_with_cluster_resolves_the_placeholder_and_still_passes():
    m = migrate(seed_docs(), cluster="ml-prod")
    cls = m.objects[1]["spec"]
    assert cls["instanceProfile"] == "KarpenterNodeInstanceProfile-ml-prod"
    assert cls["subnetSelectorTerms"] == cls["securityGroupSelectorTerms"] == [
        {"tags": {"karpenter.sh/discovery": "ml-prod"}}]
    assert not [n for n in m.notes if "placeholder" in n.message]
    assert check_objects(m.objects) == []


def test_the_seed_as_check_manifests_sees_it_is_a_finding_not_unchecked():
    (p,) = seed_docs()
    report = validate_objects([p], k8s_version="1.34", crd_dir=None)
    assert [str(f) for f in report.findings] == [
        "[legacy-api] Provisioner/default: Karpenter v1 no longer serves karpenter.sh/v1alpha5 Provisioner; "
        "run `python -m infra migrate karpenter FILE`"]
    assert report.unchecked_kinds == {}
    assert report.coverage["karpenter.sh/v1alpha5/Provisioner"].how.startswith("NOT SERVED by Karpenter v1")


@pytest.mark.parametrize("api, kind", [("karpenter.k8s.aws/v1alpha1", "AWSNodeTemplate"),
                                       ("karpenter.sh/v1beta1", "NodePool"),
                                       ("karpenter.k8s.aws/v1beta1", "EC2NodeClass")])
def test_check_reports_every_legacy_karpenter_kind_with_the_way_forward(api, kind):
    report = validate_objects([{"apiVersion": api, "kind": kind, "metadata": {"name": "x"}, "spec": {}}],
                              k8s_version="1.34", crd_dir=None)
    assert [(f.check, f.message) for f in report.findings] == [
        ("legacy-api", f"Karpenter v1 no longer serves {api} {kind}; run `python -m infra migrate karpenter FILE`")]
    assert not report.ok and report.unchecked_kinds == {}


def test_every_field_of_every_legacy_api_migrates_to_objects_that_pass_check():
    docs = list(yaml.safe_load_all((FIXTURES / "every-field.yaml").read_text()))
    assert {(d["apiVersion"], d["kind"]) for d in docs} == set(LEGACY_KARPENTER)
    m = migrate(docs)
    assert [(o["kind"], o["metadata"]["name"]) for o in m.objects] == [
        ("NodePool", "general"), ("EC2NodeClass", "general"), ("NodePool", "gpu"), ("EC2NodeClass", "gpu")]
    assert check_objects(m.objects) == []
    general = m.objects[1]["spec"]
    assert general["kubelet"]["evictionSoftGracePeriod"] == {"memory.available": "1m"}  # the Provisioner's
    assert "containerRuntime" not in general["kubelet"]
    assert m.objects[3]["spec"]["kubelet"] == {"maxPods": 58}  # the v1beta1 NodePool's
    assert "kubectl.kubernetes.io/last-applied-configuration" not in str(m.objects)


def test_check_manifests_on_the_seed_names_the_migration(tmp_path, capsys):
    from infra.check.cli import main as check_main

    (tmp_path / "seed.yaml").write_text(SEED.read_text())
    assert check_main(["--manifests", str(tmp_path), "--no-checkov"]) == 1
    out = capsys.readouterr().out
    assert ("[legacy-api] Provisioner/default: Karpenter v1 no longer serves karpenter.sh/v1alpha5 Provisioner; "
            "run `python -m infra migrate karpenter FILE`") in out
    assert "[unchecked]" not in out and "no CRD" not in out
