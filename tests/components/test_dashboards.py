"""Every Grafana dashboard parses, and every PromQL expression in the dashboards and the alert rules
uses only metric names that some exporter in the platform emits.

The names come from the list kept next to each exporter's config:
- the trainer ``workloads/training/metrics.py: METRIC_NAMES`` and the sentiment server
  ``workloads/sentiment/metrics.py: METRIC_NAMES``;
- DCGM and neuron-monitor ``components/accelerators.py: DCGM_METRICS, NEURON_METRICS``;
- Karpenter ``components/karpenter.py: KARPENTER_METRICS``;
- Ceph ``components/storage.py: CEPH_METRICS``;
- kube-state-metrics, the training operator and Prometheus' own series
  ``components/monitoring.py: KUBE_STATE_METRICS, TRAINING_OPERATOR_METRICS, PROMETHEUS_SYNTHETIC_METRICS``;
- Kueue ``components/kueue/values.py: KUEUE_METRICS``.
"""
from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any, Iterator

import pytest

from components.monitoring_settings import MonitoringSettings

pytestmark = pytest.mark.unit

DASHBOARDS = Path(__file__).resolve().parents[2] / "dashboards"

METRIC_LISTS = (
    ("workloads.training.metrics", "METRIC_NAMES"),
    ("workloads.sentiment.metrics", "METRIC_NAMES"),
    ("components.accelerators", "DCGM_METRICS"),
    ("components.accelerators", "NEURON_METRICS"),
    ("components.karpenter", "KARPENTER_METRICS"),
    ("components.storage", "CEPH_METRICS"),
    ("components.monitoring", "KUBE_STATE_METRICS"),
    ("components.monitoring", "TRAINING_OPERATOR_METRICS"),
    ("components.monitoring", "PROMETHEUS_SYNTHETIC_METRICS"),
    ("components.kueue", "KUEUE_METRICS"),
)

# ------------------------------------------------------------------------------ PromQL names
_TOKEN = re.compile(r"""
    (?P<str>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
  | (?P<var>\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*|\[\[[^\]]*\]\])      # Grafana variables
  | (?P<num>0x[0-9a-fA-F]+|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(?:ms|[smhdwy])*)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<open>[({\[])
  | (?P<close>[)}\]])
  | (?P<space>\s+)
  | (?P<other>.)
""", re.VERBOSE)
# keywords that take a parenthesised list of label names
_LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
# aggregation operators may be followed by `by (...)`/`without (...)` instead of their argument
_AGGREGATIONS = {"sum", "avg", "min", "max", "count", "group", "stddev", "stdvar", "topk", "bottomk", "quantile",
                 "count_values", "limitk", "limit_ratio"}
_KEYWORDS = _LABEL_LISTS | _AGGREGATIONS | {"bool", "and", "or", "unless", "offset", "atan2", "inf", "nan", "start", "end"}
_PAIRS = {"(": ")", "{": "}", "[": "]"}


def _tokens(expr: str) -> list[tuple[str, str]]:
    return [(m.lastgroup, m.group()) for m in _TOKEN.finditer(expr) if m.lastgroup != "space"]


def _skip_group(toks: list[tuple[str, str]], i: int) -> int:
    """``toks[i]`` opens a group: the index just past its matching close."""
    opener = toks[i][1]
    depth = 0
    while i < len(toks):
        kind, text = toks[i]
        if kind == "open" and text == opener:
            depth += 1
        elif kind == "close" and text == _PAIRS[opener]:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError(f"unbalanced {opener!r}")


def metric_names(expr: str) -> set[str]:
    """Metric names in one PromQL expression: identifiers that are not functions, keywords, label
    names (in ``{...}``, ``by (...)``, ``on (...)``...), strings, durations or Grafana variables."""
    toks = _tokens(expr)
    names, i = set(), 0
    while i < len(toks):
        kind, text = toks[i]
        nxt = toks[i + 1] if i + 1 < len(toks) else ("", "")
        if kind == "open" and text in "{[":
            i = _skip_group(toks, i)  # label matchers, ranges and subqueries
            continue
        if kind == "ident":
            if text in _LABEL_LISTS and nxt == ("open", "("):
                i = _skip_group(toks, i + 1)
                continue
            if nxt == ("open", "(") or text in _KEYWORDS:
                i += 1  # a function or aggregation (its arguments follow), or a keyword
                continue
            names.add(text)
        i += 1
    return names


