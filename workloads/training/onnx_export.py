"""Write the server's ONNX Runtime artefacts next to an exported model version (see
``workloads/common/onnx_artifacts.py`` for the files and how the server picks one).

Runs on rank 0 at export, on the CPU, from the saved folder itself (a fresh fp32 copy, whatever the
trainer's device or precision was), so the server converts nothing at start-up:

1. ``torch.onnx.export`` (the TorchScript-based exporter: dynamic batch and sequence axes, no
   onnxscript needed) writes ``model.onnx``;
2. ONNX Runtime's own quantizer (``onnxruntime.quantization.quantize_dynamic``, int8 weights) writes
   ``model.int8.onnx``. PyTorch's eager int8 (``torch.ao.quantization.quantize_dynamic``) is
   deprecated, and its successor (torchao's ``quantize_``) only runs fast under ``torch.compile``,
   which a 3 s cold start rules out (bench/serve_bench.py --variants measures it);
3. each graph runs on the held-out rows beside fp32 PyTorch. When full int8 loses more than the
   accuracy budget, the candidates below are tried in turn, each keeping more of the model in fp32;
   the first within budget is written. If none is, the full int8 graph is written all the same and
   ``onnx.json`` says it is out of budget, so the server's default is fp32 ONNX.

Nothing here runs on import: torch, onnx and onnxruntime are imported by ``write_onnx``.
"""
from __future__ import annotations

import json
import logging
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence

from workloads.common.onnx_artifacts import ACCURACY_BUDGET_POINTS, ONNX_FP32, ONNX_INT8, ONNX_META

log = logging.getLogger("trainer")

MAX_CHECK_ROWS = 2000  # held-out rows the variants are checked on (the first ones: the same rows every time)
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
#: int8 candidates, most quantized (fastest) first: a name and which MatMul/Gemm nodes stay fp32
CANDIDATES: List[tuple[str, Callable[[str], bool]]] = [
    ("all", lambda node: False),
    ("first-layer-fp32", lambda node: "layer.0/" in node),
    ("ffn-output-fp32", lambda node: node.endswith("/output/dense/MatMul")),
]


def _export_fp32(model: Any, tokenizer: Any, out: Path) -> None:
    import torch

    class Logits(torch.nn.Module):
        """Positional int64 inputs -> logits: the traceable signature of any transformers version."""

        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                              return_dict=False)[0]

    enc = tokenizer(["an example", "a slightly longer example sentence"], padding=True, return_tensors="pt")
    example = tuple(enc[n] if n in enc else torch.zeros_like(enc["input_ids"]) for n in INPUTS)
    axes = {**{n: {0: "batch", 1: "sequence"} for n in INPUTS}, "logits": {0: "batch"}}
    with warnings.catch_warnings():
        # transformers' mask helpers branch on shapes in Python. Traced, each branch is the one every input
        # takes (the mask is as long as the input, and a classifier is never causal), which the held-out
        # check below confirms: the fp32 graph must answer what PyTorch does. The advice that
        # aten::index becomes several ONNX ops is about speed, which the benchmark measures.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Exporting aten::index operator")
        torch.onnx.export(Logits(model), example, str(out), input_names=list(INPUTS), output_names=["logits"],
                          opset_version=17, dynamo=False, dynamic_axes=axes)


def _quantize(src: Path, out: Path, keep_fp32: Callable[[str], bool]) -> List[str]:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    nodes = [n.name for n in onnx.load(str(src), load_external_data=False).graph.node
             if n.op_type in ("MatMul", "Gemm")]
    excluded = [n for n in nodes if keep_fp32(n)]
    logging.disable(logging.WARNING)  # the quantizer logs a line per tensor, and advice, on the root logger
    try:
        quantize_dynamic(str(src), str(out), weight_type=QuantType.QInt8, nodes_to_exclude=excluded)
    finally:
        logging.disable(logging.NOTSET)
    return excluded


