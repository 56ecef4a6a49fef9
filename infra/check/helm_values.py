"""Helm release values checked against each chart's own ``values.yaml`` at the pinned version.

Each key path of a release's ``values`` is looked up in the chart's ``values.yaml`` (an artifact of
:mod:`infra.upstream`); a subchart's keys (under its alias, else its name) in the subchart's
``values.yaml`` coalesced with the parent's defaults for it (its ``global`` is the parent's: allowed).
Findings: an **unknown key** (not in ``values.yaml`` nor :data:`ALLOWLIST`, the keys templates read
that ``values.yaml`` omits), with the nearest existing key as a hint; a **wrong type** (map / list /
string / bool / number, int and float alike) against the default: a ``null`` default takes anything,
``{}`` only a map, ``[]`` only a list, ``""`` any scalar; a ``null`` value (Helm: drop the default)
and ``"[secret]"`` pass. No descent below free-form maps the templates hand to ``toYaml``: empty-map
defaults, :data:`FREE_FORM_NAMES`, :data:`FREE_FORM`. A ``values.schema.json`` is applied where one is
registered (``ChartSpec.schema_key``; no pinned chart ships one). Charts or versions without pinned
values are *not checked*, never passed. Pure (no Pulumi); ``infra.upstream.UpstreamError`` propagates.
"""
from __future__ import annotations

import difflib
import fnmatch
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import yaml

__all__ = [
    "ALLOWLIST", "FREE_FORM", "FREE_FORM_NAMES", "REGISTRY", "UNPINNED", "ChartSpec", "Dep", "Finding",
    "HelmValuesReport", "NotChecked", "chart_name", "check_preview", "check_release", "compare", "kind_of",
]

RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
SECRET, UNKNOWN = "[secret]", "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # a preview's secret / unknown output
Loader = Callable[[str], str]


@dataclass(frozen=True)
class Dep:
    """A chart dependency: values under ``alias`` (else ``name``) go to chart ``name`` ``version``."""
    name: str
    version: str
    alias: str = ""

    @property
    def key(self) -> str:
        return self.alias or self.name


@dataclass(frozen=True)
class ChartSpec:
    """A chart version whose ``values.yaml`` is pinned (artifact keys of :mod:`infra.upstream`)."""
    name: str
    version: str
    values_key: str
    chart_key: str = ""          # Chart.yaml artifact: its ``dependencies`` are the subcharts
    deps: tuple[Dep, ...] = ()   # subcharts, where no Chart.yaml is pinned
    schema_key: str = ""         # values.schema.json artifact, where the chart ships one


def _norm(version: str) -> str:
    return str(version).strip().lstrip("v")


def _spec(name: str, version: str, values_key: str = "", **kw: Any) -> tuple[tuple[str, str], ChartSpec]:
    return (name, _norm(version)), ChartSpec(name, version, values_key or f"{name}/chart/values", **kw)


# (chart name, version) -> its pinned artifacts. Subcharts from Chart.yaml where it is pinned, else
# from the chart's Chart.yaml at its tag (rook-ceph v1.20.6, nvidia-device-plugin 0.18.2).
REGISTRY: dict[tuple[str, str], ChartSpec] = dict([
    _spec("karpenter", "1.14.1"), _spec("karpenter-crd", "1.14.1"), _spec("dcgm-exporter", "4.8.2"),
    _spec("rook-ceph", "v1.20.6",
          deps=(Dep("library", "0.0.1"), Dep("ceph-csi-operator", "1.0.4", "ceph-csi-operator"))),
    _spec("ceph-csi-operator", "1.0.4"), _spec("ceph-csi-drivers", "1.0.4"), _spec("kueue", "0.19.2"),
    _spec("kube-prometheus-stack", "82.18.0", chart_key="kube-prometheus-stack/chart/chart"),
    _spec("crds", "0.0.0", "kube-prometheus-stack/subchart/crds/values"), _spec("grafana", "11.3.7"),
    _spec("kube-state-metrics", "7.2.2"), _spec("prometheus-node-exporter", "4.53.0"),
    _spec("aws-load-balancer-controller", "3.5.0"), _spec("aws-efa-k8s-device-plugin", "v0.5.30"),
    _spec("nvidia-device-plugin", "0.18.2", deps=(Dep("node-feature-discovery", "0.17.3", "nfd"),)),
])

