"""Model loading and the inference backends (cpu, cuda, neuron).

``load_predictor(settings)`` resolves MODEL_DIR (a trainer root with ``latest``,
or a saved model itself), picks the backend and returns a ``Predictor`` whose
``predict(texts)`` answers ``[{"label": ..., "score": ...}]`` per text, exactly
like ``transformers.pipeline("sentiment-analysis")`` (softmax, top label).

torch and transformers are imported here only; torch_neuron only on the neuron
backend. Nothing here touches the network: loads are ``local_files_only``.
"""
from __future__ import annotations

import abc
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

log = logging.getLogger("sentiment.model")

NEURON_MODEL_FILE = "model.neuron.pt"
NEURON_META_FILE = "neuron.json"
DEFAULT_LABELS = {0: "NEGATIVE", 1: "POSITIVE"}


class NonFiniteOutput(RuntimeError):
    """The model produced a NaN/inf score: answered as a 500, never as JSON with NaN in it."""


def _finite_score(s: float) -> float:
    s = float(s)
    if not math.isfinite(s):
        raise NonFiniteOutput(f"model produced a non-finite score ({s})")
    return s


def check_finite_model(model, metadata: Dict, path) -> None:
    """Refuse a model whose weights hold NaN/inf or whose metadata names a non-finite eval accuracy."""
    import torch

    for name, t in model.state_dict().items():
        if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ModelNotFound(f"{path} is not a usable model: weight {name} holds NaN/inf")
    acc = metadata.get("eval_accuracy")
    if acc is not None and (isinstance(acc, bool) or not isinstance(acc, (int, float)) or not math.isfinite(acc)):
        raise ModelNotFound(f"{path} is not a usable model: metadata.json eval_accuracy is {acc!r}")


class ModelNotFound(RuntimeError):
    pass


# --------------------------------------------------------------------------- model dir
@dataclass(frozen=True)
class ResolvedModel:
    path: Path              # the saved-model directory (has config.json)
    version: str            # what `latest` named, or metadata's version, or the dir name
    metadata: Dict = field(default_factory=dict)


def resolve_model_dir(model_dir: str) -> ResolvedModel:
    """MODEL_DIR -> the version directory to load.

    - ``MODEL_DIR/config.json`` exists: MODEL_DIR is the model;
    - else ``MODEL_DIR/latest`` is a text file naming a version directory
      under MODEL_DIR (a symlink to that directory works too).
    """
    root = Path(model_dir)
    if not root.is_dir():
        raise ModelNotFound(f"MODEL_DIR {root} is not a directory")
    if (root / "config.json").is_file():
        path, version = root, None
    else:
        latest = root / "latest"
        if latest.is_dir():  # a symlink to the version directory
            path = latest.resolve()
            version = path.name
        elif latest.is_file():
            name = latest.read_text(encoding="utf-8").strip()
            if not name or "/" in name or "\\" in name or name in (".", ".."):
                raise ModelNotFound(f"{latest} must hold one version directory name, got {name!r}")
            path, version = root / name, name
        else:
            raise ModelNotFound(f"{root} has neither config.json nor a `latest` file")
        if not (path / "config.json").is_file():
            raise ModelNotFound(f"{path} (named by {latest}) is not a saved model: no config.json")
    metadata: Dict = {}
    meta_file = path / "metadata.json"
    if meta_file.is_file():
        try:
            metadata = json.loads(meta_file.read_text(encoding="utf-8"))
            if not isinstance(metadata, dict):
                metadata = {}
        except (OSError, ValueError):
            log.warning("ignoring unreadable %s", meta_file)
    if version is None:
        version = str(metadata.get("version") or path.name)
    return ResolvedModel(path=path, version=version, metadata=metadata)


