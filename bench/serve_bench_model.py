"""The in-process figures of bench/serve_bench.py: the model alone, no HTTP.

- ``measure_ceiling``: the server's model path (tokenize + forward + softmax) in full batches;
- ``measure_variants``: CPU fp32 vs torch dynamic int8 vs ONNX Runtime (fp32, int8) on the eval sample.

Imported by serve_bench.py (run as a script from this folder), never on its own.
"""
from __future__ import annotations

import gc
import os
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional


def _settings(model_dir: str, device: str, batch_size: int, quantize: str):
    from workloads.sentiment.config import Settings

    env = dict(os.environ, MODEL_DIR=model_dir, BACKEND=device, MAX_BATCH_SIZE=str(batch_size),
               CPU_QUANTIZE=quantize, WARMUP="1")
    return Settings.from_env(env)


def measure_ceiling(model_dir: str, device: str, batch_size: int, quantize: str, texts: List[str],
                    duration: float) -> Dict:
    """The server's model path (tokenize + forward + softmax) in full batches, no HTTP.

    On CPU it is measured with every usable core and with 1 thread, and the better one counts:
    with nothing else to serve, all cores is usually best, but on a busy machine 1 thread can be."""
    import torch

    from workloads.common.cpus import usable_cpus
    from workloads.sentiment.model import load_predictor

    runs = {}
    thread_options = [usable_cpus(), 1] if device == "cpu" and usable_cpus() > 1 else [0]
    for threads in thread_options:
        settings = _settings(model_dir, device, batch_size, quantize)
        settings = type(settings)(**dict(settings.as_dict(), torch_threads=threads))
        predictor, load_s = load_predictor(settings)
        n = done = 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < duration / len(thread_options):
            batch = [texts[(n + k) % len(texts)] for k in range(batch_size)]
            predictor.predict(batch)
            n += batch_size
            done += 1
        elapsed = time.perf_counter() - t0
        runs[threads] = {"texts_per_s": round(n / elapsed, 1), "batches": done, "threads": torch.get_num_threads(),
                         "backend": predictor.backend, "quantization": predictor.quantization,
                         "load_s": round(load_s, 2)}
        del predictor
        gc.collect()
    best = max(runs.values(), key=lambda r: r["texts_per_s"])
    res = dict(best, batch_size=batch_size, by_threads={str(r["threads"]): r["texts_per_s"] for r in runs.values()})
    print(f"  ceiling   {res['texts_per_s']:>8.1f} texts/s (batch {batch_size}, {res['backend']}, "
          f"{res['quantization']}, no HTTP; texts/s by torch threads {res['by_threads']})", flush=True)
    return res