# Charts installed without pinned values: why (reported as not checked, never as passed).
UNPINNED: dict[str, str] = {
    "neuron-helm-chart": "no byte-identical values.yaml could be pinned (aws-neuron/neuron-helm-charts has no "
                         "release tags; the file at the 1.9.0 commit is known only from a stored copy)",
}

# Keys the templates read but values.yaml omits (or only comments), per chart: path ('*': any key; its subtree
# is allowed with it) -> the template line reading it. A parent's entry under a subchart's key applies to it.
ALLOWLIST: dict[str, dict[str, str]] = {
    "dcgm-exporter": {  # NVIDIA/dcgm-exporter 4.5.3-4.8.2 deployment/
        "customMetrics": "templates/metrics-configmap.yaml:9: {{- if .Values.customMetrics }}",
    },
    "ceph-csi-drivers": {  # ceph/ceph-csi-operator v1.0.4 deploy/charts/ceph-csi-drivers/
        "drivers.*.controllerPlugin.priorityClassName":
            "templates/driver.yaml:139: {{- if $driver.controllerPlugin.priorityClassName }}",
        "drivers.*.controllerPlugin.affinity": "templates/driver.yaml:142: {{- if $driver.controllerPlugin.affinity }}",
        "drivers.*.controllerPlugin.volumes": "templates/driver.yaml:148: {{- if $driver.controllerPlugin.volumes }}",
        "drivers.*.controllerPlugin.imagePullPolicy":
            "templates/driver.yaml:153: {{- if $driver.controllerPlugin.imagePullPolicy }}",
        "operatorConfig.driverSpecDefaults.controllerPlugin.priorityClassName":
            "templates/operatorConfig.yaml:141: {{- if $config.driverSpecDefaults.controllerPlugin.priorityClassName }}",
    },
    "grafana": {  # grafana-community/helm-charts grafana-11.3.7 charts/grafana/
        "persistence.storageClassName": "templates/pvc.yaml:33: {{- with .Values.persistence.storageClassName }}",
    },
}

# Paths (per chart name) whose non-empty default the templates hand to toYaml (or range over) whole:
# no descent below them. From the charts' templates, as FREE_FORM_NAMES does not cover them.
FREE_FORM: dict[str, tuple[str, ...]] = {
    "aws-load-balancer-controller": ("livenessProbe", "readinessProbe"),
    "grafana": ("grafana.ini", "deploymentStrategy", "livenessProbe", "readinessProbe",
                "verticalPodAutoscaler.maxAllowed", "verticalPodAutoscaler.minAllowed"),
    "karpenter": ("strategy",),
    "kube-prometheus-stack": ("alertmanager.config", "*.verticalPodAutoscaler.updatePolicy",
                              "kubeApiServer.serviceMonitor.selector", "kubelet.serviceMonitor.attachMetadata"),
    "nvidia-device-plugin": ("updateStrategy",),
    "prometheus-node-exporter": ("updateStrategy", "prometheus.monitor.attachMetadata",
                                 "prometheus.podMonitor.attachMetadata"),
}

# Kubernetes-typed fields: whatever the chart's default, their keys are the API's, not the chart's.
FREE_FORM_NAMES = frozenset({
    "affinity", "annotations", "containerSecurityContext", "labels", "nodeAffinity", "nodeSelector", "podAnnotations",
    "podAntiAffinity", "podLabels", "podSecurityContext", "resources", "securityContext", "tolerations",
    "topologySpreadConstraints"})


@dataclass(frozen=True)
class Finding:
    release: str   # the release's name (else its resource name)
    path: str      # dotted key path inside values
    message: str

    def __str__(self) -> str:
        return f"{self.release}: {self.path}: {self.message}"


