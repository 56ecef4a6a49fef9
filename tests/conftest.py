"""Shared fixtures: the stacks rendered once per test session, the real way (program under mocks).

Upstream files (CRDs, chart values, the training operator's manifests, IAM policies) reach the
tests only through ``infra.upstream``: the mirror named by ``EKS_ML_PLATFORM_UPSTREAM`` (``.ci/run``
sets it), never a download (tests have no network: the download base points at a closed local
port) and never a developer's own cache (the cache is a per-session temporary folder). A test that
needs a file nobody provides is skipped with the artifact's name and both ways to provide it;
with ``EKS_ML_PLATFORM_REQUIRE_UPSTREAM=1`` (CI) it fails instead.
"""
from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# No network in tests: a download attempt goes to a closed port on this machine and fails at once.
os.environ["EKS_ML_PLATFORM_UPSTREAM_URL"] = "http://127.0.0.1:9"
os.environ["EKS_ML_PLATFORM_CACHE"] = tempfile.mkdtemp(prefix="eks-ml-platform-test-cache-")
REQUIRE_UPSTREAM = os.environ.get("EKS_ML_PLATFORM_REQUIRE_UPSTREAM", "") not in ("", "0")

from infra.upstream import ArtifactUnavailable  # noqa: E402


def _artifact_guard():
    try:
        return (yield)
    except ArtifactUnavailable as exc:
        if REQUIRE_UPSTREAM:
            raise
        pytest.skip(f"needs a pinned upstream file that is not available here: {exc}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    return (yield from _artifact_guard())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    return (yield from _artifact_guard())

#: how `python -m infra ...` reports a pinned file nobody provides (infra/upstream.py), one line on stderr
UNAVAILABLE_RE = re.compile(r"upstream artifact \S+ \(\S+\) is not available: .*")


def raise_if_artifact_unavailable(proc) -> None:
    """A CLI run that stopped on a missing pinned upstream file raises ArtifactUnavailable in the test, so the
    hooks above treat it like an in-process one: a skip naming the file, a failure under REQUIRE_UPSTREAM."""
    found = UNAVAILABLE_RE.search(proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode(errors="replace"))
    if proc.returncode != 0 and found:
        raise ArtifactUnavailable(found.group(0))


_CACHE: dict[str, Any] = {}


def render_stack(stack: str, tmp_root: Path):
    """Render a stack into tmp_root/<stack> once per session (rendering is deterministic)."""
    if stack not in _CACHE:
        from infra.preview.render import render

        _CACHE[stack] = render(stack, tmp_root / stack)
    return _CACHE[stack]


@pytest.fixture(scope="session")
def render_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("render")


@pytest.fixture(scope="session")
def dev(render_root):
    return render_stack("dev", render_root)


@pytest.fixture(scope="session")
def prod(render_root):
    return render_stack("prod", render_root)


@pytest.fixture(scope="session")
def staging(render_root):
    return render_stack("staging", render_root)


def states(result, type_: str | None = None) -> list[dict]:
    """newState of every step (of one type)."""
    out = [s["newState"] for s in result.preview["steps"]]
    return [s for s in out if type_ is None or s["type"] == type_]


def by_name(result, type_: str, name: str) -> dict:
    matches = [s for s in states(result, type_) if s["urn"].endswith(f"::{name}")]
    assert len(matches) == 1, f"{type_} {name}: {len(matches)} found"
    return matches[0]


def manifests(result, kind: str | None = None) -> list[dict]:
    return [m for _, m in result.manifests if kind is None or m["kind"] == kind]