def usable_cpus() -> int:
    """CPUs this process may use: the affinity mask, capped by a cgroup v2/v1 CPU quota."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    quota = None
    try:
        raw = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if raw and raw[0] != "max":
            quota = int(raw[0]) / int(raw[1])
    except (OSError, ValueError, IndexError):
        try:
            q = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
            p = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
            if q > 0 and p > 0:
                quota = q / p
        except (OSError, ValueError):
            pass
    if quota:
        n = min(n, max(1, math.ceil(quota)))
    return max(1, n)


def default_threads() -> int:
    """torch intra-op threads when TORCH_THREADS is 0: one core fewer than usable (at least 1).

    The event loop (HTTP parsing, JSON) and the tokenizer need a core while the model runs. Measured on
    2 cores: with 2 torch threads, any competition for the cores (the event loop, a neighbour) makes
    OpenMP's spinning barriers collapse throughput about 5x (39 vs 184 req/s under a load average of 4);
    on an idle 2-core slice 1 thread costs about 15 % (201 vs 240 req/s).
    """
    return max(1, usable_cpus() - 1)


def _labels(config) -> Dict[int, str]:
    raw = {int(k): str(v).upper() for k, v in (getattr(config, "id2label", None) or {}).items()}
    if sorted(raw.values()) == ["NEGATIVE", "POSITIVE"]:
        return raw
    if len(raw) == 2:
        log.warning("model labels %s are not NEGATIVE/POSITIVE; using 0=NEGATIVE, 1=POSITIVE", raw)
        return dict(DEFAULT_LABELS)
    raise ValueError(f"expected a 2-label sentiment model, got id2label={raw}")


# --------------------------------------------------------------------------- predictors
class Predictor(abc.ABC):
    """Common interface. ``predict`` is called from one thread (the batch worker)."""

    backend = "base"
    quantization = "none"
    version = ""
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


def _plan_groups(lengths: Sequence[int], waste: float = 2.0) -> List[List[int]]:
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


class TorchPredictor(Predictor):
    """Eager PyTorch on CPU (optionally int8 dynamic-quantized) or CUDA (fp16)."""

    def __init__(self, resolved: ResolvedModel, *, device: str = "cpu", quantize: str = "none",
                 max_seq_len: int = 256, threads: int = 0) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.torch = torch
        self.path = resolved.path
        self.version = resolved.version
        self.device = torch.device(device)
        self.backend = self.device.type
        if self.backend == "cpu":
            torch.set_num_threads(threads or default_threads())
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
        model = AutoModelForSequenceClassification.from_pretrained(str(self.path), local_files_only=True)
        model.eval()
        check_finite_model(model, resolved.metadata, self.path)
        self.labels = _labels(model.config)
        limit = getattr(model.config, "max_position_embeddings", 512) or 512
        self.max_seq_len = min(max_seq_len, limit, getattr(self.tokenizer, "model_max_length", limit) or limit)
        self.input_names = [n for n in getattr(self.tokenizer, "model_input_names", ["input_ids", "attention_mask"])]
        self.pad_id = self.tokenizer.pad_token_id or 0
        if self.backend == "cpu" and quantize == "dynamic-int8":
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch.ao deprecation notice; the API works in 2.x
                model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
            self.quantization = "dynamic-int8"
        elif self.backend == "cuda":
            model = model.to(self.device, dtype=torch.float16)
            self.quantization = "fp16"
        else:
            self.quantization = "none"
        self.model = model

    def _encode(self, texts: Sequence[str]):
        enc = self.tokenizer(list(texts), truncation=True, max_length=self.max_seq_len, padding=False,
                             return_attention_mask=False, return_token_type_ids=False)
        return enc["input_ids"]

    def _tensors(self, ids: List[List[int]]):
        torch = self.torch
        n = len(ids)
        width = max(len(x) for x in ids)
        width = min(self.max_seq_len, -(-width // 8) * 8)  # round up to a multiple of 8
        input_ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        for r, row in enumerate(ids):
            input_ids[r, :len(row)] = torch.tensor(row, dtype=torch.long)
            mask[r, :len(row)] = 1
        feed = {"input_ids": input_ids, "attention_mask": mask}
        if "token_type_ids" in self.input_names:
            feed["token_type_ids"] = torch.zeros_like(input_ids)
        if self.device.type != "cpu":
            feed = {k: v.to(self.device, non_blocking=True) for k, v in feed.items()}
        return feed

    def predict(self, texts: Sequence[str]) -> List[Dict]:
        torch = self.torch
        ids = self._encode(texts)
        out: List[Optional[Dict]] = [None] * len(ids)
        with torch.inference_mode():
            for group in _plan_groups([len(x) for x in ids]):
                logits = self.model(**self._tensors([ids[i] for i in group])).logits
                probs = torch.softmax(logits.float(), dim=-1)
                score, idx = probs.max(dim=-1)
                for i, s, k in zip(group, score.tolist(), idx.tolist()):
                    out[i] = {"label": self.labels[k], "score": _finite_score(s)}
        return out  # type: ignore[return-value]


class NeuronPredictor(Predictor):
    """AWS Inferentia (inf1) via torch-neuron: a TorchScript model compiled for fixed shapes.

    The compiled model (``model.neuron.pt`` + ``neuron.json``, see
    ``neuron_compile.py``) takes exactly ``batch_size x seq_len`` int64 inputs,
    so every call is padded to those shapes: texts are truncated and padded to
    ``seq_len`` tokens, a short batch is filled with padding rows whose outputs
    are dropped, and a longer one runs in several calls.

    Where it looks, in order: NEURON_MODEL; ``<version dir>/model.neuron.pt``;
    ``NEURON_CACHE_DIR/<version>/model.neuron.pt``. A compiled model whose
    ``neuron.json`` names another version or other shapes is stale. With none
    usable the model is compiled into NEURON_CACHE_DIR first (the model volume
    is mounted read-only). torch_neuron (PyTorch 1.13, from AWS's Neuron pip
    repository, not PyPI) is imported only here.
    """

    backend = "neuron"
    quantization = "neuron-cc default (fp16/bf16 casts)"

    def __init__(self, resolved: ResolvedModel, *, neuron_model: str = "", batch_size: int = 8,
                 seq_len: int = 128, cache_dir: str = "/tmp/neuron") -> None:
        import torch
        import torch_neuron  # noqa: F401  registers the Neuron ops used by the compiled graph
        from transformers import AutoConfig, AutoTokenizer

        from workloads.sentiment import neuron_compile

        self.torch = torch
        self.path = resolved.path
        self.version = resolved.version
        candidates = [Path(neuron_model)] if neuron_model else []
        candidates += [self.path / NEURON_MODEL_FILE, Path(cache_dir) / self.version / NEURON_MODEL_FILE]
        compiled = next((c for c in candidates if self._usable(c, batch_size, seq_len)), None)
        if compiled is None:
            if neuron_model:
                raise ModelNotFound(f"NEURON_MODEL={neuron_model} is missing or was built for another "
                                    f"model version or shape")
            compiled = neuron_compile.compile_model(self.path, candidates[-1], batch_size=batch_size,
                                                    seq_len=seq_len, version=self.version)
        meta = json.loads(compiled.with_name(NEURON_META_FILE).read_text()) \
            if compiled.with_name(NEURON_META_FILE).is_file() else {}
        self.batch_size = int(meta.get("batch_size", batch_size))
        self.seq_len = int(meta.get("seq_len", seq_len))
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
        self.labels = _labels(AutoConfig.from_pretrained(str(self.path), local_files_only=True))
        self.model = torch.jit.load(str(compiled))
        self.compiled_path = compiled

    def _usable(self, path: Path, batch_size: int, seq_len: int) -> bool:
        if not path.is_file():
            return False
        meta_file = path.with_name(NEURON_META_FILE)
        if not meta_file.is_file():
            return True  # hand-made: trust it, shapes default to the settings
        try:
            meta = json.loads(meta_file.read_text())
        except ValueError:
            return False
        if meta.get("version") and meta["version"] != self.version:
            log.warning("%s was compiled for model version %s, not %s: ignoring it", path, meta["version"],
                        self.version)
            return False
        return True

    def predict(self, texts: Sequence[str]) -> List[Dict]:
        torch = self.torch
        out: List[Dict] = []
        for i in range(0, len(texts), self.batch_size):
            chunk = list(texts[i:i + self.batch_size])
            n = len(chunk)
            chunk += [""] * (self.batch_size - n)
            enc = self.tokenizer(chunk, truncation=True, max_length=self.seq_len, padding="max_length",
                                 return_tensors="pt")
            with torch.no_grad():
                res = self.model(enc["input_ids"].long(), enc["attention_mask"].long(),
                                 enc["token_type_ids"].long())
            logits = res[0] if isinstance(res, (tuple, list)) else res
            probs = torch.softmax(logits.float()[:n], dim=-1)
            score, idx = probs.max(dim=-1)
            out.extend({"label": self.labels[k], "score": _finite_score(s)}
                       for s, k in zip(score.tolist(), idx.tolist()))
        return out

    def warmup(self, max_batch_size: int) -> None:
        self.predict(["warm-up"] * self.batch_size)


# --------------------------------------------------------------------------- selection
def neuron_available() -> bool:
    if not any(Path("/dev").glob("neuron*")):
        return False
    try:
        import importlib.util

        return importlib.util.find_spec("torch_neuron") is not None
    except (ImportError, ValueError):
        return False


def pick_backend(requested: str) -> str:
    if requested != "auto":
        if requested == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise RuntimeError("BACKEND=cuda but torch.cuda.is_available() is False")
        return requested
    if neuron_available():
        return "neuron"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def cpu_quantization(requested: str) -> str:
    """CPU default chosen by measurement (see bench/serve_bench.py variants): int8 dynamic."""
    return "dynamic-int8" if requested == "auto" else requested


def load_predictor(settings) -> Tuple[Predictor, float]:
    """Load, warm and return (predictor, seconds it took)."""
    t0 = time.perf_counter()
    resolved = resolve_model_dir(settings.model_dir)
    backend = pick_backend(settings.backend)
    if backend == "neuron":
        predictor: Predictor = NeuronPredictor(
            resolved, neuron_model=settings.neuron_model, batch_size=settings.neuron_batch_size,
            seq_len=settings.neuron_seq_len, cache_dir=settings.neuron_cache_dir)
    else:
        predictor = TorchPredictor(
            resolved, device=backend,
            quantize=cpu_quantization(settings.cpu_quantize) if backend == "cpu" else "none",
            max_seq_len=settings.max_seq_len, threads=settings.torch_threads,
        )
    if settings.warmup:
        predictor.warmup(settings.max_batch_size)
    dt = time.perf_counter() - t0
    log.info("model %s loaded from %s on %s (%s) in %.2fs", predictor.version, predictor.path,
             predictor.backend, predictor.quantization, dt)
    return predictor, dt
