"""check's legacy warnings (infra/check/legacy.py): every NodePool that may launch Inf1 and an inf1 serving
device are warned about, printed in the report, and never make the check fail."""
from __future__ import annotations

import pytest
import yaml

from infra.check.legacy import INF1_WARNING, inf1_node_pools, inf1_serving
from infra.check.report import Finding, Report, format_report
from infra.check.run import check_manifests

pytestmark = pytest.mark.unit


def node_pool(name: str, *requirements: dict, api: str = "karpenter.sh/v1") -> dict:
    return {"apiVersion": api, "kind": "NodePool", "metadata": {"name": name},
            "spec": {"template": {"spec": {"requirements": list(requirements)}}}}


def req(key: str, values: list[str], op: str = "In") -> dict:
    return {"key": key, "operator": op, "values": values}


FAMILY, TYPE = "karpenter.k8s.aws/instance-family", "node.kubernetes.io/instance-type"


def test_a_pool_that_may_launch_inf1_is_warned_by_family_or_instance_type():
    pools = [node_pool("by-family", req(FAMILY, ["inf1"])), node_pool("by-type", req(TYPE, ["inf1.xlarge"])),
             node_pool("mixed", req(FAMILY, ["inf2", "inf1"]))]
    assert [w.resource for w in inf1_node_pools(pools)] == ["NodePool/by-family", "NodePool/by-type", "NodePool/mixed"]
    assert all(w.check == "legacy" and w.message == INF1_WARNING for w in inf1_node_pools(pools))


def test_pools_that_cannot_launch_inf1_are_not_warned():
    pools = [node_pool("inf2", req(FAMILY, ["inf2"])), node_pool("not-inf1", req(FAMILY, ["inf1"], op="NotIn")),
             node_pool("g5", req(TYPE, ["g5.xlarge"])), node_pool("no-reqs"),
             node_pool("legacy-api", req(FAMILY, ["inf1"]), api="example.com/v1"),
             {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "inf1"}}]
    assert inf1_node_pools(pools) == []


def test_the_inf1_serving_device_is_warned():
    assert [w.resource for w in inf1_serving("inf1")] == ["config/serving.device"]
    assert inf1_serving("gpu") == [] and inf1_serving("") == []


def test_warnings_are_printed_and_never_fail_the_report():
    report = Report(warnings=[Finding("legacy", "NodePool/inf1", INF1_WARNING)])
    text = format_report(report, title="t")
    assert report.ok and "1 warning(s) (not failures):" in text and "[legacy] NodePool/inf1: Inf1 is legacy" in text
    assert text.rstrip().endswith("no findings")


def test_check_manifests_warns_on_an_inf1_pool_and_still_passes(tmp_path):
    (tmp_path / "pool.yaml").write_text(yaml.safe_dump(node_pool("inf1", req(FAMILY, ["inf1"]))))
    report = check_manifests(tmp_path, None, "1.34", with_checkov=False)
    assert [w.resource for w in report.warnings] == ["NodePool/inf1"]


@pytest.mark.manifests
def test_the_dev_stack_warns_on_its_inf1_pool_and_serving_device_and_passes(tmp_path):
    from infra.check.run import check_stack

    report = check_stack("dev", tmp_path / "dev", None, with_checkov=False)
    assert report.ok, report.findings
    assert sorted(w.resource for w in report.warnings) == ["NodePool/inf1", "config/serving.device"]