def measure_variants(model_dir: str, rows: List[Dict], duration: float, batch_size: int, threads: int) -> Dict:
    """CPU: fp32 vs torch dynamic int8 vs ONNX Runtime (fp32, int8) on the eval sample.

    Accuracy needs a trained model and labelled rows; agreement is against fp32.
    ONNX variants are skipped when onnx/onnxruntime are not importable (onnx needs
    protobuf >= 6, which the Pulumi SDK's pin excludes: use a separate venv).
    """
    import torch

    from workloads.sentiment.artifacts import resolve_model_dir
    from workloads.sentiment.model import TorchPredictor

    resolved = resolve_model_dir(model_dir)
    texts = [r["text"] for r in rows]
    labels = [r.get("label") for r in rows]
    variants: Dict[str, object] = {
        "torch-fp32": TorchPredictor(resolved, quantize="none", threads=threads),
        "torch-dynamic-int8": TorchPredictor(resolved, quantize="dynamic-int8", threads=threads),
    }
    try:
        # A model instance of its own: the TorchScript-based exporter leaves the module it traced altered.
        variants.update(_onnx_variants(resolved, TorchPredictor(resolved, quantize="none", threads=threads),
                                       threads))
    except ImportError as exc:
        print(f"  (ONNX Runtime variants skipped: {exc})")

    def timed(pred, bs: int) -> float:
        n = 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < duration:
            pred.predict([texts[(n + k) % len(texts)] for k in range(bs)])
            n += bs
        return n / (time.perf_counter() - t0)

    ref = None
    out: Dict[str, Dict] = {}
    for name, pred in variants.items():
        pred.predict(texts[:batch_size])  # warm
        batched = []
        for i in range(0, len(texts), batch_size):
            batched.extend(pred.predict(texts[i:i + batch_size]))
        single = [pred.predict([t])[0] for t in texts[:100]]
        if ref is None:
            ref = batched
        pos = [1 if r["label"] == "POSITIVE" else 0 for r in batched]
        acc = (sum(int(p == y) for p, y in zip(pos, labels) if y is not None) / max(1, sum(y is not None for y in labels)))
        out[name] = {
            "texts_per_s_batch": round(timed(pred, batch_size), 1),
            "texts_per_s_single": round(timed(pred, 1), 1),
            "accuracy": round(acc, 4) if any(y is not None for y in labels) else None,
            "agreement_with_fp32": round(sum(a["label"] == b["label"] for a, b in zip(batched, ref)) / len(ref), 4),
            "max_score_diff_vs_fp32": round(max(abs(a["score"] - b["score"]) for a, b in zip(batched, ref)), 4),
            "max_score_diff_single_vs_batched": round(
                max(abs(a["score"] - b["score"]) for a, b in zip(single, batched[:100])), 4),
        }
        print(f"  {name:<20} batch{batch_size} {out[name]['texts_per_s_batch']:>7.1f} t/s  single "
              f"{out[name]['texts_per_s_single']:>6.1f} t/s  acc {out[name]['accuracy']}  agree "
              f"{out[name]['agreement_with_fp32']}  max|dscore| {out[name]['max_score_diff_vs_fp32']}  "
              f"single-vs-batched {out[name]['max_score_diff_single_vs_batched']}", flush=True)
    return {"threads": threads or torch.get_num_threads(), "batch_size": batch_size, "n_texts": len(texts),
            "variants": out}


def _onnx_variants(resolved, fp32, threads: int) -> Dict[str, object]:
    import numpy as np
    import onnx  # noqa: F401  the exporter needs it
    import onnxruntime as ort
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = Path(tempfile.mkdtemp(prefix="sentiment-onnx-"))
    names = ["input_ids", "attention_mask", "token_type_ids"]

    class Logits(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits

    example = fp32._tensors(fp32._encode(["an example", "a slightly longer example sentence"]))
    f32 = tmp / "model.onnx"
    torch.onnx.export(Logits(fp32.model), tuple(example[n] for n in names), str(f32), input_names=names,
                      output_names=["logits"], opset_version=17, dynamo=False,
                      dynamic_axes={**{n: {0: "batch", 1: "seq"} for n in names}, "logits": {0: "batch"}})
    i8 = tmp / "model.int8.onnx"
    quantize_dynamic(str(f32), str(i8), weight_type=QuantType.QInt8)

    class OrtPredictor:
        def __init__(self, path: Path) -> None:
            so = ort.SessionOptions()
            so.intra_op_num_threads = threads or torch.get_num_threads()
            so.inter_op_num_threads = 1
            self.sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

        def predict(self, batch: List[str]) -> List[Dict]:
            from workloads.sentiment.model import _plan_groups

            ids = fp32._encode(batch)
            res: List[Optional[Dict]] = [None] * len(ids)
            for group in _plan_groups([len(x) for x in ids]):
                feed = fp32._tensors([ids[i] for i in group])
                logits = self.sess.run(None, {n: feed[n].numpy() for n in names})[0]
                e = np.exp(logits - logits.max(-1, keepdims=True))
                p = e / e.sum(-1, keepdims=True)
                for i, row in zip(group, p):
                    k = int(row.argmax())
                    res[i] = {"label": fp32.labels[k], "score": float(row[k])}
            return res  # type: ignore[return-value]

    return {"onnxruntime-fp32": OrtPredictor(f32), "onnxruntime-int8": OrtPredictor(i8)}
