"""The CEL evaluator against the real upstream CRDs, as pinned in infra/upstream.py.

* realistic valid objects (tests/infra/check/cel_fixtures/*.yaml) pass with no failures and nothing
  unsupported;
* broken variants pass the CRD's OpenAPI schema (checked with jsonschema after stripping the
  x-kubernetes-* extensions) and fail only a CEL rule, with the CRD's own message;
* every rule of every CRD compiles (coverage), and validation is fast.
"""
from __future__ import annotations

import copy
import functools
import sys
import time
from pathlib import Path
from typing import Any, Callable

import jsonschema
import pytest
import yaml

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from infra.check.cel import count_rules, iter_rules, validate  # noqa: E402
from infra.check.cel_coverage import coverage  # noqa: E402
from infra.check.crds import pinned_crd_documents  # noqa: E402

FIXTURES = Path(__file__).resolve().parent / "cel_fixtures"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.lru_cache(maxsize=None)
def crd_schemas() -> dict[str, dict[str, Any]]:
    out = {}
    for _, doc in pinned_crd_documents():
        (version,) = [v for v in doc["spec"]["versions"] if v.get("storage")]  # the storage version
        out[doc["spec"]["names"]["kind"]] = version["schema"]["openAPIV3Schema"]
    return out


@functools.lru_cache(maxsize=None)
def all_versions_rule_count() -> dict[str, int]:
    """Rules per kind over every served version (Kueue's CRDs serve v1beta1 and v1beta2)."""
    out: dict[str, int] = {}
    for _, doc in pinned_crd_documents():
        kind = doc["spec"]["names"]["kind"]
        out[kind] = sum(count_rules(v["schema"]["openAPIV3Schema"]) for v in doc["spec"]["versions"])
    return out


def schema(kind: str) -> dict[str, Any]:
    return crd_schemas()[kind]


