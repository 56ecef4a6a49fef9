"""Which ONNX graph the server may serve (``onnx_artifacts.choose``): the fastest whose recorded held-out
accuracy is within the budget of fp32 PyTorch's, and a reason in words either way."""
from __future__ import annotations

import json

import pytest

from workloads.common.onnx_artifacts import ONNX_FP32, ONNX_INT8, ONNX_META, choose, read_meta, within_budget

pytestmark = pytest.mark.workload


def _version(tmp_path, meta, files=(ONNX_FP32, ONNX_INT8)):
    for name in files:
        (tmp_path / name).write_bytes(b"graph")
    if meta is not None:
        (tmp_path / ONNX_META).write_text(meta if isinstance(meta, str) else json.dumps(meta))
    return tmp_path


def _meta(ref=0.9, fp32=0.9, int8=0.897, budget=0.5):
    return {"reference_accuracy": ref, "budget_points": budget, "fp32": {"accuracy": fp32},
            "int8": {"accuracy": int8}}


@pytest.mark.parametrize("int8, expected", [(0.9, "onnx-int8"), (0.8951, "onnx-int8"), (0.8949, "onnx-fp32"),
                                            (0.95, "onnx-int8")])
def test_int8_is_chosen_only_within_half_a_point(tmp_path, int8, expected):
    engine, why = choose(_version(tmp_path, _meta(int8=int8)))
    assert engine == expected
    assert why.startswith(expected)


def test_fp32_out_of_budget_too_means_pytorch_and_both_reasons(tmp_path):
    engine, why = choose(_version(tmp_path, _meta(fp32=0.8, int8=0.7)))
    assert engine is None
    assert "onnx-int8 accuracy 0.7 is more than 0.5 points below fp32's 0.9" in why and "onnx-fp32" in why


def test_missing_files_and_metadata(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert choose(_version(empty, None)) == (None, f"{empty / ONNX_META} is missing or unreadable (the trainer writes it)")
    engine, why = choose(_version(tmp_path, _meta(), files=(ONNX_FP32,)))
    assert engine == "onnx-fp32" and "fp32" in why
    (tmp_path / ONNX_META).write_text("{not json")
    assert read_meta(tmp_path) is None
    assert "missing or unreadable" in choose(tmp_path)[1]
    (tmp_path / ONNX_META).write_text("[1, 2]")
    assert read_meta(tmp_path) is None


def test_without_held_out_rows_only_the_fp32_graph_is_trusted(tmp_path):
    meta = {"reference_accuracy": None, "budget_points": 0.5, "fp32": {"accuracy": None}}
    assert within_budget(meta, "fp32") and not within_budget(meta, "int8")
    assert choose(_version(tmp_path, meta))[0] == "onnx-fp32"


@pytest.mark.parametrize("bad", [{"accuracy": float("nan")}, {"accuracy": True}, {"accuracy": "0.9"}, "x"])
def test_a_malformed_accuracy_is_never_within_budget(bad):
    meta = _meta()
    meta["int8"] = bad
    assert not within_budget(meta, "int8")
