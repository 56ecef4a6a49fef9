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
    data = _run(tmp_path, "serve", *SHORT, "--profile")
    assert {"server", "baseline", "ceiling", "ratios", "targets", "cold_start_s", "serving"} <= set(data), sorted(data)
    for run in (data["server"]["4"], data["baseline"]["4"]):
        _numbers(run, "req_per_s", "p50_ms", "p99_ms", "transport_errors")
        assert run["req_per_s"] > 0 and run["statuses"].get("200", 0) > 0
    ceiling = data["ceiling"]["4"]
    # the ceiling runs what the server said it serves with, at the batch the load can form
    assert (ceiling["engine"], ceiling["threads"]) == (data["serving"]["engine"], data["serving"]["threads"])
    assert ceiling["batch_size"] == 4 and ceiling["texts_per_s"] > 0
    ratio = data["ratios"]["4"]
    assert ratio["server_share_of_ceiling"] == pytest.approx(
        data["server"]["4"]["req_per_s"] / ceiling["texts_per_s"], abs=0.001)
    assert set(data["targets"]) == {"c4_share_ge_85pct", "c4_cold_start_le_3s", "c4_ge_8x_baseline",
                                    "c4_p99_le_baseline"}
    assert 0 < data["cold_start_s"] < 60
    profile = data["profile"]
    assert profile.get("samples", 0) > 0 or "error" in profile, profile  # py-spy may lack ptrace rights
    if "share" in profile:
        assert abs(sum(profile["share"].values()) - 1) < 0.01 and "model" in profile["share"]


def test_serve_bench_variants_measure_every_cpu_engine_with_accuracy(tmp_path):
    data = _run(tmp_path, "variants", "--variants", "--threads", "1", "--duration", "0.5")
    rows = data["variants"]["variants"]
    assert {"torch-fp32@1", "onnx-fp32@1", "onnx-int8@1"} <= set(rows), sorted(rows)
    for row in rows.values():
        _numbers(row, "texts_per_s_batch", "texts_per_s_single", "accuracy", "agreement_with_fp32")
    assert rows["onnx-fp32@1"]["agreement_with_fp32"] == 1.0  # same precision, same labels


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