def _strip_extensions(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_extensions(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if isinstance(node, list):
        return [_strip_extensions(v) for v in node]
    return node


@functools.lru_cache(maxsize=None)
def json_validator(kind: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(_strip_extensions(schema(kind)))


def schema_errors(obj: dict[str, Any]) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in json_validator(obj["kind"]).iter_errors(obj)]


def crd_messages(kind: str) -> set[str]:
    return {rule.get("message", "") for _, rule in iter_rules(schema(kind))}


@functools.lru_cache(maxsize=None)
def _fixture(name: str) -> dict[str, Any]:
    with (FIXTURES / f"{name}.yaml").open() as fh:
        return yaml.safe_load(fh)


def fixture(name: str) -> dict[str, Any]:
    return copy.deepcopy(_fixture(name))


ALL_FIXTURES = sorted(p.stem for p in FIXTURES.glob("*.yaml"))

# kind -> (distinct rules in the CRD, rules among them that are transition rules)
EXPECTED_RULES = {
    "EC2NodeClass": 54, "NodePool": 20, "CephCluster": 13, "CephBlockPool": 1, "CephFilesystem": 2,
    "PyTorchJob": 1, "TFJob": 1, "ScaledObject": 1, "ServiceMonitor": 0, "PodMonitor": 0, "PrometheusRule": 0,
}


def test_pinned_crds_hold_every_fixture_kind():
    assert set(EXPECTED_RULES) <= set(crd_schemas())


def test_every_fixture_kind_is_covered():
    kinds = {fixture(name)["kind"] for name in ALL_FIXTURES}
    assert kinds == set(EXPECTED_RULES)


def _raw_rule_count(node: Any) -> int:
    """Every x-kubernetes-validations entry anywhere in a schema document: a plain scan, no schema walk."""
    if isinstance(node, dict):
        own = node.get("x-kubernetes-validations")
        return (len(own) if isinstance(own, list) else 0) + sum(_raw_rule_count(v) for v in node.values())
    return sum(_raw_rule_count(v) for v in node) if isinstance(node, list) else 0


@pytest.mark.parametrize("kind, total", sorted(EXPECTED_RULES.items()))
def test_rule_counts(kind, total):
    assert count_rules(schema(kind)) == total == _raw_rule_count(schema(kind))


# --- valid objects ----------------------------------------------------------------------------

def rule_sites(value: Any, node: Any, defaults: bool = True) -> tuple[int, int]:
    """(evaluations, transition rules) that the apiserver runs on create, counted from the CRD itself.

    Independent of ``infra.check.cel``: every ``x-kubernetes-validations`` entry of a schema node runs
    once per value present at that node (each array item, each map value), after structural defaults
    fill absent properties; a rule that reads ``oldSelf`` (without ``optionalOldSelf``) only runs on
    update. The fixtures are valid, so every evaluation passes and none is cut short. ``defaults=False``
    counts the object as written.
    """
    if value is None or not isinstance(node, dict):
        return 0, 0
    rules = node.get("x-kubernetes-validations") or []
    transition = sum(1 for r in rules if "oldSelf" in r["rule"] and not r.get("optionalOldSelf"))
    evaluations, skipped = len(rules) - transition, transition
    children: list[tuple[Any, Any]] = []
    if isinstance(value, dict):
        props = node.get("properties") or {}
        present = {**{k: sub["default"] for k, sub in props.items() if defaults and "default" in sub}, **value}
        children = [(v, props[k] if k in props else node.get("additionalProperties")) for k, v in present.items()]
    elif isinstance(value, list):
        children = [(v, node.get("items")) for v in value]
    for child, sub in children:
        e, t = rule_sites(child, sub, defaults)
        evaluations, skipped = evaluations + e, skipped + t
    return evaluations, skipped


def test_rule_sites_counts_items_defaults_and_transition_rules():
    """The independent counter itself, on a hand-written schema whose counts are plain to see."""
    once = [{"rule": "self.size() > 0"}]
    node = {"type": "object", "x-kubernetes-validations": [{"rule": "self == oldSelf"}], "properties": {
        "items": {"type": "array", "items": {"type": "string", "x-kubernetes-validations": once}},
        "mode": {"type": "string", "default": "a", "x-kubernetes-validations": once},
        "tags": {"type": "object", "additionalProperties": {"type": "string", "x-kubernetes-validations": once}},
        "old": {"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf", "optionalOldSelf": True}]},
    }}
    assert rule_sites({"items": ["x", "y", "z"], "tags": {"k": "v"}}, node) == (3 + 1 + 1, 1)
    assert rule_sites({"old": "o", "mode": "b"}, node) == (2, 1)
    assert rule_sites({}, node) == (1, 1) and rule_sites({}, node, defaults=False) == (0, 1)


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_valid_fixture_passes_schema_and_cel(name):
    obj = fixture(name)
    assert schema_errors(obj) == []
    report = validate(obj, schema(obj["kind"]))
    assert report.failures == []
    assert report.unsupported == []
    assert (report.checked, report.skipped) == rule_sites(obj, schema(obj["kind"]))


def test_crds_without_rules():
    no_rules = sorted(kind for kind, total in EXPECTED_RULES.items() if total == 0)
    assert no_rules == ["PodMonitor", "PrometheusRule", "ServiceMonitor"]


def test_kubeflow_jobs_only_have_a_transition_rule():
    for name in ("pytorchjob", "tfjob"):
        obj = fixture(name)
        rules = [rule["rule"] for _, rule in iter_rules(schema(obj["kind"]))]
        assert rules == ["self == oldSelf"]
        obj["spec"]["runPolicy"]["schedulingPolicy"]["queue"] = "another-queue"
        report = validate(obj, schema(obj["kind"]))
        assert report.skipped == 1 and report.checked == 0 and report.failures == []


