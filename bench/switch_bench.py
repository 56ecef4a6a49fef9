#!/usr/bin/env python
"""Measure a model switch under load: the p99 latency while the server swaps versions, next to the
steady-state p99 of the same run.

    python bench/switch_bench.py [--model-dir MODEL_DIR] [--concurrency 16] [--out bench/results/switch.json]

One server follows ``latest`` (``serving.modelVersion: latest``, the default). Clients send one text
per request, back to back, for the whole run:

1. **steady**: ``--steady`` seconds on the version ``latest`` names;
2. **switch**: ``workloads/training/promote.py`` moves ``latest`` to a new version (a copy of the
   served one under a new name, so the run needs no second trained model; the server still loads,
   warms and swaps it for real). The window runs from the promotion to ``--after`` seconds after the
   first answer that names the new version in ``X-Model-Version``.

Printed and written (``--out``): p50/p99 and req/s of each phase, the non-2xx count (the target is 0),
the seconds from promotion to the first answer of the new version, and the server's RSS before and
after (the old model is released). The texts are the trainer's eval sample, cycled.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from serve_bench_load import Process, _post, build_untrained_model, free_port, load_eval, percentile  # noqa: E402

VERSION_HEADER = "x-model-version"


def prepare_model_root(source: Optional[str], root: Path) -> str:
    """A private MODEL_DIR (never the caller's): the version ``latest`` names, copied, with a metadata.json
    (an untrained model has none, and promote.py only promotes complete exports). Returns that version."""
    if source is None:
        build_untrained_model(root)
    else:
        src = Path(source)
        name = (src / "latest").read_text().strip()
        shutil.copytree(src / name, root / name)
        (root / "latest").write_text(name + "\n")
    version = (root / "latest").read_text().strip()
    meta = root / version / "metadata.json"
    if not meta.is_file():
        meta.write_text(json.dumps({"version": version}))
    return version


def add_version(root: Path, base: str, name: str) -> None:
    shutil.copytree(root / base, root / name)
    meta = json.loads((root / name / "metadata.json").read_text())
    (root / name / "metadata.json").write_text(json.dumps({**meta, "version": name}))


def rss_mib(pid: int) -> Optional[float]:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


class Recorder:
    """Every answer: when it was sent, how long it took, its status and the version that answered it."""

    def __init__(self) -> None:
        self.rows: List[tuple[float, float, int, str]] = []
        self.errors = 0

    def phase(self, start: float, end: float) -> Dict:
        rows = [r for r in self.rows if start <= r[0] < end]
        lat = sorted(r[1] for r in rows)
        bad = sum(1 for r in rows if r[2] != 200)
        span = max(end - start, 1e-9)
        return {"requests": len(rows), "non_2xx": bad, "req_per_s": round((len(rows) - bad) / span, 1),
                "p50_ms": round(percentile(lat, 50) * 1000, 1), "p99_ms": round(percentile(lat, 99) * 1000, 1),
                "max_ms": round((lat[-1] if lat else 0) * 1000, 1), "seconds": round(span, 2)}


async def _clients(port: int, texts: List[str], concurrency: int, stop: asyncio.Event, rec: Recorder) -> None:
    async def client(i: int) -> None:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            j = i
            while not stop.is_set():
                t0 = time.perf_counter()
                try:
                    r = await http.post("/analyze", json={"text": texts[j % len(texts)]})
                    rec.rows.append((t0, time.perf_counter() - t0, r.status_code, r.headers.get(VERSION_HEADER, "")))
                except httpx.HTTPError:
                    rec.errors += 1
                j += concurrency

    await asyncio.gather(*(client(i) for i in range(concurrency)))


async def _run(port: int, root: Path, old: str, new: str, args, texts: List[str], pid: int) -> Dict:
    rec, stop = Recorder(), asyncio.Event()
    load = asyncio.create_task(_clients(port, texts, args.concurrency, stop, rec))
    start = time.perf_counter()
    await asyncio.sleep(args.steady)
    rss_before = rss_mib(pid)
    promoted = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(REPO / "workloads" / "training" / "promote.py"), "--model-dir", str(root), new)
    if await proc.wait() != 0:
        raise RuntimeError(f"promote.py {new} failed")
    first_new = None
    deadline = promoted + args.switch_timeout
    while first_new is None and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
        first_new = next((r[0] + r[1] for r in rec.rows if r[0] >= promoted and r[3] == new), None)
    if first_new is None:
        stop.set()
        await load
        raise RuntimeError(f"the server never answered with {new} within {args.switch_timeout}s")
    await asyncio.sleep(args.after)
    end = time.perf_counter()
    stop.set()
    await load
    return {
        "old_version": old, "new_version": new,
        "steady": rec.phase(start + args.warmup, promoted),
        "switch": rec.phase(promoted, end),
        "switch_seconds": round(first_new - promoted, 2),
        "transport_errors": rec.errors,
        "versions_seen_after_switch": sorted({r[3] for r in rec.rows if r[0] >= first_new}),
        "rss_mib": {"before": rss_before, "after": rss_mib(pid)},
    }


def _parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", help="MODEL_DIR (trainer output; copied, never changed); default: an untrained head")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--steady", type=float, default=10.0, help="seconds of steady state before the promotion")
    ap.add_argument("--warmup", type=float, default=2.0, help="first seconds of the steady phase not counted")
    ap.add_argument("--after", type=float, default=3.0, help="seconds measured after the first new-version answer")
    ap.add_argument("--switch-timeout", type=float, default=300.0)
    ap.add_argument("--watch-interval", type=float, default=1.0, help="the server's MODEL_WATCH_INTERVAL_S")
    ap.add_argument("--out", type=Path, help="write the results as JSON here")
    args = ap.parse_args(argv)
    if args.warmup >= args.steady:
        ap.error("--warmup must be shorter than --steady")
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = _parse_args(argv)
    texts = [r["text"] for r in load_eval()]
    with tempfile.TemporaryDirectory(prefix="switch-bench-") as tmp_name:
        tmp = Path(tmp_name)
        root = tmp / "models"
        root.mkdir()
        old = prepare_model_root(args.model_dir, root)
        new = f"{old}-next"
        add_version(root, old, new)
        port = free_port()
        env = dict(os.environ, MODEL_DIR=str(root), HOST="127.0.0.1", PORT=str(port), LOG_LEVEL="warning",
                   MODEL_VERSION="latest", MODEL_WATCH_INTERVAL_S=str(args.watch_interval))
        server = Process("server", [sys.executable, "-m", "workloads.sentiment.server"], env, port, tmp)
        try:
            server.wait_ready(_post("/analyze", json.dumps({"text": "warm up"}).encode(), port))
            result = asyncio.run(_run(port, root, old, new, args, texts, server.proc.pid))
        finally:
            code = server.stop()
    result["server_exit_code"] = code
    result["concurrency"] = args.concurrency
    s, w = result["steady"], result["switch"]
    print(f"steady  p50 {s['p50_ms']:>7.1f} ms  p99 {s['p99_ms']:>7.1f} ms  {s['req_per_s']:>7.1f} req/s  "
          f"non-2xx {s['non_2xx']}")
    print(f"switch  p50 {w['p50_ms']:>7.1f} ms  p99 {w['p99_ms']:>7.1f} ms  {w['req_per_s']:>7.1f} req/s  "
          f"non-2xx {w['non_2xx']}  ({result['switch_seconds']} s to {new}; RSS {result['rss_mib']})")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return 0 if w["non_2xx"] == 0 and s["non_2xx"] == 0 and result["transport_errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
