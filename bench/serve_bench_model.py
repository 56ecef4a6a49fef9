"""The in-process figures of bench/serve_bench.py: the model alone, no HTTP.

- ``measure_ceiling``: the server's own model path (``load_predictor``: tokenize + forward + softmax) with
  the engine and thread count the server reported on /readyz, in full batches;
- ``measure_variants``: every CPU engine (fp32 PyTorch, ONNX Runtime fp32 and int8, and torchao's int8 when
  it is installed) at each thread count, with held-out accuracy and agreement with fp32.

Imported by serve_bench.py (run as a script from this folder), never on its own.
"""
from __future__ import annotations

import gc
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence


def _settings(model_dir: str, device: str, batch_size: int, engine: str, threads: int):
    from workloads.sentiment.config import Settings

    env = dict(os.environ, MODEL_DIR=model_dir, BACKEND=device, MAX_BATCH_SIZE=str(batch_size), CPU_ENGINE=engine,
               TORCH_THREADS=str(threads), WARMUP="1")
    return Settings.from_env(env)


def _rate(predict: Callable[[List[str]], Any], texts: Sequence[str], batch_size: int, duration: float) -> float:
    n = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < duration:
        predict([texts[(n + k) % len(texts)] for k in range(batch_size)])
        n += batch_size
    return n / (time.perf_counter() - t0)


def measure_ceiling(model_dir: str, device: str, batch_size: int, serving: Dict, texts: List[str],
                    duration: float) -> Dict:
    """Texts/s of the model path alone with what the server serves with (``serving``: its /readyz body)."""
    from workloads.sentiment.model import load_predictor

    engine = serving.get("engine", "auto") if device == "cpu" else "auto"
    predictor, load_s = load_predictor(_settings(model_dir, device, batch_size, engine, serving.get("threads", 0)))
    rate = _rate(predictor.predict, texts, batch_size, duration)
    res = {"texts_per_s": round(rate, 1), "batch_size": batch_size, "backend": predictor.backend,
           "engine": predictor.quantization, "threads": predictor.threads, "load_s": round(load_s, 2)}
    print(f"  ceiling   {res['texts_per_s']:>8.1f} texts/s (batch {batch_size}, {res['backend']} {res['engine']}, "
          f"{res['threads']} thread(s), no HTTP)", flush=True)
    del predictor
    gc.collect()
    return res


def _with_onnx(model_dir: str, rows: List[Dict]) -> Path:
    """The version folder, with the trainer's ONNX graphs: written into a copy when the folder has none."""
    from workloads.common.onnx_artifacts import ONNX_META
    from workloads.sentiment.artifacts import resolve_model_dir
    from workloads.training.onnx_export import write_onnx

    path = resolve_model_dir(model_dir).path
    if (path / ONNX_META).is_file():
        return path
    copy = Path(tempfile.mkdtemp(prefix="serve-bench-onnx-")) / path.name
    shutil.copytree(path, copy)
    write_onnx(copy, [r for r in rows if r.get("label") is not None], 256)
    return copy


def _engines(version_dir: Path, threads: int) -> Dict[str, Any]:
    from workloads.sentiment.artifacts import ResolvedModel
    from workloads.sentiment.model import TorchPredictor
    from workloads.sentiment.onnx_backend import OrtPredictor

    resolved = ResolvedModel(path=version_dir, version=version_dir.name)
    engines: Dict[str, Any] = {"torch-fp32": TorchPredictor(resolved, threads=threads),
                               "onnx-fp32": OrtPredictor(resolved, engine="onnx-fp32", threads=threads),
                               "onnx-int8": OrtPredictor(resolved, engine="onnx-int8", threads=threads)}
    try:  # torchao's eager int8 (PyTorch's successor to torch.ao.quantization): measured when installed
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

        ao = TorchPredictor(resolved, threads=threads)
        quantize_(ao.model, Int8DynamicActivationInt8WeightConfig())
        ao.quantization = "torchao-int8"
        engines["torchao-int8"] = ao
    except ImportError as exc:
        print(f"  (torchao-int8 not measured: {exc})")
    return engines


def measure_variants(model_dir: str, rows: List[Dict], duration: float, batch_size: int,
                     thread_counts: Sequence[int]) -> Dict:
    """Every CPU engine at each thread count: texts/s in batches and one at a time, held-out accuracy,
    label agreement and the largest score difference against fp32 PyTorch."""
    import torch

    version_dir = _with_onnx(model_dir, rows)
    texts = [r["text"] for r in rows]
    labels = [r.get("label") for r in rows]
    scored = [y is not None for y in labels]
    out: Dict[str, Dict] = {}
    for threads in thread_counts:
        ref = None
        for name, pred in _engines(version_dir, threads).items():
            torch.set_num_threads(threads)
            batched = [r for i in range(0, len(texts), batch_size) for r in pred.predict(texts[i:i + batch_size])]
            ref = ref or batched
            pos = [int(r["label"] == "POSITIVE") for r in batched]
            acc = sum(int(p == y) for p, y, s in zip(pos, labels, scored) if s) / max(1, sum(scored))
            row = {"threads": threads, "engine": name,
                   "texts_per_s_batch": round(_rate(pred.predict, texts, batch_size, duration), 1),
                   "texts_per_s_single": round(_rate(pred.predict, texts, 1, duration / 2), 1),
                   "accuracy": round(acc, 4) if any(scored) else None,
                   "agreement_with_fp32": round(sum(a["label"] == b["label"] for a, b in zip(batched, ref))
                                                / len(ref), 4),
                   "max_score_diff_vs_fp32": round(max(abs(a["score"] - b["score"]) for a, b in zip(batched, ref)),
                                                   4)}
            out[f"{name}@{threads}"] = row
            print(f"  {name:<13} {threads} thread(s)  batch{batch_size} {row['texts_per_s_batch']:>7.1f} t/s  "
                  f"single {row['texts_per_s_single']:>6.1f} t/s  acc {row['accuracy']}  agree "
                  f"{row['agreement_with_fp32']}  max|dscore| {row['max_score_diff_vs_fp32']}", flush=True)
            del pred
            gc.collect()
    return {"batch_size": batch_size, "n_texts": len(texts), "version_dir": str(version_dir), "variants": out}