def test_nodepool_defaults_create_disruption_budgets_that_rules_then_check():
    explicit = fixture("nodepool")
    explicit["spec"]["disruption"] = {"consolidateAfter": "0s", "consolidationPolicy": "WhenEmptyOrUnderutilized",
                                      "budgets": [{"nodes": "10%"}]}
    defaulted = fixture("nodepool")
    del defaulted["spec"]["disruption"]
    a, b = validate(explicit, schema("NodePool")), validate(defaulted, schema("NodePool"))
    expected, _ = rule_sites(explicit, schema("NodePool"))
    # as written, the defaulted object has fewer rule sites: only defaulting brings the budgets' rules back
    assert rule_sites(defaulted, schema("NodePool"), defaults=False)[0] < expected
    assert a.failures == b.failures == [] and a.checked == b.checked == expected


def test_ec2nodeclass_with_matching_ami_family_and_instance_profile():
    obj = fixture("ec2nodeclass")
    obj["spec"]["amiFamily"] = "AL2023"
    del obj["spec"]["role"]
    obj["spec"]["instanceProfile"] = "KarpenterNodeInstanceProfile-ml"
    report = validate(obj, schema("EC2NodeClass"))
    assert schema_errors(obj) == [] and report.failures == [] and report.unsupported == []


# --- broken variants --------------------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    def mutate(obj: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = obj
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return mutate


