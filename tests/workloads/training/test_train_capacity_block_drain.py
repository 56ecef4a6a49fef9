"""An EC2 Capacity Block ends: the trainer's SIGTERM checkpoint is what saves the run.

EC2 starts terminating a Capacity Block's instances 30 minutes before the block ends; Karpenter
drains the nodes it launched into the block 10 minutes before that. The trainer sees the drain as
the kubelet evicting its pod: SIGTERM to the container's processes, then SIGKILL once
``terminationGracePeriodSeconds`` (120 s by default) has passed. Here the drain arrives exactly so,
as SIGTERM to the whole process group mid-epoch: the trainer writes its checkpoint and exits 143
("not done", so ``restartPolicy: OnFailure`` restarts the replica on the next capacity), well
inside the grace period, which itself ends long before EC2 reclaims the instance.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infra.config import parse_config

REPO = Path(__file__).resolve().parents[3]
SAMPLE = REPO / "workloads" / "training" / "data" / "sample"
KARPENTER_DRAIN_LEAD_S = 10 * 60  # Karpenter drains capacity-block nodes 10 min before EC2 terminates them
pytestmark = [pytest.mark.workload, pytest.mark.slow]


def test_the_grace_period_ends_before_the_block_is_reclaimed():
    cfg = parse_config({"training": {"device": "cpu"}}, stack="dev")
    assert cfg.training.termination_grace_period_seconds < KARPENTER_DRAIN_LEAD_S


def test_a_capacity_block_drain_checkpoints_and_exits_143(tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    ckpt = tmp_path / "ckpt"
    cmd = [sys.executable, str(REPO / "workloads" / "training" / "train.py"), "--data", str(SAMPLE),
           "--model-dir", str(tmp_path / "models"), "--checkpoint-dir", str(ckpt), "--epochs", "1",
           "--max-samples", "160", "--eval-max-samples", "16", "--batch-size", "8", "--max-length", "32",
           "--checkpoint-every-steps", "0", "--log-every-steps", "1", "--num-workers", "0", "--metrics-port", "0"]
    log = tmp_path / "log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while '"event": "train_step"' not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGTERM)  # the kubelet evicting the pod: Karpenter drains the block's node
        t0 = time.monotonic()
        rc = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = log.read_text()
    assert rc == 143, text[-3000:]
    assert time.monotonic() - t0 < 120  # inside the default terminationGracePeriodSeconds
    m = re.search(r"SIGTERM: checkpoint written to (\S+)", text)
    assert m and Path(m.group(1)).is_file() and Path(m.group(1)).parent == ckpt, text[-3000:]
    assert not (tmp_path / "models" / "latest").exists()  # not done: the restarted replica resumes, no model yet