@dataclass(frozen=True)
class NotChecked:
    release: str
    chart: str
    version: str
    reason: str
    path: str = ""  # "" for the whole release, else the subtree left unchecked

    def __str__(self) -> str:
        where = f" {self.path}" if self.path else ""
        return f"{self.release}{where}: {self.chart} {self.version} not checked: {self.reason}"


@dataclass
class HelmValuesReport:
    findings: list[Finding] = field(default_factory=list)
    not_checked: list[NotChecked] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)  # "<release>: <chart> <version>" per release checked

    @property
    def ok(self) -> bool:
        return not self.findings

    def lines(self) -> list[str]:
        return [str(f) for f in self.findings] + [str(n) for n in self.not_checked]

    def extend(self, other: "HelmValuesReport") -> None:
        self.findings += other.findings
        self.not_checked += other.not_checked
        self.checked += other.checked


# ------------------------------------------------------------------ the pure comparison
def kind_of(value: Any) -> str:
    """null / bool / number / string / map / list (YAML's kinds; int and float are both number)."""
    for kind, types in (("null", type(None)), ("bool", bool), ("number", (int, float)), ("string", str),
                        ("map", Mapping), ("list", (list, tuple))):
        if isinstance(value, types):
            return kind
    return type(value).__name__


def _type_ok(value: Any, default: Any) -> bool:
    if default is None or value is None or value in (SECRET, UNKNOWN):
        return True
    have, want = kind_of(value), kind_of(default)
    if default == "" and want == "string":
        return have in ("string", "number", "bool")
    return have == want


def _matches(path: tuple[str, ...], patterns: Iterable[str]) -> bool:
    """Does ``path`` equal a dotted pattern, or lie under one? (``*`` matches any key; a key may hold dots)."""
    pats = tuple(patterns)
    return any(fnmatch.fnmatchcase(".".join(path[:i]), pat) for i in range(1, len(path) + 1) for pat in pats)


def _under(patterns: Iterable[str], key: str) -> tuple[str, ...]:
    """The patterns below ``key``, relative to it (a parent's entries for a subchart)."""
    return tuple(p[len(key) + 1:] for p in patterns if p.startswith(key + "."))


def _flatten(tree: Any, prefix: tuple[str, ...] = ()) -> Iterable[str]:
    if isinstance(tree, Mapping):
        for k, v in tree.items():
            yield ".".join((*prefix, str(k)))
            yield from _flatten(v, (*prefix, str(k)))


def _hint(path: tuple[str, ...], siblings: Mapping[str, Any], root: Mapping[str, Any]) -> str:
    near = difflib.get_close_matches(path[-1], [str(k) for k in siblings], n=1, cutoff=0.6)
    if near:
        return ".".join((*path[:-1], near[0]))
    near = difflib.get_close_matches(".".join(path), list(_flatten(root)), n=1, cutoff=0.75)
    return near[0] if near else ""


def _short(value: Any, width: int = 40) -> str:
    return text if len(text := json.dumps(value, default=str)) <= width else text[:width - 3] + "..."


@dataclass(frozen=True)
class _Scope:
    label: str                        # "karpenter 1.14.1", "grafana 11.3.7 (subchart of ...)"
    root: Mapping[str, Any]           # the scope's whole defaults (for hints)
    allow: tuple[str, ...] = ()       # allowlist paths, relative to the scope
    free: tuple[str, ...] = ()        # free-form paths, relative to the scope
    prefix: tuple[str, ...] = ()      # where the scope sits in the release's values


def compare(values: Mapping[str, Any], defaults: Mapping[str, Any], *, label: str = "the chart's",
            allow: Iterable[str] = (), free_form: Iterable[str] = ()) -> list[tuple[str, str]]:
    """(path, message) for each key of ``values`` unknown to, or typed unlike, ``defaults``."""
    scope = _Scope(label, defaults, tuple(allow), tuple(free_form))
    return list(_walk(values, defaults, (), scope))