def _delete(path: str) -> Mutation:
    def mutate(obj: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = obj
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        del node[last]
    return mutate


def _append(path: str, value: Any) -> Mutation:
    def mutate(obj: dict[str, Any]) -> None:
        node: Any = obj
        for part in path.split("."):
            node = node[int(part)] if isinstance(node, list) else node[part]
        node.append(value)
    return mutate


def _all(*mutations: Mutation) -> Mutation:
    def mutate(obj: dict[str, Any]) -> None:
        for m in mutations:
            m(obj)
    return mutate


REQS = "spec.template.spec.requirements"
EC2_ALIAS = "spec.amiSelectorTerms.0"

# (fixture, id, mutation, [(path, message)]) -- messages are the CRD's own rule messages
BROKEN: list[tuple[str, str, Mutation, list[tuple[str, str]]]] = [
    # EC2NodeClass
    ("ec2nodeclass", "alias-without-version", _set(EC2_ALIAS, {"alias": "al2023"}),
     [("spec.amiSelectorTerms[0].alias", "'alias' is improperly formatted, must match the format 'family@version'")]),
    ("ec2nodeclass", "alias-with-tags-in-same-term",
     _set(EC2_ALIAS, {"alias": "al2023@v20251016", "tags": {"karpenter.sh/discovery": "ml-platform"}}),
     [("spec.amiSelectorTerms", "'alias' is mutually exclusive, cannot be set with a combination of other fields in amiSelectorTerms")]),
    ("ec2nodeclass", "alias-with-second-term",
     _append("spec.amiSelectorTerms", {"id": "ami-0123456789abcdef0"}),
     [("spec.amiSelectorTerms", "'alias' is mutually exclusive, cannot be set with a combination of other amiSelectorTerms")]),
    ("ec2nodeclass", "unknown-alias-family", _set(EC2_ALIAS, {"alias": "ubuntu@latest"}),
     [("spec.amiSelectorTerms[0].alias", "family is not supported, must be one of the following: 'al2', 'al2023', 'bottlerocket', 'windows2019', 'windows2022', 'windows2025'")]),
    ("ec2nodeclass", "windows-alias-pinned", _set(EC2_ALIAS, {"alias": "windows2022@v1"}),
     [("spec.amiSelectorTerms[0].alias", "windows families may only specify version 'latest'")]),
    ("ec2nodeclass", "ami-family-mismatch", _set("spec.amiFamily", "Bottlerocket"),
     [("spec", "if set, amiFamily must be 'AL2023' or 'Custom' when using an AL2023 alias")]),
    ("ec2nodeclass", "role-and-instance-profile", _set("spec.instanceProfile", "KarpenterNodeInstanceProfile"),
     [("spec", "must specify exactly one of ['role', 'instanceProfile']")]),
    ("ec2nodeclass", "restricted-cluster-tag", _set("spec.tags", {"kubernetes.io/cluster/ml": "owned"}),
     [("spec.tags", "tag contains a restricted tag matching kubernetes.io/cluster/")]),
    # An empty list also trips the two `!self.all(...)` exclusivity rules (all() of nothing is
    # true), exactly as on the apiserver.
    ("ec2nodeclass", "empty-security-group-terms", _set("spec.securityGroupSelectorTerms", []),
     [("spec.securityGroupSelectorTerms", "securityGroupSelectorTerms cannot be empty"),
      ("spec.securityGroupSelectorTerms", "'id' is mutually exclusive, cannot be set with a combination of other fields in a security group selector term"),
      ("spec.securityGroupSelectorTerms", "'name' is mutually exclusive, cannot be set with a combination of other fields in a security group selector term")]),
    ("ec2nodeclass", "two-root-volumes",
     _append("spec.blockDeviceMappings", {"deviceName": "/dev/xvdb", "rootVolume": True, "ebs": {"volumeSize": "100Gi"}}),
     [("spec.blockDeviceMappings", "must have only one blockDeviceMappings with rootVolume")]),
    ("ec2nodeclass", "image-gc-thresholds-inverted", _set("spec.kubelet.imageGCLowThresholdPercent", 90),
     [("spec.kubelet", "imageGCHighThresholdPercent must be greater than imageGCLowThresholdPercent")]),
    ("ec2nodeclass", "negative-system-reserved", _set("spec.kubelet.systemReserved", {"cpu": "-100m"}),
     [("spec.kubelet.systemReserved", "systemReserved value cannot be a negative resource quantity")]),
    ("ec2nodeclass", "initialization-rate-without-snapshot", _set("spec.blockDeviceMappings.0.ebs.volumeInitializationRate", 200),
     [("spec.blockDeviceMappings[0].ebs", "snapshotID must be set when volumeInitializationRate is set")]),
    # NodePool
    ("nodepool", "in-without-values", _set(f"{REQS}.0.values", []),
     [("spec.template.spec.requirements", "requirements with operator 'In' must have a value defined")]),
    ("nodepool", "restricted-nodepool-key",
     _append(REQS, {"key": "karpenter.sh/nodepool", "operator": "In", "values": ["gpu"]}),
     [("spec.template.spec.requirements[4].key", 'label "karpenter.sh/nodepool" is restricted')]),
    ("nodepool", "restricted-karpenter-sh-domain",
     _append(REQS, {"key": "karpenter.sh/custom", "operator": "Exists"}),
     [("spec.template.spec.requirements[4].key", 'label domain "karpenter.sh" is restricted')]),
    ("nodepool", "restricted-hostname-key",
     _append(REQS, {"key": "kubernetes.io/hostname", "operator": "Exists"}),
     [("spec.template.spec.requirements[4].key", 'label "kubernetes.io/hostname" is restricted')]),
    ("nodepool", "gt-with-two-values", _set(f"{REQS}.3.values", ["0", "1"]),
     [("spec.template.spec.requirements", "requirements operator 'Gt', 'Lt', 'Gte', or 'Lte' must have a single positive integer value")]),
    ("nodepool", "min-values-too-high", _set(f"{REQS}.0.minValues", 3),
     [("spec.template.spec.requirements", "requirements with 'minValues' must have at least that many values specified in the 'values' field")]),
    ("nodepool", "budget-schedule-without-duration", _delete("spec.disruption.budgets.1.duration"),
     [("spec.disruption.budgets", "'schedule' must be set with 'duration'")]),
    ("nodepool", "restricted-template-label", _set("spec.template.metadata.labels", {"karpenter.k8s.aws/instance-foo": "x"}),
     [("spec.template.metadata.labels", 'label domain "karpenter.k8s.aws" is restricted')]),
    ("nodepool", "empty-node-class-name", _set("spec.template.spec.nodeClassRef.name", ""),
     [("spec.template.spec.nodeClassRef.name", "name may not be empty")]),
    ("nodepool", "static-pool-with-weight", _all(_set("spec.replicas", 3), _set("spec.limits", {"nodes": "5"})),
     [("spec", "'weight' is not supported on static NodePools")]),
    # CephCluster
    ("cephcluster", "bad-health-check-code", _set("spec.healthCheck.muteHealthWarning", {"pool_no_redundancy": {"policy": "mute"}}),
     [("spec.healthCheck.muteHealthWarning", "keys must be valid Ceph health check codes")]),
    ("cephcluster", "more-zones-than-mons",
     _set("spec.mon", {"count": 1, "zones": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}),
     [("spec.mon", "zones must be less than or equal to count")]),
    ("cephcluster", "stretch-cluster-two-zones",
     _set("spec.mon", {"count": 5, "stretchCluster": {"zones": [{"name": "a", "arbiter": True}, {"name": "b"}]}}),
     [("spec.mon", "stretchCluster zones must be equal to 3")]),
    ("cephcluster", "multus-without-selectors", _set("spec.network", {"provider": "multus", "selectors": {}}),
     [("spec.network", "at least one network selector must be specified when using multus")]),
    ("cephcluster", "host-network-with-provider", _set("spec.network", {"provider": "host", "hostNetwork": True}),
     [("spec.network", "the legacy hostNetwork setting can only be set if the network.provider is set to the empty string")]),
    # CephBlockPool
    ("cephblockpool", "crush-domains-without-osds", _set("spec.erasureCoded.crushNumFailureDomains", 3),
     [("spec.erasureCoded", "crushNumFailureDomains and crushOSDsPerFailureDomain must be specified together")]),
    ("cephblockpool", "crush-osds-without-domains", _set("spec.erasureCoded.crushOSDsPerFailureDomain", 2),
     [("spec.erasureCoded", "crushNumFailureDomains and crushOSDsPerFailureDomain must be specified together")]),
    # CephFilesystem
    ("cephfilesystem", "data-pool-crush-half-set", _set("spec.dataPools.1.erasureCoded.crushNumFailureDomains", 3),
     [("spec.dataPools[1].erasureCoded", "crushNumFailureDomains and crushOSDsPerFailureDomain must be specified together")]),
    ("cephfilesystem", "metadata-pool-crush-half-set",
     _set("spec.metadataPool", {"erasureCoded": {"dataChunks": 2, "codingChunks": 1, "crushOSDsPerFailureDomain": 2}}),
     [("spec.metadataPool.erasureCoded", "crushNumFailureDomains and crushOSDsPerFailureDomain must be specified together")]),
    # ScaledObject
    ("scaledobject", "min-above-max", _all(_set("spec.minReplicaCount", 5), _set("spec.maxReplicaCount", 2)),
     [("spec", "minReplicaCount must be less than or equal to maxReplicaCount")]),
    ("scaledobject", "min-above-implicit-max", _all(_set("spec.minReplicaCount", 150), _delete("spec.maxReplicaCount")),
     [("spec", "minReplicaCount must be less than or equal to maxReplicaCount")]),
]


@pytest.mark.parametrize("name, case, mutate, expected", BROKEN, ids=[f"{b[0]}-{b[1]}" for b in BROKEN])
def test_broken_variant_passes_schema_and_fails_only_its_cel_rule(name, case, mutate, expected):
    obj = fixture(name)
    mutate(obj)
    assert schema_errors(obj) == [], "the variant must be valid against the OpenAPI schema"
    report = validate(obj, schema(obj["kind"]))
    assert report.unsupported == []
    assert sorted((f.path, f.message) for f in report.failures) == sorted(expected)
    for _, message in expected:
        assert message in crd_messages(obj["kind"])


def test_every_kind_with_create_time_rules_has_two_broken_variants():
    counts: dict[str, int] = {}
    for name, *_ in BROKEN:
        kind = fixture(name)["kind"]
        counts[kind] = counts.get(kind, 0) + 1
    create_time = set()
    for kind in EXPECTED_RULES:
        if any("oldSelf" not in rule["rule"] for _, rule in iter_rules(schema(kind))):
            create_time.add(kind)
    assert create_time == {"EC2NodeClass", "NodePool", "CephCluster", "CephBlockPool", "CephFilesystem", "ScaledObject"}
    assert all(counts.get(kind, 0) >= 2 for kind in create_time), counts


def test_in_requirement_with_values_absent_is_an_evaluation_error_on_the_same_rule():
    obj = fixture("nodepool")
    del obj["spec"]["template"]["spec"]["requirements"][0]["values"]
    assert schema_errors(obj) == []
    report = validate(obj, schema("NodePool"))
    assert [f.message for f in report.failures] == [
        "no such key: values evaluating rule: requirements with operator 'In' must have a value defined"
    ]


def test_gt_requirement_with_non_integer_value_is_an_evaluation_error():
    obj = fixture("nodepool")
    obj["spec"]["template"]["spec"]["requirements"][3]["values"] = ["many"]
    report = validate(obj, schema("NodePool"))
    assert len(report.failures) == 1
    assert report.failures[0].message.endswith(
        "evaluating rule: requirements operator 'Gt', 'Lt', 'Gte', or 'Lte' must have a single positive integer value")


# --- coverage and speed -----------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _coverage() -> dict[str, dict[str, Any]]:
    return coverage(doc for _, doc in pinned_crd_documents())


def test_coverage_karpenter_rules_all_compile():
    cov = _coverage()
    for kind in ("EC2NodeClass", "NodePool", "NodeClaim"):
        assert cov[kind]["unsupported"] == [], kind
        assert cov[kind]["compiled"] == cov[kind]["total"] > 0
    assert cov["EC2NodeClass"]["total"] == 54 and cov["NodePool"]["total"] == 20


def test_coverage_all_crds_compile():
    cov = _coverage()
    assert set(EXPECTED_RULES) <= set(cov)
    for kind, entry in cov.items():
        assert entry["unsupported"] == [], (kind, entry["unsupported"])
        assert entry["total"] == entry["compiled"] == all_versions_rule_count()[kind], kind


def test_coverage_reports_unsupported_rules(tmp_path):
    doc = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "names": {"kind": "Widget", "plural": "widgets"}, "scope": "Namespaced",
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                     "type": "object",
                     "properties": {"spec": {"type": "object", "x-kubernetes-validations": [
                         {"rule": "self.frob()"}, {"rule": "self.a +"}, {"rule": "has(self.a)"},
                         {"rule": "has(self.a)", "messageExpression": "self.nope()"},
                         {"rule": "self == oldSelf"},
                     ]}}}}}]},
    }
    (tmp_path / "widget.yaml").write_text(yaml.safe_dump(doc))
    entry = coverage(tmp_path)["Widget"]
    assert entry["total"] == 5 and entry["compiled"] == 2 and entry["transition"] == 1
    reasons = [u.reason for u in entry["unsupported"]]
    assert "frob" in reasons[0] and reasons[1].startswith("compile error") and reasons[2].startswith("messageExpression:")
    assert all(u.path == "spec" for u in entry["unsupported"])


def test_validation_is_fast():
    objects = [fixture(name) for name in ALL_FIXTURES]
    schemas = [schema(o["kind"]) for o in objects]
    start = time.perf_counter()
    for o, s in zip(objects, schemas):
        validate(o, s)
    cold = time.perf_counter() - start  # includes compiling rules not seen yet in this process
    passes = []
    for _ in range(10):
        start = time.perf_counter()
        for o, s in zip(objects, schemas):
            validate(o, s)
        passes.append(time.perf_counter() - start)
    assert cold < 1.0, cold
    assert max(passes) < 0.25, passes  # budget is 1 s per pass; keep a wide margin


def test_readme_rule_count_is_true():
    """The README's "All N rules of the M pinned CRDs compile", counted from the CRD documents themselves."""
    import re

    text = (REPO / "README.md").read_text()
    m = re.search(r"All (\d+) rules of the (\d+) pinned\s+CRDs compile", text)
    assert m, "README lost its CEL rule count"
    counts = all_versions_rule_count()
    assert (int(m.group(1)), int(m.group(2))) == (sum(counts.values()), len(counts))
    assert sum(e["compiled"] for e in _coverage().values()) == sum(counts.values())
