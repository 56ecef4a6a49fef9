"""The model version rank 0 exports at the end of a run, and the marker that makes a re-run a no-op.

--model-dir/<version>/ holds the model, the tokenizer and metadata.json; it is written to a hidden
temporary folder, fsynced and renamed into place. Then the promotion gate (promote.py: --min-accuracy,
--max-regression against the version `latest` names now) decides whether --model-dir/latest (a text
file holding the version name) is replaced, atomically, to name it; its verdict and reason are
metadata.json's ``promotion``. A version that loses is exported all the same and the run succeeds.
<checkpoint dir>/exported.json records what was exported, so a finished Job that is started again
neither retrains nor exports twice.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from workloads.common.onnx_artifacts import ONNX_FP32, ONNX_INT8, ONNX_META
from workloads.training import checkpoint as ckpt
from workloads.training.args import TrainArgs
from workloads.training.dataset import ID2LABEL
from workloads.training.distributed import FatalError
from workloads.training.promote import Decision, Gate, current_version, point_latest, recorded_accuracy

log = logging.getLogger("trainer")

MARKER = "exported.json"


@dataclass
class RunSummary:
    """What metadata.json records about the run besides the arguments."""

    data_hash: str
    world_size: int
    global_step: int
    samples: int
    eval_samples: int
    train_samples_per_second: float | None
    history: list[dict]


@dataclass(frozen=True)
class Exported:
    """What export() wrote: the version, its folder, its eval accuracy and the promotion gate's verdict."""

    version: str
    path: Path
    accuracy: float | None
    promotion: Decision


def already_exported(ckpt_dir: Path, model_dir: Path, global_step: int, data_hash: str) -> bool:
    """A finished run that is started again (a restarted Job) does not retrain or re-export."""
    try:
        mk = json.loads((ckpt_dir / MARKER).read_text())
    except (OSError, ValueError):
        return False
    version_dir = model_dir / str(mk.get("version"))
    if mk.get("global_step") == global_step and mk.get("data_hash") == data_hash \
            and (version_dir / "config.json").is_file():
        log.info("training already complete: %s holds the model of global step %d; nothing to do",
                 version_dir, global_step)
        return True
    return False


def _new_version(root: Path, now: datetime, data_hash: str) -> str:
    base = f"v{now.strftime('%Y%m%dT%H%M%SZ')}-{data_hash[:8]}"
    version, i = base, 1
    while (root / version).exists():
        i += 1
        version = f"{base}-{i}"
    return version


def _metadata(a: TrainArgs, run: RunSummary, version: str, acc: float | None, now: datetime) -> dict[str, Any]:
    import torch
    import transformers

    sps = run.train_samples_per_second
    return {
        "version": version,
        "base_model": a.base_model,
        "data_hash": run.data_hash,
        "eval_accuracy": acc,
        "eval_history": run.history,
        "epochs": a.epochs,
        "samples": run.samples,
        "eval_samples": run.eval_samples,
        "global_steps": run.global_step,
        "batch_size": a.batch_size,
        "world_size": run.world_size,
        "lr": a.lr,
        "max_length": a.max_length,
        "seed": a.seed,
        "freeze_embeddings": a.freeze_embeddings,
        "train_samples_per_second": round(sps, 2) if sps else None,
        "id2label": {str(k): v for k, v in ID2LABEL.items()},
        "created_at": now.isoformat(timespec="seconds"),
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
    }


def _gate(a: TrainArgs, root: Path, acc: float | None) -> tuple[Gate, Decision]:
    gate = Gate(a.min_accuracy, a.max_regression)
    baseline = current_version(root)
    return gate, gate.decide(acc, baseline, recorded_accuracy(root, baseline) if baseline else None)


def _serving_artifacts(tmp: Path, a: TrainArgs, eval_rows: list[dict]) -> dict[str, Any] | None:
    """The ONNX Runtime graphs (``onnx_export.py``) into the version folder, before it becomes visible. They
    are an optimisation: when the export fails the version is still exported, and the server runs it on
    fp32 PyTorch (its log says why)."""
    if not a.onnx:
        return None
    try:
        from workloads.training.onnx_export import write_onnx

        return write_onnx(tmp, eval_rows, a.max_length)
    except Exception as exc:  # noqa: BLE001 - any failure of an optional artefact; the model itself is fine
        log.warning("ONNX export failed, the version has no ONNX graphs (the server uses fp32 PyTorch): %s: %s",
                    type(exc).__name__, exc)
        for name in (ONNX_FP32, ONNX_INT8, ONNX_META):
            (tmp / name).unlink(missing_ok=True)
        return None


def export(model: Any, tokenizer: Any, a: TrainArgs, run: RunSummary, ckpt_dir: Path,
           eval_rows: list[dict] | None = None) -> Exported:
    """Write the new version and, if it passes the promotion gate, point `latest` at it.
    Refuses (FatalError, `latest` unchanged) a model with NaN/inf weights or a non-finite accuracy."""
    root = a.model_dir
    root.mkdir(parents=True, exist_ok=True)
    now = datetime.now(timezone.utc)
    version = _new_version(root, now, run.data_hash)
    acc = next((h["eval_accuracy"] for h in reversed(run.history) if h.get("eval_accuracy") is not None), None)
    if why := ckpt.export_refusal(model.state_dict(), acc):
        raise FatalError(f"refusing to export: {why}; {root / 'latest'} is unchanged")
    gate, decision = _gate(a, root, acc)
    tmp = root / f".tmp-{version}-{os.getpid()}"
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    meta = _metadata(a, run, version, acc, now)
    meta["promotion"] = decision.as_metadata(gate)
    if (onnx := _serving_artifacts(tmp, a, eval_rows or [])) is not None:
        meta["onnx"] = {k: onnx[k] for k in ("reference_accuracy", "eval_samples") if k in onnx}
        meta["onnx"].update({k: onnx[k]["accuracy"] for k in ("fp32", "int8") if k in onnx})
    (tmp / "metadata.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    for f in tmp.iterdir():  # durable before it becomes visible
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    os.replace(tmp, root / version)
    if decision.promoted:
        point_latest(root, version)
    ckpt.atomic_write_bytes(ckpt_dir / MARKER, json.dumps(
        {"version": version, "global_step": run.global_step, "data_hash": run.data_hash}).encode())
    if decision.promoted:
        log.info("exported %s (eval accuracy %s); %s now points to it", root / version, acc, root / "latest")
    else:
        log.warning("exported %s (eval accuracy %s) but NOT promoted: %s; %s still names %s", root / version, acc,
                    decision.reason, root / "latest", decision.baseline_version or "nothing")
    return Exported(version, root / version, acc, decision)
