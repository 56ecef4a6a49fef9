"""What every inference backend shares: the ``Predictor`` interface, labels, finite scores, thread count.

Standard library only (torch is the backends' business), so the server's batch
worker can check scores and the backends (``model.py``, ``neuron_backend.py``)
can share these without importing each other.
"""
from __future__ import annotations

import abc
import logging
import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from workloads.common.cpus import usable_cpus

log = logging.getLogger("sentiment.model")

DEFAULT_LABELS = {0: "NEGATIVE", 1: "POSITIVE"}


class NonFiniteOutput(RuntimeError):
    """The model produced a NaN/inf score: answered as a 500, never as JSON with NaN in it."""


def finite_score(s: float) -> float:
    """``s`` as a float, or NonFiniteOutput: JSON has no NaN and a client must never parse one."""
    s = float(s)
    if not math.isfinite(s):
        raise NonFiniteOutput(f"model produced a non-finite score ({s})")
    return s


def default_threads() -> int:
    """torch intra-op threads when TORCH_THREADS is 0: one core fewer than usable (at least 1).

    The event loop (HTTP parsing, JSON) and the tokenizer need a core while the model runs. Measured on
    2 cores: with 2 torch threads, any competition for the cores (the event loop, a neighbour) makes
    OpenMP's spinning barriers collapse throughput about 5x (39 vs 184 req/s under a load average of 4);
    on an idle 2-core slice 1 thread costs about 15 % (201 vs 240 req/s).
    """
    return max(1, usable_cpus() - 1)


def sentiment_labels(config) -> Dict[int, str]:
    """Class index -> NEGATIVE/POSITIVE from a transformers config's ``id2label``."""
    raw = {int(k): str(v).upper() for k, v in (getattr(config, "id2label", None) or {}).items()}
    if sorted(raw.values()) == ["NEGATIVE", "POSITIVE"]:
        return raw
    if len(raw) == 2:
        log.warning("model labels %s are not NEGATIVE/POSITIVE; using 0=NEGATIVE, 1=POSITIVE", raw)
        return dict(DEFAULT_LABELS)
    raise ValueError(f"expected a 2-label sentiment model, got id2label={raw}")


def recorded_accuracy(metadata: Dict) -> Optional[float]:
    """The held-out accuracy a version's metadata.json records (None: absent or not a finite number)."""
    acc = metadata.get("eval_accuracy")
    ok = isinstance(acc, (int, float)) and not isinstance(acc, bool) and math.isfinite(acc)
    return float(acc) if ok else None


def plan_groups(lengths: Sequence[int], waste: float = 2.0) -> List[List[int]]:
    """Sort by length and cut into sub-batches so padding never more than ``waste``x the real tokens.

    Returns lists of original indices. Uniform short texts stay one group; a few
    long texts do not make every short text in the batch pay for their length.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    groups: List[List[int]] = []
    cur: List[int] = []
    real = 0
    for i in order:
        L = lengths[i]
        if cur and (len(cur) + 1) * L > waste * (real + L):
            groups.append(cur)
            cur, real = [], 0
        cur.append(i)
        real += L
    if cur:
        groups.append(cur)
    return groups


class Predictor(abc.ABC):
    """Common interface. ``predict`` is called from one thread (the batch worker)."""

    backend = "base"
    quantization = "none"
    version = ""
    threads = 0  # intra-op threads of a CPU engine (0: not a CPU engine)
    accuracy: Optional[float] = None  # metadata.json's eval_accuracy (set by model.load_predictor)
    path: Path

    @abc.abstractmethod
    def predict(self, texts: Sequence[str]) -> List[Dict]:
        """One ``{"label", "score"}`` per text, in order."""

    def warmup(self, max_batch_size: int) -> None:
        probe = "A warm-up sentence that is neither great nor terrible, just long enough to matter."
        for n in sorted({1, min(8, max_batch_size), max_batch_size}):
            self.predict([probe] * n)

    def info(self) -> Dict[str, str]:
        return {"version": self.version, "backend": self.backend, "quantization": self.quantization,
                "model_dir": str(self.path)}