def _walk(values: Mapping[str, Any], defaults: Mapping[str, Any], path: tuple[str, ...],
          scope: _Scope) -> Iterable[tuple[str, str]]:
    for key, value in values.items():
        here = (*path, str(key))
        shown = ".".join((*scope.prefix, *here))
        if key not in defaults:
            if _matches(here, scope.allow):
                continue
            hint = _hint(here, defaults, scope.root)
            tail = f"; did you mean {'.'.join((*scope.prefix, hint))}?" if hint else ""
            yield shown, f"not in {scope.label} values.yaml{tail}"
            continue
        default = defaults[key]
        if not _type_ok(value, default):
            yield shown, (f"is a {kind_of(value)} ({_short(value)}) but {scope.label} values.yaml has a "
                          f"{kind_of(default)} ({_short(default)})")
            continue
        if (isinstance(value, Mapping) and isinstance(default, Mapping) and default
                and str(key) not in FREE_FORM_NAMES and not _matches(here, scope.free)):
            yield from _walk(value, default, here, scope)


# ------------------------------------------------------------------ charts, subcharts, schema
def chart_name(chart: str) -> str:
    """``oci://registry/path/name`` or ``repo/name`` -> ``name``."""
    return str(chart).rstrip("/").rsplit("/", 1)[-1]


def _yaml(text: str) -> Any:
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _deps(spec: ChartSpec, load: Loader) -> tuple[Dep, ...]:
    if not spec.chart_key:
        return spec.deps
    chart = _yaml(load(spec.chart_key)) or {}
    return tuple(Dep(str(d["name"]), str(d.get("version", "")), str(d.get("alias") or ""))
                 for d in chart.get("dependencies") or [])


def _merge(base: Any, over: Any) -> Any:
    """Helm's coalescing of a parent's values for a subchart over the subchart's own."""
    if isinstance(base, Mapping) and isinstance(over, Mapping):
        out = dict(base)
        for k, v in over.items():
            out[k] = _merge(base.get(k), v) if k in base else v
        return out
    return over if over is not None else base


def _schema_findings(spec: ChartSpec, merged: Mapping[str, Any], load: Loader, prefix: str) -> list[tuple[str, str]]:
    """The chart's values.schema.json (if one is pinned) against its coalesced values, as Helm does."""
    if not spec.schema_key:
        return []
    import jsonschema

    errors = jsonschema.Draft7Validator(json.loads(load(spec.schema_key))).iter_errors(merged)
    return [(".".join(x for x in (prefix, *map(str, e.absolute_path)) if x) or "(values)",
             f"values.schema.json of {spec.name} {spec.version}: {e.message}") for e in errors]


@dataclass(frozen=True)
class _Ctx:
    """One release's check: its name, the artifact loader and the chart registry."""
    release: str
    load: Loader
    registry: Mapping[tuple[str, str], ChartSpec]


@dataclass(frozen=True)
class _Parent:
    """What a parent chart hands a subchart: its defaults and table entries under the subchart's key."""
    spec: ChartSpec
    prefix: tuple[str, ...]
    defaults: Mapping[str, Any]
    allow: tuple[str, ...] = ()
    free: tuple[str, ...] = ()


def _subcharts(spec: ChartSpec, own: dict[str, Any], defaults: Mapping[str, Any], scope: _Scope,
               ctx: _Ctx) -> HelmValuesReport:
    """Take each subchart's values out of ``own`` and check them against that subchart."""
    report = HelmValuesReport()
    for dep in _deps(spec, ctx.load):
        if dep.key not in own:
            continue
        values, where = own.pop(dep.key), ".".join((*scope.prefix, dep.key))
        if values is None or values in (SECRET, UNKNOWN):
            continue
        if not isinstance(values, Mapping):
            report.findings.append(Finding(ctx.release, where,
                                           f"is a {kind_of(values)}; subchart {dep.name} takes a map"))
            continue
        sub = ctx.registry.get((dep.name, _norm(dep.version)))
        if sub is None:
            report.not_checked.append(NotChecked(ctx.release, dep.name, dep.version, "no pinned values.yaml for this "
                                                 f"subchart of {spec.name} {spec.version}", where))
            continue
        given = defaults.get(dep.key)
        parent = _Parent(spec, (*scope.prefix, dep.key), given if isinstance(given, Mapping) else {},
                         _under(scope.allow, dep.key), _under(scope.free, dep.key))
        report.extend(_check_chart(sub, values, ctx, parent))
    return report


