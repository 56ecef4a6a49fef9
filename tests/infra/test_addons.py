"""The add-on registry (infra/addons.py): its graph, its order, its requirement errors, and the
README diagram that is generated from it."""
from __future__ import annotations

import ast
import dataclasses
import graphlib
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from infra import addons
from infra.addons import ADDONS, Addon, build_order, graph, mermaid, requirement_problems
from infra.config import ConfigError, parse_config
from infra.context import PlatformContext

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]

# The whole graph, spelled out: a change to what an add-on needs must change this table on purpose.
EXPECTED_EDGES = {
    "storage": (),
    "monitoring": ("storage",),
    "priority": (),
    "karpenter": ("monitoring",),
    "accelerators": ("karpenter", "monitoring"),
    "training_operator": (),
    "images": (),
    "workload_storage": ("storage",),
    "kueue": ("karpenter", "workload_storage", "training_operator", "monitoring"),
    "training": ("workload_storage", "training_operator", "priority", "images", "monitoring", "kueue"),
    "load_balancer": ("monitoring",),
    "serving": ("workload_storage", "priority", "karpenter", "images", "load_balancer", "monitoring"),
}


def test_graph_edges(capsys):
    g = graph()
    for key, deps in g.items():
        print(f"{key} <- {', '.join(deps) or '(cluster)'}")
    assert g == EXPECTED_EDGES
    assert "serving <- workload_storage, priority, karpenter, images, load_balancer, monitoring" in capsys.readouterr().out


def test_build_order_puts_every_dependency_first():
    order = build_order()
    assert sorted(order) == sorted(EXPECTED_EDGES)
    for key, deps in EXPECTED_EDGES.items():
        for dep in deps:
            assert order.index(dep) < order.index(key), f"{dep} must be built before {key}"


def test_a_cycle_or_an_unknown_dependency_is_refused():
    def noop(env, built):  # never called
        raise AssertionError

    a = Addon("a", "a.enabled", "x:A", lambda c: True, noop, after=("b",))
    b = Addon("b", "b.enabled", "x:B", lambda c: True, noop, after=("a",))
    with pytest.raises(graphlib.CycleError):
        build_order((a, b))
    with pytest.raises(ValueError, match="name no add-on: c"):
        build_order((Addon("a", "a.enabled", "x:A", lambda c: True, noop, after=("c",)),))


@pytest.mark.parametrize("addon", ADDONS, ids=lambda a: a.key)
def test_each_addon_names_a_real_component_class(addon):
    module, cls = addon.component.split(":")
    component = getattr(importlib.import_module(module), cls)
    assert isinstance(component, type)


def _resolve(annotation: object, module: str) -> object:
    """A class from its annotation (a string under ``from __future__ import annotations``), looked up in ``module``."""
    return getattr(importlib.import_module(module), annotation.strip("'\"")) if isinstance(annotation, str) else annotation


@pytest.mark.parametrize("addon", ADDONS, ids=lambda a: a.key)
def test_each_component_takes_name_args_opts_and_no_whole_config(addon):
    """One component style: ``Component(name, args, opts)``; ``args`` is a frozen dataclass whose config
    part is a settings slice, never the whole PlatformConfig (nor a PlatformContext that carries one)."""
    module, cls = addon.component.split(":")
    component = getattr(importlib.import_module(module), cls)
    params = inspect.signature(component.__init__).parameters
    assert list(params) == ["self", "name", "args", "opts"], f"{addon.component}: {list(params)}"
    args_cls = _resolve(params["args"].annotation, component.__module__)
    assert dataclasses.is_dataclass(args_cls) and args_cls.__dataclass_params__.frozen, args_cls
    fields = {f.name: str(f.type) for f in dataclasses.fields(args_cls)}
    assert not [n for n, t in fields.items() if "PlatformConfig" in t], f"{args_cls.__name__} takes the whole config"
    for name, t in fields.items():
        if t.endswith("Settings"):  # every slice is built from the config by a pure classmethod
            slice_cls = _resolve(t, args_cls.__module__)
            assert callable(getattr(slice_cls, "from_config", None)), f"{args_cls.__name__}.{name}: {t} has no from_config"


def test_the_context_carries_no_config():
    assert not [f.name for f in dataclasses.fields(PlatformContext) if "PlatformConfig" in str(f.type)]
    assert "infra.config" not in {n.module for n in ast.walk(ast.parse((REPO / "infra/context.py").read_text()))
                                  if isinstance(n, ast.ImportFrom)}


