"""TrainArgs (workloads/training/args.py): train.py's flags declared once; to_argv and the parser agree."""
from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from workloads.training.args import COMPONENT_FIELDS, TrainArgs, build_parser, parse_args

pytestmark = pytest.mark.workload

REPO = Path(__file__).resolve().parents[3]
TRAINING = REPO / "workloads" / "training"
SAMPLE = REPO / "workloads" / "training" / "data" / "sample"
REQUIRED = dict(data=Path("/data/d"), model_dir=Path("/models"), checkpoint_dir=Path("/models/checkpoints/j"))


def test_defaults_round_trip_with_only_the_required_flags():
    x = TrainArgs(**REQUIRED)
    assert x.to_argv() == ["--data", "/data/d", "--model-dir", "/models", "--checkpoint-dir", "/models/checkpoints/j"]
    assert parse_args(x.to_argv(), check=False) == x


@pytest.mark.parametrize("changes", [
    dict(epochs=4, batch_size=32, lr=3e-4, max_samples=300, base_model="x/y", metrics_port=0, device="cuda"),
    dict(lr=0.00012345678901, warmup_ratio=0.25, weight_decay=0.0, grad_clip=0.0, seed=0),   # full precision
    dict(allow_fresh_start=True, freeze_embeddings=False, amp=True, on_data_change="fail"),  # the switches
    dict(amp=False, eval_max_samples=7, num_workers=0, checkpoint_every_steps=0, keep_checkpoints=1),
    dict(max_length=8192, max_nonfinite_steps=9, log_every_steps=1, lr=1.0),
])
def test_non_defaults_round_trip(changes):
    x = TrainArgs(**REQUIRED, **changes)
    argv = x.to_argv()
    assert parse_args(argv, check=False) == x
    assert len(argv) == 6 + sum(1 if isinstance(v, bool) else 2 for v in changes.values())  # only what differs


def test_named_fields_keep_their_order_and_skip_what_is_not_given():
    x = TrainArgs(**REQUIRED, lr=1e-4)
    names = ["data", "model_dir", "checkpoint_dir", "lr", "metrics_port", "max_samples", "base_model",
             "allow_fresh_start"]
    assert x.to_argv(names) == ["--data", "/data/d", "--model-dir", "/models", "--checkpoint-dir",
                                "/models/checkpoints/j", "--lr", "0.0001", "--metrics-port", "9464"]
    assert parse_args(x.to_argv(names), check=False) == x


def test_the_parser_is_built_from_the_fields():
    p = build_parser()
    flags = {a.dest: a for a in p._actions if a.dest != "help"}
    assert list(flags) == [f.name for f in dataclasses.fields(TrainArgs)]
    for f in dataclasses.fields(TrainArgs):
        assert flags[f.name].option_strings[0] == TrainArgs.flag(f.name)
        assert flags[f.name].required == (f.default is dataclasses.MISSING)
        if f.default is not dataclasses.MISSING:
            assert p.get_default(f.name) == f.default


def _component_trainer_args() -> tuple[str, set[str]]:
    """The training component's trainer_args() (read from its source, wherever in workloads/training it lives:
    no Pulumi import): its source and the flags it spells."""
    for path in sorted(TRAINING.glob("*.py")):
        text = path.read_text()
        fn = next((n for n in ast.walk(ast.parse(text)) if isinstance(n, ast.FunctionDef) and n.name == "trainer_args"),
                  None)
        if fn is not None:
            return ast.get_source_segment(text, fn) or "", {
                n.value for n in ast.walk(fn)
                if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value.startswith("--")}
    pytest.fail("no trainer_args() in workloads/training")


def test_every_flag_the_component_passes_is_a_field():
    source, flags = _component_trainer_args()
    if not flags:  # it builds them from TrainArgs
        assert "to_argv" in source, source
        return
    assert {"--data", "--model-dir", "--checkpoint-dir", "--epochs", "--lr", "--device"} <= flags
    known = {TrainArgs.flag(f.name) for f in dataclasses.fields(TrainArgs)}
    assert flags <= known, flags - known
    assert flags == {TrainArgs.flag(n) for n in COMPONENT_FIELDS}


def test_component_fields_spell_the_args_like_the_component():
    x = TrainArgs(**REQUIRED, epochs=2, lr=3e-4, device="cpu", base_model="x/y")
    assert x.to_argv(COMPONENT_FIELDS) == [
        "--data", "/data/d", "--model-dir", "/models", "--checkpoint-dir", "/models/checkpoints/j", "--epochs", "2",
        "--batch-size", "16", "--lr", "0.0003", "--checkpoint-every-steps", "200", "--metrics-port", "9464",
        "--device", "cpu", "--base-model", "x/y"]


def test_checked_parse_resolves_paths_and_creates_the_checkpoint_folder(tmp_path):
    base = tmp_path / "model"
    base.mkdir()
    x = TrainArgs(data=SAMPLE, model_dir=tmp_path / "m", checkpoint_dir=tmp_path / "c", base_model=str(base))
    assert parse_args(x.to_argv()) == x
    assert (tmp_path / "c").is_dir() and not (tmp_path / "m").exists()


def test_args_module_imports_neither_torch_nor_pulumi():
    code = ("import sys; import workloads.training.args; "
            "bad = [m for m in ('torch', 'pulumi', 'infra', 'transformers') if m in sys.modules]; "
            "assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
