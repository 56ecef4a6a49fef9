"""The workload images (components/images.py, infra/config/images.py): ECR repositories and docker-build
images for exactly what a stack runs, the workloads pinned to them by digest, or prebuilt references."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from components import images as ci
from infra.config import ConfigError, from_flat, merged_stack_config, needed_images, parse_config
from infra.preview.mocks import ACCOUNT
from infra.preview.render import REPO, build_manifests, build_preview, run_program
from tests.conftest import states

pytestmark = pytest.mark.unit

REPO_T = "aws:ecr/repository:Repository"
POLICY_T = "aws:ecr/lifecyclePolicy:LifecyclePolicy"
IMAGE_T = "docker-build:index:Image"
DIGEST_RE = re.compile(r"^(?P<repo>[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com/[a-z0-9/_.-]+)@sha256:[0-9a-f]{64}$")
_CACHE: dict[str, tuple] = {}


def render_with(name: str, stack: str = "dev", **keys) -> tuple[dict, list]:
    """A stack rendered under mocks with some top-level keys replaced (or merged into, for dicts)."""
    if name not in _CACHE:
        flat = merged_stack_config(stack, REPO)
        for key, value in keys.items():
            full = f"eks-ml-platform:{key}"
            flat[full] = {**flat.get(full, {}), **value} if isinstance(value, dict) else value
        cfg = from_flat(flat, stack=stack)
        monitor, _ = run_program(cfg, flat)
        _CACHE[name] = (build_preview(cfg, flat, monitor.registrations), build_manifests(monitor.registrations))
    return _CACHE[name]


def steps(preview: dict, type_: str) -> dict[str, dict]:
    return {s["newState"]["urn"].split("::")[-1]: s["newState"] for s in preview["steps"]
            if s["newState"]["type"] == type_}


def workload_images(objs) -> dict[tuple[str, str], set[str]]:
    """(kind, name) -> the images of every container and init container of the workloads."""
    out = {}
    for m in objs:
        if m["kind"] not in ("PyTorchJob", "TFJob", "Job", "CronJob", "Deployment") \
                or m["metadata"].get("namespace") != "ml-workloads":
            continue
        found: set[str] = set()

        def walk(x):
            if isinstance(x, dict):
                for k, v in x.items():
                    if k in ("containers", "initContainers"):
                        found.update(c["image"] for c in v)
                    else:
                        walk(v)
            elif isinstance(x, list):
                for v in x:
                    walk(v)
        walk(m["spec"])
        out[(m["kind"], m["metadata"]["name"])] = found
    return out


def built_refs(preview: dict) -> dict[str, str]:
    """image name (ECR repository suffix) -> <repositoryUrl>@<mocked digest>."""
    from infra.preview.mocks import PlatformMocks
    import pulumi

    mocks = PlatformMocks()
    out = {}
    for name, img in steps(preview, IMAGE_T).items():
        _, state = mocks.new_resource(pulumi.runtime.MockResourceArgs(typ=IMAGE_T, name=name, inputs=img["inputs"],
                                                                       custom=True))
        (tag,) = img["inputs"]["tags"]
        repo_url = tag.rsplit(":", 1)[0]
        out[repo_url.rsplit("/", 1)[1]] = f"{repo_url}@{state['digest']}"
    return out


# ---------------------------------------------------------------- the shipped stacks
def test_dev_builds_exactly_what_it_runs(dev):
    # dev: CPU training (data prep and the job share the CPU trainer), inf1 serving
    assert needed_images(dev.cfg) == ["trainer", "serverNeuron"]
    repos = {s["inputs"]["name"]: s for s in states(dev, REPO_T)}
    assert sorted(repos) == ["ml-dev/sentiment-neuron", "ml-dev/trainer"]
    for r in repos.values():
        assert r["inputs"]["imageTagMutability"] == "IMMUTABLE"
        assert r["inputs"]["imageScanningConfiguration"] == {"scanOnPush": True}
        assert r["inputs"]["encryptionConfigurations"] == [{"encryptionType": "KMS"}]
        assert r["inputs"]["forceDelete"] is True  # dev is ephemeral
        assert r["parent"].endswith("::ml-images")
    imgs = {s["inputs"]["dockerfile"]["location"]: s for s in states(dev, IMAGE_T)}
    assert sorted(imgs) == ["workloads/sentiment/Dockerfile.neuron", "workloads/training/Dockerfile"]
    trainer = imgs["workloads/training/Dockerfile"]["inputs"]
    assert trainer["context"] == {"location": "."} and trainer["platforms"] == ["linux/amd64"]
    assert trainer["push"] is True
    assert trainer["buildArgs"] == {"TORCH_INDEX_URL": "https://download.pytorch.org/whl/cpu"}
    assert "BASE_IMAGE" not in trainer["buildArgs"]
    host = f"{ACCOUNT}.dkr.ecr.us-west-2.amazonaws.com"
    hash_ = ci.content_hash(ci.image_builds(dev.cfg)["trainer"])
    assert trainer["tags"] == [f"{host}/ml-dev/trainer:{hash_}"] and len(hash_) == ci.HASH_CHARS
    (reg,) = trainer["registries"]
    assert reg == {"address": host, "username": "AWS", "password": "[secret]"}


def test_dev_workloads_run_the_built_images_by_digest(dev):
    refs = built_refs(dev.preview)
    assert sorted(refs) == ["sentiment-neuron", "trainer"]
    used = workload_images(m for _, m in dev.manifests)
    assert used[("PyTorchJob", "sentiment-train")] == {refs["trainer"]}
    assert used[("Job", "sentiment-data-prep")] == {refs["trainer"]}
    assert used[("Deployment", "sentiment")] == {refs["sentiment-neuron"]}
    for ref in refs.values():
        assert DIGEST_RE.match(ref), ref
    # digest-pinned: no CKV_K8S_43 skip left on them
    for _, m in dev.manifests:
        if (m["kind"], m["metadata"]["name"]) in used:
            assert not any(v.startswith("CKV_K8S_43") for v in (m["metadata"].get("annotations") or {}).values())
    # the workloads depend on the builds (a rebuild rolls them; they never start on a missing image)
    dep = next(s for s in states(dev, "kubernetes:apps/v1:Deployment") if s["urn"].endswith("::ml-sentiment-deployment"))
    assert any(d.endswith("::ml-images-sentiment-neuron-image") for d in dep["dependencies"])


def test_dev_lifecycle_keeps_the_last_ten(dev):
    pols = states(dev, POLICY_T)
    assert len(pols) == 2
    for p in pols:
        doc = json.loads(p["inputs"]["policy"])
        (rule,) = doc["rules"]
        assert rule["selection"] == {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 10}
        assert rule["action"] == {"type": "expire"}
        assert p["inputs"]["policy"] == json.dumps(doc, sort_keys=True)


def test_prod_builds_both_trainers_and_keeps_its_repositories(prod):
    # prod serves on inf2 (Pulumi.prod.yaml): the torch-neuronx server image
    assert needed_images(prod.cfg) == ["trainer", "trainerGpu", "serverNeuronx"]
    repos = {s["inputs"]["name"]: s for s in states(prod, REPO_T)}
    assert sorted(repos) == ["ml-prod/sentiment-neuronx", "ml-prod/trainer", "ml-prod/trainer-gpu"]
    assert all(r["inputs"]["forceDelete"] is False for r in repos.values())
    gpu = next(s for s in states(prod, IMAGE_T) if s["inputs"]["dockerfile"]["location"].endswith("Dockerfile.gpu"))
    assert gpu["inputs"]["buildArgs"] == {"TORCH_INDEX_URL": "https://pypi.org/simple"}
    refs = built_refs(prod.preview)
    used = workload_images(m for _, m in prod.manifests)
    assert used[("PyTorchJob", "sentiment-train")] == {refs["trainer-gpu"]}
    assert used[("Job", "sentiment-data-prep")] == {refs["trainer"]}
    assert used[("Deployment", "sentiment")] == {refs["sentiment-neuronx"]}
    # the compile CronJob runs the serving image: the artifact loads under the compiler release that wrote it
    assert used[("CronJob", "sentiment-neuron-compile")] == {refs["sentiment-neuronx"]}
    neuronx = next(s for s in states(prod, IMAGE_T) if s["inputs"]["dockerfile"]["location"].endswith("Dockerfile.neuronx"))
    assert neuronx["inputs"]["buildArgs"] == {}


def test_cpu_serving_builds_the_cpu_server():
    preview, objs = render_with("cpu-serving", serving={"device": "cpu"}, images={"keepLast": 3})
    imgs = {s["inputs"]["dockerfile"]["location"]: s["inputs"] for s in steps(preview, IMAGE_T).values()}
    assert sorted(imgs) == ["workloads/sentiment/Dockerfile", "workloads/training/Dockerfile"]
    assert imgs["workloads/sentiment/Dockerfile"]["buildArgs"] == {"TORCH_INDEX_URL": ci.TORCH_CPU_INDEX}
    refs = built_refs(preview)
    assert workload_images(m for _, m in objs)[("Deployment", "sentiment")] == {refs["sentiment"]}
    for p in steps(preview, POLICY_T).values():
        assert json.loads(p["inputs"]["policy"])["rules"][0]["selection"]["countNumber"] == 3


def test_user_overrides_win_and_are_not_built():
    own_train, own_serve = "ghcr.io/acme/trainer:2.0", "ghcr.io/acme/sentiment@sha256:" + "a" * 64
    preview, objs = render_with("overrides", training={"image": own_train}, serving={"image": own_serve})
    assert [s["inputs"]["name"] for s in steps(preview, REPO_T).values()] == ["ml-dev/trainer"]  # data prep's
    used = workload_images(m for _, m in objs)
    assert used[("PyTorchJob", "sentiment-train")] == {own_train}
    assert used[("Deployment", "sentiment")] == {own_serve}
    assert DIGEST_RE.match(next(iter(used[("Job", "sentiment-data-prep")])))


# ---------------------------------------------------------------- images.build: false
PREBUILT = {"build": False, "trainer": "ghcr.io/eks-ml-platform/trainer:0.1.0",
            "serverNeuron": "registry.example.com/ml/sentiment-neuron@sha256:" + "b" * 64}


def test_prebuilt_refs_no_repository_no_build():
    preview, objs = render_with("prebuilt", images=PREBUILT)
    assert not steps(preview, REPO_T) and not steps(preview, IMAGE_T) and not steps(preview, POLICY_T)
    used = workload_images(m for _, m in objs)
    assert used[("PyTorchJob", "sentiment-train")] == {PREBUILT["trainer"]}
    assert used[("Job", "sentiment-data-prep")] == {PREBUILT["trainer"]}
    assert used[("Deployment", "sentiment")] == {PREBUILT["serverNeuron"]}
    # the tag-pinned trainer keeps its checkov skip (with the reason); the digest-pinned server needs none
    by = {(m["kind"], m["metadata"]["name"]): m for _, m in objs}
    prep_ann = by[("Job", "sentiment-data-prep")]["metadata"].get("annotations") or {}
    assert any(v.startswith("CKV_K8S_43=") for v in prep_ann.values())
    dep_ann = by[("Deployment", "sentiment")]["metadata"].get("annotations") or {}
    assert not any(v.startswith("CKV_K8S_43") for v in dep_ann.values())


def test_prebuilt_stack_has_no_ecr_cost():
    from infra import cost

    built = cost.estimate(parse_config({}, stack="dev"))
    assert any(i["name"].startswith("ECR image storage") for i in built["items"])
    off = cost.estimate(parse_config({"images": {"build": False, "trainer": "a/t:1", "trainerGpu": "a/g:1",
                                                 "serverNeuron": "a/n:1"}}, stack="dev"))
    assert not any(i["name"].startswith("ECR") for i in off["items"])
    assert off["idle_usd_per_hour"] < built["idle_usd_per_hour"]


def _problems(images: dict, **extra) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse_config({"images": images, **extra}, stack="dev")
    return exc.value.problems


@pytest.mark.parametrize("ref, why", [
    ("ghcr.io/acme/sentiment:latest", "uses :latest"),
    ("ghcr.io/acme/sentiment", "has no tag"),
    ("not a ref!", "is not a pinned image reference"),
])
def test_bad_refs_are_refused_naming_the_key(ref, why):
    (p,) = _problems({"build": False, "trainer": "a/t:1", "trainerGpu": "a/g:1", "serverNeuron": ref})
    assert p.startswith(f"eks-ml-platform:images.serverNeuron: {ref!r} ") and why in p


def test_a_missing_needed_ref_is_refused_naming_the_key():
    (p,) = _problems({"build": False, "trainer": "a/t:1", "trainerGpu": "a/g:1"})
    assert p.startswith("eks-ml-platform:images.serverNeuron: is required with images.build: false")
    probs = _problems({"build": False}, training={"device": "cpu"}, serving={"device": "cpu"})
    assert [p.split(":")[1].split(" ")[0] for p in probs] == ["images.trainer", "images.server"]


def test_refs_with_build_true_are_refused():
    (p,) = _problems({"server": "ghcr.io/acme/sentiment:1.0"})
    assert p.startswith("eks-ml-platform:images.server: ") and "images.build is true" in p


def test_keep_last_range():
    assert "images.keepLast" in _problems({"keepLast": 0})[0]
    assert "images.keepLast" in _problems({"keepLast": 1001})[0]
    assert parse_config({"images": {"keepLast": 1000}}, stack="dev").images.keep_last == 1000


def test_needed_images():
    need = lambda **raw: needed_images(parse_config(raw, stack="dev"))  # noqa: E731
    assert need(training={"device": "cpu"}, serving={"device": "gpu"}) == ["trainer", "server"]
    assert need(training={"device": "gpu"}, serving={"enabled": False}) == ["trainer", "trainerGpu"]
    assert need(training={"kind": "TFJob", "image": "a/tf:2", "device": "gpu"}, serving={"enabled": False}) == ["trainer"]
    assert need(training={"enabled": False}, serving={"device": "inf1"}) == ["serverNeuron"]
    assert need(training={"enabled": False}, serving={"enabled": False}) == []


# ---------------------------------------------------------------- the content hash
def _copy_context(tmp_path: Path, dockerfile: str) -> Path:
    root = tmp_path / "repo"
    for rel in ci.context_files(dockerfile):
        dst = root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, dst)
    return root


@pytest.mark.parametrize("key", ["trainer", "trainerGpu", "server", "serverNeuron"])
def test_content_hash_follows_the_context_files(tmp_path, key):
    b = ci.image_builds(parse_config({}, stack="dev"))[key]
    root = _copy_context(tmp_path, b.dockerfile)
    files = ci.context_files(b.dockerfile, root)
    assert b.dockerfile in files and files == sorted(files) and files == ci.context_files(b.dockerfile)
    first = ci.content_hash(b, root)
    assert first == ci.content_hash(b) and re.fullmatch(r"[0-9a-f]{%d}" % ci.HASH_CHARS, first)
    # unrelated files and mtimes do not count
    (root / "workloads" / "unrelated.txt").write_text("x")
    (root / "README.md").write_text("changed")
    import os

    for rel in files:
        os.utime(root / rel, (1, 1))
    assert ci.content_hash(b, root) == first
    # a copied file changes the hash, and back again restores it
    target = root / next(f for f in files if f != b.dockerfile)
    original = target.read_bytes()
    target.write_bytes(original + b"\n# changed\n")
    assert ci.content_hash(b, root) != first
    target.write_bytes(original)
    assert ci.content_hash(b, root) == first
    # so do the Dockerfile and the build arguments
    (root / b.dockerfile).write_text((root / b.dockerfile).read_text() + "\n# changed\n")
    assert ci.content_hash(b, root) != first
    (root / b.dockerfile).write_bytes((REPO / b.dockerfile).read_bytes())
    other = ci.ImageBuild(b.key, b.image, b.dockerfile, {**b.build_args, "TORCH_INDEX_URL": "https://example.com"})
    assert ci.content_hash(other, root) != first


def test_copied_sources_parses_continuations_and_skips_stages():
    text = ("FROM x AS build\n# COPY nothing/here /x\nCOPY a.txt \\\n     b/c.py /app/\n"
            "COPY --from=build /opt/venv /opt/venv\nCOPY --chown=1:1 [\"d e.txt\", \"/y/\"]\nADD f.tgz /z\n")
    assert ci.copied_sources(text) == ["a.txt", "b/c.py", "d e.txt", "f.tgz"]


def test_a_missing_copied_file_is_an_error(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM x\nCOPY gone.py /app/\n")
    with pytest.raises(FileNotFoundError, match="gone.py"):
        ci.context_files("Dockerfile", tmp_path)


def test_settings_slice():
    cfg = parse_config({"ephemeral": True, "images": {"keepLast": 4}}, stack="dev")
    s = ci.ImagesSettings.from_config(cfg)
    assert s.build and s.ephemeral and s.keep_last == 4 and s.cluster_name == "ml-dev"
    assert s.needed == ("trainer", "trainerGpu", "serverNeuron") and set(s.builds) == set(s.needed)
    assert ci.ImagesSettings.from_config(parse_config({}, stack="dev")).ephemeral is False
