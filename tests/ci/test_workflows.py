"""GitHub workflows: valid, least privilege, pinned, OIDC, environments."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.tooling

WF = Path(__file__).resolve().parents[2] / ".github" / "workflows"
FILES = ["preview.yml", "deploy.yml", "teardown-dev.yml", "images.yml"]
SHA_USES = re.compile(r"^\s*(?:-\s+)?uses:\s+([\w.-]+/[\w./-]+)@([0-9a-f]{40})\s+#\s+v\d+\.\d+\.\d+\s*$")
ALLOWED_WRITE = {"id-token", "pull-requests"}
EXTRA_WRITE = {"images.yml": {"packages"}}  # the release workflow pushes to GHCR


def load(name: str) -> dict:
    return yaml.safe_load((WF / name).read_text())


def triggers(wf: dict) -> dict:
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` key as True
    return {on: None} if isinstance(on, str) else on


def steps(job: dict) -> list[dict]:
    return job.get("steps") or []


@pytest.mark.parametrize("name", FILES)
def test_valid_yaml_with_jobs(name):
    wf = load(name)
    assert wf["name"] and triggers(wf) and wf["jobs"]
    for job_id, job in wf["jobs"].items():
        assert "runs-on" in job and steps(job), job_id
        assert job.get("timeout-minutes"), f"{name}:{job_id} has no timeout"


@pytest.mark.parametrize("name", FILES)
def test_permissions_least_privilege(name):
    wf = load(name)
    assert wf.get("permissions") in ({}, {"contents": "read"}), "top-level permissions"
    for job_id, job in wf["jobs"].items():
        perms = job.get("permissions")
        assert isinstance(perms, dict), f"{name}:{job_id} must set its own permissions"
        for scope, level in perms.items():
            assert level in ("read", "write", "none"), (job_id, scope, level)
            if level == "write":
                assert scope in ALLOWED_WRITE | EXTRA_WRITE.get(name, set()), f"{name}:{job_id} writes {scope}"
    text = (WF / name).read_text()
    assert "write-all" not in text and "read-all" not in text


@pytest.mark.parametrize("name", FILES)
def test_every_action_pinned_to_a_sha_with_version_comment(name):
    lines = [l for l in (WF / name).read_text().splitlines() if re.match(r"^\s*(-\s+)?uses:", l)]
    assert lines
    for line in lines:
        assert SHA_USES.match(line), f"not pinned: {line.strip()}"


def test_same_action_same_sha_everywhere():
    pins: dict[str, set[str]] = {}
    for name in FILES:
        for line in (WF / name).read_text().splitlines():
            m = SHA_USES.match(line)
            if m:
                pins.setdefault(m[1], set()).add(m[2])
    assert {a for a, shas in pins.items() if len(shas) > 1} == set()
    assert {"actions/checkout", "actions/setup-python", "actions/github-script", "pulumi/actions",
            "aws-actions/configure-aws-credentials"} <= set(pins)


@pytest.mark.parametrize("name", FILES)
def test_no_untrusted_interpolation_in_scripts(name):
    """`${{ }}` inside `run:` is a script-injection vector: pass values through env instead."""
    for job_id, job in load(name)["jobs"].items():
        for step in steps(job):
            assert "${{" not in step.get("run", ""), f"{name}:{job_id}: {step.get('name')}"


@pytest.mark.parametrize("name", FILES)
def test_no_long_lived_aws_keys(name):
    text = (WF / name).read_text()
    for needle in ("AWS_ACCESS_KEY", "AWS_SECRET", "aws-access-key-id", "aws-secret-access-key"):
        assert needle not in text


@pytest.mark.parametrize("name", FILES)
def test_aws_access_is_oidc(name):
    for job_id, job in load(name)["jobs"].items():
        creds = [s for s in steps(job) if "configure-aws-credentials" in s.get("uses", "")]
        if creds:
            assert job["permissions"].get("id-token") == "write", f"{name}:{job_id}"
            assert all("role-to-assume" in s["with"] for s in creds)


# --- preview ----------------------------------------------------------------------------------


def test_preview_triggers_and_render_job_has_no_secrets():
    wf = load("preview.yml")
    assert "pull_request" in triggers(wf)
    assert "pull_request_target" not in triggers(wf)
    render = wf["jobs"]["render"]
    assert render["permissions"] == {"contents": "read"}
    assert "secrets." not in yaml.safe_dump(render)
    assert render["strategy"]["matrix"]["stack"] == ["dev", "staging", "prod"]
    runs = "\n".join(s.get("run", "") for s in steps(render))
    assert 'make preview STACK="$STACK"' in runs
    assert '.venv/bin/python -m infra check --stack "$STACK"' in runs
    assert "-m infra prdiff" in runs and "-m infra cost" in runs and "--json" in runs
    base = [s for s in steps(render) if (s.get("with") or {}).get("path") == "base"]
    assert base and base[0]["with"]["ref"] == "${{ github.event.pull_request.base.sha }}"
    assert all(s["with"].get("persist-credentials") is False
               for s in steps(render) if "actions/checkout" in s.get("uses", ""))


def test_preview_comment_is_sticky_and_skips_forks():
    job = load("preview.yml")["jobs"]["comment"]
    assert job["permissions"] == {"pull-requests": "write"}
    assert "head.repo.full_name == github.repository" in job["if"]
    assert not any("actions/checkout" in s.get("uses", "") for s in steps(job)), \
        "the job with a write token never checks out PR code"
    script = next(s for s in steps(job) if "github-script" in s.get("uses", ""))["with"]["script"]
    assert "<!-- eks-ml-platform:preview -->" in script
    assert "updateComment" in script and "createComment" in script


def test_preview_real_pulumi_only_with_credentials():
    job = load("preview.yml")["jobs"]["pulumi"]
    assert "vars.AWS_ROLE_ARN != ''" in job["if"]
    assert job["permissions"]["id-token"] == "write"
    pulumi = next(s for s in steps(job) if s.get("uses", "").startswith("pulumi/actions@"))
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["comment-on-pr"] is True


# --- deploy -----------------------------------------------------------------------------------


def test_deploy_flow():
    wf = load("deploy.yml")
    on = triggers(wf)
    assert on["push"]["branches"] == ["main"]
    jobs = wf["jobs"]
    assert jobs["dev"]["needs"] == "verify"
    assert jobs["staging"]["needs"] == "dev" and jobs["prod"]["needs"] == "staging"
    assert jobs["staging"]["environment"] == "staging"
    assert jobs["prod"]["environment"] == "prod"
    for stack in ("dev", "staging", "prod"):
        job = jobs[stack]
        assert job["permissions"] == {"contents": "read", "id-token": "write"}
        assert job["concurrency"] == {"group": f"pulumi-{stack}", "cancel-in-progress": False}
        up = next(s for s in steps(job) if s.get("uses", "").startswith("pulumi/actions@"))
        assert up["with"]["command"] == "up" and up["with"]["stack-name"] == stack
        assert up["with"]["policyPacks"] == "policy"


# --- teardown ---------------------------------------------------------------------------------


def test_teardown_dev():
    wf = load("teardown-dev.yml")
    on = triggers(wf)
    assert on["schedule"][0]["cron"]
    assert on["workflow_dispatch"]["inputs"]["stack"]["default"] == "dev"
    job = wf["jobs"]["teardown"]
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    assert job["env"]["STACK"] == "${{ inputs.stack || 'dev' }}"
    runs = "\n".join(s.get("run", "") for s in steps(job))
    assert ".venv/bin/python -m infra teardown" in runs
    assert '--stack "$STACK" --region "$REGION" --yes' in runs
    assert wf["concurrency"]["group"] == "pulumi-${{ inputs.stack || 'dev' }}"


# --- release images ---------------------------------------------------------------------------

def test_release_images_on_version_tags_with_provenance_and_sbom():
    from infra.versions import IMAGES

    wf = load("images.yml")
    assert triggers(wf) == {"push": {"tags": ["v*.*.*"]}}
    (job,) = wf["jobs"].values()
    assert job["permissions"] == {"contents": "read", "packages": "write"}
    matrix = {m["image"]: m for m in job["strategy"]["matrix"]["include"]}
    # exactly the four public images infra/versions.py names, from this repository's Dockerfiles
    published = {IMAGES[k].split("/")[-1].split(":")[0] for k in ("trainer", "trainer_gpu", "sentiment",
                                                                  "sentiment_neuron")}
    assert set(matrix) == published
    for m in matrix.values():
        assert (WF.parents[1] / m["dockerfile"]).is_file(), m
    assert matrix["trainer"]["torch_index"] == "https://download.pytorch.org/whl/cpu"
    assert matrix["sentiment-neuron"]["dockerfile"].endswith("Dockerfile.neuron")
    (build,) = [st for st in steps(job) if "docker/build-push-action" in st.get("uses", "")]
    assert build["with"]["push"] is True and build["with"]["sbom"] is True
    assert build["with"]["provenance"] == "mode=max" and build["with"]["platforms"] == "linux/amd64"
    # the base image is resolved to a digest and passed as BASE_IMAGE
    assert "BASE_IMAGE=${BASE_REF}" in next(st["run"] for st in steps(job) if st.get("id") == "args")
