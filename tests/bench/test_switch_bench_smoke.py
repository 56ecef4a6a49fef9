"""A smoke run of bench/switch_bench.py (the README's switch figures come from it): a short steady phase,
a promotion of a new version under load, and the switch window. The figures are not checked; the shape
of the JSON is, and what must hold on any machine: no failed request, and only the new version answers
once it has answered once."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.workload, pytest.mark.slow]


def test_switch_bench_reports_steady_and_switch_latency_from_one_run(tmp_path):
    out = tmp_path / "switch.json"
    r = subprocess.run([sys.executable, str(REPO / "bench" / "switch_bench.py"), "--steady", "3", "--warmup", "1",
                        "--after", "1", "--concurrency", "4", "--out", str(out)],
                       cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-3000:])
    data = json.loads(out.read_text())
    for phase in ("steady", "switch"):
        assert data[phase]["requests"] > 0 and data[phase]["non_2xx"] == 0
        for key in ("p50_ms", "p99_ms", "req_per_s", "max_ms"):
            assert isinstance(data[phase][key], (int, float)) and data[phase][key] > 0, (phase, key)
    assert data["transport_errors"] == 0 and data["server_exit_code"] == 0
    assert data["versions_seen_after_switch"] == [data["new_version"]] != [data["old_version"]]
    assert data["switch_seconds"] > 0
    assert "steady  p50" in r.stdout and "switch  p50" in r.stdout


def test_switch_bench_refuses_a_warmup_longer_than_the_steady_phase():
    r = subprocess.run([sys.executable, str(REPO / "bench" / "switch_bench.py"), "--steady", "1", "--warmup", "2"],
                       cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--warmup must be shorter than --steady" in r.stderr
