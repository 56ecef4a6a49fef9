"""The Neuron compile CLI (the compile CronJob's command) with a fake compiler: version resolution, the
up-to-date skip, recompiles when stale, the metadata, atomic writes and the exit codes 0 / 1 / 2."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from workloads.sentiment import neuron_compile

pytestmark = pytest.mark.workload

FILES = {"inf1": ("model.neuron.pt", "neuron.json"), "inf2": ("model.neuronx.pt", "neuronx.json")}


@pytest.fixture()
def models(tmp_path) -> Path:
    root = tmp_path / "models"
    for version in ("v1", "v2"):
        (root / version).mkdir(parents=True)
        (root / version / "config.json").write_text("{}")
    (root / "latest").write_text("v2\n")
    return root


@pytest.fixture()
def compiler(monkeypatch):
    """The compiler call replaced; ``fail`` makes the next compile raise after writing half a file."""
    state = {"calls": [], "fail": None}

    def trace(target, model_path, batch_size, seq_len, compiler_args=None):
        state["calls"].append((target, Path(model_path).name, batch_size, seq_len))

        def save(dest: str) -> None:
            Path(dest).write_text("half a model")
            if state["fail"]:
                raise RuntimeError(state["fail"])
            Path(dest).write_text(f"{target} {batch_size}x{seq_len}")
        return save, {"torch": "2.9.1", "compiler": "2.9.0.2.15.32035"}

    monkeypatch.setattr(neuron_compile, "trace", trace)
    return state


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        rc = neuron_compile.main(list(argv))
    except SystemExit as exc:  # argparse's exits (usage errors)
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("target", ["inf1", "inf2"])
def test_compiles_latest_into_its_version_dir_with_metadata_then_is_up_to_date(models, compiler, capsys, target):
    model_file, meta_file = FILES[target]
    rc, out, _ = run(capsys, "--target", target, "--model-dir", str(models), "--batch-size", "8", "--seq-len", "128")
    assert rc == 0 and out.strip() == f"compiled: {models / 'v2' / model_file}"
    assert compiler["calls"] == [(target, "v2", 8, 128)]  # latest -> v2
    assert (models / "v2" / model_file).read_text() == f"{target} 8x128"
    meta = json.loads((models / "v2" / meta_file).read_text())
    assert meta == {"target": target, "version": "v2", "batch_size": 8, "seq_len": 128,
                    "source": str(models / "v2"), "torch": "2.9.1", "compiler": "2.9.0.2.15.32035",
                    "compile_seconds": meta["compile_seconds"]}
    assert sorted(p.name for p in (models / "v2").iterdir()) == sorted(["config.json", model_file, meta_file])

    rc, out, _ = run(capsys, "--target", target, "--model-dir", str(models))
    assert rc == 0 and out.startswith(f"up to date: {models / 'v2' / model_file} ({target}, model version v2, "
                                      "batch 8 x seq 128)")
    assert len(compiler["calls"]) == 1
    rc, _, _ = run(capsys, "--target", target, "--model-dir", str(models), "--force")
    assert rc == 0 and len(compiler["calls"]) == 2


def test_recompiles_when_stale_shapes_or_version(models, compiler, capsys):
    base = ["--target", "inf2", "--model-dir", str(models)]
    assert run(capsys, *base, "--batch-size", "4", "--seq-len", "64")[0] == 0
    assert run(capsys, *base)[0] == 0  # the defaults, 8 x 128: the 4 x 64 artifact is stale
    assert compiler["calls"] == [("inf2", "v2", 4, 64), ("inf2", "v2", 8, 128)]
    meta_file = models / "v2" / "neuronx.json"
    meta = json.loads(meta_file.read_text())
    assert (meta["batch_size"], meta["seq_len"]) == (8, 128)
    meta_file.write_text(json.dumps({**meta, "version": "v1"}))  # e.g. copied over from another version
    assert run(capsys, *base)[0] == 0 and len(compiler["calls"]) == 3
    meta_file.write_text("{broken")
    assert run(capsys, *base)[0] == 0 and len(compiler["calls"]) == 4
    assert json.loads(meta_file.read_text())["version"] == "v2"


def test_a_pinned_version_and_the_environment_defaults(models, compiler, capsys, monkeypatch):
    monkeypatch.setenv("MODEL_DIR", str(models))
    monkeypatch.setenv("NEURON_BATCH_SIZE", "2")
    monkeypatch.setenv("NEURON_SEQ_LEN", "32")
    assert run(capsys, "--target", "inf2", "--version", "v1")[0] == 0
    assert compiler["calls"] == [("inf2", "v1", 2, 32)] and (models / "v1" / "model.neuronx.pt").is_file()
    assert not (models / "v2" / "model.neuronx.pt").exists()  # one version per run


def test_out_overrides_the_destination(models, compiler, capsys, tmp_path):
    out = tmp_path / "elsewhere" / "m.pt"
    assert run(capsys, "--target", "inf1", "--model-dir", str(models), "--out", str(out))[0] == 0
    assert out.read_text() == "inf1 8x128" and json.loads((out.parent / "neuron.json").read_text())["version"] == "v2"


def test_a_failing_compile_leaves_nothing_behind_and_exits_1(models, compiler, capsys):
    compiler["fail"] = "neuronx-cc: internal\ncompiler error"
    rc, out, err = run(capsys, "--target", "inf2", "--model-dir", str(models))
    assert rc == 1 and out == ""
    assert err == ("neuron_compile: compile failed (inf2, model version v2): RuntimeError: neuronx-cc: internal "
                   "compiler error\n")
    assert sorted(p.name for p in (models / "v2").iterdir()) == ["config.json"]  # no model, no metadata, no tmp

    # a failing recompile keeps the previous artifact and its metadata exactly as they were
    compiler["fail"] = None
    assert run(capsys, "--target", "inf2", "--model-dir", str(models), "--seq-len", "64")[0] == 0
    before = {p.name: p.read_bytes() for p in (models / "v2").iterdir()}
    compiler["fail"] = "out of memory"
    assert run(capsys, "--target", "inf2", "--model-dir", str(models))[0] == 1
    assert {p.name: p.read_bytes() for p in (models / "v2").iterdir()} == before


def test_a_missing_compiler_is_exit_1_with_one_line(models, capsys):
    """The real compiler path where nothing can compile (no torch_neuronx here, not even a real model)."""
    rc, _, err = run(capsys, "--target", "inf2", "--model-dir", str(models))
    assert rc == 1 and err.count("\n") == 1 and "compile failed (inf2, model version v2)" in err


@pytest.mark.parametrize("argv, needle", [
    (["--version", "v9"], "--model-dir/--version: MODEL_VERSION=v9:"),
    (["--target", "inf3"], "argument --target: invalid choice: 'inf3'"),
    (["--batch-size", "0"], "argument --batch-size: 0 is out of range [1, 1024]"),
    (["--seq-len", "abc"], "argument --seq-len: 'abc' is not an integer"),
    (["--frobnicate"], "unrecognized arguments: --frobnicate"),
])
def test_user_errors_are_exit_2_with_one_line(models, compiler, capsys, argv, needle):
    rc, out, err = run(capsys, "--model-dir", str(models), *argv)
    assert rc == 2 and out == "" and err.count("\n") == 1 and err.startswith("neuron_compile: error: ")
    assert needle in err and compiler["calls"] == []


def test_no_such_model_dir_is_exit_2(tmp_path, compiler, capsys):
    rc, _, err = run(capsys, "--model-dir", str(tmp_path / "nope"))
    assert rc == 2 and "is not a directory" in err and err.count("\n") == 1
