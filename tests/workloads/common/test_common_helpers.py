"""workloads.common, both images' shared helpers: the CPU count a container may use, and the data hash."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from workloads.common.cpus import usable_cpus
from workloads.common.hashing import DATA_HASH_CHARS, data_hash

pytestmark = pytest.mark.workload


def _affinity() -> int:
    return len(os.sched_getaffinity(0))


def _cgroup(root: Path, files: dict[str, str]) -> Path:
    for name, body in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(body)
    return root


@pytest.mark.parametrize("files, quota", [
    ({"cpu.max": "150000 100000\n"}, 2),                                          # v2: 1.5 cores -> 2
    ({"cpu.max": "50000 100000\n"}, 1),                                           # v2: half a core -> at least 1
    ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1),  # v1
    ({"cpu/cpu.cfs_quota_us": "250000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 3),
])
def test_a_cgroup_quota_caps_the_affinity(tmp_path, files, quota):
    assert usable_cpus(_cgroup(tmp_path, files)) == min(_affinity(), quota)


@pytest.mark.parametrize("files", [
    {},                                                                           # no cgroup files at all
    {"cpu.max": "max 100000\n"},                                                  # v2, unlimited
    {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"},        # v1, unlimited
    {"cpu.max": "lots\n"},                                                        # garbage: ignored
    {"cpu.max": ""},
    {"cpu.max": "0 100000\n"},
    {"cpu/cpu.cfs_quota_us": "many\n", "cpu/cpu.cfs_period_us": "100000\n"},
    {"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "0\n"},
])
def test_no_usable_quota_means_the_affinity(tmp_path, files):
    assert usable_cpus(_cgroup(tmp_path, files)) == _affinity()


def test_v2_wins_over_v1_when_both_are_there(tmp_path):
    root = _cgroup(tmp_path, {"cpu.max": "max 100000\n", "cpu/cpu.cfs_quota_us": "100000\n",
                              "cpu/cpu.cfs_period_us": "100000\n"})
    assert usable_cpus(root) == _affinity()


TRAIN = [{"text": "great", "label": 1}, {"text": "awful", "label": 0}]
EVAL = [{"text": "fine", "label": 1}]


def test_data_hash_is_stable_short_and_ignores_other_keys():
    h = data_hash(TRAIN, EVAL)
    assert len(h) == DATA_HASH_CHARS and int(h, 16) >= 0
    assert h == data_hash([dict(r) for r in TRAIN], [dict(r, source="x") for r in EVAL])
    # pinned (what the two copies it replaced computed): checkpoints and DATASET.json written earlier carry it
    assert h == "48f8b82b26"


def test_data_hash_is_sensitive_to_order_split_boundaries_and_labels():
    h = data_hash(TRAIN, EVAL)
    assert data_hash(TRAIN[::-1], EVAL) != h
    assert data_hash(EVAL, TRAIN) != h
    assert data_hash(TRAIN + EVAL, []) != h                  # the same rows split differently
    assert data_hash([dict(TRAIN[0], label=0), TRAIN[1]], EVAL) != h
    assert data_hash(TRAIN) != data_hash(TRAIN, [])          # the number of splits counts too