def grafana_query_exprs(query: str) -> list[str]:
    """PromQL inside a Grafana template-variable query (label_values, query_result, or plain PromQL)."""
    q = query.strip()
    m = re.fullmatch(r"label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)", q, re.S)
    if m:
        return [m.group(1)]
    if re.fullmatch(r"label_values\(\s*[A-Za-z_][A-Za-z0-9_]*\s*\)|label_names\(\s*\)|metrics\(.*\)", q, re.S):
        return []
    m = re.fullmatch(r"query_result\((.*)\)", q, re.S)
    return [m.group(1)] if m else [q]


def is_known(name: str, known: set[str]) -> bool:
    """Exact, or a histogram/summary series of a listed family (``_bucket``/``_sum``/``_count``), or a
    counter used with its ``_total`` sample suffix when the list names the family without it."""
    if name in known:
        return True
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[: -len(suffix)]
        # a family named *_total is a counter: it has no _bucket/_sum/_count series
        if name.endswith(suffix) and base in known and not base.endswith("_total"):
            return True
    base = name[: -len("_total")]
    return name.endswith("_total") and base in known and not base.endswith("_total")


# ------------------------------------------------------------------------------ sources
def known_metrics() -> dict[str, set[str]]:
    """``{"module.ATTR": names}``; a missing list fails the test with what to add where."""
    out, missing = {}, []
    for module, attr in METRIC_LISTS:
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            missing.append(f"{module} cannot be imported ({exc})")
            continue
        names = getattr(mod, attr, None)
        if not names:
            missing.append(f"{module}.{attr} is missing or empty: that exporter's metric names belong there")
            continue
        out[f"{module}.{attr}"] = set(names)
    if missing:
        pytest.fail("metric name lists not available:\n  " + "\n  ".join(missing))
    return out


def dashboard_docs() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for p in panels:
        yield p
        yield from _panels(p.get("panels") or [])  # collapsed rows


