"""No secret value ever reaches ``build/<stack>/`` (preview.json, manifests, summary), for any stack.

The secret values of an offline render are known exactly: the placeholder the render feeds in for
every ``secure:`` config value (``infra.preview.render.OFFLINE_SECRET``) and what the mocks answer for every
generated secret (``random:*`` results, recomputed with ``infra.preview.mocks.PlatformMocks``). Each must be
absent from every file the render writes, and the places that carry them must show ``[secret]``.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from infra.preview.mocks import SECRET_TEXT, PlatformMocks
from infra.preview.render import OFFLINE_SECRET, REPO, render
from tests.conftest import by_name, render_stack

pytestmark = pytest.mark.render

STACKS = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in REPO.glob("Pulumi.*.yaml"))
PASSWORD_SECRET = ("kubernetes:core/v1:Secret", "ml-monitoring-grafana-admin")


def generated_secrets(result) -> set[str]:
    """The mock values of every generated secret (RandomPassword and friends) in this render."""
    mocks = PlatformMocks(region=result.cfg.region, cluster_name=result.cfg.cluster_name)
    out = set()
    for step in result.preview["steps"]:
        state = step["newState"]
        if state["type"].startswith("random:") and state["custom"]:
            outputs = mocks.outputs_of(state["type"], state["urn"].split("::")[-1], state["inputs"])
            for key in ("result", "bcryptHash"):
                if outputs.get(key):
                    out.add(str(outputs[key]))
    return out


def written_files(out: Path) -> list[Path]:
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.name == "preview.json" for p in files) and any(p.suffix == ".yaml" for p in files)
    return files


def assert_absent(out: Path, secrets: set[str]) -> None:
    assert secrets and all(len(s) >= 12 for s in secrets), secrets
    for path in written_files(out):
        text = path.read_text()
        for secret in secrets:
            assert secret not in text, f"a secret value is in {path.relative_to(out)}"


def test_every_stack_is_covered():
    assert {"dev", "staging", "prod"} <= set(STACKS)


@pytest.mark.parametrize("stack", STACKS)
def test_no_secret_in_build_output(stack, render_root):
    result = render_stack(stack, render_root)
    out = render_root / stack
    secrets = generated_secrets(result) | {OFFLINE_SECRET}
    assert generated_secrets(result), "the Grafana admin password is generated when not configured"
    assert_absent(out, secrets)
    # where the password goes, preview.json and the manifest say [secret]
    secret = by_name(result, *PASSWORD_SECRET)["inputs"]
    assert secret["stringData"]["admin-password"] == SECRET_TEXT
    manifest = yaml.safe_load(next((out / "manifests").glob("*-secret-monitoring-grafana-admin.yaml")).read_text())
    assert manifest["stringData"]["admin-password"] == SECRET_TEXT


def test_configured_password_stays_secret(tmp_path):
    """`grafanaAdminPassword` set with `pulumi config set --secret`: used instead of a generated one,
    and still never in the output."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(REPO / "Pulumi.yaml", project / "Pulumi.yaml")
    doc = yaml.safe_load((REPO / "Pulumi.dev.yaml").read_text())
    doc["config"]["eks-ml-platform:grafanaAdminPassword"] = {"secure": "v1:c2VjcmV0Y2lwaGVydGV4dA==:placeholder"}
    (project / "Pulumi.secretcfg.yaml").write_text(yaml.safe_dump(doc))
    out = tmp_path / "build"
    result = render("secretcfg", out, project_dir=project)
    assert not [s for s in result.preview["steps"] if s["newState"]["type"] == "random:index/randomPassword:RandomPassword"]
    assert result.preview["config"]["eks-ml-platform:grafanaAdminPassword"] == SECRET_TEXT
    assert by_name(result, *PASSWORD_SECRET)["inputs"]["stringData"]["admin-password"] == SECRET_TEXT
    assert_absent(out, {OFFLINE_SECRET, "c2VjcmV0Y2lwaGVydGV4dA=="})
