"""`python -m infra render`: preview.json in `pulumi preview --json` shape, manifests, determinism, errors."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, raise_if_artifact_unavailable, states

pytestmark = pytest.mark.render

PY = sys.executable


#: coverage's subprocess hooks (.coveragerc ``patch = subprocess``): a child started with them is traced.
COVERAGE_ENV = ("COVERAGE_PROCESS_CONFIG", "COVERAGE_PROCESS_START")


def run_cli(*args: str, cwd: Path = REPO, timeout: int = 120, traced: bool = True) -> subprocess.CompletedProcess:
    """``python -m infra ARGS``; ``traced=False`` drops coverage's hooks, so a time budget measures the program
    and not the tracer (which roughly doubles the render's CPU time under ``make test``)."""
    env = {k: v for k, v in os.environ.items() if traced or k not in COVERAGE_ENV}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run([PY, "-m", "infra", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    raise_if_artifact_unavailable(proc)
    return proc


def test_preview_shape(dev):
    preview = dev.preview
    assert set(preview) == {"config", "steps", "changeSummary"}
    assert preview["changeSummary"] == {"create": len(preview["steps"])}
    for step in preview["steps"]:
        assert step["op"] == "create" and step["urn"] == step["newState"]["urn"]
        ns = step["newState"]
        assert set(ns) >= {"urn", "type", "custom", "inputs", "parent", "dependencies", "provider", "protect"}
        assert ns["urn"].startswith("urn:pulumi:dev::eks-ml-platform::")
    urns = {s["urn"] for s in preview["steps"]}
    for ns in states(dev):
        assert not ns["parent"] or ns["parent"] in urns, ns["urn"]
        assert set(ns["dependencies"]) <= urns, ns["urn"]
    assert preview["config"]["eks-ml-platform:environment"] == "dev"


def test_dependencies_include_implicit_edges(dev):
    """Outputs passed as inputs become dependencies, as in the engine (not only depends_on)."""
    subnet = next(s for s in states(dev, "aws:ec2/subnet:Subnet"))
    vpc = states(dev, "aws:ec2/vpc:Vpc")[0]
    assert vpc["urn"] in subnet["dependencies"]
    assert subnet["propertyDependencies"]["vpcId"] == [vpc["urn"]]


def test_cli_writes_files_and_summary(tmp_path):
    import resource

    out = tmp_path / "dev"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = run_cli("render", "--stack", "dev", "--out", str(out), traced=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert proc.returncode == 0, proc.stderr
    # The budget is 10 s wall on an idle 2-core machine. The render is single-threaded, so its CPU time is
    # that wall time without the noise of other tests running beside it (xdist); wall is a looser backstop.
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert cpu < 10, f"render used {cpu:.1f}s of CPU ({wall:.1f}s wall)"
    assert wall < 60, f"render took {wall:.1f}s wall"
    preview = json.loads((out / "preview.json").read_text())
    assert preview["changeSummary"]["create"] > 30
    assert "Resources per component:" in proc.stdout and "stack dev (dev)" in proc.stdout
    assert (out / "summary.txt").read_text() in proc.stdout
    files = sorted((out / "manifests").glob("*.yaml"))
    assert all(f.name[:3].isdigit() for f in files)


def test_two_renders_are_byte_identical(tmp_path):
    for name in ("a", "b"):
        proc = run_cli("render", "--stack", "prod", "--out", str(tmp_path / name))
        assert proc.returncode == 0, proc.stderr
    files = {name: {f.relative_to(tmp_path / name): f.read_bytes() for f in (tmp_path / name).rglob("*") if f.is_file()}
             for name in ("a", "b")}
    assert len(files["a"]) > 50  # preview.json, summary.txt and the manifests
    assert files["a"].keys() == files["b"].keys()  # neither render wrote a file the other lacks
    assert [f for f in files["a"] if files["a"][f] != files["b"][f]] == []


def test_secrets_print_as_secret(dev):
    k8s = states(dev, "pulumi:providers:kubernetes")[0]
    assert k8s["inputs"]["kubeconfig"] == "[secret]"
    text = json.dumps(dev.preview)
    assert "get-token" not in text  # the kubeconfig body never leaks


def test_unknown_stack_is_a_clear_error():
    proc = run_cli("render", "--stack", "nope")
    assert proc.returncode == 2
    assert "stack 'nope' does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("bad, key", [
    ("eks-ml-platform:cluster:\n    version: \"1.19\"\n", "eks-ml-platform:cluster.version: 1.19 is not supported; use 1.30-1.36"),
    ("eks-ml-platform:vpc:\n    azCount: 7\n", "eks-ml-platform:vpc.azCount: 7 is out of range"),
    ("eks-ml-platform:clusterr: {}\n", "eks-ml-platform:clusterr: unknown key; did you mean 'cluster'?"),
])
def test_bad_config_exits_before_anything_is_created(tmp_path, bad, key):
    shutil.copy(REPO / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    (tmp_path / "Pulumi.bad.yaml").write_text("config:\n  " + bad)
    out = tmp_path / "out"
    proc = run_cli("render", "--stack", "bad", "--project-dir", str(tmp_path), "--out", str(out))
    assert proc.returncode == 2
    assert key in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()  # nothing rendered, nothing registered


def test_pulumi_up_path_refuses_bad_config_without_registering():
    """The program `pulumi up` runs: a config error is a RunError (no traceback) before any resource."""
    import pulumi

    from infra import program
    from infra.preview.mocks import mock_engine

    config = {"eks-ml-platform:cluster": json.dumps({"version": "1.19"}), "eks-ml-platform:typo": "1"}
    with pytest.raises(pulumi.RunError) as exc:
        with mock_engine(project="eks-ml-platform", stack="dev", config=config) as monitor:
            program.run()
    assert "eks-ml-platform:cluster.version: 1.19 is not supported" in str(exc.value)
    assert "eks-ml-platform:typo: unknown key" in str(exc.value)
    assert [r.type for r in monitor.registrations] == []


def test_a_region_without_a_price_table_renders_with_an_unknown_price(tmp_path):
    """eu-west-1 is a valid region; the price table only covers us-west-2. The estimate is the tooling's gap:
    the render says so and succeeds, it never crashes the preview (or check, or the PR comment)."""
    from infra.preview.render import render

    shutil.copy(REPO / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    text = (REPO / "Pulumi.dev.yaml").read_text().replace("us-west-2", "eu-west-1")
    (tmp_path / "Pulumi.dev.yaml").write_text(text)
    result = render("dev", tmp_path / "out", project_dir=tmp_path)
    assert result.cfg.region == "eu-west-1"
    assert "Cost estimate: unknown price (no price table for region eu-west-1" in result.summary
    assert result.manifests and (tmp_path / "out" / "preview.json").is_file()
