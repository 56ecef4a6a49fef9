#!/usr/bin/env python
"""Benchmark the sentiment server against the seed's way of serving, and against the model alone.

    python bench/serve_bench.py --model-dir MODEL_DIR [--device cpu|cuda] [--profile] [--out bench/results/serve.json]
    python bench/serve_bench.py --variants --model-dir MODEL_DIR      # CPU engines x threads, with accuracy
    python bench/serve_bench.py --goodput [--model-dir MODEL_DIR]     # overload: 8 vs 256 clients, 16 texts each

One run measures, on loopback, for each ``--concurrency`` (16 and 64: clients each sending one text per
request, like the seed's curl, back to back on a keep-alive connection, for ``--duration`` seconds):

1. server:   ``python -m workloads.sentiment.server`` (ASGI, dynamic micro-batching), and its cold start
   (process start to the first 200 from /readyz);
2. baseline: ``bench/seed_flask_app.py`` (Flask, one ``pipeline("sentiment-analysis")`` call per request,
   threaded), same model;
3. ceiling:  the model alone, no HTTP: the engine and thread count the server itself reports on /readyz
   (the same predictor class, loaded the same way), in full batches of the largest size the load can
   form (``min(MAX_BATCH_SIZE, concurrency)``), texts/s;

and prints req/s, p50 and p99 latency, the server's share of the ceiling and its multiple of the
baseline, with the targets (at c=16: >= 85 % of the ceiling, >= 8x the baseline's req/s, p99 no worse).
``--profile`` samples the server with py-spy (requirements-dev.txt) during its c=16 run and prints where
its CPU time goes (model, tokenizer, HTTP, app, JSON, metrics, batcher). ``--out`` writes all of it as JSON.

``--goodput`` instead measures the server alone under overload: clients sending
``--texts-per-request`` texts a request (16), first 8 clients, then 256, back to
back with no back-off (a 503 is answered by the next request at once), and
prints goodput, the texts/s answered 200, for each; the target is that 256
clients keep at least 50 % of the 8-client goodput (load shedding, not collapse).

The load generator is serve_bench_load.py's minimal HTTP/1.1 client on uvloop. The texts are the trainer's eval sample
(workloads/training/data/sample/eval.jsonl), cycled.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
if str(Path(__file__).resolve().parent) not in sys.path:  # serve_bench_model beside this file
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from serve_bench_model import measure_ceiling, measure_variants  # noqa: E402
from serve_bench_profile import finish_profile, start_profile  # noqa: E402
from serve_bench_load import (  # noqa: E402
    EVAL, Process, _drive, _get, _one_request, _post, build_untrained_model, free_port, load_eval, run_async,
)


def run_load(name: str, port: int, texts: List[str], args, concurrency: int) -> Dict:
    reqs = [_post("/analyze", json.dumps({"text": t}).encode(), port) for t in texts]
    if args.warmup > 0:
        run_async(_drive(port, reqs, concurrency, args.warmup, 10 ** 9))
    res = run_async(_drive(port, reqs, concurrency, args.duration, args.max_requests))
    print(f"  {name:<9} c={concurrency:<3} {res['req_per_s']:>8.1f} req/s   p50 {res['p50_ms']:>7.1f} ms   "
          f"p99 {res['p99_ms']:>7.1f} ms   statuses {res['statuses']} transport errors {res['transport_errors']}",
          flush=True)
    return res


# --------------------------------------------------------------------------- main
def _parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", help="MODEL_DIR (trainer output); default: an untrained head on the wheel's model")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[16, 64], help="client counts, in turn (16 64)")
    ap.add_argument("--duration", type=float, default=15.0, help="seconds of measured load per server and count")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds of unmeasured load first")
    ap.add_argument("--max-requests", type=int, default=100_000, help="bound on measured requests per run")
    ap.add_argument("--batch-size", type=int, default=32, help="server MAX_BATCH_SIZE (the ceiling's largest batch)")
    ap.add_argument("--engine", default="auto", help="CPU_ENGINE of the server (the ceiling uses what it reports)")
    ap.add_argument("--server-env", action="append", default=[], metavar="K=V", help="extra server env")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--profile", action="store_true", help="sample the server with py-spy during its first run")
    ap.add_argument("--variants", action="store_true", help="only the CPU engines x threads comparison")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="--variants: intra-op threads (1 2)")
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
            run_async(_drive(port, reqs, clients, args.warmup, 10 ** 9))
        res = run_async(_drive(port, reqs, clients, args.duration, args.max_requests))
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


def _server_env(args, model_dir: str) -> Dict[str, str]:
    env = dict(os.environ, MODEL_DIR=model_dir, HOST="127.0.0.1", BACKEND=args.device,
               MAX_BATCH_SIZE=str(args.batch_size), CPU_ENGINE=args.engine, LOG_LEVEL="warning",
               MODEL_WATCH_INTERVAL_S="0")
    for kv in args.server_env:
        k, _, v = kv.partition("=")
        env[k] = v
    return env


def _run_server(result: Dict, args, model_dir: str, texts: List[str], tmp: Path) -> None:
    """The server: cold start, what it serves with (/readyz), then each concurrency (or the goodput runs)."""
    port = free_port()
    probe = json.dumps({"text": "warm up"}).encode()
    server = Process("server", [sys.executable, "-m", "workloads.sentiment.server"], dict(
        _server_env(args, model_dir), PORT=str(port)), port, tmp)
    runs: Dict[str, Dict] = {}
    try:
        result["cold_start_s"] = round(server.wait_ready(_get("/readyz", port)), 2)
        print(f"  server cold start {result['cold_start_s']} s (process start to /readyz 200)", flush=True)
        result["serving"] = json.loads(run_async(_one_request("127.0.0.1", port, _get("/readyz", port)))[1])
        server.wait_ready(_post("/analyze", probe, port))
        if args.goodput:
            result["goodput"] = run_goodput(port, texts, args)
            return
        for i, c in enumerate(args.concurrency):
            sampler = start_profile(server.proc.pid, args.warmup + args.duration, tmp) \
                if args.profile and i == 0 else None
            runs[str(c)] = run_load("server", port, texts, args, c)
            if sampler is not None:
                result["profile"] = finish_profile(sampler)
        status, body = run_async(_one_request("127.0.0.1", port, _get("/metrics", port)))
        result["batch_size_mean"] = _mean_batch(body.decode())
    finally:
        result["server_exit_code"] = server.stop()
        result["server"] = runs


def _run_baseline(result: Dict, args, model_dir: str, texts: List[str], tmp: Path) -> None:
    port = free_port()
    seed = Process("baseline", [sys.executable, str(REPO / "bench" / "seed_flask_app.py"), "--device", args.device],
                   dict(_server_env(args, model_dir), PORT=str(port)), port, tmp)
    try:
        seed.wait_ready(_post("/analyze", json.dumps({"text": "warm up"}).encode(), port))
        result["baseline"] = {str(c): run_load("baseline", port, texts, args, c) for c in args.concurrency}
    finally:
        seed.stop()


def _summarise(result: Dict, args) -> None:
    """Ratios and targets per concurrency into ``result``, and the summary printed."""
    print("\nsummary:")
    for c in args.concurrency:
        s, ceil = result["server"][str(c)], result["ceiling"][str(c)]
        row = {"server_share_of_ceiling": round(s["req_per_s"] / ceil["texts_per_s"], 3)}
        if "baseline" in result:
            b = result["baseline"][str(c)]
            row["server_x_baseline"] = round(s["req_per_s"] / max(b["req_per_s"], 1e-9), 2)
            row["p99_server_over_baseline"] = round(s["p99_ms"] / max(b["p99_ms"], 1e-9), 3)
        result.setdefault("ratios", {})[str(c)] = row
        print(f"  c={c:<3} server {s['req_per_s']:.1f} req/s (p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms)  "
              f"ceiling {ceil['texts_per_s']:.1f} texts/s  {row}")
    first = result["ratios"][str(args.concurrency[0])]
    targets = {"share_ge_85pct": first["server_share_of_ceiling"] >= 0.85, "cold_start_le_3s": (
        result.get("cold_start_s") or 99) <= 3.0}
    if "server_x_baseline" in first:
        targets["ge_8x_baseline"] = first["server_x_baseline"] >= 8
        targets["p99_le_baseline"] = first["p99_server_over_baseline"] <= 1
    result["targets"] = {f"c{args.concurrency[0]}_{k}": v for k, v in targets.items()}
    print(f"  cold start {result.get('cold_start_s')} s; targets {result['targets']}")


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

    result: Dict = {"model_dir": model_dir, "device": args.device, "machine": machine(), "load": {
        "concurrency": args.concurrency, "duration_s": args.duration, "warmup_s": args.warmup,
        "max_requests": args.max_requests, "texts": len(texts), "text_source": str(EVAL)}}
    if args.variants:
        print(f"CPU engines on {len(texts)} eval texts:")
        result["variants"] = measure_variants(model_dir, rows, min(args.duration, 5.0), args.batch_size,
                                              args.threads)
        _write(args.out, result)
        return 0
    if args.goodput:
        print(f"overload: {args.texts_per_request} texts a request, {args.goodput_clients} clients, "
              f"{args.duration:.0f}s each (+{args.warmup:.0f}s warm-up), device {args.device}")
        _run_server(result, args, model_dir, texts, tmp)
        _write(args.out, result)
        return 0
    print(f"load: {args.concurrency} concurrent clients, one text per request, {args.duration:.0f}s each "
          f"(+{args.warmup:.0f}s warm-up), device {args.device}")
    _run_server(result, args, model_dir, texts, tmp)
    if not args.skip_baseline:
        _run_baseline(result, args, model_dir, texts, tmp)
    serving = result["serving"]
    result["ceiling"] = {str(c): measure_ceiling(model_dir, args.device, min(args.batch_size, c), serving, texts,
                                                 min(args.duration, 10.0)) for c in args.concurrency}
    _summarise(result, args)
    _write(args.out, result)
    return 0


def machine() -> Dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").is_file() else ""
    return {"cpus": os.cpu_count(), "cpu": cpu, "platform": platform.platform(), "python": platform.python_version(),
            "load_average_at_start": list(os.getloadavg())}


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
