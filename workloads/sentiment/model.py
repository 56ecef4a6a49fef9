"""Model loading and the inference backends (cpu, cuda, neuron, neuronx).

``load_predictor(settings)`` resolves MODEL_DIR (a trainer root with ``latest``,
or a saved model itself), picks the backend and returns a ``Predictor`` whose
``predict(texts)`` answers ``[{"label": ..., "score": ...}]`` per text, exactly
like ``transformers.pipeline("sentiment-analysis")`` (softmax, top label).

On the CPU, CPU_ENGINE picks the engine: ONNX Runtime int8 or fp32 (``onnx_backend.py``, the
trainer's graphs) or fp32 PyTorch (here); ``auto`` takes the fastest whose held-out accuracy is
within budget (``workloads/common/onnx_artifacts.py``). torch and transformers are imported by the
predictors only; torch_neuron / torch_neuronx only on the Neuron backends (``neuron_backend.py``).
Nothing here touches the network: loads are ``local_files_only``.
"""
from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from workloads.sentiment.artifacts import (
    ModelNotFound,
    ResolvedModel,
    resolve_model_dir,
)
from workloads.sentiment.neuron_backend import NEURON_BACKENDS, available_backend, load_neuron_predictor
from workloads.sentiment.predictor import (
    Predictor,
    default_threads,
    finite_score,
    plan_groups,
    recorded_accuracy,
    sentiment_labels,
)

__all__ = ["TorchPredictor", "check_finite_model", "cpu_engine", "load_predictor", "neuron_available",
           "pick_backend"]

log = logging.getLogger("sentiment.model")


def check_finite_model(model, metadata: Dict, path) -> None:
    """Refuse a model whose weights hold NaN/inf or whose metadata names a non-finite eval accuracy."""
    import torch

    for name, t in model.state_dict().items():
        if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ModelNotFound(f"{path} is not a usable model: weight {name} holds NaN/inf")
    acc = metadata.get("eval_accuracy")
    if acc is not None and (isinstance(acc, bool) or not isinstance(acc, (int, float)) or not math.isfinite(acc)):
        raise ModelNotFound(f"{path} is not a usable model: metadata.json eval_accuracy is {acc!r}")


# --------------------------------------------------------------------------- predictors
class TorchPredictor(Predictor):
    """Eager PyTorch: fp32 on the CPU, fp16 on CUDA. (CPU int8 is ONNX Runtime's: see onnx_backend.py.)"""

    def __init__(self, resolved: ResolvedModel, *, device: str = "cpu", max_seq_len: int = 256,
                 threads: int = 0) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.torch = torch
        self.path = resolved.path
        self.version = resolved.version
        self.device = torch.device(device)
        self.backend = self.device.type
        if self.backend == "cpu":
            torch.set_num_threads(threads or default_threads())
            self.threads = torch.get_num_threads()
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
        model = AutoModelForSequenceClassification.from_pretrained(str(self.path), local_files_only=True)
        model.eval()
        check_finite_model(model, resolved.metadata, self.path)
        self.labels = sentiment_labels(model.config)
        limit = getattr(model.config, "max_position_embeddings", 512) or 512
        self.max_seq_len = min(max_seq_len, limit, getattr(self.tokenizer, "model_max_length", limit) or limit)
        self.input_names = [n for n in getattr(self.tokenizer, "model_input_names", ["input_ids", "attention_mask"])]
        self.pad_id = self.tokenizer.pad_token_id or 0
        if self.backend == "cuda":
            model = model.to(self.device, dtype=torch.float16)
            self.quantization = "fp16"
        else:
            self.quantization = "torch-fp32"
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
            for group in plan_groups([len(x) for x in ids]):
                logits = self.model(**self._tensors([ids[i] for i in group])).logits
                probs = torch.softmax(logits.float(), dim=-1)
                score, idx = probs.max(dim=-1)
                for i, s, k in zip(group, score.tolist(), idx.tolist()):
                    out[i] = {"label": self.labels[k], "score": finite_score(s)}
        return out  # type: ignore[return-value]


# --------------------------------------------------------------------------- selection
def neuron_available() -> bool:
    """A NeuronCore and a Neuron runtime for it (torch_neuronx or torch_neuron) are both here."""
    return available_backend() is not None


def pick_backend(requested: str) -> str:
    if requested != "auto":
        if requested == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise RuntimeError("BACKEND=cuda but torch.cuda.is_available() is False")
        return requested
    neuron = available_backend()  # neuronx (inf2/trn) before neuron (inf1)
    if neuron is not None:
        return neuron
    if not any(Path("/dev").glob("nvidia[0-9]*")):
        return "cpu"  # no NVIDIA device node, so no CUDA: and no torch import (2 s of a cold start) to learn it
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def cpu_engine(requested: str, resolved: ResolvedModel) -> str:
    """CPU_ENGINE resolved for this version: ``auto`` is the fastest ONNX engine within the accuracy budget
    that the trainer recorded (measured: bench/serve_bench.py --variants, README "Serving performance"),
    else fp32 PyTorch, with the reason logged."""
    if requested != "auto":
        return requested
    from workloads.common.onnx_artifacts import choose

    engine, why = choose(resolved.path)
    if engine is None:
        log.warning("CPU_ENGINE=auto: serving fp32 PyTorch for %s: %s", resolved.version, why)
        return "torch-fp32"
    log.info("CPU_ENGINE=auto: %s", why)
    return engine


def load_predictor(settings) -> Tuple[Predictor, float]:
    """Load, warm and return (predictor, seconds it took)."""
    t0 = time.perf_counter()
    resolved = resolve_model_dir(settings.model_dir, settings.model_version)
    backend = pick_backend(settings.backend)
    if backend in NEURON_BACKENDS:
        predictor: Predictor = load_neuron_predictor(resolved, backend, settings)
    elif backend == "cpu" and (engine := cpu_engine(settings.cpu_engine, resolved)) != "torch-fp32":
        from workloads.sentiment.onnx_backend import OrtPredictor

        predictor = OrtPredictor(resolved, engine=engine, max_seq_len=settings.max_seq_len,
                                 threads=settings.torch_threads)
    else:
        predictor = TorchPredictor(resolved, device=backend, max_seq_len=settings.max_seq_len,
                                   threads=settings.torch_threads)
    predictor.accuracy = recorded_accuracy(resolved.metadata)
    if settings.warmup:
        predictor.warmup(settings.max_batch_size)
    dt = time.perf_counter() - t0
    log.info("model %s loaded from %s on %s (%s) in %.2fs", predictor.version, predictor.path,
             predictor.backend, predictor.quantization, dt)
    return predictor, dt
