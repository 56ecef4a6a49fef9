"""Fixtures shared by the workload tests: a model that the real trainer produced."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "workloads" / "training" / "data" / "sample"


def run_trainer(model_dir: Path, ckpt_dir: Path, *extra: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run workloads/training/train.py as a user would (a fresh process, offline)."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    cmd = [
        sys.executable, str(REPO / "workloads" / "training" / "train.py"),
        "--data", str(SAMPLE), "--model-dir", str(model_dir), "--checkpoint-dir", str(ckpt_dir), *extra,
    ]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def trained_model_dir(tmp_path_factory) -> Path:
    """A MODEL_DIR root (versions + `latest`) fine-tuned by train.py on a slice of the shipped sample."""
    root = tmp_path_factory.mktemp("trained")
    proc = run_trainer(root / "models", root / "ckpt", "--epochs", "2", "--max-samples", "480", "--num-workers", "0")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (root / "models" / "latest").exists()
    return root / "models"
