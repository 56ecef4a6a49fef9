"""The trainer's fallbacks for what a platform or an image may lack, forced here rather than excluded from
coverage: a directory that cannot be opened or fsynced, no numpy, no prometheus-client, no prctl, no
affinity mask. Each keeps the trainer going with the documented degraded behaviour."""
from __future__ import annotations

import logging
import os
import random
import sys

import pytest

from workloads.common import cpus
from workloads.training import checkpoint, metrics, workers

pytestmark = pytest.mark.workload


def _raise(exc: type[BaseException]):
    def fail(*_a, **_k):
        raise exc("forced by the test")
    return fail


def test_fsync_dir_without_directory_fds_is_a_no_op(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint.os, "open", _raise(OSError))
    closed = []
    monkeypatch.setattr(checkpoint.os, "close", closed.append)
    checkpoint._fsync_dir(tmp_path)  # no exception, nothing opened so nothing closed
    assert closed == []


def test_fsync_dir_still_closes_the_fd_when_fsync_fails(tmp_path, monkeypatch):
    real_close = os.close
    closed = []
    monkeypatch.setattr(checkpoint.os, "fsync", _raise(OSError))
    monkeypatch.setattr(checkpoint.os, "close", lambda fd: (closed.append(fd), real_close(fd)))
    checkpoint._fsync_dir(tmp_path)
    assert len(closed) == 1


def test_rng_state_round_trips_without_numpy(monkeypatch):
    """Without numpy the state holds python and torch only, and restoring it still replays python's RNG."""
    import torch

    random.seed(7)
    torch.manual_seed(7)
    monkeypatch.setitem(sys.modules, "numpy", None)  # `import numpy` raises ImportError
    st = checkpoint.rng_state()
    assert "numpy" not in st and {"python", "torch"} <= set(st)
    first = (random.random(), torch.rand(1).item())
    checkpoint.set_rng_state(st)
    assert (random.random(), torch.rand(1).item()) == first


def test_set_rng_state_skips_a_numpy_state_when_numpy_is_missing(monkeypatch):
    st = checkpoint.rng_state()
    assert "numpy" in st  # numpy is installed here: the state carries it
    random.seed(3)
    expected = random.random()
    random.seed(3)
    st["python"] = random.getstate()
    monkeypatch.setitem(sys.modules, "numpy", None)
    checkpoint.set_rng_state(st)  # the numpy part is skipped, the rest restored
    assert random.random() == expected


def test_metrics_are_off_without_prometheus_client(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with caplog.at_level(logging.WARNING, logger="trainer"):
        m = metrics.start_metrics(9464)
    assert m.port is None
    m.loss.set(1.0)  # the no-op metrics accept the calls
    assert "prometheus_client is not installed; metrics disabled" in caplog.text


def test_parent_death_signal_without_prctl(monkeypatch):
    import ctypes

    monkeypatch.setattr(ctypes, "CDLL", _raise(OSError))
    assert workers.set_parent_death_signal(15) is False


def test_usable_cpus_without_an_affinity_mask(tmp_path, monkeypatch):
    monkeypatch.delattr(cpus.os, "sched_getaffinity")
    monkeypatch.setattr(cpus.os, "cpu_count", lambda: 3)
    assert cpus.usable_cpus(tmp_path) == 3  # no cgroup quota under tmp_path: the CPU count
