"""The workload images: an ECR repository and a ``docker-build`` image build per image the stack runs,
or the prebuilt references of ``images.*`` when ``images.build`` is false.

For each needed image (``infra.config.needed_images``: the CPU trainer for data prep and CPU training,
the GPU trainer for GPU training, the sentiment server for CPU/CUDA serving or its Neuron variants for
inf1 (torch-neuron) and inf2 (torch-neuronx)) it creates:

- ``aws.ecr.Repository`` ``<cluster>/<image>``: immutable tags, scan on push, KMS encryption (the
  AWS-managed key); ``force_delete`` only on an ephemeral stack, so a teardown never strands images
  and a kept stack never loses them to a destroy;
- ``aws.ecr.LifecyclePolicy``: keep the last ``images.keepLast`` images;
- ``pulumi_docker_build.Image``: context the repository root, ``linux/amd64``, pushed as
  ``<repositoryUrl>:<content hash>``. The content hash covers the Dockerfile, every file it COPYs
  from the context and the build arguments (sorted, sha256), so it is deterministic, independent of
  mtimes, and changes exactly when the image's inputs do.

Outputs: ``refs[key]``, the image by digest (``<repositoryUrl>@sha256:...``). The workloads run
these, so a rebuild (a new digest) rolls the pods and an unchanged image changes nothing.
Nothing here waits for the cluster: repositories and builds run in parallel with it.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

import pulumi
import pulumi_aws as aws

from infra.config import PlatformConfig, needed_images

REPO_ROOT = Path(__file__).resolve().parents[1]
CONTEXT = "."  # the build context, relative to the Pulumi project directory (the repository root)
PLATFORMS = ("linux/amd64",)
HASH_CHARS = 20
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
TORCH_PYPI_INDEX = "https://pypi.org/simple"  # torch's Linux x86_64 wheels on PyPI are the CUDA build


@dataclass(frozen=True)
class ImageBuild:
    """How one image is built (pure data)."""

    key: str  # config key (infra.config.IMAGE_KEYS)
    image: str  # repository name under the cluster's prefix
    dockerfile: str  # relative to the repository root
    build_args: Mapping[str, str] = field(default_factory=dict)


def image_builds(cfg: PlatformConfig) -> dict[str, ImageBuild]:
    """Every image this stack can build, keyed by config key; the server's torch follows the serving device."""
    server_index = TORCH_CPU_INDEX if cfg.serving.device == "cpu" else TORCH_PYPI_INDEX
    return {
        "trainer": ImageBuild("trainer", "trainer", "workloads/training/Dockerfile",
                              {"TORCH_INDEX_URL": TORCH_CPU_INDEX}),
        "trainerGpu": ImageBuild("trainerGpu", "trainer-gpu", "workloads/training/Dockerfile.gpu",
                                 {"TORCH_INDEX_URL": TORCH_PYPI_INDEX}),
        "server": ImageBuild("server", "sentiment", "workloads/sentiment/Dockerfile",
                             {"TORCH_INDEX_URL": server_index}),
        "serverNeuron": ImageBuild("serverNeuron", "sentiment-neuron", "workloads/sentiment/Dockerfile.neuron", {}),
        "serverNeuronx": ImageBuild("serverNeuronx", "sentiment-neuronx", "workloads/sentiment/Dockerfile.neuronx", {}),
    }


# ---------------------------------------------------------------- the content hash
def _instructions(text: str) -> list[str]:
    """Dockerfile instructions with line continuations joined and comments dropped."""
    out, cur = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not cur and (not stripped or stripped.startswith("#")):
            continue
        if cur and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            cur += stripped[:-1] + " "
            continue
        out.append(cur + stripped)
        cur = ""
    if cur.strip():
        out.append(cur)
    return out


def copied_sources(dockerfile_text: str) -> list[str]:
    """The context paths a Dockerfile COPYs or ADDs (``--from=`` stages excluded)."""
    sources: list[str] = []
    for ins in _instructions(dockerfile_text):
        m = re.match(r"^(COPY|ADD)\s+(.*)$", ins, flags=re.I)
        if not m:
            continue
        words = m.group(2).split()
        if any(w.startswith("--from") for w in words):
            continue
        words = [w for w in words if not w.startswith("--")]
        if words and words[0].startswith("["):  # JSON form
            words = json.loads(" ".join(words))
        sources += words[:-1]  # the last one is the destination
    return sources


