"""The ONNX Runtime artefacts beside a model version, and which one the server may use.

The trainer (``workloads/training/onnx_export.py``) writes, next to the saved model in
``<model dir>/<version>/``:

- ``model.onnx``: the fp32 graph (dynamic batch and sequence axes);
- ``model.int8.onnx``: ONNX Runtime's dynamic int8 quantization of it (weights int8, activations
  quantized per batch at run time), with any nodes it had to keep in fp32 to stay accurate;
- ``onnx.json``: for each file its accuracy on the held-out split, measured against the same rows as the
  fp32 PyTorch model, and the accuracy budget it was judged by.

The server picks (``choose``) the fastest artefact whose recorded accuracy is within the budget of
fp32's, so a quantization that costs accuracy on a given model is never served by default. Standard
library only: both images import it, and the server decides without loading anything heavy.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, Optional

ONNX_FP32 = "model.onnx"
ONNX_INT8 = "model.int8.onnx"
ONNX_META = "onnx.json"
#: the most held-out accuracy, in points (percent), a faster variant may lose against fp32 to be the default
ACCURACY_BUDGET_POINTS = 0.5
#: engine name -> (artefact file, onnx.json key), fastest first: ``choose`` tries them in this order
ONNX_ENGINES = {"onnx-int8": (ONNX_INT8, "int8"), "onnx-fp32": (ONNX_FP32, "fp32")}


def read_meta(version_dir: Path) -> Optional[Dict[str, Any]]:
    """``onnx.json`` of a version, or None when absent or unreadable (then no ONNX engine is chosen)."""
    try:
        meta = json.loads((Path(version_dir) / ONNX_META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _accuracy(entry: Any) -> Optional[float]:
    acc = entry.get("accuracy") if isinstance(entry, dict) else None
    ok = isinstance(acc, (int, float)) and not isinstance(acc, bool) and math.isfinite(acc)
    return float(acc) if ok else None


def within_budget(meta: Dict[str, Any], key: str) -> bool:
    """Whether variant ``key`` of ``meta`` lost at most the budget against fp32 PyTorch on the same rows."""
    ref = _accuracy({"accuracy": meta.get("reference_accuracy")})
    acc = _accuracy(meta.get(key))
    if key == "fp32" and ref is None and acc is None and isinstance(meta.get("fp32"), dict):
        return True  # no held-out rows: nothing to judge by, and the fp32 graph is the model's own precision
    budget = meta.get("budget_points", ACCURACY_BUDGET_POINTS)
    if ref is None or acc is None or not isinstance(budget, (int, float)):
        return False
    return (ref - acc) * 100 <= float(budget) + 1e-9


def choose(version_dir: Path) -> tuple[Optional[str], str]:
    """(engine, why) for CPU_ENGINE=auto: the first of ``ONNX_ENGINES`` whose file exists and whose
    accuracy is within budget, or (None, why not) when the server should run fp32 PyTorch."""
    meta = read_meta(version_dir)
    if meta is None:
        return None, f"{Path(version_dir) / ONNX_META} is missing or unreadable (the trainer writes it)"
    skipped = []
    for engine, (name, key) in ONNX_ENGINES.items():
        if not (Path(version_dir) / name).is_file():
            skipped.append(f"{name} missing")
        elif not within_budget(meta, key):
            skipped.append(f"{engine} accuracy {meta.get(key, {}).get('accuracy')} is more than "
                           f"{meta.get('budget_points', ACCURACY_BUDGET_POINTS)} points below fp32's "
                           f"{meta.get('reference_accuracy')}")
        else:
            return engine, f"{engine}: accuracy {meta[key]['accuracy']} vs fp32 {meta['reference_accuracy']}"
    return None, "; ".join(skipped)
