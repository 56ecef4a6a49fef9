"""The AWS Neuron backends: a compiled TorchScript model at fixed shapes, on inf1 or on inf2/trn.

- ``BACKEND=neuron``: inf1 (NeuronCore v1), torch-neuron on PyTorch 1.13 (legacy; Dockerfile.neuron);
- ``BACKEND=neuronx``: inf2, trn1, trn2 (NeuronCore v2), torch-neuronx on PyTorch 2.x (Dockerfile.neuronx).

Both run a model that ``neuron_compile.py`` compiled for exactly ``NEURON_BATCH_SIZE x NEURON_SEQ_LEN``,
and both pad every call to those shapes the same way (``_FixedShapePredictor``). Which compiled model a
pod may use is decided by ``neuron_compile.artifact_status`` before anything heavy is imported: the version
and both shapes must match the configuration, and the shapes used are the configuration's, never the
file's. torch_neuron / torch_neuronx are imported only when a predictor is built; importing this module
costs nothing.
"""
from __future__ import annotations

import abc
import importlib.util
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from workloads.sentiment import neuron_compile
from workloads.sentiment.artifacts import NEURON_ARTIFACTS, ModelNotFound, ResolvedModel
from workloads.sentiment.predictor import Predictor, finite_score, sentiment_labels

log = logging.getLogger("sentiment.model")

#: BACKEND -> the compile target whose artifacts it loads
NEURON_BACKENDS = {"neuron": "inf1", "neuronx": "inf2"}


class ArtifactNotReady(ModelNotFound):
    """No usable compiled model for this version and these shapes, and the pod may not compile one.

    ``retry_on_poll``: the compile CronJob writes the artifact later without touching `latest`, so the
    model watcher tries this version again on its next poll instead of waiting for `latest` to change.
    """

    retry_on_poll = True


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def available_backend(dev: Path = Path("/dev")) -> Optional[str]:
    """BACKEND=auto on Neuron: ``neuronx`` (torch_neuronx importable), else ``neuron`` (torch_neuron), else
    None; always None without a Neuron device (``dev``/neuron*), whatever is installed."""
    if not any(dev.glob("neuron*")):
        return None
    return next((b for b, m in (("neuronx", "torch_neuronx"), ("neuron", "torch_neuron")) if _importable(m)), None)


def locate_artifact(resolved: ResolvedModel, target: str, *, neuron_model: str = "", batch_size: int = 8,
                    seq_len: int = 128, cache_dir: str = "/tmp/neuron", compile_at_start: bool = False) -> Path:
    """The compiled model to load for ``resolved`` on ``target``, compiling it only when allowed.

    NEURON_MODEL, when set, is the only candidate (and may lack metadata: the operator named it). Else
    ``<version dir>/<model file>`` (the compile job's output), then ``NEURON_CACHE_DIR/<version>/<model file>``
    (a previous start-up compile). None usable: compile into the cache dir when ``compile_at_start``,
    else ``ArtifactNotReady`` naming what was looked at and both remedies.
    """
    model_file = NEURON_ARTIFACTS[target][0]
    if neuron_model:
        status = neuron_compile.artifact_status(Path(neuron_model), target, resolved.version, batch_size, seq_len,
                                                trust_unlabelled=True)
        if not status.usable:
            raise ModelNotFound(f"NEURON_MODEL={neuron_model}: {status.reason}")
        return status.path
    statuses = [neuron_compile.artifact_status(c, target, resolved.version, batch_size, seq_len)
                for c in (resolved.path / model_file, Path(cache_dir) / resolved.version / model_file)]
    for status in statuses:
        if status.usable:
            return status.path
        if status.state != neuron_compile.MISSING:
            log.warning("ignoring %s", status.reason)
    if not compile_at_start:
        raise ArtifactNotReady(neuron_compile.not_ready_message(target, resolved.version, batch_size, seq_len,
                                                                statuses))
    log.info("NEURON_COMPILE_AT_START=1: compiling %s for %s into %s", resolved.version, target, statuses[-1].path)
    return neuron_compile.compile_artifact(resolved.path, statuses[-1].path, target=target, version=resolved.version,
                                           batch_size=batch_size, seq_len=seq_len)


class _FixedShapePredictor(Predictor):
    """A Neuron-compiled TorchScript model that takes exactly ``batch_size x seq_len`` int64 inputs.

    Every call is padded to those shapes: texts are truncated and padded to ``seq_len`` tokens, a short
    batch is filled with padding rows whose outputs are dropped, and a longer one runs in several calls.
    Subclasses say which target's artifact they load and which runtime registers its ops.
    """

    target = ""

    def __init__(self, resolved: ResolvedModel, *, neuron_model: str = "", batch_size: int = 8,
                 seq_len: int = 128, cache_dir: str = "/tmp/neuron", compile_at_start: bool = False) -> None:
        compiled = locate_artifact(resolved, self.target, neuron_model=neuron_model, batch_size=batch_size,
                                   seq_len=seq_len, cache_dir=cache_dir, compile_at_start=compile_at_start)
        torch = self._runtime()
        from transformers import AutoConfig, AutoTokenizer

        self.torch = torch
        self.path = resolved.path
        self.version = resolved.version
        self.batch_size = batch_size  # the configuration's shapes: artifact_status made sure the file has them
        self.seq_len = seq_len
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
        self.labels = sentiment_labels(AutoConfig.from_pretrained(str(self.path), local_files_only=True))
        self.model = torch.jit.load(str(compiled))
        self.compiled_path = compiled

    @abc.abstractmethod
    def _runtime(self) -> Any:
        """Import torch and the Neuron runtime that registers the compiled graph's ops; returns torch."""

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
            out.extend({"label": self.labels[k], "score": finite_score(s)}
                       for s, k in zip(score.tolist(), idx.tolist()))
        return out

    def warmup(self, max_batch_size: int) -> None:
        self.predict(["warm-up"] * self.batch_size)


class NeuronPredictor(_FixedShapePredictor):
    """inf1 via torch-neuron (PyTorch 1.13, from AWS's Neuron pip repository, not PyPI): ``model.neuron.pt``."""

    backend = "neuron"
    target = "inf1"
    quantization = "neuron-cc default (fp16/bf16 casts)"

    def _runtime(self) -> Any:
        import torch
        import torch_neuron  # noqa: F401  registers the Neuron ops used by the compiled graph

        return torch


class NeuronxPredictor(_FixedShapePredictor):
    """inf2/trn via torch-neuronx (PyTorch 2.x, AWS's Neuron pip repository): ``model.neuronx.pt``, a
    torch.jit-saved ``torch_neuronx.trace`` output."""

    backend = "neuronx"
    target = "inf2"
    quantization = "neuronx-cc default casts"

    def _runtime(self) -> Any:
        import torch
        import torch_neuronx  # noqa: F401  registers the neuron ops torch.jit.load needs

        return torch


PREDICTORS = {"neuron": NeuronPredictor, "neuronx": NeuronxPredictor}


def load_neuron_predictor(resolved: ResolvedModel, backend: str, settings) -> Predictor:
    """``model.load_predictor``'s Neuron branch: the predictor for BACKEND ``backend``, from the settings."""
    return PREDICTORS[backend](resolved, neuron_model=settings.neuron_model, batch_size=settings.neuron_batch_size,
                               seq_len=settings.neuron_seq_len, cache_dir=settings.neuron_cache_dir,
                               compile_at_start=settings.neuron_compile_at_start)
