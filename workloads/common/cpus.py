"""How many CPUs this process may really use, inside a container."""
from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _cgroup_quota(root: Path) -> float | None:
    """The CPU quota in cores from cgroup v2 (``cpu.max``), else v1 (``cpu.cfs_*``); None when unlimited."""
    try:
        raw = (root / "cpu.max").read_text().split()
        if raw and raw[0] != "max":
            quota, period = int(raw[0]), int(raw[1])
            return quota / period if quota > 0 and period > 0 else None
        return None
    except (OSError, ValueError, IndexError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def usable_cpus(cgroup_root: Path = CGROUP_ROOT) -> int:
    """CPUs this process may use: the affinity mask, capped by a cgroup CPU quota (a Kubernetes CPU limit)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    quota = _cgroup_quota(cgroup_root)
    if quota:
        n = min(n, max(1, math.ceil(quota)))
    return max(1, n)
