"""A smoke run of bench/serve_bench.py (the README's serving figures come from it): a short run of the
server against the seed-style baseline and the no-HTTP ceiling, then a short overload run; the shape of
the JSON each writes is checked, not the figures."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.workload, pytest.mark.slow]
SHORT = ["--duration", "2", "--warmup", "0.5", "--concurrency", "4"]


def _run(tmp_path, name, *args):
    out = tmp_path / f"{name}.json"
    r = subprocess.run([sys.executable, str(REPO / "bench" / "serve_bench.py"), *args, "--out", str(out)],
                       cwd=REPO, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-3000:])
    return json.loads(out.read_text())


def _numbers(d, *keys):
    for k in keys:
        assert isinstance(d.get(k), (int, float)) and d[k] >= 0, (k, d)


def test_serve_bench_compares_the_server_with_the_baseline_and_the_ceiling(tmp_path):
    data = _run(tmp_path, "serve", *SHORT)
    assert {"server", "baseline", "ceiling", "ratios", "targets"} <= set(data), sorted(data)
    for run in (data["server"], data["baseline"]):
        _numbers(run, "req_per_s", "p50_ms", "p99_ms", "transport_errors")
        assert run["req_per_s"] > 0 and isinstance(run["statuses"], dict)
    assert data["server"]["statuses"].get("200", 0) > 0 or data["server"]["statuses"].get(200, 0) > 0
    assert isinstance(data["ceiling"], dict) and data["ceiling"]


def test_serve_bench_goodput_reports_both_client_counts(tmp_path):
    data = _run(tmp_path, "goodput", "--goodput", "--goodput-clients", "2", "8", "--texts-per-request", "4",
                "--duration", "2", "--warmup", "0.5")
    goodput = data["goodput"]
    for clients in ("2", "8"):
        _numbers(goodput[clients], "goodput_texts_per_s", "ok", "elapsed_s")
        assert goodput[clients]["ok"] > 0
    assert goodput["ratio_many_over_few"] == pytest.approx(
        goodput["8"]["goodput_texts_per_s"] / goodput["2"]["goodput_texts_per_s"], rel=0.01)
    assert isinstance(goodput["target_ge_50pct"], bool)
