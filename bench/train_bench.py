#!/usr/bin/env python3
"""Fine-tuning throughput of the real trainer (workloads/training/train.py).

Runs train.py per configuration and reads its per-step log lines: CPU with
1 process, CPU with 2 processes (torch.distributed gloo on localhost, the
environment set the way the PyTorchJob operator sets it), and CUDA (1 process,
and 2 when there are 2 GPUs; bf16 autocast) when available. CPU runs one short
epoch and leaves out its first steps; CUDA runs 3 epochs and leaves out the
first (new sequence lengths trigger kernel selection). Checkpointing is off
during the measurement. Samples/s count all ranks together.

    python bench/train_bench.py --out bench/results/train.json [--samples 320] [--batch-size 16]

Prints a table and writes JSON: {"host": {...}, "results": [{"device", "procs",
"batch_size", "samples_per_s", "step_ms", "steps", ...}]}.
Not a pytest test.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TRAIN = REPO / "workloads" / "training" / "train.py"
SAMPLE = REPO / "workloads" / "training" / "data" / "sample"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1


def step_events(log: str) -> list[dict]:
    out = []
    for line in log.splitlines():
        i = line.find('{"event": "train_step"')
        if i >= 0:
            out.append(json.loads(line[i:]))
    return out


def run_config(device: str, procs: int, batch: int, samples: int, warmup: int, workers: int,
               timeout: int, base_model: str | None = None, epochs: int = 1) -> dict:
    with tempfile.TemporaryDirectory(prefix="train-bench-") as tmp:
        args = [sys.executable, str(TRAIN), "--data", str(SAMPLE), "--model-dir", f"{tmp}/m",
                "--checkpoint-dir", f"{tmp}/c", "--epochs", str(epochs), "--max-samples", str(samples),
                "--eval-max-samples", "32", "--batch-size", str(batch), "--checkpoint-every-steps", "0",
                "--log-every-steps", "1", "--metrics-port", "0", "--num-workers", str(workers),
                "--device", device] + (["--base-model", base_model] if base_model else [])
        env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT")}
        env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
        threads = max(1, cpus() // procs)
        if device == "cpu":
            env["OMP_NUM_THREADS"] = str(threads)
        t0 = time.monotonic()
        if procs == 1:
            p = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
            logs, rcs = [p.stdout + p.stderr], [p.returncode]
        else:
            port = str(free_port())
            ps, files = [], []
            for r in range(procs):
                f = open(Path(tmp) / f"rank{r}.log", "w+")
                files.append(f)
                e = dict(env, WORLD_SIZE=str(procs), RANK=str(r), MASTER_ADDR="127.0.0.1", MASTER_PORT=port,
                         LOCAL_RANK=str(r), LOCAL_WORLD_SIZE=str(procs))
                ps.append(subprocess.Popen(args, env=e, stdout=f, stderr=subprocess.STDOUT))
            rcs = [p.wait(timeout=timeout) for p in ps]
            logs = []
            for f in files:
                f.seek(0)
                logs.append(f.read())
                f.close()
        wall = time.monotonic() - t0
    if any(rcs):
        raise RuntimeError(f"{device} x{procs} failed (rc {rcs}):\n{logs[0][-3000:]}")
    steps = step_events(logs[0])
    # warm-up: the first steps, or on a GPU the whole first epoch (kernel selection per new shape)
    steps = [s for s in steps if s["epoch"] > 1] if epochs > 1 else steps[warmup:]
    if not steps:
        raise RuntimeError(f"{device} x{procs}: fewer than {warmup + 1} steps; raise --samples")
    n = [batch * procs for _ in steps]  # global samples per step (the last batch may be smaller)
    dt = [ni / s["samples_per_s"] for ni, s in zip(n, steps)]
    return {
        "device": device, "procs": procs, "batch_size": batch, "global_batch": batch * procs,
        "threads_per_proc": threads if device == "cpu" else None,
        "samples_per_s": round(sum(n) / sum(dt), 2),
        "step_ms": round(1000 * statistics.median(dt), 1),
        "steps": len(steps), "warmup": "first epoch" if epochs > 1 else f"{warmup} steps",
        "epochs": epochs, "wall_s": round(wall, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Fine-tuning throughput of train.py (samples/s).")
    ap.add_argument("--out", type=Path, required=True, help="JSON results file")
    ap.add_argument("--samples", type=int, default=320, help="training samples per configuration (320)")
    ap.add_argument("--batch-size", type=int, default=16, help="per-process batch size on CPU (16)")
    ap.add_argument("--cuda-batch-size", type=int, default=64, help="per-process batch size on CUDA (64)")
    ap.add_argument("--warmup-steps", type=int, default=3, help="CPU steps left out of the measurement (3)")
    ap.add_argument("--cuda-epochs", type=int, default=3, help="CUDA epochs; the first is warm-up (3)")
    ap.add_argument("--num-workers", type=int, default=1, help="DataLoader workers per process (1)")
    ap.add_argument("--procs", default="1,2", help="CPU process counts to measure (1,2)")
    ap.add_argument("--no-cuda", action="store_true", help="skip CUDA even when available")
    ap.add_argument("--base-model", default=None, help="passed to train.py (default: its own default)")
    ap.add_argument("--timeout", type=int, default=900)
    a = ap.parse_args(argv)

    import torch
    import transformers

    configs = [("cpu", int(n), a.batch_size) for n in a.procs.split(",") if n.strip()]
    n_gpu = torch.cuda.device_count() if torch.cuda.is_available() and not a.no_cuda else 0
    if n_gpu:
        configs.append(("cuda", 1, a.cuda_batch_size))
        if n_gpu >= 2:
            configs.append(("cuda", 2, a.cuda_batch_size))
    host = {
        "platform": platform.platform(), "python": platform.python_version(), "cpus": cpus(),
        "torch": torch.__version__, "transformers": transformers.__version__,
        "gpu": torch.cuda.get_device_name(0) if n_gpu else None, "gpus": n_gpu,
        "load_avg": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
    results = []
    for device, procs, batch in configs:
        print(f"running {device} x{procs} batch {batch} ...", file=sys.stderr, flush=True)
        results.append(run_config(device, procs, batch, a.samples * (8 if device == "cuda" else 1),
                                  a.warmup_steps, a.num_workers, a.timeout, a.base_model,
                                  epochs=a.cuda_epochs if device == "cuda" else 1))
    print(f"\nall-MiniLM-L6-v2 fine-tuning, {host['cpus']} CPUs, torch {host['torch']}"
          + (f", {host['gpu']}" if host["gpu"] else ""))
    print(f"{'device':<6} {'procs':>5} {'batch':>5} {'threads':>7} {'samples/s':>10} {'step ms':>8} {'steps':>5}")
    for r in results:
        print(f"{r['device']:<6} {r['procs']:>5} {r['global_batch']:>5} {str(r['threads_per_proc'] or '-'):>7} "
              f"{r['samples_per_s']:>10.1f} {r['step_ms']:>8.1f} {r['steps']:>5}")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"host": host, "results": results}, indent=2) + "\n")
    print(f"\nwrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
