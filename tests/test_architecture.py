"""The shape of the code: import directions, no cycles, leaf modules, and the size limits.

Imports are read from the source (``ast``), so an import inside a function or under
``TYPE_CHECKING`` counts exactly like one at the top of a module.
"""
from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("infra", "components", "workloads", "policy")
#: The tooling: it may import the program, never the reverse.
TOOLING = ("infra.preview", "infra.check", "infra.cost", "infra.teardown", "infra.prdiff", "infra.config_docs",
           "infra.readme_sync", "infra.upstream_cli", "infra.migrate", "infra.__main__", "policy")
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 80


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((REPO / pkg).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


MODULES = _modules()


def _app_modules() -> set[str]:
    """The workload applications: exactly the Python files the workload Dockerfiles COPY into the images."""
    from components.images import context_files

    out = set()
    for dockerfile in sorted((REPO / "workloads").rglob("Dockerfile*")):
        for f in context_files(str(dockerfile.relative_to(REPO)), REPO):
            if f.endswith(".py"):
                parts = Path(f).with_suffix("").parts
                out.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return out


APPS = _app_modules()


def _resolve(target: str) -> str | None:
    """The repository module a dotted import names (``from a.b import c`` may name module a.b.c)."""
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def _imports(name: str, path: Path) -> set[str]:
    """Every module (repository or third-party, top-level name for the latter) that ``name`` imports."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found |= {f"{module}.{a.name}" for a in node.names if f"{module}.{a.name}" in MODULES}
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in MODULES.items():
        for target in _imports(name, path):
            module = _resolve(target) if target.split(".")[0] in PACKAGES else None
            if module and module != name and not name.startswith(module + "."):
                graph[name].add(module)
                # importing a.b.c runs a/__init__ and a/b/__init__ first
                parts = module.split(".")
                graph[name] |= {".".join(parts[:i]) for i in range(1, len(parts))
                                if ".".join(parts[:i]) in MODULES and not name.startswith(".".join(parts[:i]) + ".")}
    return graph


GRAPH = _graph()


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(MODULES):
        if v not in index:
            visit(v)
    return out


def _is_tooling(module: str) -> bool:
    return any(module == t or module.startswith(t + ".") for t in TOOLING)


def test_the_import_graph_is_read_from_the_code():
    # the checks below mean something only if the graph sees real edges, lazy ones included
    assert "infra.addons" in GRAPH["infra.platform"]
    assert "components.storage" in GRAPH["infra.addons"]  # imported inside a builder function
    assert "infra.context" in GRAPH["components.accelerators"]  # imported under TYPE_CHECKING


def test_no_import_cycles():
    assert _cycles(GRAPH) == []


def test_cycle_detection_finds_a_cycle():
    g = {m: set() for m in MODULES}
    first, second = sorted(MODULES)[:2]
    g[first], g[second] = {second}, {first}
    assert _cycles(g) == [sorted([first, second])]


def test_the_program_imports_no_tooling():
    program = [m for m in MODULES if not _is_tooling(m)]
    bad = {m: sorted(t for t in GRAPH[m] if _is_tooling(t)) for m in program}
    assert {m: t for m, t in bad.items() if t} == {}


def test_workload_apps_import_neither_pulumi_nor_the_program():
    # the images hold the server, the trainer and workloads/common; never a component
    assert {"workloads.sentiment.server", "workloads.training.train", "workloads.common.cpus"} <= APPS
    assert not {m for m in APPS if m.endswith(".component")}
    bad = {}
    for name in sorted(APPS):
        imported = _imports(name, MODULES[name])
        wrong = sorted(i for i in imported if i.split(".")[0] in ("pulumi", "pulumi_aws", "pulumi_kubernetes",
                                                                  "infra", "components", "policy")
                       # an app imports only what its image holds
                       or (i.startswith("workloads.") and (_resolve(i) or i) not in APPS))
        if wrong:
            bad[name] = wrong
    assert bad == {}


def test_leaf_modules_stay_leaves():
    assert GRAPH.get("infra.conventions", set()) == set()
    assert GRAPH.get("infra.context", set()) <= {"infra.config"} | {m for m in MODULES if m.startswith("infra.config.")}


def test_components_use_each_other_only_through_the_public_package():
    bad = {}
    for name in MODULES:
        if not name.startswith("components."):
            continue
        own = ".".join(name.split(".")[:2])
        other = sorted(t for t in GRAPH[name] if t.startswith("components.") and not t.startswith(own)
                       and t.count(".") > 1)
        if other:
            bad[name] = other
    assert bad == {}


def _product_files() -> list[Path]:
    return [p for p in MODULES.values()] + [REPO / "__main__.py"]


@pytest.mark.parametrize("path", _product_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_file_and_function_size_limits(path):
    text = path.read_text()
    lines = text.count("\n")
    assert lines <= MAX_FILE_LINES, f"{path.relative_to(REPO)} has {lines} lines (limit {MAX_FILE_LINES})"
    long = [f"{node.name} ({node.end_lineno - node.lineno + 1} lines, line {node.lineno})"
            for node in ast.walk(ast.parse(text))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == [], f"{path.relative_to(REPO)}: functions over {MAX_FUNCTION_LINES} lines: {long}"


KINDS = {"unit", "render", "manifests", "tooling", "workload"}


def test_tests_mirror_the_code_tree_and_declare_their_kind():
    """Each test module sits under the folder of the code it tests and says what kind of test it is."""

    tests = REPO / "tests"
    allowed_roots = {"infra", "components", "workloads", "policy", "bench", "ci"}
    bad_place, no_kind = [], []
    for path in sorted(tests.rglob("test_*.py")):
        rel = path.relative_to(tests)
        if len(rel.parts) > 1 and rel.parts[0] not in allowed_roots:
            bad_place.append(str(rel))
        # a folder under tests/ names a code folder that exists (tests/ci: the .github workflows)
        folder = REPO.joinpath(*rel.parts[:-1]) if rel.parts[0] != "ci" else REPO / ".github"
        if not folder.is_dir():
            bad_place.append(str(rel))
        marks = set(re.findall(r"pytest\.mark\.(\w+)", "".join(
            line for line in path.read_text().splitlines(True) if line.startswith("pytestmark"))))
        if not marks & KINDS:
            no_kind.append(str(rel))
    assert bad_place == [] and no_kind == []
