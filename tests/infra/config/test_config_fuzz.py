"""No input crashes the config loader: a deterministic fuzz of the shipped stacks, and hostile stack files.

Each mutation replaces one value (or one whole section) of the dev or prod stack with a hostile
value. Every outcome must be a valid config or a ConfigError whose every line is short, printable,
and names a key; never another exception.
"""
from __future__ import annotations

import copy
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from infra.config import PROJECT, ConfigError, from_flat, merged_stack_config
from infra.config.base import MAX_PROBLEM_CHARS

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
HOSTILE: tuple[Any, ...] = (
    10**400, -1, 0, 2**63, 1.5, float("nan"), float("inf"), True, None, "", "x" * 5000, "\ud800", "ten",
    "1" * 400, "9" * 30 + "Gi", "-5", "1e400", [], {}, [1, 2], {"a": 1}, "\n\t\x00", "M6I", "bad key!",
)


def _paths(obj: Any, path: tuple = ()) -> Iterator[tuple]:
    """Every path into ``obj`` (containers included, deepest first)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, path + (i,))
    yield path


def _set(obj: Any, path: tuple, value: Any) -> None:
    for p in path[:-1]:
        obj = obj[p]
    obj[path[-1]] = value


def mutations() -> list[tuple[str, str, tuple, Any]]:
    out = []
    for stack in ("dev", "prod"):
        flat = merged_stack_config(stack, REPO)
        for key in sorted(k for k in flat if k.startswith(f"{PROJECT}:")):
            for path in _paths(flat[key]):
                out += [(stack, key, path, value) for value in HOSTILE]
    return out


MUTATIONS = mutations()


def _apply(stack: str, key: str, path: tuple, value: Any) -> dict[str, Any]:
    flat = copy.deepcopy(merged_stack_config(stack, REPO))
    if path:
        _set(flat[key], path, copy.deepcopy(value))
    else:
        flat[key] = copy.deepcopy(value)
    return flat


def test_the_fuzz_is_large_and_deterministic():
    assert len(MUTATIONS) >= 500
    assert [repr(m) for m in mutations()] == [repr(m) for m in MUTATIONS]  # repr: nan != nan


def test_no_mutation_crashes_and_every_refusal_names_a_key():
    crashes, bad_lines, accepted = [], [], 0
    for stack, key, path, value in MUTATIONS:
        flat = _apply(stack, key, path, value)
        try:
            from_flat(flat, stack=stack)
            accepted += 1
        except ConfigError as exc:
            assert exc.problems
            for line in exc.problems:
                if ("\n" in line or len(line) > MAX_PROBLEM_CHARS + 60 or not line.isprintable()
                        or not line.startswith(f"{PROJECT}:")):
                    bad_lines.append((key, path, line[:120]))
        except Exception as exc:  # noqa: BLE001 - the point: nothing else may escape
            crashes.append((stack, key, path, repr(value)[:40], f"{type(exc).__name__}: {exc}"[:200]))
    assert crashes == []
    assert bad_lines == []
    assert 0 < accepted < len(MUTATIONS) // 5  # most hostile values are refused; harmless ones load


@pytest.mark.parametrize("value, expected", [
    ({"training": {"workers": True}}, "training.workers: True is a boolean"),
    ({"protect": 0}, "protect: 0 is a number; use true or false"),
    ({"training": {"workers": 10**6}}, "training.workers: 1000000 workers is more than 256"),
    ({"cluster": {"version": "\ud800"}}, "cluster.version: contains a character that is not valid Unicode"),
    ({"tags": {"team": "a\nb"}}, "holds '\\n'"),
    ({"cluster": {"systemNodes": {"instanceTypes": ["M6I.large"]}}}, "families are lower case: m6i"),
    ({"cluster": {"systemNodes": {"instanceTypes": ["m6i.lage"]}}}, "'lage' is not an EC2 instance size"),
    ({"nodePools": [{"name": "cpu", "instanceFamilies": ["m6i.large"], "limits": {"cpu": 10}}]},
     "'m6i.large' is an instance type; list its family (m6i)"),
    ({"addons": {"karpenter": {"version": "latest"}}}, "addons.karpenter.version: 'latest' is not a chart version"),
    ({"vpc": {"cidr": "100.64.0.0/16"}}, "is not a private range"),
    ({"training": {"schedule": "0 3 * * *", "timeZone": "Mars/Olympus"}}, "is not an IANA time zone"),
])
def test_specific_refusals_name_the_key(value, expected):
    flat = copy.deepcopy(merged_stack_config("dev", REPO))
    for k, v in value.items():
        base = flat.get(f"{PROJECT}:{k}")
        flat[f"{PROJECT}:{k}"] = {**base, **v} if isinstance(base, dict) and isinstance(v, dict) else v
    with pytest.raises(ConfigError) as exc:
        from_flat(flat, stack="dev")
    assert any(expected in line for line in exc.value.problems), exc.value.problems


HOSTILE_FILES = {
    "list": "- a\n- b\n",
    "scalar": "just text\n",
    "config-list": "config: [1, 2]\n",
    "int-key": "config:\n  1: x\n",
    "duplicate": "config:\n  aws:region: us-west-2\n  aws:region: eu-west-1\n",
    "alias-bomb": "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                  "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                  "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                  "config:\n  eks-ml-platform:tags: *f\n",
    "huge-int": "config:\n  eks-ml-platform:training:\n    workers: " + "9" * 5000 + "\n",
    "bad-yaml": "config:\n  a: [unclosed\n",
    "deep": "config:\n  eks-ml-platform:tags: " + "[" * 60 + "]" * 60 + "\n",
    "surrogate-bytes": b"config:\n  eks-ml-platform:environment: \xed\xa0\x80\n",
}


def test_the_alias_bomb_is_refused_in_well_under_a_second_without_expanding():
    from infra.config.input import StackFileError, load_stack_text

    start = time.perf_counter()
    with pytest.raises(StackFileError) as exc:
        load_stack_text(HOSTILE_FILES["alias-bomb"], "Pulumi.dev.yaml")
    assert time.perf_counter() - start < 0.5
    assert "aliases" in str(exc.value) and len(str(exc.value)) < 200


@pytest.mark.parametrize("name", sorted(HOSTILE_FILES))
def test_a_hostile_stack_file_is_refused_by_the_cli_in_one_short_message(tmp_path, name):
    (tmp_path / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
    content = HOSTILE_FILES[name]
    target = tmp_path / "Pulumi.dev.yaml"
    target.write_bytes(content if isinstance(content, bytes) else content.encode())
    start = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "infra", "render", "--stack", "dev", "--project-dir", str(tmp_path),
                        "--out", str(tmp_path / "out")], cwd=REPO, capture_output=True, timeout=60)
    elapsed = time.perf_counter() - start
    assert r.returncode == 2, r.stderr[-2000:]
    assert b"Traceback" not in r.stderr
    assert len(r.stdout) + len(r.stderr) < 1024, r.stderr[:300]
    assert not (tmp_path / "out").exists()
    if name == "alias-bomb":
        assert elapsed < 10 and b"aliases" in r.stderr  # refused before any expansion (the CLI's start-up dominates)


def test_the_readme_quotes_the_fuzz_size():
    readme = (REPO / "README.md").read_text()
    assert f"{len(MUTATIONS):,} mutations" in readme
