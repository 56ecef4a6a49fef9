"""Server settings, read once from the environment and validated.

Standard library only (no torch, no transformers), so the settings can be
checked and documented without loading the model stack.

Every knob is an environment variable; the table in ``ENV_DOC`` is the single
source for the README and for ``python -m workloads.sentiment.server --help-env``.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields
from typing import Mapping, Optional

BACKENDS = ("auto", "cpu", "cuda", "neuron", "neuronx")
CPU_ENGINES = ("auto", "onnx-int8", "onnx-fp32", "torch-fp32")

# name -> (default, description). Defaults are strings, exactly as they would be set.
ENV_DOC = {
    "MODEL_DIR": ("/models", "Trainer's --model-dir root (holds <version>/ and a `latest` file naming one), "
                  "or a directory that is itself a saved model (has config.json)."),
    "MODEL_VERSION": ("latest", "latest: serve the version MODEL_DIR/latest names and follow it: when `latest` "
                      "changes (the trainer promoted a version, or promote.py), the new one is loaded and warmed "
                      "beside the one serving and swapped in between batches, with no failed request. A version "
                      "name (a folder under MODEL_DIR): serve that one only and ignore `latest` (a pin, a rollback)."),
    "MODEL_WATCH_INTERVAL_S": ("5", "MODEL_VERSION=latest: seconds between checks of `latest` (a stat; the file is "
                               "read only when it changed). 0 = never switch after start-up."),
    "HOST": ("0.0.0.0", "Address to bind."),
    "PORT": ("8080", "Port to bind."),
    "WORKERS": ("1", "Server processes sharing the socket, each with its own model and batcher. CPU: keep 1 "
                "and scale pods (one batcher forms the largest batches). GPU: 2-4 lift the Python/HTTP ceiling "
                "(measured on an H100: 1 worker 1640 req/s, 4 workers 3010 req/s)."),
    "BACKEND": ("auto", "auto | cpu | cuda | neuron | neuronx. neuron: inf1 (torch-neuron, legacy); neuronx: inf2/trn "
                "(torch-neuronx). auto: with a NeuronCore present, neuronx if torch_neuronx is installed, neuron if "
                "torch_neuron is; "
                "else cuda if available, else cpu."),
    "CPU_ENGINE": ("auto", "auto | onnx-int8 | onnx-fp32 | torch-fp32. CPU only. auto: the fastest of the trainer's "
                   "ONNX Runtime graphs whose held-out accuracy (its onnx.json) is within 0.5 points of fp32 "
                   "PyTorch's, else fp32 PyTorch (logged). Measured: README \"Serving performance\"."),
    "TORCH_THREADS": ("0", "Intra-op threads of the CPU engine. 0: ONNX Runtime every usable core (its threads "
                      "do not spin, so the event loop keeps a core when it needs one: 2 threads on 2 cores "
                      "measured 1.6x 1 thread at the server); PyTorch usable cores - 1 (at least 1), because its "
                      "OpenMP threads spin: 2 threads on 2 busy cores measured 5x slower than 1."),
    "MAX_BATCH_SIZE": ("32", "Largest number of texts run in one forward pass."),
    "MAX_BATCH_WAIT_MS": ("5", "How long the batcher waits for more requests after the first one arrives "
                          "(only when the model is idle; under load batches form while the previous one runs)."),
    "MAX_QUEUE": ("512", "Most texts waiting for the model. When full, /analyze answers 503 with Retry-After at once."),
    "MAX_QUEUE_TOKENS": ("0", "Most work waiting for the model, in estimated tokens (a text: its characters / 4, "
                         "at most MAX_SEQ_LEN, + 2); 0 = MAX_QUEUE x 64. Long texts fill it sooner than short "
                         "ones: over it, 503 with Retry-After."),
    "MAX_QUEUE_WAIT_S": ("0", "Most estimated seconds of queued work (tokens x the measured seconds per token); "
                         "a request that would wait longer is shed with 503 instead of timing out with 504. "
                         "0 = REQUEST_TIMEOUT_S / 2."),
    "SHED_PROMPT_PER_S": ("20", "503s (queue full) answered at once per second; beyond that rate each is held for "
                          "its Retry-After (at most 5 s) first, so clients retrying at once cannot take the CPU "
                          "the model needs."),
    "MAX_TEXTS": ("64", "Most texts in one request's `texts` list (more: 413)."),
    "MAX_TEXT_CHARS": ("5000", "Longest text in characters (longer: 413, rejected, not truncated). The tokenizer "
                       "always truncates to MAX_SEQ_LEN tokens as well."),
    "MAX_SEQ_LEN": ("256", "Tokenizer truncation length in tokens (capped at the model's max positions)."),
    "MAX_BODY_BYTES": ("262144", "Largest request body; enforced from Content-Length and while streaming (413)."),
    "REQUEST_TIMEOUT_S": ("10", "Deadline for one /analyze request, queueing included (504 after it)."),
    "MAX_HEADER_BYTES": ("16384", "Largest request head (request line and headers) in bytes, counted before "
                         "parsing (more: 431, connection closed)."),
    "MAX_HEADERS": ("100", "Most request headers (more: 431, connection closed)."),
    "HEADER_TIMEOUT_S": ("10", "Time for a request's head to arrive, from its first byte or from the connection's "
                         "opening (slower: 408, connection closed; a connection that sent nothing is closed)."),
    "BODY_TIMEOUT_S": ("30", "Time for a request's whole body to arrive, from the end of its head (slower: 408, "
                       "connection closed)."),
    "KEEPALIVE_TIMEOUT_S": ("15", "How long an idle keep-alive connection stays open between requests."),
    "SHUTDOWN_DELAY_S": ("0", "On SIGTERM: seconds to keep serving with /readyz=503 before closing the listener "
                         "(lets Kubernetes take the pod out of the Service first)."),
    "GRACEFUL_TIMEOUT_S": ("25", "After that, how long in-flight requests may take before they are cancelled."),
    "NEURON_MODEL": ("", "BACKEND=neuron/neuronx: the compiled model to use (trusted without metadata). Default: "
                     "<version dir>/model.neuron.pt (neuronx: model.neuronx.pt, written by the compile job), else "
                     "NEURON_CACHE_DIR/<version>/<same name>; usable only when its neuron.json (neuronx.json) names "
                     "the version served and NEURON_BATCH_SIZE x NEURON_SEQ_LEN."),
    "NEURON_BATCH_SIZE": ("8", "BACKEND=neuron/neuronx: the compiled batch size (every call is padded to it)."),
    "NEURON_SEQ_LEN": ("128", "BACKEND=neuron/neuronx: compiled sequence length in tokens (texts truncated/padded)."),
    "NEURON_CACHE_DIR": ("/tmp/neuron", "BACKEND=neuron/neuronx: where a start-up compile is written (an emptyDir)."),
    "NEURON_COMPILE_AT_START": ("0", "No usable compiled model: 0 = exit at start-up, one line naming path, version, "
                                "shapes and remedies (a version `latest` names later is retried until compiled); "
                                "1 = compile into NEURON_CACHE_DIR first (minutes, per pod)."),
    "WARMUP": ("1", "Run warm-up batches before /readyz turns 200."),
    "LOG_LEVEL": ("info", "uvicorn log level."),
    "ACCESS_LOG": ("0", "Log every request (uvicorn access log). Off by default: it costs throughput; "
                   "/metrics has the counts and latencies."),
}


def _get(env: Mapping[str, str], name: str) -> str:
    value = env.get(name)
    if value is None or value.strip() == "":
        return ENV_DOC[name][0]
    return value.strip()


def _int(env: Mapping[str, str], name: str, lo: int, hi: Optional[int] = None) -> int:
    raw = _get(env, name)
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an integer") from None
    if value < lo or (hi is not None and value > hi):
        raise ValueError(f"{name}={value} is out of range [{lo}, {hi if hi is not None else 'inf'}]")
    return value


def _float(env: Mapping[str, str], name: str, lo: float) -> float:
    raw = _get(env, name)
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None
    if value < lo or value != value:
        raise ValueError(f"{name}={value} must be >= {lo}")
    return value


def _choice(env: Mapping[str, str], name: str, choices: tuple) -> str:
    value = _get(env, name).lower()
    if value not in choices:
        raise ValueError(f"{name}={value!r} must be one of {', '.join(choices)}")
    return value


def _version(env: Mapping[str, str], name: str) -> str:
    """``latest`` or one version folder name (no path: it is looked up under MODEL_DIR)."""
    value = _get(env, name)
    if value in (".", "..") or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", value):
        raise ValueError(f"{name}={value!r} must be latest or a version folder name under MODEL_DIR "
                         "(letters, digits, '.', '_', '-')")
    return value


def _bool(env: Mapping[str, str], name: str) -> bool:
    value = _get(env, name).lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name}={value!r} is not a boolean")


@dataclass(frozen=True)
class Settings:
    model_dir: str
    model_version: str
    model_watch_interval_s: float
    host: str
    port: int
    workers: int
    backend: str
    cpu_engine: str
    torch_threads: int
    max_batch_size: int
    max_batch_wait_ms: float
    max_queue: int
    max_queue_tokens: int
    max_queue_wait_s: float
    shed_prompt_per_s: float
    max_texts: int
    max_text_chars: int
    max_seq_len: int
    max_body_bytes: int
    request_timeout_s: float
    max_header_bytes: int
    max_headers: int
    header_timeout_s: float
    body_timeout_s: float
    keepalive_timeout_s: float
    shutdown_delay_s: float
    graceful_timeout_s: float
    neuron_model: str
    neuron_batch_size: int
    neuron_seq_len: int
    neuron_cache_dir: str
    neuron_compile_at_start: bool
    warmup: bool
    log_level: str
    access_log: bool

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> "Settings":
        env = os.environ if env is None else env
        s = cls(
            model_dir=_get(env, "MODEL_DIR"),
            model_version=_version(env, "MODEL_VERSION"),
            model_watch_interval_s=_float(env, "MODEL_WATCH_INTERVAL_S", 0.0),
            host=_get(env, "HOST"),
            port=_int(env, "PORT", 0, 65535),
            workers=_int(env, "WORKERS", 1, 64),
            backend=_choice(env, "BACKEND", BACKENDS),
            cpu_engine=_choice(env, "CPU_ENGINE", CPU_ENGINES),
            torch_threads=_int(env, "TORCH_THREADS", 0, 1024),
            max_batch_size=_int(env, "MAX_BATCH_SIZE", 1, 4096),
            max_batch_wait_ms=_float(env, "MAX_BATCH_WAIT_MS", 0.0),
            max_queue=_int(env, "MAX_QUEUE", 1),
            max_queue_tokens=_int(env, "MAX_QUEUE_TOKENS", 0),
            max_queue_wait_s=_float(env, "MAX_QUEUE_WAIT_S", 0.0),
            shed_prompt_per_s=_float(env, "SHED_PROMPT_PER_S", 0.0),
            max_texts=_int(env, "MAX_TEXTS", 1),
            max_text_chars=_int(env, "MAX_TEXT_CHARS", 1),
            max_seq_len=_int(env, "MAX_SEQ_LEN", 8, 8192),
            max_body_bytes=_int(env, "MAX_BODY_BYTES", 64),
            request_timeout_s=_float(env, "REQUEST_TIMEOUT_S", 0.001),
            max_header_bytes=_int(env, "MAX_HEADER_BYTES", 256, 1 << 24),
            max_headers=_int(env, "MAX_HEADERS", 1, 100000),
            header_timeout_s=_float(env, "HEADER_TIMEOUT_S", 0.01),
            body_timeout_s=_float(env, "BODY_TIMEOUT_S", 0.01),
            keepalive_timeout_s=_float(env, "KEEPALIVE_TIMEOUT_S", 0.01),
            shutdown_delay_s=_float(env, "SHUTDOWN_DELAY_S", 0.0),
            graceful_timeout_s=_float(env, "GRACEFUL_TIMEOUT_S", 0.0),
            neuron_model=_get(env, "NEURON_MODEL"),
            neuron_batch_size=_int(env, "NEURON_BATCH_SIZE", 1, 1024),
            neuron_seq_len=_int(env, "NEURON_SEQ_LEN", 8, 512),
            neuron_cache_dir=_get(env, "NEURON_CACHE_DIR"),
            neuron_compile_at_start=_bool(env, "NEURON_COMPILE_AT_START"),
            warmup=_bool(env, "WARMUP"),
            log_level=_get(env, "LOG_LEVEL").lower(),
            access_log=_bool(env, "ACCESS_LOG"),
        )
        return s

    @property
    def queue_tokens(self) -> int:
        """MAX_QUEUE_TOKENS, 0 resolved: MAX_QUEUE texts of 64 tokens."""
        return self.max_queue_tokens or self.max_queue * 64

    @property
    def queue_wait_s(self) -> float:
        """MAX_QUEUE_WAIT_S, 0 resolved: half the request deadline, so what is admitted is served in time."""
        return self.max_queue_wait_s or self.request_timeout_s / 2

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def env_help() -> str:
    width = max(len(k) for k in ENV_DOC)
    lines = []
    for name, (default, doc) in ENV_DOC.items():
        lines.append(f"{name.ljust(width)}  default {default!r}\n{' ' * width}  {doc}")
    return "\n".join(lines)
