"""A smoke run of bench/train_bench.py (the README's training figures come from it): a few real steps on
CPU, and the shape of the JSON it writes. The figures themselves are not asserted."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.workload, pytest.mark.slow]


def test_train_bench_writes_one_result_per_configuration(tmp_path):
    out = tmp_path / "train.json"
    r = subprocess.run([sys.executable, str(REPO / "bench" / "train_bench.py"), "--out", str(out), "--samples", "48",
                        "--batch-size", "16", "--warmup-steps", "0", "--procs", "1", "--no-cuda", "--timeout", "600"],
                       cwd=REPO, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    data = json.loads(out.read_text())
    assert {"host", "results"} <= set(data) and isinstance(data["host"], dict)
    [result] = data["results"]
    assert result["device"] == "cpu" and result["procs"] == 1 and result["batch_size"] == 16
    for key in ("samples_per_s", "step_ms"):
        assert isinstance(result[key], (int, float)) and result[key] > 0, result
    assert isinstance(result["steps"], int) and result["steps"] >= 1