def _check_chart(spec: ChartSpec, values: Mapping[str, Any], ctx: _Ctx,
                 parent: _Parent | None = None) -> HelmValuesReport:
    defaults, own = _yaml(ctx.load(spec.values_key)) or {}, dict(values)
    label = f"{spec.name} {spec.version}"
    if parent is not None:
        defaults = _merge(defaults, parent.defaults)
        own.pop("global", None)  # a subchart's global: Helm shares the parent's, whatever the subchart lists
        label += f" (subchart of {parent.spec.name} {parent.spec.version})"
    scope = _Scope(label, defaults, (*ALLOWLIST.get(spec.name, {}), *(parent.allow if parent else ())),
                   (*FREE_FORM.get(spec.name, ()), *(parent.free if parent else ())), parent.prefix if parent else ())
    report = _subcharts(spec, own, defaults, scope, ctx)
    found = [*_walk(own, defaults, (), scope),
             *_schema_findings(spec, _merge(defaults, values), ctx.load, ".".join(scope.prefix))]
    report.findings += [Finding(ctx.release, path, message) for path, message in found]
    return report


def check_release(release: str, chart: str, version: str, values: Mapping[str, Any] | None, *,
                  registry: Mapping[tuple[str, str], ChartSpec] | None = None,
                  load: Loader | None = None) -> HelmValuesReport:
    """Check one release's values (``chart``: a name, ``repo/name`` or an ``oci://`` reference)."""
    from infra import upstream

    registry = REGISTRY if registry is None else registry
    load = upstream.read_text if load is None else load
    name = chart_name(chart)
    spec = registry.get((name, _norm(version)))
    if spec is None:
        pinned = sorted(s.version for (n, _), s in registry.items() if n == name)
        reason = UNPINNED.get(name) or ("no pinned values.yaml for this version (pinned: " + ", ".join(pinned) + ")"
                                        if pinned else "no pinned values.yaml for this chart")
        return HelmValuesReport(not_checked=[NotChecked(release, chart, str(version), reason)])
    if values in (SECRET, UNKNOWN):
        return HelmValuesReport(not_checked=[NotChecked(release, chart, str(version), "values unknown in the preview")])
    if values is not None and not isinstance(values, Mapping):
        return HelmValuesReport(findings=[Finding(release, "(values)", f"is a {kind_of(values)}, not a map")])
    report = _check_chart(spec, values or {}, _Ctx(release, load, registry))
    report.checked.append(f"{release}: {spec.name} {spec.version}")
    return report


def helm_releases(preview: Mapping[str, Any]) -> Iterable[tuple[str, Mapping[str, Any]]]:
    """(release name, inputs) of every Helm release step of a preview.json."""
    for step in preview.get("steps") or []:
        state = step.get("newState") or {}
        if state.get("type") != RELEASE_TYPE:
            continue
        inputs = state.get("inputs") or {}
        yield str(inputs.get("name") or str(state.get("urn") or step.get("urn") or "").rsplit("::", 1)[-1]), inputs


def check_preview(preview: Mapping[str, Any], *, registry: Mapping[tuple[str, str], ChartSpec] | None = None,
                  load: Loader | None = None) -> HelmValuesReport:
    """Check the values of every Helm release of a rendered ``preview.json``."""
    report = HelmValuesReport()
    for release, inputs in helm_releases(preview):
        report.extend(check_release(release, str(inputs.get("chart") or ""), str(inputs.get("version") or ""),
                                    inputs.get("values"), registry=registry, load=load))
    return report
