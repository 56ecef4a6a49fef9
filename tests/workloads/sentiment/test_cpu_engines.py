"""The CPU engines on the model the real trainer produced (with its ONNX graphs): each loads through the
server's own path (``load_predictor``), answers the held-out split with the labels of fp32 PyTorch within
the accuracy budget, and ``CPU_ENGINE=auto`` picks what ``onnx.json`` allows, saying why."""
from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from workloads.common.onnx_artifacts import ACCURACY_BUDGET_POINTS, ONNX_INT8, ONNX_META
from workloads.sentiment.artifacts import ModelNotFound, resolve_model_dir
from workloads.sentiment.config import Settings
from workloads.sentiment.model import load_predictor

pytestmark = [pytest.mark.workload, pytest.mark.slow]  # uses the trained model (the trainer runs once)
EVAL = REPO / "workloads" / "training" / "data" / "sample" / "eval.jsonl"


def _rows():
    return [json.loads(line) for line in EVAL.read_text().splitlines() if line.strip()]


def _load(model_dir, engine: str):
    env = {"MODEL_DIR": str(model_dir), "BACKEND": "cpu", "CPU_ENGINE": engine, "TORCH_THREADS": "1",
           "WARMUP": "0"}
    return load_predictor(Settings.from_env(env))[0]


def _labels(predictor, texts):
    return [r["label"] for i in range(0, len(texts), 32) for r in predictor.predict(texts[i:i + 32])]


def _accuracy(labels, rows):
    return sum((lab == "POSITIVE") == bool(r["label"]) for lab, r in zip(labels, rows)) / len(rows)


def test_the_trainer_writes_both_graphs_and_their_held_out_checks(trained_model_dir):
    version = resolve_model_dir(str(trained_model_dir)).path
    meta = json.loads((version / ONNX_META).read_text())
    assert (version / "model.onnx").is_file() and (version / ONNX_INT8).is_file()
    assert meta["eval_samples"] > 0 and meta["budget_points"] == ACCURACY_BUDGET_POINTS
    assert 0.5 < meta["reference_accuracy"] <= 1 and meta["fp32"]["accuracy"] == meta["reference_accuracy"]
    assert meta["int8"]["tried"][0]["candidate"] == "all" and meta["int8"]["candidate"]
    recorded = json.loads((version / "metadata.json").read_text())["onnx"]
    assert recorded["int8"] == meta["int8"]["accuracy"] and recorded["fp32"] == meta["fp32"]["accuracy"]


@pytest.fixture(scope="module")
def fp32_labels(trained_model_dir):
    """fp32 PyTorch's labels on the held-out split: what every engine is compared with."""
    return _labels(_load(trained_model_dir, "torch-fp32"), [r["text"] for r in _rows()])


@pytest.mark.parametrize("engine", ["torch-fp32", "onnx-fp32", "onnx-int8"])
def test_each_engine_loads_and_agrees_with_fp32_within_the_budget(trained_model_dir, fp32_labels, engine):
    rows = _rows()
    texts = [r["text"] for r in rows]
    ref = fp32_labels
    predictor = _load(trained_model_dir, engine)
    assert (predictor.backend, predictor.quantization, predictor.threads) == ("cpu", engine, 1)
    labels = _labels(predictor, texts)
    budget = ACCURACY_BUDGET_POINTS / 100 if engine == "onnx-int8" else 0.0
    meta = json.loads((resolve_model_dir(str(trained_model_dir)).path / ONNX_META).read_text())
    if engine == "onnx-int8" and meta["int8"]["candidate"].startswith("all (none"):
        budget = meta["reference_accuracy"] - meta["int8"]["accuracy"] + 1e-9  # recorded as out of budget
    assert _accuracy(ref, rows) - _accuracy(labels, rows) <= budget + 1e-9
    if engine == "onnx-fp32":
        assert labels == ref  # same precision: the same answers
    scores = [r["score"] for r in predictor.predict(texts[:8])]
    assert all(0.5 <= s <= 1.0 for s in scores)