def context_files(dockerfile: str, root: Path = REPO_ROOT) -> list[str]:
    """The Dockerfile and every file it copies from the context, sorted, relative to ``root``."""
    files = {dockerfile}
    for src in copied_sources((root / dockerfile).read_text()):
        matches = sorted(root.glob(src)) if any(c in src for c in "*?[") else [root / src]
        for path in matches:
            if path.is_dir():
                files.update(str(p.relative_to(root)) for p in path.rglob("*")
                             if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
            elif path.is_file():
                files.add(str(path.relative_to(root)))
            else:
                raise FileNotFoundError(f"{dockerfile} copies {src}, which is not in the build context")
    return sorted(files)


def content_hash(b: ImageBuild, root: Path = REPO_ROOT, files: Optional[list[str]] = None) -> str:
    """sha256 over (path, content) of the image's context files and its build arguments (first HASH_CHARS hex)."""
    h = hashlib.sha256()
    for rel in files if files is not None else context_files(b.dockerfile, root):
        data = (root / rel).read_bytes()
        h.update(f"{rel}\0{len(data)}\0".encode())
        h.update(data)
    h.update(json.dumps({"buildArgs": dict(b.build_args), "platforms": list(PLATFORMS)}, sort_keys=True).encode())
    return h.hexdigest()[:HASH_CHARS]


def lifecycle_policy(keep_last: int) -> str:
    """The ECR lifecycle policy: expire all but the newest ``keep_last`` images (JSON, sorted keys)."""
    return json.dumps({"rules": [{
        "rulePriority": 1,
        "description": f"keep the last {keep_last} images",
        "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep_last},
        "action": {"type": "expire"},
    }]}, sort_keys=True)


# ---------------------------------------------------------------- settings slice
@dataclass(frozen=True)
class ImagesSettings:
    build: bool
    cluster_name: str
    ephemeral: bool
    keep_last: int
    needed: tuple[str, ...]
    builds: Mapping[str, ImageBuild]
    prebuilt: Mapping[str, str]  # config key -> reference (build false)

    @classmethod
    def from_config(cls, cfg: PlatformConfig) -> "ImagesSettings":
        needed = tuple(needed_images(cfg))
        im = cfg.images
        return cls(build=im.build, cluster_name=cfg.cluster_name, ephemeral=cfg.ephemeral, keep_last=im.keep_last,
                   needed=needed, builds={k: v for k, v in image_builds(cfg).items() if k in needed},
                   prebuilt={k: im.ref(k) for k in needed if not im.build and im.ref(k) is not None})


@dataclass(frozen=True)
class WorkloadImagesArgs:
    settings: ImagesSettings
    root: Path = REPO_ROOT
    """Where the context files are read for the content hash (the repository root)."""


class WorkloadImages(pulumi.ComponentResource):
    """ECR repositories and image builds for the workload images (see the module docstring)."""

    refs: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: WorkloadImagesArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("eks-ml-platform:images:WorkloadImages", name, None, opts)
        s = args.settings
        self.refs = {}
        self.repositories: dict[str, aws.ecr.Repository] = {}
        self.images: dict[str, Any] = {}
        child = pulumi.ResourceOptions(parent=self)
        if not s.build:
            self.refs = {k: pulumi.Output.from_input(v) for k, v in s.prebuilt.items()}
        else:
            import pulumi_docker_build as docker_build

            for key in s.needed:
                b = s.builds[key]
                suffix = b.image
                repo = aws.ecr.Repository(
                    f"{name}-{suffix}", name=f"{s.cluster_name}/{b.image}", image_tag_mutability="IMMUTABLE",
                    image_scanning_configuration={"scan_on_push": True},
                    encryption_configurations=[{"encryption_type": "KMS"}], force_delete=s.ephemeral, opts=child)
                aws.ecr.LifecyclePolicy(f"{name}-{suffix}-lifecycle", repository=repo.name,
                                        policy=lifecycle_policy(s.keep_last), opts=child)
                token = aws.ecr.get_authorization_token_output(
                    registry_id=repo.registry_id, opts=pulumi.InvokeOutputOptions(parent=self))
                tag = content_hash(b, args.root)
                image = docker_build.Image(
                    f"{name}-{suffix}-image",
                    context={"location": CONTEXT},
                    dockerfile={"location": b.dockerfile},
                    platforms=list(PLATFORMS),
                    build_args=dict(b.build_args),
                    push=True,
                    # `pulumi preview` (PR previews) shows the plan without building the CUDA/Neuron images
                    build_on_preview=False,
                    tags=[repo.repository_url.apply(lambda url, t=tag: f"{url}:{t}")],
                    registries=[{
                        "address": repo.repository_url.apply(lambda url: url.split("/", 1)[0]),
                        "username": token.user_name,
                        "password": pulumi.Output.secret(token.password),
                    }],
                    opts=child)
                self.repositories[key] = repo
                self.images[key] = image
                self.refs[key] = pulumi.Output.all(repo.repository_url, image.digest).apply(
                    lambda a: f"{a[0]}@{a[1]}")
        self.register_outputs({**self.refs})
