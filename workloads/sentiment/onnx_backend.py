"""The CPU engines on ONNX Runtime: the trainer's ``model.onnx`` (fp32) and ``model.int8.onnx``.

The graphs come from the trainer (``workloads/training/onnx_export.py``), next to the model version, so
nothing is converted at start-up: a session is created in about 0.1 s. Neither torch nor transformers is
imported (together about 2.5 s of a cold start): the tokenizer is the model's own ``tokenizer.json`` run by
the ``tokenizers`` library (the Rust tokenizer transformers' fast tokenizer wraps, so the token ids are
the same), and the labels come from ``config.json``. Padding is done in numpy per sub-batch
(``plan_groups``), to the sub-batch's longest text, as the PyTorch engine does, so both answer the same
labels for the same texts up to the int8 rounding that ``onnx.json`` records. onnxruntime, numpy and
tokenizers are imported only when an ``OrtPredictor`` is built.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, List, Optional, Sequence

from workloads.common.onnx_artifacts import ONNX_ENGINES
from workloads.sentiment.artifacts import ModelNotFound, ResolvedModel
from workloads.common.cpus import usable_cpus
from workloads.sentiment.predictor import Predictor, finite_score, plan_groups, sentiment_labels

log = logging.getLogger("sentiment.model")

INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class OrtPredictor(Predictor):
    """ONNX Runtime on the CPU execution provider, ``threads`` intra-op threads, no inter-op pool."""

    backend = "cpu"

    def __init__(self, resolved: ResolvedModel, *, engine: str, max_seq_len: int = 256, threads: int = 0) -> None:
        import numpy as np
        import onnxruntime as ort

        if engine not in ONNX_ENGINES:
            raise ValueError(f"CPU_ENGINE={engine!r} is not an ONNX Runtime engine ({', '.join(ONNX_ENGINES)})")
        graph = resolved.path / ONNX_ENGINES[engine][0]
        if not graph.is_file():
            raise ModelNotFound(f"CPU_ENGINE={engine}: {graph} is missing (the trainer writes it with --onnx; "
                                "CPU_ENGINE=auto falls back to fp32 PyTorch)")
        self.np = np
        self.path = resolved.path
        self.version = resolved.version
        self.quantization = engine
        config = _json(self.path / "config.json")
        self.labels = sentiment_labels(SimpleNamespace(id2label=config.get("id2label")))
        limit = int(config.get("max_position_embeddings") or 512)
        model_max = _json(self.path / "tokenizer_config.json").get("model_max_length") or limit
        self.max_seq_len = min(max_seq_len, limit, int(model_max) if model_max < 10 ** 9 else limit)
        self.tokenizer = _tokenizer(self.path, self.max_seq_len)
        self.pad_id = int(config.get("pad_token_id") or 0)
        opts = ort.SessionOptions()
        # Every usable core by default, not one fewer as for PyTorch: with spinning off (below) ONNX Runtime's
        # threads sleep between batches and the event loop gets its core back; measured on 2 cores, 2
        # threads served 202 req/s at 98 % of their ceiling against 123 req/s with 1 (README).
        opts.intra_op_num_threads = threads or usable_cpus()
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No spinning: a waiting intra-op thread would take the core the event loop needs (2-core pods).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(graph), opts, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs() if i.name in INPUTS]
        self.threads = opts.intra_op_num_threads

    def _feed(self, ids: List[List[int]]) -> Dict[str, object]:
        np = self.np
        width = max(len(x) for x in ids)
        input_ids = np.full((len(ids), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(ids), width), dtype=np.int64)
        for r, row in enumerate(ids):
            input_ids[r, :len(row)] = row
            mask[r, :len(row)] = 1
        feed = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)}
        return {k: feed[k] for k in self.inputs}

    def predict(self, texts: Sequence[str]) -> List[Dict]:
        np = self.np
        ids = [e.ids for e in self.tokenizer.encode_batch(list(texts))]
        out: List[Optional[Dict]] = [None] * len(ids)
        for group in plan_groups([len(x) for x in ids]):
            logits = self.session.run(None, self._feed([ids[i] for i in group]))[0].astype(np.float64)
            e = np.exp(logits - logits.max(axis=-1, keepdims=True))
            probs = e / e.sum(axis=-1, keepdims=True)
            for i, row in zip(group, probs):
                k = int(row.argmax())
                out[i] = {"label": self.labels[k], "score": finite_score(row[k])}
        return out  # type: ignore[return-value]


def _json(path: Path) -> Dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelNotFound(f"{path} is missing or not JSON ({exc}): not a saved model") from None
    return data if isinstance(data, dict) else {}


def _tokenizer(path: Path, max_seq_len: int):
    """The model's fast tokenizer (``tokenizer.json``), truncating at ``max_seq_len``, no padding."""
    from tokenizers import Tokenizer

    file = path / "tokenizer.json"
    if not file.is_file():
        raise ModelNotFound(f"{file} is missing: the ONNX engines need the fast tokenizer the trainer saves")
    tok = Tokenizer.from_file(str(file))
    tok.enable_truncation(max_seq_len)
    tok.no_padding()
    return tok