def _copy(trained_model_dir, tmp_path) -> Path:
    version = resolve_model_dir(str(trained_model_dir)).path
    root = tmp_path / "models"
    shutil.copytree(version, root / version.name)
    (root / "latest").write_text(version.name + "\n")
    return root


def test_auto_follows_the_recorded_accuracy_and_says_why(trained_model_dir, tmp_path, caplog):
    root = _copy(trained_model_dir, tmp_path)
    version = next(p for p in root.iterdir() if p.is_dir())
    meta = json.loads((version / ONNX_META).read_text())
    within = (meta["reference_accuracy"] - meta["int8"]["accuracy"]) * 100 <= ACCURACY_BUDGET_POINTS + 1e-9
    assert _load(root, "auto").quantization == ("onnx-int8" if within else "onnx-fp32")

    meta["int8"]["accuracy"] = meta["reference_accuracy"] - 0.02  # 2 points lost: out of budget
    (version / ONNX_META).write_text(json.dumps(meta))
    with caplog.at_level(logging.INFO, logger="sentiment.model"):
        assert _load(root, "auto").quantization == "onnx-fp32"
    assert "onnx-fp32: accuracy" in caplog.text

    (version / ONNX_META).unlink()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="sentiment.model"):
        assert _load(root, "auto").quantization == "torch-fp32"
    assert "serving fp32 PyTorch" in caplog.text and "onnx.json is missing" in caplog.text


def test_an_explicit_engine_without_its_graph_is_a_clear_error(trained_model_dir, tmp_path):
    root = _copy(trained_model_dir, tmp_path)
    next(p for p in root.iterdir() if p.is_dir()).joinpath(ONNX_INT8).unlink()
    with pytest.raises(ModelNotFound, match=r"CPU_ENGINE=onnx-int8: .*model\.int8\.onnx is missing"):
        _load(root, "onnx-int8")
    assert _load(root, "auto").quantization == "onnx-fp32"  # auto skips the missing graph


def test_the_onnx_engine_imports_neither_torch_nor_transformers(trained_model_dir):
    code = ("import sys; from workloads.sentiment.config import Settings; from workloads.sentiment.model import "
            "load_predictor; p, _ = load_predictor(Settings.from_env({'MODEL_DIR': sys.argv[1], 'BACKEND': 'auto', "
            "'TORCH_THREADS': '1'})); print(p.quantization, 'torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-W", "error::DeprecationWarning", "-c", code, str(trained_model_dir)],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[1:] == ["False", "False"] and out.stdout.split()[0].startswith("onnx-")
    assert "deprecat" not in out.stderr.lower()


def test_write_onnx_without_held_out_rows_writes_fp32_only(trained_model_dir, tmp_path):
    from workloads.common.onnx_artifacts import choose
    from workloads.training.onnx_export import write_onnx

    version = next(p for p in _copy(trained_model_dir, tmp_path).iterdir() if p.is_dir())
    for name in ("model.onnx", ONNX_INT8, ONNX_META):
        (version / name).unlink()
    meta = write_onnx(version, [], 64)
    assert "int8" not in meta and meta["reference_accuracy"] is None and not (version / ONNX_INT8).exists()
    assert choose(version)[0] == "onnx-fp32"


def test_write_onnx_when_no_int8_candidate_is_within_budget(trained_model_dir, tmp_path):
    from workloads.common.onnx_artifacts import choose
    from workloads.training.onnx_export import CANDIDATES, write_onnx

    version = next(p for p in _copy(trained_model_dir, tmp_path).iterdir() if p.is_dir())
    meta = write_onnx(version, _rows()[:16], 64, budget_points=-100.0)  # would have to gain 100 points: impossible
    assert [t["candidate"] for t in meta["int8"]["tried"]] == [c for c, _ in CANDIDATES] + ["all (none within budget)"]
    assert meta["int8"]["fp32_nodes"] == 0 and (version / ONNX_INT8).is_file()
    engine, why = choose(version)  # the same impossible budget holds for fp32 too: PyTorch it is
    assert engine is None and "onnx-int8 accuracy" in why and "-100.0 points below fp32's" in why
