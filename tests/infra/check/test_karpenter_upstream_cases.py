"""Karpenter's own API-validation tests, translated: ``check`` must accept what upstream's API server
accepts and reject what it rejects.

Sources (read at the tags the pinned CRDs come from; the provider's go.mod pins the core module at
the commit of core tag v1.14.1):

* ``NP``  = kubernetes-sigs/karpenter v1.14.1 ``pkg/apis/v1/nodepool_validation_cel_test.go``
* ``NC``  = kubernetes-sigs/karpenter v1.14.1 ``pkg/apis/v1/nodeclaim_validation_cel_test.go``
* ``ENC`` = aws/karpenter-provider-aws v1.14.1 ``pkg/apis/v1/ec2nodeclass_validation_cel_test.go``
* ``ANP`` = aws/karpenter-provider-aws v1.14.1 ``pkg/apis/v1/nodepool_validation_cel_test.go``

Each Go test builds a typed object and calls ``env.Client.Create`` against an envtest API server
that has the CRDs installed; the verdict translated here is that ``Create``'s (``Succeed()`` ->
accepted, ``Not(Succeed())`` -> rejected). The objects below are written as the Go client puts them
on the wire, which matters for defaulting and nulls:

* a nil slice without ``omitempty`` is sent as ``null`` (``capacityReservationSelectorTerms``,
  ``subnetSelectorTerms``, ``securityGroupSelectorTerms``, ``amiSelectorTerms``, ``requirements``);
  an empty map or slice with ``omitempty`` is not sent at all (``tags: {}``, ``networkInterfaces: []``,
  ``values: []``), an empty string with ``omitempty`` neither (``role: ""``);
* a zero ``NillableDuration`` is sent as ``"Never"`` (``expireAfter``, ``consolidateAfter``), a
  ``metav1.Duration`` as Go's ``Duration.String()`` (``20m0s``), a ``resource.Quantity`` in its
  canonical form (``500G``, ``1m``; the zero quantity as ``"0"``);
* fields without ``omitempty`` are sent even when empty (``nodeClassRef.group: ""``, taint
  ``key: ""`` / ``effect: ""``); ``status`` is dropped by the server on create and left out here.

None of these Go tests checks the error message, so every case asserts the verdict; a rejected case
also names the field path where (at least) one finding must be reported (the path of the field the
Go test breaks, or of the object whose rule it breaks), so that a case cannot pass by failing for an
unrelated reason.

Left out, as they cannot be checked offline on a single create:

* update-only / transition rules (``oldSelf``) and tests that need a stored object:
  NP ``Context("NodeClassRef")`` "should fail to mutate group", "should fail to mutate kind";
  NP ``Context("Replicas") / Context("Update Scenarios")`` "should succeed when increasing replicas
  in a NodePool", "should fail when changing the NodePool from static to dynamic", "should fail when
  changing the NodePool from dynamic to static", "should succeed when changing the static NodePool
  nodes limit"; ENC ``Context("Role Immutability")`` "should succeed when updating the role",
  "should succeed to switch between an unmanaged and managed instance profile", "should succeed to
  switch between a managed and unmanaged instance profile".
* Go-only checks with no API request: NP "should pass RuntimeValidate for valid consolidationPolicy"
  (only ``RuntimeValidate``). Where a Go test asserts both ``Create`` and ``RuntimeValidate``, only
  the ``Create`` verdict is translated (e.g. "should fail for invalid label keys" is *accepted* by
  the API server and only rejected by ``RuntimeValidate``).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import pytest

from infra.check.objects import validate_objects

pytestmark = pytest.mark.manifests

NP = "nodepool_validation_cel_test.go (kubernetes-sigs/karpenter v1.14.1)"
NC = "nodeclaim_validation_cel_test.go (kubernetes-sigs/karpenter v1.14.1)"
ENC = "ec2nodeclass_validation_cel_test.go (aws/karpenter-provider-aws v1.14.1)"
ANP = "nodepool_validation_cel_test.go (aws/karpenter-provider-aws v1.14.1)"

ACCEPT, REJECT = True, False
_DELETE = object()

# --- the objects each Go suite's BeforeEach builds, as sent ---------------------------------------

# NP BeforeEach: a NodePool referencing a test node class, one requirement; zero durations are "Never".
NODEPOOL = {
    "apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "upstream-case"},
    "spec": {
        "template": {
            "metadata": {},
            "spec": {
                "nodeClassRef": {"group": "karpenter.test.sh", "kind": "TestNodeClass", "name": "default"},
                "requirements": [{"key": "karpenter.sh/capacity-type", "operator": "Exists"}],
                "expireAfter": "Never",
            },
        },
        "disruption": {"consolidateAfter": "Never"},
    },
}
# ANP BeforeEach: the same, referencing the provider's EC2NodeClass.
AWS_NODEPOOL = copy.deepcopy(NODEPOOL)
AWS_NODEPOOL["spec"]["template"]["spec"]["nodeClassRef"] = {
    "group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"}
# NC BeforeEach: a NodeClaim referencing a test node class (resources is an omitempty struct: {}).
NODECLAIM = {
    "apiVersion": "karpenter.sh/v1", "kind": "NodeClaim", "metadata": {"name": "upstream-case"},
    "spec": {
        "nodeClassRef": {"group": "karpenter.test.sh", "kind": "TestNodeClaim", "name": "default"},
        "requirements": [{"key": "karpenter.sh/capacity-type", "operator": "Exists"}],
        "resources": {},
        "expireAfter": "Never",
    },
}
# ENC BeforeEach: AL2023 family and alias, a role, match-all selector terms; the nil
# capacityReservationSelectorTerms slice (no omitempty) goes out as null.
EC2NODECLASS = {
    "apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass", "metadata": {"name": "upstream-case"},
    "spec": {
        "amiFamily": "AL2023",
        "amiSelectorTerms": [{"alias": "al2023@latest"}],
        "role": "role-1",
        "securityGroupSelectorTerms": [{"tags": {"*": "*"}}],
        "subnetSelectorTerms": [{"tags": {"*": "*"}}],
        "capacityReservationSelectorTerms": None,
    },
}
# ENC Context("BlockDeviceMappings") builds its own class from the base's terms and role (no amiFamily).
BDM_NODECLASS = copy.deepcopy(EC2NODECLASS)
del BDM_NODECLASS["spec"]["amiFamily"]

CORE_WELL_KNOWN = [  # karpv1.WellKnownLabels in the core module
    "karpenter.sh/nodepool", "topology.kubernetes.io/zone", "topology.kubernetes.io/region",
    "node.kubernetes.io/instance-type", "kubernetes.io/arch", "kubernetes.io/os",
    "karpenter.sh/capacity-type", "node.kubernetes.io/windows-build",
]
AWS_WELL_KNOWN = CORE_WELL_KNOWN + [  # what the provider's labels.go init() inserts
    *(f"karpenter.k8s.aws/{x}" for x in (
        "capacity-reservation-id", "capacity-reservation-type", "capacity-reservation-interruptible",
        "instance-hypervisor", "instance-encryption-in-transit-supported", "instance-category",
        "instance-capability-flex", "instance-family", "instance-generation", "instance-size",
        "instance-local-nvme", "instance-cpu", "instance-cpu-manufacturer",
        "instance-cpu-sustained-clock-speed-mhz", "instance-memory", "instance-ebs-bandwidth",
        "instance-network-bandwidth", "instance-gpu-name", "instance-gpu-manufacturer",
        "instance-gpu-count", "instance-gpu-memory", "instance-accelerator-name",
        "instance-accelerator-manufacturer", "instance-accelerator-count", "instance-tenancy",
        "placement-group-id", "placement-group-partition")),
    "topology.k8s.aws/zone-id",
]
LONG = "a1b2c3d4e5" * 25  # stands in for strings.ToLower(randomdata.Alphanumeric(250))


@dataclass(frozen=True)
class Case:
    id: str
    source: str      # Go file
    it: str          # the It(...) / DescribeTable(...) / Entry(...) description
    obj: dict[str, Any]
    accepted: bool   # the verdict the Go test asserts for Create
    at: str = ""     # rejected: the path one finding must start with

    def __str__(self) -> str:
        return self.id


def _set(obj: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node = obj
    for key in parents:
        node = node.setdefault(key, {})
    if value is _DELETE:
        node.pop(last, None)
    else:
        node[last] = copy.deepcopy(value)


def build(base: dict[str, Any], *changes: tuple[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(base)
    for path, value in changes:
        _set(obj, path, value)
    return obj


CASES: list[Case] = []


def case(id: str, source: str, it: str, base: dict[str, Any], *changes: tuple[str, Any],
         ok: bool, at: str = "") -> None:
    assert ok or at, f"{id}: a rejected case names where"
    assert id not in {c.id for c in CASES}, id
    CASES.append(Case(id, source, it, build(base, *changes), ok, at))


TPL = "spec.template.spec"
REQS = f"{TPL}.requirements"
TAINTS = f"{TPL}.taints"
BUDGETS = "spec.disruption.budgets"


def req(key: str, op: str, values: list[str] | None = None, min_values: int | None = None) -> dict[str, Any]:
    r: dict[str, Any] = {"key": key, "operator": op}
    if values:  # []string{} is omitempty: not sent
        r["values"] = values
    if min_values is not None:
        r["minValues"] = min_values
    return r


def budget(nodes: str, schedule: str | None = None, duration: str | None = None,
           reasons: list[str] | None = None) -> dict[str, Any]:
    b: dict[str, Any] = {"nodes": nodes}
    if schedule is not None:
        b["schedule"] = schedule
    if duration is not None:
        b["duration"] = duration
    if reasons is not None:
        b["reasons"] = reasons
    return b


# =================================================================================================
# NP: kubernetes-sigs/karpenter pkg/apis/v1/nodepool_validation_cel_test.go, Context("Disruption")
# =================================================================================================
# NP It("should succeed on a disabled expireAfter")
case("np-expireAfter-never", NP, "should succeed on a disabled expireAfter", NODEPOOL,
     (f"{TPL}.expireAfter", "Never"), ok=ACCEPT)
for entry, value in (("single unit", "30s"), ("multiple units", "1h30m5s"), ("never", "Never")):
    # NP DescribeTable("should succeed on a valid expireAfter"), Entry(entry)
    case(f"np-expireAfter-valid-{value}", NP, f"should succeed on a valid expireAfter / {entry}", NODEPOOL,
         (f"{TPL}.expireAfter", value), ok=ACCEPT)
for entry, value in (("negative", "-1s"), ("invalid unit", "1hr"), ("partial match", "FooNever")):
    # NP DescribeTable("should fail on an invalid expireAfter"), Entry(entry)
    case(f"np-expireAfter-invalid-{value}", NP, f"should fail on an invalid expireAfter / {entry}", NODEPOOL,
         (f"{TPL}.expireAfter", value), ok=REJECT, at=f"{TPL}.expireAfter")
# NP It("should succeed on a disabled consolidateAfter")
case("np-consolidateAfter-never", NP, "should succeed on a disabled consolidateAfter", NODEPOOL,
     ("spec.disruption.consolidateAfter", "Never"), ok=ACCEPT)
for entry, value in (("single unit", "30s"), ("multiple units", "1h30m5s"), ("never", "Never")):
    # NP DescribeTable("should succeed on a valid consolidateAfter"), Entry(entry)
    case(f"np-consolidateAfter-valid-{value}", NP, f"should succeed on a valid consolidateAfter / {entry}",
         NODEPOOL, ("spec.disruption.consolidateAfter", value), ok=ACCEPT)
for entry, value in (("negative", "-1s"), ("invalid unit", "1hr"), ("partial match", "FooNever")):
    # NP DescribeTable("should fail on an invalid consolidateAfter"), Entry(entry)
    case(f"np-consolidateAfter-invalid-{value}", NP, f"should fail on an invalid consolidateAfter / {entry}",
         NODEPOOL, ("spec.disruption.consolidateAfter", value), ok=REJECT, at="spec.disruption.consolidateAfter")
for it, after, policy in (
        ("should succeed when setting consolidateAfter with consolidationPolicy=WhenEmpty", "30s", "WhenEmpty"),
        ("should succeed when setting consolidateAfter with consolidationPolicy=WhenUnderutilized", "30s",
         "WhenEmptyOrUnderutilized"),
        ("should succeed when setting consolidateAfter to 'Never' with consolidationPolicy=WhenUnderutilized",
         "Never", "WhenEmptyOrUnderutilized"),
        ("should succeed when setting consolidateAfter to 'Never' with consolidationPolicy=WhenEmpty", "Never",
         "WhenEmpty")):
    # NP It(it)
    case(f"np-consolidateAfter-{after}-{policy}", NP, it, NODEPOOL,
         ("spec.disruption.consolidateAfter", after), ("spec.disruption.consolidationPolicy", policy), ok=ACCEPT)
for value in ("WhenEmpty", "WhenEmptyOrUnderutilized", "Balanced"):
    # NP DescribeTable("should succeed on a valid consolidationPolicy"), Entry(value)
    case(f"np-consolidationPolicy-valid-{value}", NP, f"should succeed on a valid consolidationPolicy / {value}",
         NODEPOOL, ("spec.disruption.consolidationPolicy", value), ok=ACCEPT)
for entry, value in (("quoted 1", "1"), ("quoted 2", "2"), ("quoted 3", "3"), ("level 0", "0"), ("level 4", "4"),
                     ("level 10", "10"), ("lowercase balanced", "balanced"), ("lowercase whenempty", "whenempty"),
                     ("empty string", ""), ("WhenUnderutilized", "WhenUnderutilized"), ("arbitrary string", "foo")):
    # NP DescribeTable("should fail on an invalid consolidationPolicy"), Entry(entry)
    case(f"np-consolidationPolicy-invalid-{entry.replace(' ', '-')}", NP,
         f"should fail on an invalid consolidationPolicy / {entry}", NODEPOOL,
         ("spec.disruption.consolidationPolicy", value), ok=REJECT, at="spec.disruption.consolidationPolicy")
# NP It("should fail when creating a budget with an invalid cron")
case("np-budget-invalid-cron", NP, "should fail when creating a budget with an invalid cron", NODEPOOL,
     (BUDGETS, [budget("10", "*", "20m0s")]), ok=REJECT, at=f"{BUDGETS}[0].schedule")
# NP It("should fail when creating a schedule with less than 5 entries")
case("np-budget-cron-4-fields", NP, "should fail when creating a schedule with less than 5 entries", NODEPOOL,
     (BUDGETS, [budget("10", "* * * * ", "20m0s")]), ok=REJECT, at=f"{BUDGETS}[0].schedule")
# NP It("should fail when creating a budget with a negative duration")
case("np-budget-negative-duration", NP, "should fail when creating a budget with a negative duration", NODEPOOL,
     (BUDGETS, [budget("10", "* * * * *", "-20m0s")]), ok=REJECT, at=f"{BUDGETS}[0].duration")
# NP It("should fail when creating a budget with a seconds duration")
case("np-budget-seconds-duration", NP, "should fail when creating a budget with a seconds duration", NODEPOOL,
     (BUDGETS, [budget("10", "* * * * *", "30s")]), ok=REJECT, at=f"{BUDGETS}[0].duration")
for it, nodes in (("should fail when creating a budget with a negative value int", "-10"),
                  ("should fail when creating a budget with a negative value percent", "-10%"),
                  ("should fail when creating a budget with a value percent with more than 3 digits", "1000%")):
    # NP It(it)
    case(f"np-budget-nodes-{nodes}", NP, it, NODEPOOL, (BUDGETS, [budget(nodes)]), ok=REJECT,
         at=f"{BUDGETS}[0].nodes")
# NP It("should fail when creating a budget with a cron but no duration")
case("np-budget-cron-no-duration", NP, "should fail when creating a budget with a cron but no duration", NODEPOOL,
     (BUDGETS, [budget("10", "* * * * *")]), ok=REJECT, at=BUDGETS)
# NP It("should fail when creating a budget with a duration but no cron")
case("np-budget-duration-no-cron", NP, "should fail when creating a budget with a duration but no cron", NODEPOOL,
     (BUDGETS, [budget("10", duration="20m0s")]), ok=REJECT, at=BUDGETS)
# NP It("should succeed when creating a budget with both duration and cron")
case("np-budget-cron-and-duration", NP, "should succeed when creating a budget with both duration and cron",
     NODEPOOL, (BUDGETS, [budget("10", "* * * * *", "20m0s")]), ok=ACCEPT)
# NP It("should succeed when creating a budget with hours and minutes in duration")
case("np-budget-hours-minutes", NP, "should succeed when creating a budget with hours and minutes in duration",
     NODEPOOL, (BUDGETS, [budget("10", "* * * * *", "2h20m0s")]), ok=ACCEPT)
# NP It("should succeed when creating a budget with neither duration nor cron")
case("np-budget-nodes-only", NP, "should succeed when creating a budget with neither duration nor cron", NODEPOOL,
     (BUDGETS, [budget("10")]), ok=ACCEPT)
# NP It("should succeed when creating a budget with special cased crons")
case("np-budget-annually", NP, "should succeed when creating a budget with special cased crons", NODEPOOL,
     (BUDGETS, [budget("10", "@annually", "20m0s")]), ok=ACCEPT)
# NP It("should fail when creating two budgets where one has an invalid crontab")
case("np-budgets-one-bad-cron", NP, "should fail when creating two budgets where one has an invalid crontab",
     NODEPOOL, (BUDGETS, [budget("10", "@annually", "20m0s"), budget("10", "*", "20m0s")]), ok=REJECT,
     at=f"{BUDGETS}[1].schedule")
# NP It("should fail when creating multiple budgets where one doesn't have both schedule and duration")
case("np-budgets-one-half-window", NP,
     "should fail when creating multiple budgets where one doesn't have both schedule and duration", NODEPOOL,
     (BUDGETS, [budget("10", duration="20m0s"), budget("10", "* * * * *", "20m0s"), budget("10")]), ok=REJECT,
     at=BUDGETS)
for reason in ("Drifted", "Underutilized", "Empty"):
    # NP DescribeTable("should succeed when creating a budget with valid reasons"),
    #    Entry("should allow disruption reason <reason>")
    case(f"np-budget-reason-{reason}", NP,
         f"should succeed when creating a budget with valid reasons / should allow disruption reason {reason}",
         NODEPOOL, (BUDGETS, [budget("10", "* * * * *", "20m0s", [reason])]), ok=ACCEPT)
for entry, reason in (("should not allow invalid reason", "invalid"),
                      ("should not allow expired disruption reason", "expired"),
                      ("should not allow empty reason", "")):
    # NP DescribeTable("should fail when creating a budget with invalid reasons"), Entry(entry)
    case(f"np-budget-reason-invalid-{reason or 'empty'}", NP,
         f"should fail when creating a budget with invalid reasons / {entry}", NODEPOOL,
         (BUDGETS, [budget("10", "* * * * *", "20m0s", [reason])]), ok=REJECT, at=f"{BUDGETS}[0].reasons[0]")
# NP It("should allow setting multiple reasons")
case("np-budget-multiple-reasons", NP, "should allow setting multiple reasons", NODEPOOL,
     (BUDGETS, [budget("10", "* * * * *", "20m0s", ["Drifted", "Empty"])]), ok=ACCEPT)

# =================================================================================================
# NP Context("Taints")
# =================================================================================================
# NP It("should succeed for valid taints")
case("np-taints-valid", NP, "should succeed for valid taints", NODEPOOL,
     (TAINTS, [{"key": "a", "value": "b", "effect": "NoSchedule"}, {"key": "c", "value": "d", "effect": "NoExecute"},
               {"key": "e", "value": "f", "effect": "PreferNoSchedule"},
               {"key": "Test", "value": "f", "effect": "PreferNoSchedule"},
               {"key": "test.com/Test", "value": "f", "effect": "PreferNoSchedule"},
               {"key": "test.com.com/test", "value": "f", "effect": "PreferNoSchedule"},
               {"key": "key-only", "effect": "NoExecute"}]), ok=ACCEPT)
for n, key in enumerate(("test.com.com}", "Test.com/test", "test/test/test", "test/", "/test"), 1):
    # NP It("should fail for invalid taint keys"), assertion n
    case(f"np-taint-key-invalid-{n}", NP, f"should fail for invalid taint keys / {key!r}", NODEPOOL,
         (TAINTS, [{"key": key, "effect": "NoSchedule"}]), ok=REJECT, at=f"{TAINTS}[0].key")
for n, key in enumerate((f"test.com.test.{LONG}/test", f"test.com.test/test-{LONG}"), 1):
    # NP It("should fail at runtime for taint keys that are too long"): Create succeeds (assertion n)
    case(f"np-taint-key-long-{n}", NP, "should fail at runtime for taint keys that are too long", NODEPOOL,
         (TAINTS, [{"key": key, "effect": "NoSchedule"}]), ok=ACCEPT)

# =================================================================================================
# NP Context("Requirements") and NC Context("Requirements"): the same tests on both kinds
# =================================================================================================
# NP It("should succeed for valid requirement keys")
case("np-req-valid-keys", NP, "should succeed for valid requirement keys", NODEPOOL,
     (REQS, [req("Test", "Exists"), req("test.com/Test", "Exists"), req("test.com.com/test", "Exists"),
             req("key-only", "Exists")]), ok=ACCEPT)
for n, key in enumerate(("test.com.com}", "Test.com/test", "test/test/test", "test/", "/test"), 1):
    # NP It("should fail for invalid requirement keys"), assertion n
    case(f"np-req-key-invalid-{n}", NP, f"should fail for invalid requirement keys / {key!r}", NODEPOOL,
         (REQS, [req(key, "Exists")]), ok=REJECT, at=f"{REQS}[0].key")
for n, key in enumerate((f"test.com.test.{LONG}/test", f"test.com.test/test-{LONG}"), 1):
    # NP It("should fail at runtime for requirement keys that are too long"): Create succeeds (assertion n)
    case(f"np-req-key-long-{n}", NP, "should fail at runtime for requirement keys that are too long", NODEPOOL,
         (REQS, [req(key, "Exists")]), ok=ACCEPT)
# NP It("should fail for the karpenter.sh/nodepool label")  (Context("Requirements"))
case("np-req-nodepool-label", NP, "Requirements: should fail for the karpenter.sh/nodepool label", NODEPOOL,
     (REQS, [req("karpenter.sh/nodepool", "In", ["Alice"])]), ok=REJECT, at=f"{REQS}[0].key")

SUPPORTED_OPS = [req("topology.kubernetes.io/zone", "In", ["test"]), req("topology.kubernetes.io/zone", "Gt", ["1"]),
                 req("topology.kubernetes.io/zone", "Lt", ["1"]), req("topology.kubernetes.io/zone", "NotIn"),
                 req("topology.kubernetes.io/zone", "Exists")]
BAD_NUMERIC = [(op, values) for op in ("Gt", "Lt", "Gte", "Lte") for values in ([], ["1", "2"], ["a"], ["-1"])]
NINETY = [f"instance{i}" for i in range(90)]

for tag, src, base, reqs, name in (("np", NP, NODEPOOL, REQS, "nodePool"), ("nc", NC, NODECLAIM,
                                                                          "spec.requirements", "nodeClaim")):
    # NP/NC It("should allow supported ops")
    case(f"{tag}-req-supported-ops", src, "should allow supported ops", base, (reqs, SUPPORTED_OPS), ok=ACCEPT)
    # NP/NC It("should fail for unsupported ops")
    case(f"{tag}-req-unsupported-op", src, "should fail for unsupported ops / 'unknown'", base,
         (reqs, [req("topology.kubernetes.io/zone", "unknown", ["test"])]), ok=REJECT, at=f"{reqs}[0].operator")
    # NP/NC It("should fail for restricted domains"): RestrictedLabelDomains = {karpenter.sh}
    case(f"{tag}-req-restricted-domain", src, "should fail for restricted domains / karpenter.sh", base,
         (reqs, [req("karpenter.sh/test", "In", ["test"])]), ok=REJECT, at=f"{reqs}[0].key")
    # NP/NC It("should fail for restricted labels"): RestrictedLabels = {kubernetes.io/hostname}, + "/test"
    case(f"{tag}-req-restricted-label", src, "should fail for restricted labels / kubernetes.io/hostname", base,
         (reqs, [req("kubernetes.io/hostname/test", "In", ["test"])]), ok=REJECT, at=f"{reqs}[0].key")
    for domain in ("kubernetes.io", "k8s.io"):
        # NP/NC It("should allow kubernetes domains")
        case(f"{tag}-req-domain-{domain}", src, f"should allow kubernetes domains / {domain}", base,
             (reqs, [req(f"{domain}/test", "In", ["test"])]), ok=ACCEPT)
        # NP It("should allow kubernetes subdomains exceptions") / NC It("should allow kubernetes subdomains")
        case(f"{tag}-req-subdomain-{domain}", src, f"should allow kubernetes subdomains (exceptions) / {domain}",
             base, (reqs, [req(f"subdomain.{domain}/test", "In", ["test"])]), ok=ACCEPT)
    # NP: WellKnownLabels minus nodepool and capacity-type (runtime validated); NC: minus nodepool
    skip = {"karpenter.sh/nodepool", "karpenter.sh/capacity-type"} if tag == "np" else {"karpenter.sh/nodepool"}
    for label in (x for x in CORE_WELL_KNOWN if x not in skip):
        # NP/NC It("should allow well known label exceptions")
        case(f"{tag}-req-well-known-{label}", src, f"should allow well known label exceptions / {label}", base,
             (reqs, [req(label, "In", ["test"])]), ok=ACCEPT)
    # NP/NC It("should allow non-empty set after removing overlapped value")
    case(f"{tag}-req-overlap", src, "should allow non-empty set after removing overlapped value", base,
         (reqs, [req("topology.kubernetes.io/zone", "In", ["test", "foo"]),
                 req("topology.kubernetes.io/zone", "NotIn", ["test", "bar"])]), ok=ACCEPT)
    # NP/NC It("should allow empty requirements")
    case(f"{tag}-req-empty", src, "should allow empty requirements", base, (reqs, []), ok=ACCEPT)
    for op, values in BAD_NUMERIC:
        # NP/NC It("should fail with invalid GT or LT values") / It("should fail with invalid GTE or LTE values")
        it = "should fail with invalid GT or LT values" if op in ("Gt", "Lt") else \
            "should fail with invalid GTE or LTE values"
        case(f"{tag}-req-{op}-{'-'.join(values) or 'none'}", src, f"{it} / {op} {values}", base,
             (reqs, [req("topology.kubernetes.io/zone", op, values)]), ok=REJECT, at=reqs)
    # NP/NC It("should error when minValues is negative") / zero / more than 50
    case(f"{tag}-req-minValues-negative", src, "should error when minValues is negative", base,
         (reqs, [req("node.kubernetes.io/instance-type", "In", ["insance-type-1"], -1)]), ok=REJECT,
         at=f"{reqs}[0].minValues")
    case(f"{tag}-req-minValues-zero", src, "should error when minValues is zero", base,
         (reqs, [req("node.kubernetes.io/instance-type", "In", ["insance-type-1"], 0)]), ok=REJECT,
         at=f"{reqs}[0].minValues")
    case(f"{tag}-req-minValues-51", src, "should error when minValues is more than 50", base,
         (reqs, [req("node.kubernetes.io/instance-type", "Exists", None, 51)]), ok=REJECT, at=f"{reqs}[0].minValues")
    # NP/NC It("should allow more than 50 values if minValues is not specified.")
    case(f"{tag}-req-90-values", src, "should allow more than 50 values if minValues is not specified.", base,
         (reqs, [req("node.kubernetes.io/instance-type", "In", NINETY)]), ok=ACCEPT)
    # NP/NC It("should error when minValues is greater than the number of unique values specified within In operator")
    case(f"{tag}-req-minValues-above-values", src,
         "should error when minValues is greater than the number of unique values specified within In operator",
         base, (reqs, [req("node.kubernetes.io/instance-type", "In", ["insance-type-1"], 2)]), ok=REJECT, at=reqs)

# NC It("should error when requirements is greater than 100")
case("nc-req-101", NC, "should error when requirements is greater than 100", NODECLAIM,
     ("spec.requirements", [req(f"key-{i}", "In", [f"value-{i}"]) for i in range(101)]), ok=REJECT,
     at="spec.requirements")

# =================================================================================================
# NP Context("Labels")
# =================================================================================================
LABELS = "spec.template.metadata.labels"
# NP It("should allow unrecognized labels")
case("np-labels-unrecognized", NP, "should allow unrecognized labels", NODEPOOL, (LABELS, {"foo": "Alice"}), ok=ACCEPT)
# NP It("should fail for the karpenter.sh/nodepool label")  (Context("Labels"))
case("np-labels-nodepool", NP, "Labels: should fail for the karpenter.sh/nodepool label", NODEPOOL,
     (LABELS, {"karpenter.sh/nodepool": "Alice"}), ok=REJECT, at=LABELS)
# NP It("should fail for invalid label keys"): the API server accepts it (only RuntimeValidate fails)
case("np-labels-invalid-key", NP, "should fail for invalid label keys (Create succeeds)", NODEPOOL,
     (LABELS, {"spaces are not allowed": "Alice"}), ok=ACCEPT)
for n, key in enumerate((f"test.com.test.{LONG}/test", f"test.com.test/test-{LONG}"), 1):
    # NP It("should fail at runtime for label keys that are too long"): Create succeeds (assertion n)
    case(f"np-labels-key-long-{n}", NP, "should fail at runtime for label keys that are too long", NODEPOOL,
         (LABELS, {key: "Alice"}), ok=ACCEPT)
# NP It("should fail for invalid label values")
case("np-labels-invalid-value", NP, "should fail for invalid label values", NODEPOOL,
     (LABELS, {"Alice": "/ is not allowed"}), ok=REJECT, at=LABELS)
# NP It("should fail for restricted label domains"): RestrictedLabelDomains = {karpenter.sh}
case("np-labels-restricted-domain", NP, "should fail for restricted label domains / karpenter.sh", NODEPOOL,
     (LABELS, {"karpenter.sh/unknown": "Alice"}), ok=REJECT, at=LABELS)
# NP It("should allow labels kOps require")
case("np-labels-kops", NP, "should allow labels kOps require", NODEPOOL,
     (LABELS, {"kops.k8s.io/instancegroup": "karpenter-nodes", "kops.k8s.io/gpu": "1"}), ok=ACCEPT)
for domain in ("kubernetes.io", "k8s.io"):
    for it, key in (("should allow labels in kubernetes domains", domain),
                    ("should allow labels prefixed with the kubernetes domain", f"{domain}/key"),
                    ("should allow subdomain labels in restricted domains exceptions list", f"subdomain.{domain}"),
                    ("should allow subdomain labels prefixed with the kubernetes domain", f"subdomain.{domain}/key")):
        # NP It(it), loop value domain
        case(f"np-labels-{key}", NP, f"{it} / {domain}", NODEPOOL, (LABELS, {key: "test-value"}), ok=ACCEPT)

# =================================================================================================
# NP Context("TerminationGracePeriod"); NC Context("TerminationGracePeriod") and Context("ExpireAfter")
# =================================================================================================
for tag, src, base, tgp in (("np", NP, NODEPOOL, f"{TPL}.terminationGracePeriod"),
                            ("nc", NC, NODECLAIM, "spec.terminationGracePeriod")):
    for entry, value in (("single unit", "30s"), ("multiple units", "1h30m5s")):
        # NP/NC DescribeTable("should succeed on a valid terminationGracePeriod"), Entry(entry)
        case(f"{tag}-tgp-valid-{value}", src, f"should succeed on a valid terminationGracePeriod / {entry}", base,
             (tgp, value), ok=ACCEPT)
    for entry, value in (("negative", "-1s"), ("invalid unit", "1hr"), ("never", "Never"),
                         ("partial match", "FooNever")):
        # NP/NC DescribeTable("should fail on an invalid terminationGracePeriod"), Entry(entry)
        case(f"{tag}-tgp-invalid-{value}", src, f"should fail on an invalid terminationGracePeriod / {entry}", base,
             (tgp, value), ok=REJECT, at=tgp)
for entry, value in (("single unit", "30s"), ("multiple units", "1h30m5s"), ("never", "Never")):
    # NC DescribeTable("should succeed on a valid expireAfter"), Entry(entry)
    case(f"nc-expireAfter-valid-{value}", NC, f"should succeed on a valid expireAfter / {entry}", NODECLAIM,
         ("spec.expireAfter", value), ok=ACCEPT)
for entry, value in (("negative", "-1s"), ("invalid unit", "1hr"), ("partial match", "FooNever")):
    # NC DescribeTable("should fail on an invalid expireAfter"), Entry(entry)
    case(f"nc-expireAfter-invalid-{value}", NC, f"should fail on an invalid expireAfter / {entry}", NODECLAIM,
         ("spec.expireAfter", value), ok=REJECT, at="spec.expireAfter")

# =================================================================================================
# NP Context("NodeClassRef"); NC Context("NodeClassRef")
# =================================================================================================
REF = f"{TPL}.nodeClassRef"
for field in ("group", "kind", "name"):
    # NP It("should fail if <field> is unset"): the empty string is sent (no omitempty)
    case(f"np-nodeClassRef-{field}-unset", NP, f"should fail if {field} is unset", NODEPOOL, (f"{REF}.{field}", ""),
         ok=REJECT, at=f"{REF}.{field}")
# NC It("should succeed for valid group"): the test node class of karpenter.test.sh
case("nc-nodeClassRef-valid-group", NC, "should succeed for valid group", NODECLAIM,
     ("spec.nodeClassRef", {"group": "karpenter.test.sh", "kind": "TestNodeClass", "name": "nodeclass-test"}),
     ok=ACCEPT)
# NC It("should fail for invalid group")
case("nc-nodeClassRef-group-with-version", NC, "should fail for invalid group", NODECLAIM,
     ("spec.nodeClassRef", {"group": "karpenter.test.sh/v1", "kind": "TestNodeClass", "name": "nodeclass-test"}),
     ok=REJECT, at="spec.nodeClassRef.group")

# =================================================================================================
# NC Context("Taints")
# =================================================================================================
NC_TAINTS = "spec.taints"
# NC It("should succeed for valid taints")
case("nc-taints-valid", NC, "should succeed for valid taints", NODECLAIM,
     (NC_TAINTS, [{"key": "a", "value": "b", "effect": "NoSchedule"}, {"key": "c", "value": "d", "effect": "NoExecute"},
                  {"key": "e", "value": "f", "effect": "PreferNoSchedule"}, {"key": "key-only", "effect": "NoExecute"}]),
     ok=ACCEPT)
# NC It("should fail for invalid taint keys"): Taint{Key: "???"}, effect "" is sent (no omitempty)
case("nc-taint-key-invalid", NC, "should fail for invalid taint keys", NODECLAIM,
     (NC_TAINTS, [{"key": "???", "effect": ""}]), ok=REJECT, at=f"{NC_TAINTS}[0]")
# NP and NC It("should fail for missing taint key"), It("should fail for invalid taint value"),
# It("should fail for invalid taint effect"), It("should not fail for same key with different effects"):
# the same four tests in both suites, on spec.template.spec.taints and spec.taints
for _prefix, _suite, _base, _path in (("np", NP, NODEPOOL, TAINTS), ("nc", NC, NODECLAIM, NC_TAINTS)):
    case(f"{_prefix}-taint-missing-key", _suite, "should fail for missing taint key", _base,
         (_path, [{"key": "", "effect": "NoSchedule"}]), ok=REJECT, at=f"{_path}[0].key")
    case(f"{_prefix}-taint-invalid-value", _suite, "should fail for invalid taint value", _base,
         (_path, [{"key": "invalid-value", "value": "???", "effect": "NoSchedule"}]), ok=REJECT,
         at=f"{_path}[0].value")
    case(f"{_prefix}-taint-invalid-effect", _suite, "should fail for invalid taint effect", _base,
         (_path, [{"key": "invalid-effect", "effect": "???"}]), ok=REJECT, at=f"{_path}[0].effect")
    case(f"{_prefix}-taint-same-key-two-effects", _suite, "should not fail for same key with different effects",
         _base, (_path, [{"key": "a", "effect": "NoSchedule"}, {"key": "a", "effect": "NoExecute"}]), ok=ACCEPT)

# =================================================================================================
# NP Context("Replicas")
# =================================================================================================
for value in (5, 0, 1000):
    # NP It("should succeed when replicas is set to a positive value" / "to zero" / "to a large value")
    case(f"np-replicas-{value}", NP, f"should succeed when replicas is set to {value}", NODEPOOL,
         ("spec.replicas", value), ok=ACCEPT)
# NP It("should fail when replicas is set to a negative value")
case("np-replicas-negative", NP, "should fail when replicas is set to a negative value", NODEPOOL,
     ("spec.replicas", -100), ok=REJECT, at="spec.replicas")
for entry, change in (("limits.cpu", ("spec.limits", {"cpu": "1k"})),
                      ("limits.memory", ("spec.limits", {"memory": "2000Gi"})),
                      ("limits.pods", ("spec.limits", {"pods": "10"})),
                      ("limits.ephemeral-storage", ("spec.limits", {"ephemeral-storage": "10Gi"})),
                      ("weight", ("spec.weight", 25))):
    # NP DescribeTable("should fail for incompatible fields"), Entry(entry), with replicas 10
    # (resource.MustParse("1000") is sent in canonical form, "1k")
    case(f"np-replicas-with-{entry}", NP, f"should fail for incompatible fields / {entry}", NODEPOOL, change,
         ("spec.replicas", 10), ok=REJECT, at="spec")
COMPATIBLE = {
    "limits.nodes": [("spec.limits", {"nodes": "100"})],
    "disruption with multiple budgets": [("spec.disruption", {
        "consolidationPolicy": "WhenEmptyOrUnderutilized", "consolidateAfter": "5m",
        "budgets": [budget("20%", "0 9 * * mon-fri", "8h0m0s", ["Drifted", "Empty"]),
                    budget("30%", "0 22 * * sat,sun", "4h0m0s", ["Underutilized"]), budget("5")]})],
    "template labels": [(LABELS, {"environment": "production"})],
    "template annotations": [("spec.template.metadata.annotations", {"example.com/last-updated": "2024-01-01"})],
    "taints": [(TAINTS, [{"key": "gpu-workload", "value": "enabled", "effect": "NoSchedule"}])],
    "startup taints": [(f"{TPL}.startupTaints", [{"key": "example.com/initializing", "value": "true",
                                                  "effect": "NoSchedule"}])],
    "requirements": [(REQS, [
        req("node.kubernetes.io/instance-type", "In",
            ["m5.large", "m5.xlarge", "m5.2xlarge", "c5.large", "c5.xlarge", "r5.large", "r5.xlarge"], 3),
        req("topology.kubernetes.io/zone", "In", ["us-west-2a", "us-west-2b", "us-west-2c"]),
        req("karpenter.sh/capacity-type", "In", ["on-demand", "spot"]), req("kubernetes.io/arch", "In", ["amd64"]),
        req("karpenter.k8s.aws/instance-memory", "Gt", ["8192"]), req("karpenter.k8s.aws/instance-cpu", "Lt", ["64"])])],
    "expireAfter": [(f"{TPL}.expireAfter", "72h")],
    "terminationGracePeriod": [(f"{TPL}.terminationGracePeriod", "5m0s")],
}
for entry, changes in COMPATIBLE.items():
    # NP DescribeTable("should succeed for compatible fields"), Entry(entry), with replicas 10
    case(f"np-replicas-with-{entry.replace(' ', '-')}", NP, f"should succeed for compatible fields / {entry}",
         NODEPOOL, *changes, ("spec.replicas", 10), ok=ACCEPT)

# =================================================================================================
# ANP: aws/karpenter-provider-aws pkg/apis/v1/nodepool_validation_cel_test.go
# =================================================================================================
for label in (x for x in AWS_WELL_KNOWN if x not in
              {"karpenter.sh/nodepool", "karpenter.sh/capacity-type", "karpenter.k8s.aws/instance-tenancy"}):
    # ANP Context("Requirements") It("should allow well known label exceptions")
    case(f"anp-req-well-known-{label}", ANP, f"Requirements: should allow well known label exceptions / {label}",
         AWS_NODEPOOL, (REQS, [req(label, "In", ["test"])]), ok=ACCEPT)
for it, key, values in (
        ("should fail validation with only invalid capacity types", "karpenter.sh/capacity-type", ["xspot"]),
        ("should pass validation with valid capacity types", "karpenter.sh/capacity-type", ["on-demand"]),
        ("should fail open if invalid and valid capacity types are present", "karpenter.sh/capacity-type",
         ["on-demand", "xspot"]),
        ("should fail validation with only invalid tenancy types", "karpenter.k8s.aws/instance-tenancy",
         ["xdedicated"]),
        ("should pass validation with valid tenancy types", "karpenter.k8s.aws/instance-tenancy", ["default"]),
        ("should fail open if invalid and valid tenancy types are present", "karpenter.k8s.aws/instance-tenancy",
         ["default", "xdedicated"])):
    # ANP It(it): test.ReplaceRequirements replaces the requirement of that key (or appends it); the
    # Create succeeds in every one of them (only RuntimeValidate differs)
    reqs = [r for r in AWS_NODEPOOL["spec"]["template"]["spec"]["requirements"] if r["key"] != key]
    case(f"anp-req-{key.split('/')[1]}-{'-'.join(values)}", ANP, it, AWS_NODEPOOL,
         (REQS, [*reqs, req(key, "In", values)]), ok=ACCEPT)
for label in (x for x in AWS_WELL_KNOWN if x != "karpenter.sh/nodepool"):
    # ANP Context("Labels") It("should allow well known label exceptions")
    case(f"anp-labels-well-known-{label}", ANP, f"Labels: should allow well known label exceptions / {label}",
         AWS_NODEPOOL, (LABELS, {label: "test"}), ok=ACCEPT)

# =================================================================================================
# ENC: aws/karpenter-provider-aws pkg/apis/v1/ec2nodeclass_validation_cel_test.go
# =================================================================================================
S = "spec"
# ENC It("should succeed if just specifying role")
case("enc-role-only", ENC, "should succeed if just specifying role", EC2NODECLASS, ok=ACCEPT)
# ENC It("should succeed if just specifying instance profile"): role "" is omitempty
case("enc-instance-profile-only", ENC, "should succeed if just specifying instance profile", EC2NODECLASS,
     ("spec.instanceProfile", "test-instance-profile"), ("spec.role", _DELETE), ok=ACCEPT)
# ENC It("should fail if specifying both instance profile and role")
case("enc-role-and-instance-profile", ENC, "should fail if specifying both instance profile and role", EC2NODECLASS,
     ("spec.instanceProfile", "test-instance-profile"), ok=REJECT, at=S)
# ENC It("should fail if not specifying one of instance profile and role")
case("enc-no-role-no-instance-profile", ENC, "should fail if not specifying one of instance profile and role",
     EC2NODECLASS, ("spec.role", _DELETE), ok=REJECT, at=S)
# ENC Context("Role Immutability") It("should fail if role is not defined")
case("enc-role-not-defined", ENC, "Role Immutability: should fail if role is not defined", EC2NODECLASS,
     ("spec.role", _DELETE), ok=REJECT, at=S)
# ENC Context("UserData") It("should succeed if user data is empty")
case("enc-userdata-empty", ENC, "should succeed if user data is empty", EC2NODECLASS, ok=ACCEPT)

FAMILIES = ["AL2", "AL2023", "Bottlerocket", "Windows2019", "Windows2022", "Windows2025", "Custom"]
for family in FAMILIES:
    # ENC DescribeTable("should succeed with valid families"), Entry(family): an id term fits every family
    case(f"enc-family-{family}", ENC, f"should succeed with valid families / {family}", EC2NODECLASS,
         ("spec.amiSelectorTerms", [{"id": "ami-0123456789abcdef"}]), ("spec.amiFamily", family), ok=ACCEPT)
# ENC It("should fail with the ubuntu family")
case("enc-family-Ubuntu", ENC, "should fail with the ubuntu family", EC2NODECLASS,
     ("spec.amiSelectorTerms", [{"id": "ami-0123456789abcdef"}]), ("spec.amiFamily", "Ubuntu"), ok=REJECT,
     at="spec.amiFamily")
ALIASED = [f for f in FAMILIES if f != "Custom"]
for family in ALIASED:
    alias = f"{family.lower()}@latest"
    # ENC DescribeTable("should succeed when the amiFamily matches amiSelectorTerms[].alias")
    case(f"enc-family-{family}-alias-{alias}", ENC,
         f'should succeed when the amiFamily matches amiSelectorTerms[].alias / family "{family}" with alias "{alias}"',
         EC2NODECLASS, ("spec.amiSelectorTerms", [{"alias": alias}]), ("spec.amiFamily", family), ok=ACCEPT)
    # ENC DescribeTable("should succeed when the amiFamily is custom with amiSelectorTerms[].alias")
    case(f"enc-family-Custom-alias-{alias}", ENC,
         f'should succeed when the amiFamily is custom with amiSelectorTerms[].alias / family "Custom" with alias '
         f'"{alias}"', EC2NODECLASS, ("spec.amiSelectorTerms", [{"alias": alias}]), ("spec.amiFamily", "Custom"),
         ok=ACCEPT)
    for other in ALIASED:
        if other == family:
            continue
        other_alias = f"{other.lower()}@latest"
        # ENC DescribeTable("should fail when then amiFamily does not match amiSelectorTerms[].alias")
        case(f"enc-family-{family}-alias-{other_alias}", ENC,
             f'should fail when then amiFamily does not match amiSelectorTerms[].alias / family "{family}" with '
             f'alias "{other_alias}"', EC2NODECLASS, ("spec.amiSelectorTerms", [{"alias": other_alias}]),
             ("spec.amiFamily", family), ok=REJECT, at=S)
# ENC It("should fail when neither amiFamily nor an alias are specified")
case("enc-no-family-no-alias", ENC, "should fail when neither amiFamily nor an alias are specified", EC2NODECLASS,
     ("spec.amiSelectorTerms", [{"id": "ami-01234567890abcdef"}]), ("spec.amiFamily", _DELETE), ok=REJECT, at=S)

# --- Tags ---
# ENC It("should succeed when tags are empty"): an empty map is omitempty
case("enc-tags-empty", ENC, "should succeed when tags are empty", EC2NODECLASS, ok=ACCEPT)
# ENC It("should succeed if tags aren't in restricted tag keys")
case("enc-tags-unrestricted", ENC, "should succeed if tags aren't in restricted tag keys", EC2NODECLASS,
     ("spec.tags", {"karpenter.sh/custom-key": "value", "karpenter.sh/managed": "true",
                    "kubernetes.io/role/key": "value"}), ok=ACCEPT)
for n, key in enumerate(("karpenter.sh/nodepool", "kubernetes.io/cluster/test", "eks:eks-cluster-name",
                         "karpenter.k8s.aws/ec2nodeclass", "karpenter.sh/nodeclaim"), 1):
    # ENC It("should fail if tags contain a restricted domain key"), assertion n
    case(f"enc-tags-restricted-{n}", ENC, f"should fail if tags contain a restricted domain key / {key}", EC2NODECLASS,
         ("spec.tags", {key: "value" if n <= 2 else "test"}), ok=REJECT, at="spec.tags")


def selector_term_cases(tag: str, field: str, label: str, ids: dict[str, str], *, nil_ok: bool,
                        empty_list: bool = True) -> None:
    """The selector-term tests the suite repeats for subnets, security groups and capacity reservations."""
    path = f"spec.{field}"
    for key, value in ids.items():
        # ENC It("should succeed with a valid <label> selector on <key>")
        case(f"enc-{tag}-{key}", ENC, f"should succeed with a valid {label} selector on {key}", EC2NODECLASS,
             (path, [{key: value}]), ok=ACCEPT)
    # ENC It("should succeed with a valid <label> selector on tags")
    case(f"enc-{tag}-tags", ENC, f"should succeed with a valid {label} selector on tags", EC2NODECLASS,
         (path, [{"tags": {"test": "testvalue"}}]), ok=ACCEPT)
    # ENC It("should fail/succeed when <label> selector terms is set to nil"): a nil slice is sent as null
    case(f"enc-{tag}-nil", ENC, f"should {'succeed' if nil_ok else 'fail'} when {label} selector terms is set to nil",
         EC2NODECLASS, (path, None), ok=nil_ok, at=S)
    if empty_list:
        # ENC It("should fail when no <label> selector terms exist"): []T{} is sent (no omitempty)
        case(f"enc-{tag}-empty-list", ENC, f"should fail when no {label} selector terms exist", EC2NODECLASS,
             (path, []), ok=REJECT, at=path)
    # ENC It("should fail when a <label> selector term has no values")
    case(f"enc-{tag}-empty-term", ENC, f"should fail when a {label} selector term has no values", EC2NODECLASS,
         (path, [{}]), ok=REJECT, at=path)
    # ENC It("should fail when a <label> selector term has no tag map values"): tags {} is omitempty
    case(f"enc-{tag}-empty-tags", ENC, f"should fail when a {label} selector term has no tag map values",
         EC2NODECLASS, (path, [{}]), ok=REJECT, at=path)
    # ENC It("should fail when a <label> selector term has a tag map key that is empty")  (its value is empty)
    case(f"enc-{tag}-tag-empty-value", ENC, f"should fail when a {label} selector term has a tag map key that is empty",
         EC2NODECLASS, (path, [{"tags": {"test": ""}}]), ok=REJECT, at=f"{path}[0].tags")
    # ENC It("should fail when a <label> selector term has a tag map value that is empty")  (its key is empty)
    case(f"enc-{tag}-tag-empty-key", ENC, f"should fail when a {label} selector term has a tag map value that is empty",
         EC2NODECLASS, (path, [{"tags": {"": "testvalue"}}]), ok=REJECT, at=f"{path}[0].tags")
    # ENC It("should fail when the last <label> selector is invalid")
    case(f"enc-{tag}-last-invalid", ENC, f"should fail when the last {label} selector is invalid", EC2NODECLASS,
         (path, [{"tags": {"test": "testvalue"}}, {"tags": {"test2": "testvalue2"}}, {"tags": {"test3": "testvalue3"}},
                 {"tags": {"": "testvalue4"}}]), ok=REJECT, at=f"{path}[3].tags")


# --- SubnetSelectorTerms ---
selector_term_cases("subnet", "subnetSelectorTerms", "subnet", {"id": "subnet-12345749"}, nil_ok=False)
# ENC Context("SubnetSelectorTerms") It("should fail when specifying id with tags")
case("enc-subnet-id-and-tags", ENC, "SubnetSelectorTerms: should fail when specifying id with tags", EC2NODECLASS,
     ("spec.subnetSelectorTerms", [{"id": "subnet-12345749", "tags": {"test": "testvalue"}}]), ok=REJECT,
     at="spec.subnetSelectorTerms")
# --- SecurityGroupSelectorTerms ---
selector_term_cases("sg", "securityGroupSelectorTerms", "security group", {"id": "sg-12345749", "name": "testname"},
                    nil_ok=False)
for it, term in (("should fail when specifying id with tags", {"id": "sg-12345749", "tags": {"test": "testvalue"}}),
                 ("should fail when specifying id with name", {"id": "sg-12345749", "name": "my-security-group"}),
                 ("should fail when specifying name with tags", {"name": "my-security-group",
                                                                 "tags": {"test": "testvalue"}})):
    # ENC Context("SecurityGroupSelectorTerms") It(it)
    case(f"enc-sg-{'-'.join(sorted(term))}", ENC, f"SecurityGroupSelectorTerms: {it}", EC2NODECLASS,
         ("spec.securityGroupSelectorTerms", [term]), ok=REJECT, at="spec.securityGroupSelectorTerms")
# --- CapacityReservationSelectorTerms ---
selector_term_cases("cr", "capacityReservationSelectorTerms", "capacity reservation", {"id": "cr-12345749"},
                    nil_ok=True, empty_list=False)
CRS = "spec.capacityReservationSelectorTerms"
for it, term, ok in (
        ("should succeed for a valid ownerID", {"ownerID": "012345678901", "tags": {"test": "testvalue"}}, ACCEPT),
        ("should fail with a capacity reservation selector on a malformed id", {"id": "r-12345749"}, REJECT),
        ("should fail when specifying id with tags in a single term", {"id": "cr-12345749",
                                                                       "tags": {"test": "testvalue"}}, REJECT),
        ("should fail when specifying id with ownerID in a single term", {"ownerID": "012345678901",
                                                                          "id": "cr-12345749"}, REJECT),
        ("should fail when the ownerID is malformed", {"ownerID": "01234567890", "tags": {"test": "testvalue"}}, REJECT),
        ("should fail when the ownerID is set by itself", {"ownerID": "012345678901"}, REJECT),
        ("should succeed with a valid instanceMatchCriteria 'open'", {"instanceMatchCriteria": "open"}, ACCEPT),
        ("should succeed with a valid instanceMatchCriteria 'targeted'", {"instanceMatchCriteria": "targeted"}, ACCEPT),
        ("should succeed with instanceMatchCriteria combined with tags", {"instanceMatchCriteria": "open",
                                                                          "tags": {"test": "testvalue"}}, ACCEPT),
        ("should succeed with instanceMatchCriteria combined with ownerID and tags",
         {"instanceMatchCriteria": "targeted", "ownerID": "012345678901", "tags": {"test": "testvalue"}}, ACCEPT),
        ("should fail with invalid instanceMatchCriteria value", {"instanceMatchCriteria": "invalid"}, REJECT),
        ("should fail when specifying id with instanceMatchCriteria", {"id": "cr-12345749",
                                                                       "instanceMatchCriteria": "open"}, REJECT)):
    # ENC Context("CapacityReservationSelectorTerms") It(it)
    case(f"enc-cr-{it.split('should ')[1].replace(' ', '-')}", ENC, f"CapacityReservationSelectorTerms: {it}",
         EC2NODECLASS, (CRS, [term]), ok=ok, at=CRS)

# --- AMISelectorTerms ---
AMIS = "spec.amiSelectorTerms"
for it, terms in (("should succeed with a valid ami selector on alias", [{"alias": "al2023@latest"}]),
                  ("should succeed with a valid ami selector on tags", [{"tags": {"test": "testvalue"}}]),
                  ("should succeed with a valid ami selector on id", [{"id": "ami-12345749"}]),
                  ("should succeed with a valid ami selector on name", [{"name": "testname"}]),
                  ("should succeed with a valid ami selector on name and owner", [{"name": "testname",
                                                                                  "owner": "testowner"}]),
                  ("should succeed when an ami selector term has an owner key with tags",
                   [{"owner": "testowner", "tags": {"test": "testvalue"}}])):
    # ENC Context("AMISelectorTerms") It(it)  (amiFamily AL2023 from the BeforeEach)
    case(f"enc-ami-{it.split('should succeed ')[1].replace(' ', '-')}", ENC, it, EC2NODECLASS, (AMIS, terms),
         ok=ACCEPT)
for it, terms, at in (
        ("should fail when a ami selector term has no values", [{}], AMIS),
        ("should fail when a ami selector term has no tag map values", [{}], AMIS),  # tags {} is omitempty
        ("should fail when a ami selector term has a tag map key that is empty", [{"tags": {"test": ""}}],
         f"{AMIS}[0].tags"),
        ("should fail when a ami selector term has a tag map value that is empty", [{"tags": {"": "testvalue"}}],
         f"{AMIS}[0].tags"),
        ("should fail when the last ami selector is invalid",
         [{"tags": {"test": "testvalue"}}, {"tags": {"test2": "testvalue2"}}, {"tags": {"test3": "testvalue3"}},
          {"tags": {"": "testvalue4"}}], f"{AMIS}[3].tags"),
        ("should fail when specifying alias with other terms", [{"alias": "al2023@latest"}, {"id": "ami-1234749"}],
         AMIS)):
    # ENC Context("AMISelectorTerms") It(it)
    case(f"enc-ami-{it.split('should fail when ')[1].replace(' ', '-')}", ENC, it, EC2NODECLASS, (AMIS, terms),
         ok=REJECT, at=at)
for entry, extra in (("alias", {"alias": "al2023@latest"}), ("tags", {"tags": {"test": "testvalue"}}),
                     ("name", {"name": "my-custom-ami"}), ("owner", {"owner": "123456789"})):
    # ENC DescribeTable("should fail when specifying id with other fields"), Entry(entry): mergo.Merge adds it
    case(f"enc-ami-id-with-{entry}", ENC, f"should fail when specifying id with other fields / {entry}", EC2NODECLASS,
         (AMIS, [{"id": "ami-1234749", **extra}]), ok=REJECT, at=AMIS)
for entry, extra in (("id", {"id": "ami-1234749"}), ("tags", {"tags": {"test": "testvalue"}}),
                     ("name", {"name": "my-custom-ami"}), ("owner", {"owner": "123456789"})):
    # ENC DescribeTable("should fail when specifying alias with other fields"), Entry(entry)
    case(f"enc-ami-alias-with-{entry}", ENC, f"should fail when specifying alias with other fields / {entry}",
         EC2NODECLASS, (AMIS, [{"alias": "al2023@latest", **extra}]), ok=REJECT, at=AMIS)
for entry, alias, family in (("al2 (latest)", "al2@latest", "AL2"), ("al2 (pinned)", "al2@v20240625", "AL2"),
                             ("al2023 (latest)", "al2023@latest", "AL2023"),
                             ("al2023 (pinned)", "al2023@v20240625", "AL2023"),
                             ("bottlerocket (latest)", "bottlerocket@latest", "Bottlerocket"),
                             ("bottlerocket (pinned)", "bottlerocket@1.10.0", "Bottlerocket"),
                             ("windows2019 (latest)", "windows2019@latest", "Windows2019"),
                             ("windows2022 (latest)", "windows2022@latest", "Windows2022"),
                             ("windows2025 (latest)", "windows2025@latest", "Windows2025")):
    # ENC DescribeTable("should succeed for valid aliases"), Entry(entry)
    case(f"enc-alias-valid-{alias}", ENC, f"should succeed for valid aliases / {entry}", EC2NODECLASS,
         ("spec.amiFamily", family), (AMIS, [{"alias": alias}]), ok=ACCEPT)
for entry, alias in (("missing family", "@latest"), ("missing version", "al2023"), ("missing version", "al2023@"),
                     ("invalid separator", "al2023-latest")):
    # ENC DescribeTable("should fail for incorrectly formatted aliases"), Entry(entry), each alias
    case(f"enc-alias-malformed-{alias}", ENC, f"should fail for incorrectly formatted aliases / {entry} {alias!r}",
         EC2NODECLASS, (AMIS, [{"alias": alias}]), ok=REJECT, at=f"{AMIS}[0].alias")
# ENC It("should fail for an alias with an invalid family")
case("enc-alias-ubuntu", ENC, "should fail for an alias with an invalid family", EC2NODECLASS,
     (AMIS, [{"alias": "ubuntu@latest"}]), ok=REJECT, at=f"{AMIS}[0].alias")
for entry, alias in (("Windows2019", "windows2019@v1.0.0"), ("Windows2022", "windows2022@v1.0.0"),
                     ("Windows2025", "windows2025@v1.0.0")):
    # ENC DescribeTable("should fail when specifying non-latest versions with Windows aliases"), Entry(entry)
    case(f"enc-alias-pinned-{alias}", ENC,
         f"should fail when specifying non-latest versions with Windows aliases / {entry}", EC2NODECLASS,
         (AMIS, [{"alias": alias}]), ok=REJECT, at=f"{AMIS}[0].alias")

# --- Kubelet ---
KUBELET = "spec.kubelet"
ALL_SIGNALS = {"memory.available": "5%", "nodefs.available": "10%", "nodefs.inodesFree": "15%",
               "imagefs.available": "5%", "imagefs.inodesFree": "5%", "pid.available": "5%"}
ALL_GRACE = {"memory.available": "1m0s", "nodefs.available": "1m30s", "nodefs.inodesFree": "5m0s",
             "imagefs.available": "1h0m0s", "imagefs.inodesFree": "24h0m0s", "pid.available": "1m0s"}
for it, kubelet, ok, at in (
        ("should fail on kubeReserved with invalid keys", {"kubeReserved": {"pods": "2"}}, REJECT,
         f"{KUBELET}.kubeReserved"),
        ("should fail on systemReserved with invalid keys", {"systemReserved": {"pods": "2"}}, REJECT,
         f"{KUBELET}.systemReserved"),
        ("Eviction Hard: should succeed on evictionHard with valid keys", {"evictionHard": ALL_SIGNALS}, ACCEPT, ""),
        ("should fail on evictionHard with invalid keys", {"evictionHard": {"memory": "5%"}}, REJECT,
         f"{KUBELET}.evictionHard"),
        ("should fail on invalid formatted percentage value in evictionHard",
         {"evictionHard": {"memory.available": "5%3"}}, REJECT, f"{KUBELET}.evictionHard"),
        ("should fail on invalid percentage value (too large) in evictionHard",
         {"evictionHard": {"memory.available": "110%"}}, REJECT, f"{KUBELET}.evictionHard"),
        ("should fail on invalid quantity value in evictionHard", {"evictionHard": {"memory.available": "110GB"}},
         REJECT, f"{KUBELET}.evictionHard"),
        ("Eviction Soft: should succeed on evictionSoft with valid keys",
         {"evictionSoft": ALL_SIGNALS, "evictionSoftGracePeriod": ALL_GRACE}, ACCEPT, ""),
        ("should fail on evictionSoft with invalid keys",
         {"evictionSoft": {"memory": "5%"}, "evictionSoftGracePeriod": {"memory": "1m0s"}}, REJECT,
         f"{KUBELET}.evictionSoft"),
        ("should fail on invalid formatted percentage value in evictionSoft",
         {"evictionSoft": {"memory.available": "5%3"}, "evictionSoftGracePeriod": {"memory.available": "1m0s"}},
         REJECT, f"{KUBELET}.evictionSoft"),
        ("should fail on invalid percentage value (too large) in evictionSoft",
         {"evictionSoft": {"memory.available": "110%"}, "evictionSoftGracePeriod": {"memory.available": "1m0s"}},
         REJECT, f"{KUBELET}.evictionSoft"),
        ("should fail on invalid quantity value in evictionSoft",
         {"evictionSoft": {"memory.available": "110GB"}, "evictionSoftGracePeriod": {"memory.available": "1m0s"}},
         REJECT, f"{KUBELET}.evictionSoft"),
        ("should fail when eviction soft doesn't have matching grace period",
         {"evictionSoft": {"memory.available": "200Mi"}}, REJECT, KUBELET),
        ("should succeed on a valid imageGCHighThresholdPercent", {"imageGCHighThresholdPercent": 10}, ACCEPT, ""),
        ("should fail when imageGCHighThresholdPercent is less than imageGCLowThresholdPercent",
         {"imageGCHighThresholdPercent": 50, "imageGCLowThresholdPercent": 60}, REJECT, KUBELET),
        ("Eviction Soft Grace Period: should succeed on evictionSoftGracePeriod with valid keys",
         {"evictionSoft": ALL_SIGNALS, "evictionSoftGracePeriod": ALL_GRACE}, ACCEPT, ""),
        ("should fail on evictionSoftGracePeriod with invalid keys", {"evictionSoftGracePeriod": {"memory": "1m0s"}},
         REJECT, f"{KUBELET}.evictionSoftGracePeriod"),
        ("should fail when eviction soft grace period doesn't have matching threshold",
         {"evictionSoftGracePeriod": {"memory.available": "1m0s"}}, REJECT, KUBELET)):
    # ENC Context("Kubelet") It(it)  (the GCThresholdPercent context has a second, identical
    # It("should fail when imageGCLowThresholdPercent is greather than imageGCHighThresheldPercent"), covered by
    # the same object)
    slug = it.split(": ")[-1].split("should ")[1].replace(" ", "-")
    case(f"enc-kubelet-{slug}", ENC, it, EC2NODECLASS, (KUBELET, kubelet), ok=ok, at=at)

# --- MetadataOptions ---
MO = "spec.metadataOptions"
# ENC It("should succeed for valid inputs")
case("enc-metadataOptions-valid", ENC, "MetadataOptions: should succeed for valid inputs", EC2NODECLASS,
     (MO, {"httpEndpoint": "disabled", "httpProtocolIPv6": "enabled", "httpPutResponseHopLimit": 34,
           "httpTokens": "optional"}), ok=ACCEPT)
for field, value in (("httpEndpoint", "test"), ("httpProtocolIPv6", "test"), ("httpPutResponseHopLimit", -5),
                     ("httpTokens", "test")):
    # ENC It("should fail for invalid for <field>"); the other fields are defaulted
    case(f"enc-metadataOptions-{field}", ENC, f"should fail for invalid for {field}", EC2NODECLASS,
         (MO, {field: value}), ok=REJECT, at=f"{MO}.{field}")

# --- BlockDeviceMappings ---
BDM = "spec.blockDeviceMappings"


def bdm(size: str, root: bool = False, **ebs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"deviceName": "map-device-1", "ebs": {"volumeSize": size, **ebs}}
    if root:  # rootVolume false is omitempty
        out["rootVolume"] = True
    return out


for it, mappings, ok, at in (
        ("should succeed if more than one root volume is specified",
         [bdm("500G", True), {**bdm("50T"), "deviceName": "map-device-2"}], ACCEPT, ""),
        ("should succeed for valid VolumeSize in G", [bdm("58G")], ACCEPT, ""),
        ("should succeed for valid VolumeSize in T", [bdm("45T")], ACCEPT, ""),
        ("should fail if more than one root volume is specified",
         [bdm("50G", True), {**bdm("50G", True), "deviceName": "map-device-2"}], REJECT, BDM),
        ("should fail VolumeSize is less then 1Gi/1G", [bdm("1m")], REJECT, f"{BDM}[0].ebs.volumeSize"),
        ("should fail VolumeSize is greater then 64T", [bdm("100T")], REJECT, f"{BDM}[0].ebs.volumeSize"),
        ("should fail for VolumeSize that do not parse into quantity values", [bdm("0")], REJECT,
         f"{BDM}[0].ebs.volumeSize"),
        ("should fail if VolumeInitializationRate set but SnapshotID not specified",
         [bdm("0", volumeInitializationRate=100)], REJECT, f"{BDM}[0].ebs"),
        ("should fail if VolumeInitializationRate too low", [bdm("0", snapshotID="snap-1", volumeInitializationRate=99)],
         REJECT, f"{BDM}[0].ebs"),
        ("should fail if VolumeInitializationRate too high",
         [bdm("0", snapshotID="snap-1", volumeInitializationRate=888)], REJECT, f"{BDM}[0].ebs")):
    # ENC Context("BlockDeviceMappings") It(it)  (its own class: the base's terms and role, no amiFamily)
    slug = it.split("should ")[1].replace(" ", "-").replace("/", "-")
    case(f"enc-bdm-{slug}", ENC, it, BDM_NODECLASS, (BDM, mappings), ok=ok, at=at)

# --- NetworkInterfaces ---
NI = "spec.networkInterfaces"


def nic(card: int, device: int, kind: str) -> dict[str, Any]:
    return {"networkCardIndex": card, "deviceIndex": device, "interfaceType": kind}


for it, nics, ok, at in (
        ("should succeed with valid multiple network interfaces",
         [nic(0, 0, "interface"), nic(0, 1, "efa-only"), nic(1, 0, "efa-only"), nic(1, 1, "interface")], ACCEPT, ""),
        ("should succeed when network interfaces is empty", None, ACCEPT, ""),  # []T{} is omitempty: not sent
        ("should fail with an invalid interface type", [nic(0, 0, "efa")], REJECT, f"{NI}[0].interfaceType"),
        ("should fail with a negative NetworkCardIndex", [nic(0, 0, "interface"), nic(-1, 0, "interface")], REJECT,
         f"{NI}[1].networkCardIndex"),
        ("should fail with a negative DeviceIndex", [nic(-1, 0, "interface"), nic(0, -1, "interface")], REJECT, NI),
        ("should fail with duplicate Network Interface and Device Index fields",
         [nic(0, 0, "interface"), nic(0, 1, "efa-only"), nic(1, 0, "interface"), nic(1, 0, "efa-only")], REJECT, NI),
        ("should fail with no primary network interface", [nic(0, 1, "interface")], REJECT, NI),
        ("should fail when primary network interface is not ENA", [nic(0, 0, "efa-only")], REJECT, NI),
        ("should fail when multiple EFA devices on one network card",
         [nic(0, 0, "interface"), nic(1, 0, "efa-only"), nic(1, 1, "efa-only")], REJECT, NI)):
    # ENC Context("NetworkInterfaces") It(it)
    slug = it.split("should ")[1].replace(" ", "-")
    changes = [(NI, nics)] if nics is not None else []
    case(f"enc-nic-{slug}", ENC, it, EC2NODECLASS, *changes, ok=ok, at=at)

# --- ConnectionTracking ---
CT = "spec.connectionTracking"
for it, ct, ok, at in (
        ("should fail when connectionTracking is specified with no fields set", {}, REJECT, CT),
        ("should succeed with valid tcpEstablishedTimeout", {"tcpEstablishedTimeout": 60}, ACCEPT, ""),
        ("should succeed with valid udpStreamTimeout", {"udpStreamTimeout": 120}, ACCEPT, ""),
        ("should succeed with valid udpTimeout", {"udpTimeout": 45}, ACCEPT, ""),
        ("should succeed with all valid connection tracking settings",
         {"tcpEstablishedTimeout": 432000, "udpStreamTimeout": 180, "udpTimeout": 60}, ACCEPT, ""),
        ("should fail when tcpEstablishedTimeout is below minimum (60s)", {"tcpEstablishedTimeout": 59}, REJECT,
         f"{CT}.tcpEstablishedTimeout"),
        ("should fail when tcpEstablishedTimeout is above maximum (432000s)", {"tcpEstablishedTimeout": 432001},
         REJECT, f"{CT}.tcpEstablishedTimeout"),
        ("should fail when udpStreamTimeout is below minimum (60s)", {"udpStreamTimeout": 59}, REJECT,
         f"{CT}.udpStreamTimeout"),
        ("should fail when udpStreamTimeout is above maximum (180s)", {"udpStreamTimeout": 181}, REJECT,
         f"{CT}.udpStreamTimeout"),
        ("should fail when udpTimeout is below minimum (30s)", {"udpTimeout": 29}, REJECT, f"{CT}.udpTimeout"),
        ("should fail when udpTimeout is above maximum (60s)", {"udpTimeout": 61}, REJECT, f"{CT}.udpTimeout")):
    # ENC Context("ConnectionTracking") It(it)
    slug = it.split("should ")[1].replace(" ", "-").replace("(", "").replace(")", "")
    case(f"enc-ct-{slug}", ENC, it, EC2NODECLASS, (CT, ct), ok=ok, at=at)

# --- CPUOptions ---
for it, cpu, ok in (("should succeed with nestedVirtualization enabled", {"nestedVirtualization": "enabled"}, ACCEPT),
                    ("should succeed with nestedVirtualization disabled", {"nestedVirtualization": "disabled"}, ACCEPT),
                    ("should fail with invalid nestedVirtualization value", {"nestedVirtualization": "invalid"}, REJECT),
                    ("should succeed with empty CPUOptions", {}, ACCEPT)):
    # ENC Context("CPUOptions") It(it)
    slug = it.split("should ")[1].replace(" ", "-")
    case(f"enc-cpu-{slug}", ENC, it, EC2NODECLASS, ("spec.cpuOptions", cpu), ok=ok,
         at="spec.cpuOptions.nestedVirtualization")


# =================================================================================================
# The test
# =================================================================================================

API_CHECKS = ("crd-schema", "cel")


def verdict(c: Case) -> tuple[bool, list[str]]:
    """(accepted, findings) of check's schema + CEL steps on the case's object."""
    report = validate_objects([c.obj], k8s_version="1.34", crd_dir=None)
    kind = f"{c.obj['apiVersion']}/{c.obj['kind']}"
    cov = report.coverage[kind]
    assert "CRD schema + CEL" in cov.how, cov.how
    assert cov.cel_unsupported == 0, f"{c.id}: a CEL rule on this object is unsupported: no verdict"
    other = [str(f) for f in report.findings if f.check not in API_CHECKS]
    assert not other, other
    found = [f.message for f in report.findings if f.check in API_CHECKS]
    return not found, found


def test_enough_cases_translated_from_each_suite():
    by_source: dict[str, int] = {}
    for c in CASES:
        by_source[c.source] = by_source.get(c.source, 0) + 1
    assert len(CASES) >= 40 and set(by_source) == {NP, NC, ENC, ANP}, by_source
    assert sum(not c.accepted for c in CASES) >= 20 and sum(c.accepted for c in CASES) >= 20


@pytest.mark.parametrize("c", CASES, ids=str)
def test_check_agrees_with_karpenter_api_validation(c: Case):
    accepted, found = verdict(c)
    if c.accepted:
        assert accepted, f"{c.source} {c.it!r}: upstream accepts, check rejects: {found}"
    else:
        assert not accepted, f"{c.source} {c.it!r}: upstream rejects, check accepts"
        assert any(m.startswith(c.at) for m in found), f"{c.it!r}: no finding at {c.at}: {found}"
