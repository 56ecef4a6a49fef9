"""Where the server's CPU time goes under load (bench/serve_bench.py --profile): py-spy samples it.

py-spy (requirements-dev.txt) attaches to the server process for the length of one run and records every
thread's stack 100 times a second, idle frames left out (``--nonblocking`` keeps the server unpaused). The
samples are put in buckets by the innermost frame that names a known layer (the model engine, the
tokenizer, HTTP parsing, the app, JSON, metrics, the batcher), so the summary reads "62 % model, 9 %
HTTP, ...". Without py-spy (or without ptrace rights) the run goes on and the profile says why.
"""
from __future__ import annotations

import collections
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, Optional

#: bucket -> substrings of a frame ("function (file:line)"), tried innermost frame first
BUCKETS = [
    ("model", ("onnxruntime", "torch/nn", "torch/_", "forward (", "Session.run")),
    ("tokenizer", ("tokenization_utils", "tokenizers", "_encode")),
    ("json", ("json/", "orjson", "_dumps", "parse_payload")),
    ("metrics", ("prometheus_client",)),
    ("http", ("httptools", "uvicorn/protocols", "http_guard", "h11")),
    ("app", ("starlette", "workloads/sentiment/app.py", "payload.py", "shedding.py")),
    ("batcher", ("batcher.py", "concurrent/futures", "threading.py")),
    ("event loop", ("asyncio", "uvloop", "selectors")),
]


def _py_spy() -> Optional[str]:
    here = Path(sys.executable).with_name("py-spy")
    return str(here) if here.is_file() else shutil.which("py-spy")


def start_profile(pid: int, seconds: float, tmp: Path) -> Optional[Dict]:
    exe = _py_spy()
    if exe is None:
        print("  (no profile: py-spy is not installed; pip install -r requirements-dev.txt)")
        return None
    out = tmp / "profile.txt"
    proc = subprocess.Popen([exe, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))), "--rate",
                             "100", "--format", "raw", "--output", str(out), "--threads", "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return {"proc": proc, "out": out}


def bucket_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, keys in BUCKETS:
            if any(k in frame for k in keys):
                return name
    return "other"


def summarise(raw: str) -> Dict:
    """py-spy's raw (collapsed) stacks -> samples and share per bucket, and per thread."""
    buckets: collections.Counter = collections.Counter()
    threads: collections.Counter = collections.Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        threads[frames[0].split(": ")[-1].strip() if frames[0].startswith("thread") else "?"] += int(count)
        buckets[bucket_of(frames[1:] if frames[0].startswith("thread") else frames)] += int(count)
    total = sum(buckets.values()) or 1
    return {"samples": total, "share": {k: round(v / total, 3) for k, v in buckets.most_common()},
            "threads": dict(threads.most_common())}


def finish_profile(sampler: Dict) -> Dict:
    proc = sampler["proc"]
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        return {"error": "py-spy did not finish"}
    if proc.returncode != 0 or not sampler["out"].is_file():
        return {"error": f"py-spy failed ({proc.returncode}): {err.decode(errors='replace').strip()[-300:]}"}
    res = summarise(sampler["out"].read_text(errors="replace"))
    shares = ", ".join(f"{k} {v:.0%}" for k, v in res["share"].items())
    print(f"  profile (server CPU samples, {res['samples']}): {shares}", flush=True)
    return res