def _encoded(tokenizer: Any, texts: Sequence[str], max_length: int) -> List[Dict[str, Any]]:
    """The held-out texts tokenized once, in batches of 32 padded to each batch's longest, as the int64
    arrays every graph (and the PyTorch reference) is fed: the same inputs for every candidate."""
    import numpy as np

    feeds = []
    for i in range(0, len(texts), 32):
        enc = tokenizer(list(texts[i:i + 32]), padding=True, truncation=True, max_length=max_length,
                        return_tensors="np")
        feeds.append({n: (enc[n] if n in enc else np.zeros_like(enc["input_ids"])).astype(np.int64) for n in INPUTS})
    return feeds


def _labels_of(path: Path, feeds: Sequence[Dict[str, Any]]) -> List[int]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return [int(k) for feed in feeds for k in sess.run(None, feed)[0].argmax(-1)]


def _torch_labels(model: Any, feeds: Sequence[Dict[str, Any]]) -> List[int]:
    import torch

    with torch.inference_mode():
        return [k for feed in feeds
                for k in model(**{n: torch.from_numpy(v) for n, v in feed.items()}).logits.argmax(-1).tolist()]


def _accuracy(pred: Sequence[int], gold: Sequence[int]) -> float:
    return round(sum(int(p == g) for p, g in zip(pred, gold)) / max(1, len(gold)), 5)


def write_onnx(version_dir: Path, eval_rows: Sequence[Dict[str, Any]], max_length: int, *,
               budget_points: float = ACCURACY_BUDGET_POINTS, max_rows: int = MAX_CHECK_ROWS) -> Dict[str, Any]:
    """Write model.onnx, model.int8.onnx and onnx.json into ``version_dir`` (a saved model); returns onnx.json.

    Without held-out rows there is no evidence for int8: only the fp32 graph is written (same precision)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    t0 = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(str(version_dir), local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(str(version_dir), local_files_only=True).eval()
    rows = list(eval_rows)[:max_rows]
    texts = [r["text"] for r in rows]
    gold = [int(r["label"]) for r in rows]
    meta: Dict[str, Any] = {"reference": "torch-fp32", "reference_accuracy": None, "budget_points": budget_points,
                            "eval_samples": len(gold), "max_length": max_length,
                            "fp32": {"file": ONNX_FP32, "accuracy": None}}
    if gold:  # before the export: the TorchScript-based exporter leaves the module it traced altered
        feeds = _encoded(tokenizer, texts, max_length)
        meta["reference_accuracy"] = _accuracy(_torch_labels(model, feeds), gold)
    _export_fp32(model, tokenizer, version_dir / ONNX_FP32)
    if gold:
        meta["int8"] = _int8(version_dir, feeds, gold, budget_points, meta)
    meta["seconds"] = round(time.perf_counter() - t0, 1)
    (version_dir / ONNX_META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    log.info("ONNX artefacts in %s (%.1fs): fp32 accuracy %s, int8 %s, torch fp32 %s on %d held-out rows",
             version_dir, meta["seconds"], meta["fp32"]["accuracy"], meta.get("int8"), meta["reference_accuracy"],
             len(gold))
    return meta


def _int8(version_dir: Path, feeds: Sequence[Dict[str, Any]], gold: List[int], budget_points: float,
          meta: Dict[str, Any]) -> Dict[str, Any]:
    """The fp32 graph's accuracy into ``meta``, then the first int8 candidate within budget of the reference."""
    ref = meta["reference_accuracy"]
    meta["fp32"]["accuracy"] = _accuracy(_labels_of(version_dir / ONNX_FP32, feeds), gold)
    tried = []
    for name, keep in CANDIDATES:
        excluded = _quantize(version_dir / ONNX_FP32, version_dir / ONNX_INT8, keep)
        acc = _accuracy(_labels_of(version_dir / ONNX_INT8, feeds), gold)
        tried.append({"candidate": name, "accuracy": acc, "fp32_nodes": len(excluded)})
        if (ref - acc) * 100 <= budget_points + 1e-9:
            break
    else:  # none within budget: the full int8 graph, marked out of budget by its accuracy
        _quantize(version_dir / ONNX_FP32, version_dir / ONNX_INT8, CANDIDATES[0][1])
        tried.append(dict(tried[0], candidate="all (none within budget)"))
    return {"file": ONNX_INT8, "accuracy": tried[-1]["accuracy"], "candidate": tried[-1]["candidate"],
            "fp32_nodes": tried[-1]["fp32_nodes"], "tried": tried}
