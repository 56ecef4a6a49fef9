"""infra/prdiff.py: the PR comment's diff of two offline previews."""

from __future__ import annotations

import copy
import json

from infra import prdiff
from tests.conftest import REPO
import pytest

pytestmark = pytest.mark.unit

P = "urn:pulumi:dev::eks-ml-platform::"


def step(type_, name, inputs, parent_path="", protect=False):
    urn = f"{P}{parent_path}{type_}::{name}"
    return {"op": "create", "urn": urn,
            "newState": {"urn": urn, "type": type_, "custom": True, "inputs": inputs,
                         "parent": None, "dependencies": [], "provider": "", "protect": protect}}


def preview(steps, config=None):
    return {"config": config or {"eks-ml-platform:environment": "dev"}, "steps": steps,
            "changeSummary": {"create": len(steps)}}


NP = "kubernetes:karpenter.sh/v1:NodePool"
REL = "kubernetes:helm.sh/v3:Release"


def base_steps():
    return [
        step("aws:ec2/vpc:Vpc", "dev-vpc", {"cidrBlock": "10.0.0.0/16"}),
        step(NP, "karpenter-gpu", {"spec": {"limits": {"cpu": "64", "nvidia.com/gpu": "4"},
                                            "template": {"spec": {"requirements": [
                                                {"key": "node.kubernetes.io/instance-type",
                                                 "operator": "In", "values": ["g5.xlarge"]}]}}}},
             parent_path="eks-ml-platform:karpenter:Karpenter$"),
        step(NP, "karpenter-inf1", {"spec": {"limits": {"cpu": "32"}}}),
        step(REL, "monitoring-kps", {"chart": "kube-prometheus-stack", "version": "82.0.0",
                                     "values": {"grafana": {"adminPassword": "[secret]"}}}),
        step(REL, "karpenter", {"chart": "oci://public.ecr.aws/karpenter/karpenter",
                                "version": "1.14.0"}),
        step("aws:sqs/queue:Queue", "karpenter-queue", {"name": "dev-ml-karpenter-interruption"}),
    ]


def head_steps():
    steps = copy.deepcopy(base_steps())
    steps[0]["newState"]["protect"] = True  # vpc: protect flips
    steps[1]["newState"]["inputs"]["spec"]["limits"]["cpu"] = "128"
    steps[1]["newState"]["inputs"]["spec"]["template"]["spec"]["requirements"][0]["values"].append(
        "g6.xlarge")
    kps = next(s for s in steps if s["urn"].endswith("::monitoring-kps"))
    kps["newState"]["inputs"]["version"] = "82.1.0"  # chart bump
    del steps[2]  # inf1 pool removed
    steps.append(step(NP, "karpenter-inf2", {"spec": {"limits": {"cpu": "48"}}}))
    steps.append(step(REL, "training-operator", {"chart": "training-operator", "version": "1.9.2"}))
    return steps


def test_diff_previews():
    d = prdiff.diff_previews(preview(base_steps()),
                             preview(head_steps(), {"eks-ml-platform:environment": "dev",
                                                    "eks-ml-platform:gpuMaxNodes": "4"}))
    assert d["stack"] == "dev"
    assert sorted(a["name"] for a in d["added"]) == ["karpenter-inf2", "training-operator"]
    assert [r["name"] for r in d["removed"]] == ["karpenter-inf1"]
    changed = {c["name"]: c for c in d["changed"]}
    assert set(changed) == {"dev-vpc", "karpenter-gpu", "monitoring-kps"}
    assert changed["dev-vpc"]["changes"] == [{"path": "(protect)", "old": False, "new": True}]
    gpu_paths = {c["path"]: c for c in changed["karpenter-gpu"]["changes"]}
    assert gpu_paths["spec.limits.cpu"] == {"path": "spec.limits.cpu", "old": "64", "new": "128"}
    assert gpu_paths["spec.template.spec.requirements[0].values[1]"]["new"] == "g6.xlarge"

    pools = {(n["name"], n["op"]) for n in d["nodepools"]}
    assert pools == {("karpenter-gpu", "changed"), ("karpenter-inf1", "removed"),
                     ("karpenter-inf2", "added")}

    helm = {h["name"]: h for h in d["helm"]}
    assert helm["monitoring-kps"]["old_version"] == "82.0.0"
    assert helm["monitoring-kps"]["new_version"] == "82.1.0"
    assert helm["training-operator"]["old_version"] is None
    assert "karpenter" not in helm  # unchanged
    assert d["config"] == [{"path": "eks-ml-platform:gpuMaxNodes", "old": None, "new": "4"}]
    assert d["counts"] == {"base": 6, "head": 7, "added": 2, "removed": 1, "changed": 3}


def test_identical_previews_have_no_changes():
    d = prdiff.diff_previews(preview(base_steps()), preview(base_steps()))
    assert not (d["added"] or d["removed"] or d["changed"] or d["helm"] or d["nodepools"])
    md = prdiff.to_markdown(d, None)
    assert "No resource changes (6 resources)" in md


