"""The promotion gate (promote.py's Gate, export.py's use of it) and promote.py by hand, without training.

export() runs on a stand-in model (a real state dict, files written like save_pretrained), so the
gate's whole path through the export is checked in milliseconds: metadata.json records the verdict,
`latest` moves only for a winner, a loser is still on disk. The real trainer runs it in
tests/workloads/sentiment/test_sentiment_model_switch.py.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from workloads.training import export as tx
from workloads.training import promote as pm
from workloads.training.args import COMPONENT_FIELDS, TrainArgs, parse_args
from workloads.training.promote import Gate

pytestmark = pytest.mark.workload

REPO = Path(__file__).resolve().parents[3]
PROMOTE = REPO / "workloads" / "training" / "promote.py"


class FakeModel:
    """What export() asks of a model: a state dict and save_pretrained (config + weights)."""

    def state_dict(self):
        return {"w": torch.zeros(2)}

    def save_pretrained(self, path):
        Path(path).mkdir(parents=True, exist_ok=True)
        (Path(path) / "config.json").write_text("{}")
        (Path(path) / "model.safetensors").write_bytes(b"weights")


class FakeTokenizer:
    def save_pretrained(self, path):
        (Path(path) / "tokenizer_config.json").write_text("{}")


def run_export(tmp_path: Path, acc: float | None, data_hash: str = "abcdef0123", **gate) -> tx.Exported:
    a = TrainArgs(data=tmp_path, model_dir=tmp_path / "models", checkpoint_dir=tmp_path / "ckpt", **gate)
    a.checkpoint_dir.mkdir(exist_ok=True)
    run = tx.RunSummary(data_hash=data_hash, world_size=1, global_step=4, samples=64, eval_samples=32,
                        train_samples_per_second=10.0, history=[{"epoch": 1, "eval_accuracy": acc}])
    return tx.export(FakeModel(), FakeTokenizer(), a, run, a.checkpoint_dir)


def metadata(root: Path, version: str) -> dict:
    return json.loads((root / version / "metadata.json").read_text())


# ------------------------------------------------------------------ the gate's decision
@pytest.mark.parametrize("gate, acc, baseline, base_acc, promoted, words", [
    (Gate(), 0.5, None, None, True, "the first version"),
    (Gate(), 0.1, "v1", 0.9, True, "no promotion gate"),
    (Gate(0.7, 0.02), 0.69, None, None, False, "below --min-accuracy 0.7"),
    (Gate(0.7, 0.02), None, None, None, False, "no held-out accuracy"),
    (Gate(0.7, 0.02), 0.85, "v1", 0.9, False, "more than --max-regression 0.02 below v1's 0.9000"),
    (Gate(None, 0.02), None, "v1", 0.9, False, "eval accuracy none is more than"),
    (Gate(0.7, 0.02), 0.88, "v1", 0.9, True, "passes the gate over v1's 0.9000"),
    (Gate(0.7, 0.02), 0.7, "v1", None, True, "over v1's unknown"),  # the old one recorded no accuracy
    (Gate(0.7, 0.0), 0.9, "v1", 0.9, True, "passes"),  # equal is not worse
])
def test_gate_decides_and_says_why(gate, acc, baseline, base_acc, promoted, words):
    d = gate.decide(acc, baseline, base_acc)
    assert d.promoted is promoted and words in d.reason, d
    assert (d.baseline_version, d.baseline_accuracy) == (baseline, base_acc)
    assert d.as_metadata(gate)["min_accuracy"] == gate.min_accuracy


def test_flags_parse_validate_and_ride_along_in_the_component_args():
    a = parse_args(["--data", "d", "--model-dir", "m", "--checkpoint-dir", "c", "--min-accuracy", "0.8",
                    "--max-regression", "0.05"], check=False)
    assert (a.min_accuracy, a.max_regression) == (0.8, 0.05)
    assert a.to_argv(COMPONENT_FIELDS)[-4:] == ["--min-accuracy", "0.8", "--max-regression", "0.05"]
    with pytest.raises(SystemExit):
        parse_args(["--data", "d", "--model-dir", "m", "--checkpoint-dir", "c", "--min-accuracy", "1.5"], check=False)


# ------------------------------------------------------------------ export through the gate
def test_export_promotes_a_winner_and_keeps_a_loser_unpromoted(tmp_path, caplog):
    root = tmp_path / "models"
    first = run_export(tmp_path, 0.9, min_accuracy=0.7, max_regression=0.02)
    assert first.promotion.promoted and pm.current_version(root) == first.version
    assert metadata(root, first.version)["promotion"]["reason"] == "the first version: nothing promoted to compare with"

    with caplog.at_level("WARNING", logger="trainer"):
        loser = run_export(tmp_path, 0.8, data_hash="1234567890", min_accuracy=0.7, max_regression=0.02)
    assert not loser.promotion.promoted
    assert pm.current_version(root) == first.version  # `latest` unchanged
    meta = metadata(root, loser.version)["promotion"]
    assert meta == {"promoted": False, "baseline_version": first.version, "baseline_accuracy": 0.9,
                    "min_accuracy": 0.7, "max_regression": 0.02, "reason": loser.promotion.reason}
    assert "--max-regression 0.02 below" in meta["reason"]
    assert "NOT promoted" in caplog.text and first.version in caplog.text
    assert pm.incomplete(root, loser.version) is None  # exported in full: promote.py can still pick it

    low = run_export(tmp_path, 0.5, data_hash="fedcba9876", min_accuracy=0.7)
    assert not low.promotion.promoted and "below --min-accuracy 0.7" in low.promotion.reason
    assert pm.current_version(root) == first.version


def test_export_without_gate_flags_promotes_every_version(tmp_path):
    a = run_export(tmp_path, 0.9)
    b = run_export(tmp_path, 0.1, data_hash="1234567890")
    assert b.promotion.promoted and pm.current_version(tmp_path / "models") == b.version != a.version


# ------------------------------------------------------------------ promote.py by hand
def test_promote_switches_latest_atomically_and_reports_the_previous(tmp_path, capsys):
    a = run_export(tmp_path, 0.9)
    b = run_export(tmp_path, 0.5, data_hash="1234567890", min_accuracy=0.7)
    root = tmp_path / "models"
    assert pm.main(["--model-dir", str(root), b.version]) == 0
    assert (root / "latest").read_text() == b.version
    assert f"now names {b.version} (was {a.version})" in capsys.readouterr().out
    assert not [p for p in os.listdir(root) if p.startswith(".latest")]  # no temporary left behind
    assert pm.promote(root, a.version) == b.version  # a rollback is the same command


def _partial(root: Path, name: str, *files: str) -> str:
    (root / name).mkdir(parents=True)
    for f in files:
        (root / name / f).write_text("{" if f == "metadata.json" else "{}")
    return name


@pytest.mark.parametrize("make, words", [
    (lambda root: "v-missing", "does not exist"),
    (lambda root: _partial(root, "v-noweights", "config.json", "metadata.json", "tokenizer_config.json"),
     "no model.safetensors or pytorch_model.bin"),
    (lambda root: _partial(root, "v-nometa", "config.json", "model.safetensors"),
     "no metadata.json, tokenizer_config.json"),
    (lambda root: _partial(root, "v-badmeta", "config.json", "model.safetensors", "tokenizer_config.json",
                           "metadata.json"), "metadata.json is unreadable"),
    (lambda root: ".tmp-v1-123", "not a version name"),
    (lambda root: "latest", "not a version name"),
    (lambda root: "../elsewhere", "not a version name"),
])
def test_promote_refuses_a_missing_or_partial_version(tmp_path, make, words, capsys):
    a = run_export(tmp_path, 0.9)
    root = tmp_path / "models"
    version = make(root)
    assert pm.main(["--model-dir", str(root), version]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"promote.py: error: refusing to promote {version}: ") and words in err, err
    assert err.count("\n") == 1 and "unchanged" in err
    assert pm.current_version(root) == a.version


def test_promote_refuses_a_missing_model_dir_and_runs_as_a_file(tmp_path):
    assert pm.main(["--model-dir", str(tmp_path / "nope"), "v1"]) == 1
    run_export(tmp_path, 0.9)
    proc = subprocess.run([sys.executable, str(PROMOTE), "--model-dir", str(tmp_path / "models"), "v-none"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 1 and "does not exist" in proc.stderr and "Traceback" not in proc.stderr
    code = ("import sys; import workloads.training.promote; "
            "bad = [m for m in ('torch', 'pulumi', 'infra') if m in sys.modules]; assert not bad, bad")
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


def test_current_version_reads_a_symlink_and_ignores_nonsense(tmp_path):
    assert pm.current_version(tmp_path) is None
    (tmp_path / "v7").mkdir()
    os.symlink(tmp_path / "v7", tmp_path / "latest")
    assert pm.current_version(tmp_path) == "v7"
    os.unlink(tmp_path / "latest")
    (tmp_path / "latest").write_text("../x\n")
    assert pm.current_version(tmp_path) is None
    assert pm.recorded_accuracy(tmp_path, "v7") is None


# ------------------------------------------------------------------ the ONNX graphs written at export
def test_export_writes_the_onnx_graphs_into_the_version_before_it_is_visible(tmp_path, monkeypatch):
    from workloads.training import onnx_export

    seen = []

    def fake_write(version_dir, rows, max_length):
        seen.append((version_dir.name, len(rows), max_length, (version_dir / "config.json").is_file()))
        (version_dir / "model.onnx").write_bytes(b"g")
        return {"reference_accuracy": 0.9, "eval_samples": 3, "fp32": {"accuracy": 0.9}, "int8": {"accuracy": 0.897}}

    monkeypatch.setattr(onnx_export, "write_onnx", fake_write)
    out = run_export(tmp_path, 0.9)
    assert seen[0][0].startswith(".tmp-") and seen[0][1:] == (0, 64, True)  # the hidden folder, model saved
    assert (out.path / "model.onnx").is_file()
    assert metadata(tmp_path / "models", out.version)["onnx"] == {
        "reference_accuracy": 0.9, "eval_samples": 3, "fp32": 0.9, "int8": 0.897}


def test_a_failed_onnx_export_leaves_no_graph_and_the_version_still_ships(tmp_path, monkeypatch, caplog):
    from workloads.training import onnx_export

    def broken(version_dir, rows, max_length):
        (version_dir / "model.onnx").write_bytes(b"half")
        raise RuntimeError("exporter crashed")

    monkeypatch.setattr(onnx_export, "write_onnx", broken)
    with caplog.at_level("WARNING", logger="trainer"):
        out = run_export(tmp_path, 0.9)
    assert out.promotion.promoted and not (out.path / "model.onnx").exists()
    assert "onnx" not in metadata(tmp_path / "models", out.version)
    assert "ONNX export failed" in caplog.text and "exporter crashed" in caplog.text


def test_no_onnx_skips_the_export(tmp_path, monkeypatch):
    from workloads.training import onnx_export

    monkeypatch.setattr(onnx_export, "write_onnx", lambda *a: pytest.fail("write_onnx called with --no-onnx"))
    out = run_export(tmp_path, 0.9, onnx=False)
    assert "onnx" not in metadata(tmp_path / "models", out.version) and not (out.path / "model.onnx").exists()
    assert parse_args(["--data", "d", "--model-dir", "m", "--checkpoint-dir", "c", "--no-onnx"], check=False).onnx \
        is False
