"""The AWS Inferentia (inf1) backend: a torch-neuron compiled TorchScript model at fixed shapes.

torch_neuron (PyTorch 1.13, from AWS's Neuron pip repository, not PyPI) is
imported only when a ``NeuronPredictor`` is built; importing this module costs
nothing. The compile step itself is ``neuron_compile.py``.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Dict, List, Sequence

from workloads.sentiment import neuron_compile
from workloads.sentiment.artifacts import NEURON_META_FILE, NEURON_MODEL_FILE, ModelNotFound, ResolvedModel
from workloads.sentiment.predictor import Predictor, finite_score, sentiment_labels

log = logging.getLogger("sentiment.model")


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
        self.labels = sentiment_labels(AutoConfig.from_pretrained(str(self.path), local_files_only=True))
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
            out.extend({"label": self.labels[k], "score": finite_score(s)}
                       for s, k in zip(score.tolist(), idx.tolist()))
        return out

    def warmup(self, max_batch_size: int) -> None:
        self.predict(["warm-up"] * self.batch_size)