def test_to_markdown_with_cost():
    d = prdiff.diff_previews(preview(base_steps()), preview(head_steps()))
    cost = {"base": {"region": "us-west-2", "idle_usd_per_hour": 0.5, "max_usd_per_hour": 10.0},
            "head": {"region": "us-west-2", "idle_usd_per_hour": 0.62, "max_usd_per_hour": 9.0,
                     "idle_usd_per_month": 452.6}}
    md = prdiff.to_markdown(d, cost)
    assert md.startswith("### Stack `dev`")
    assert "**2 to add, 3 to change, 1 to remove** (6 → 7 resources)" in md
    assert "idle $0.62/h (+$0.12) ≈ $452.60/month, max $9.00/h (−$1.00)" in md
    assert "| monitoring-kps | kube-prometheus-stack | 82.0.0 | 82.1.0 |" in md
    assert "| training-operator | training-operator | (new) | 1.9.2 |" in md
    assert "- `karpenter-gpu` changed" in md and "spec.limits.cpu: `64` → `128`" in md
    assert "- `karpenter-inf1` removed" in md
    # a head-only cost object works too
    assert "idle $0.62/h" in prdiff.to_markdown(d, cost["head"])


def test_long_values_are_truncated_and_escaped():
    a = preview([step("x:y:Z", "r", {"v": "a" * 200})])
    b = preview([step("x:y:Z", "r", {"v": "b|" * 100})])
    md = prdiff.to_markdown(prdiff.diff_previews(a, b))
    line = next(l for l in md.splitlines() if l.strip().startswith("- v:"))
    assert "…" in line and len(line) < 2 * prdiff.MAX_VALUE + 40 and "\\|" in line


def test_main_writes_markdown_and_json(tmp_path, capsys):
    (tmp_path / "base").mkdir()
    (tmp_path / "head").mkdir()
    (tmp_path / "base" / "preview.json").write_text(json.dumps(preview(base_steps())))
    (tmp_path / "head" / "preview.json").write_text(json.dumps(preview(head_steps())))
    (tmp_path / "cost.json").write_text(json.dumps({"stack": "dev", "region": "us-west-2",
                                                    "idle_usd_per_hour": 1.0,
                                                    "max_usd_per_hour": 2.0, "items": []}))
    out = tmp_path / "out" / "dev.md"
    rc = prdiff.main(["--base", str(tmp_path / "base"), "--head", str(tmp_path / "head"),
                      "--cost-head", str(tmp_path / "cost.json"), "--out", str(out)])
    assert rc == 0
    text = out.read_text()
    assert "### Stack `dev`" in text and "idle $1.00/h" in text

    assert prdiff.main(["--base", str(tmp_path / "base"), "--head", str(tmp_path / "head"),
                        "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["counts"]["added"] == 2 and data["base_missing"] is False


def test_main_missing_base_counts_everything_as_added(tmp_path, capsys):
    (tmp_path / "head").mkdir()
    (tmp_path / "head" / "preview.json").write_text(json.dumps(preview(base_steps())))
    assert prdiff.main(["--base", str(tmp_path / "nope"), "--head", str(tmp_path / "head")]) == 0
    out = capsys.readouterr().out
    assert "**6 to add" in out and "No base preview" in out
    assert prdiff.main(["--base", str(tmp_path / "head"), "--head", str(tmp_path / "nope")]) == 2


def test_a_serving_replica_change_shows_every_cost_figure_and_the_item_that_moved():
    """dev with serving.replicas 3 -> 4: the idle figure does not move, idle-with-serving does, and the
    comment says which item moved and by how much."""
    from infra.config import from_flat, merged_stack_config
    from infra.cost import estimate

    flat = merged_stack_config("dev", REPO)
    base = estimate(from_flat(flat, stack="dev"))
    more = dict(flat)
    more["eks-ml-platform:serving"] = {**flat["eks-ml-platform:serving"], "replicas": 4}
    head = estimate(from_flat(more, stack="dev"))
    d = prdiff.diff_previews(preview(base_steps()), preview(base_steps()))
    md = prdiff.to_markdown(d, {"base": base, "head": head})
    serving_delta = head["idle_with_serving_usd_per_hour"] - base["idle_with_serving_usd_per_hour"]
    assert serving_delta > 0.05
    assert f"| idle | ${base['idle_usd_per_hour']:,.2f}/h | ${head['idle_usd_per_hour']:,.2f}/h | no change |" in md
    row = next(line for line in md.splitlines() if line.startswith("| idle with always-on serving |"))
    assert row.endswith(f"| +${serving_delta:,.2f} |"), row
    moved = [line for line in md.splitlines() if line.startswith("- serving: 3 replicas")]
    assert moved and "→ serving: 4 replicas on 4 x inf1.xlarge" in moved[0] and "(+$" in moved[0], md
