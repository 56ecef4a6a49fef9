#!/usr/bin/env python3
"""Container HEALTHCHECK for the trainer image (Docker/compose; Kubernetes ignores it).

Healthy when PID 1 is not the trainer (data prep, a shell) or not rank 0, when the trainer runs with
--metrics-port 0, or when the trainer's Prometheus endpoint answers. Standard library only.
"""
from __future__ import annotations

import sys
import urllib.request


def main(proc: str = "/proc/1") -> int:
    """0 healthy, 1 not; ``proc`` is PID 1's /proc folder (the container's main process)."""
    try:
        argv = open(f"{proc}/cmdline", "rb").read().decode(errors="replace").split("\0")
    except OSError:
        return 0
    if not any(a.endswith("train.py") for a in argv):
        return 0
    try:  # only rank 0 (torchrun: node rank 0) serves metrics
        env = dict(kv.split("=", 1) for kv in open(f"{proc}/environ", "rb").read().decode(errors="replace")
                   .split("\0") if "=" in kv)
    except OSError:
        env = {}
    if (env.get("RANK") or env.get("PET_NODE_RANK") or "0") != "0":
        return 0
    port = "9464"
    for i, a in enumerate(argv):
        if a == "--metrics-port" and i + 1 < len(argv):
            port = argv[i + 1]
        elif a.startswith("--metrics-port="):
            port = a.split("=", 1)[1]
    if port == "0":
        return 0
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=3).read(1)
    except OSError as exc:
        print(f"trainer metrics endpoint on :{port} not answering: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