def test_a_slice_is_built_from_the_config_and_follows_it():
    """The settings slices read the stack config: change a value, the slice changes with it."""
    from components.karpenter import KarpenterSettings
    from components.storage import StorageSettings
    from workloads.sentiment.settings import ServingSettings

    admins = {"admins": [{"principalArn": "arn:aws:iam::123456789012:role/admin"}]}
    dev = parse_config({}, stack="dev")
    prod = parse_config({"environment": "prod", "cluster": admins}, stack="prod")
    assert (StorageSettings.from_config(dev).replicas, StorageSettings.from_config(prod).replicas) == (2, 3)
    assert StorageSettings.from_config(prod).prod and not StorageSettings.from_config(dev).prod
    custom = parse_config({"cluster": {"name": "ml-x"}, "serving": {"replicas": 4}}, stack="dev")
    assert KarpenterSettings.from_config(custom).cluster_name == "ml-x"
    assert [p.name for p in KarpenterSettings.from_config(custom).pools] == [p.name for p in custom.pools]
    assert ServingSettings.from_config(custom).serving.replicas == 4


NO_WORKLOADS = {"training": {"enabled": False}, "serving": {"enabled": False}}
NO_KARPENTER = {"karpenter": {"enabled": False}, "rookCeph": {"enabled": False}}  # Ceph without Karpenter needs 3 system nodes


@pytest.mark.parametrize("plugin", ["nvidiaDevicePlugin", "dcgmExporter", "neuron"])
def test_a_device_plugin_without_karpenter_is_a_config_error_naming_both_keys(plugin):
    cfg = parse_config({**NO_WORKLOADS, "addons": {**NO_KARPENTER, plugin: {"enabled": True}}},
                       stack="dev")
    problems = requirement_problems(cfg)
    assert len(problems) == 1
    assert f"addons.{plugin}.enabled" in problems[0] and "addons.karpenter.enabled" in problems[0]
    with pytest.raises(ConfigError):
        addons.check_requirements(cfg)


def test_device_plugins_left_at_their_defaults_follow_karpenter():
    cfg = parse_config({**NO_WORKLOADS, "addons": NO_KARPENTER}, stack="dev")
    assert requirement_problems(cfg) == []
    assert not next(a for a in ADDONS if a.key == "accelerators").enabled(cfg)
    on = parse_config(NO_WORKLOADS, stack="dev")
    assert requirement_problems(on) == [] and next(a for a in ADDONS if a.key == "accelerators").enabled(on)


def test_the_render_refuses_a_disabled_requirement_with_one_line_and_creates_nothing(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.dev.yaml").write_text(
        "config:\n  aws:region: us-west-2\n  eks-ml-platform:environment: dev\n"
        "  eks-ml-platform:training:\n    enabled: false\n  eks-ml-platform:serving:\n    enabled: false\n"
        "  eks-ml-platform:addons:\n    karpenter:\n      enabled: false\n    rookCeph:\n      enabled: false\n"
        "    nvidiaDevicePlugin:\n      enabled: true\n")
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "infra", "render", "--stack", "dev", "--project-dir", str(tmp_path),
                        "--out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "addons.nvidiaDevicePlugin.enabled" in r.stderr and "addons.karpenter.enabled" in r.stderr
    assert "Traceback" not in r.stderr
    assert not out.exists()


def test_platform_init_has_no_per_addon_code():
    tree = ast.parse((REPO / "infra" / "platform.py").read_text())
    platform = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Platform")
    init = next(n for n in platform.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    names = {n.id for n in ast.walk(init) if isinstance(n, ast.Name)} | \
            {n.attr for n in ast.walk(init) if isinstance(n, ast.Attribute)}
    strings = {n.value for n in ast.walk(init) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    keys = {a.key for a in ADDONS}
    classes = {a.component.split(":")[1] for a in ADDONS}
    assert not (names | strings) & (keys | classes), "Platform.__init__ names an add-on: put it in infra/addons.py"
    imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert not [n for n in imports if isinstance(n, ast.ImportFrom) and (n.module or "").startswith(("components",
                                                                                                       "workloads"))]


def test_readme_architecture_embeds_the_generated_graph():
    readme = (REPO / "README.md").read_text()
    assert f"```mermaid\n{mermaid()}```" in readme, \
        "README's add-on graph is stale: paste infra.addons.mermaid() into it (python -m infra.addons)"