def dashboard_exprs(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """``[(where, expr)]`` for every panel target and template-variable query."""
    out = []
    for p in _panels(doc.get("panels") or []):
        for t in p.get("targets") or []:
            if t.get("expr"):
                out.append((f"panel {p.get('title')!r} {t.get('refId')}", t["expr"]))
    for var in (doc.get("templating") or {}).get("list", []):
        if var.get("type") == "query":
            q = var.get("query")
            q = q.get("query", "") if isinstance(q, dict) else (q or "")
            out += [(f"variable ${var['name']}", e) for e in grafana_query_exprs(q)]
    return out


def alert_exprs() -> list[tuple[str, str]]:
    from components import alerts
    from infra.config import parse_config

    cfg = parse_config({}, stack="dev")
    return [(f"alert {r['alert']}", r["expr"]) for g in alerts.platform_rules(MonitoringSettings.from_config(cfg))["groups"] for r in g["rules"]]


# ------------------------------------------------------------------------------ the parser itself
@pytest.mark.parametrize("expr,names", [
    ("up", {"up"}),
    ('sum by (le) (rate(x_bucket{job="a", le=~".+"}[5m]))', {"x_bucket"}),
    ("histogram_quantile(0.99, sum(rate(lat_bucket[$__rate_interval])) by (le, pod))", {"lat_bucket"}),
    ("a / on (pool_id) group_left (name) b", {"a", "b"}),
    ("a * on (pool_id) group_right b > 0.8", {"a", "b"}),
    ('label_replace(up, "dst", "$1", "src", "(.*)")', {"up"}),
    ("rate(c_total[5m] offset 1h) > bool 2", {"c_total"}),
    ("count(x < 1) or vector(0)", {"x"}),
    ("max by (Hostname) (DCGM_FI_DEV_GPU_UTIL) < 1", {"DCGM_FI_DEV_GPU_UTIL"}),
    ("sum without (instance) (m1) unless m2", {"m1", "m2"}),
    ("max_over_time(rate(m[5m])[1h:5m])", {"m"}),
    ('topk(5, m{a="by (x)"}) and ignoring(b) n', {"m", "n"}),
    ("1e3 * 0x1F + m:recorded", {"m:recorded"}),
])
def test_metric_names_parser(expr, names):
    assert metric_names(expr) == names


def test_grafana_variable_queries():
    assert grafana_query_exprs("label_values(DCGM_FI_DEV_GPU_UTIL, Hostname)") == ["DCGM_FI_DEV_GPU_UTIL"]
    assert grafana_query_exprs('label_values(m{ns=~"$ns"}, pod)') == ['m{ns=~"$ns"}']
    assert grafana_query_exprs("label_values(namespace)") == []
    assert grafana_query_exprs("query_result(topk(3, m))") == ["topk(3, m)"]


def test_suffixes_are_stripped_only_where_they_belong():
    known = {"sentiment_requests_total", "sentiment_request_duration_seconds", "trainer_samples_total", "fam"}
    assert is_known("sentiment_requests_total", known)
    assert is_known("sentiment_request_duration_seconds_bucket", known)
    assert is_known("sentiment_request_duration_seconds_count", known)
    assert is_known("trainer_samples_total", known)
    assert is_known("fam_total", known)
    assert not is_known("sentiment_requests", known)            # the family name is not a series
    assert not is_known("sentiment_requests_total_bucket", known)
    assert not is_known("trainer_samples_total_total", known)
    assert not is_known("sentiment_request_duration", known)


# ------------------------------------------------------------------------------ dashboards and alerts
def test_dashboards_parse_and_are_complete():
    docs = dashboard_docs()
    assert set(docs) == {"gpu-dcgm.json", "neuron.json", "ceph.json", "training.json", "sentiment.json"}
    uids = [d["uid"] for d in docs.values()]
    assert len(set(uids)) == len(uids)
    for name, doc in docs.items():
        assert doc["title"] and doc["schemaVersion"] >= 36, name
        variables = {v["name"]: v for v in doc["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
        panels = list(_panels(doc["panels"]))
        assert len(panels) >= 4, name
        ids = [p["id"] for p in panels]
        assert len(set(ids)) == len(ids), name
        for p in panels:
            assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, (name, p["title"])
            assert p["targets"] and all(t["expr"] for t in p["targets"]), (name, p["title"])
            pos = p["gridPos"]
            assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24, (name, p["title"])


@pytest.mark.parametrize("name,needles", [
    ("gpu-dcgm.json", ["DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED"]),
    ("neuron.json", ["neuroncore_utilization_ratio"]),
    ("ceph.json", ["ceph_health_status", "ceph_cluster_total_used_raw_bytes", "ceph_pool_max_avail"]),
    ("training.json", ["trainer_loss", "trainer_samples_per_second", "kueue_pending_workloads",
                       "kueue_admitted_active_workloads", "kueue_cluster_queue_resource_usage",
                       "kueue_cluster_queue_nominal_quota"]),
    ("sentiment.json", ["sentiment_requests_total", "sentiment_request_duration_seconds_bucket",
                        "sentiment_batch_size_bucket"]),
])
def test_dashboards_show_what_the_issue_asks(name, needles):
    used = set().union(*(metric_names(e) for _, e in dashboard_exprs(dashboard_docs()[name])))
    assert set(needles) <= used


def test_every_metric_is_emitted_by_some_exporter():
    lists = known_metrics()
    known = set().union(*lists.values())
    unknown = []
    sources = [(f"dashboards/{n}", dashboard_exprs(d)) for n, d in dashboard_docs().items()]
    sources.append(("components/alerts.py", alert_exprs()))
    checked = 0
    for source, exprs in sources:
        for where, expr in exprs:
            for name in sorted(metric_names(expr)):
                checked += 1
                if not is_known(name, known):
                    unknown.append(f"{source}: {where}: {name}")
    assert checked > 100
    assert not unknown, "metrics no exporter emits (add them to that exporter's list, or fix the query):\n  " + \
        "\n  ".join(unknown)
