"""Shared fixtures: the stacks rendered once per test session, the real way (program under mocks)."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
CRDS = REPO.parent / "shared" / "crds"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

_CACHE: dict[str, Any] = {}


def render_stack(stack: str, tmp_root: Path):
    """Render a stack into tmp_root/<stack> once per session (rendering is deterministic)."""
    if stack not in _CACHE:
        from infra.render import render

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
