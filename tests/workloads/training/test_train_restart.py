"""Starting the trainer again over what an earlier run left behind, each a case a restarted Job meets:

1. the run already finished (its export is there, for this data and step): exit 0, nothing trained,
   the exported model untouched;
2. a checkpoint with a valid digest that does not fit the model (another number of labels, a missing
   tensor): one clear error line, exit 1, no traceback, nothing trained, the checkpoint kept
   (--allow-fresh-start is for corrupt checkpoints only: it does not discard a valid one);
3. a checkpoint write that fails half way (ENOSPC raised, or the process killed inside the write):
   the previous checkpoint stays the newest and loadable, and the next run resumes from it.

The same tiny runs as test_train_safety.py (its fixtures and helpers: a 1-layer, 32-wide BERT).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest
from test_train_safety import (BASE, REPO, SAMPLE, TINY, TRAIN, copy_run, env, events, latest, tiny_base,  # noqa: F401
                               tiny_run, train)

pytestmark = [pytest.mark.workload, pytest.mark.slow]

CKPT2 = "ckpt-000000002.pt"


def snapshot(root) -> dict[str, tuple[int, str]]:
    """Every file under `root`: (mtime_ns, sha256), by relative path."""
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(root.rglob("*")) if p.is_file()}


# --- 1. a finished run started again --------------------------------------------------------------

def test_restart_of_a_finished_run_is_a_no_op(tiny_run, tmp_path):
    models, ckpt = copy_run(tiny_run, tmp_path)
    version = latest(models)
    before_models, before_ckpt = snapshot(models), snapshot(ckpt)
    proc = train(models, ckpt, "--epochs", "1", "--checkpoint-every-steps", "1", "--num-workers", "0")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (f"training already complete: {models / version} holds the model of global step 2; nothing to do"
            in proc.stdout), proc.stdout[-3000:]
    assert not events(proc.stdout, "train_step") and not events(proc.stdout, "export")
    assert "Traceback" not in proc.stdout + proc.stderr
    assert snapshot(models) == before_models          # same versions, same `latest`, same bytes, same mtimes
    assert snapshot(ckpt) == before_ckpt              # no new checkpoint, the marker untouched


# --- 2. a valid checkpoint that does not fit the model ----------------------------------------------

def _three_labels(model: dict) -> None:
    import torch

    for name in ("classifier.weight", "classifier.bias"):
        t = model[name]
        model[name] = torch.zeros((3, *t.shape[1:]), dtype=t.dtype)


def _missing_tensor(model: dict) -> None:
    del model[next(k for k in model if k.endswith("LayerNorm.weight"))]


@pytest.mark.parametrize("change,extra", [(_three_labels, ()), (_missing_tensor, ("--allow-fresh-start",))],
                         ids=["three-labels", "missing-tensor-allow-fresh-start"])
def test_a_checkpoint_that_does_not_fit_the_model_is_refused_in_one_line(tiny_run, tmp_path, change, extra):
    from workloads.training import checkpoint as ck

    models, ckpt = copy_run(tiny_run, tmp_path)
    before = latest(models)
    st = ck.load_checkpoint(ckpt / CKPT2)
    change(st["model"])
    ck.save_checkpoint(ckpt, st)                       # a valid digest: not corrupt, just the wrong shape
    ck.load_checkpoint(ckpt / CKPT2)
    proc = train(models, ckpt, "--epochs", "2", "--num-workers", "0", *extra)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1, proc.stderr
    assert err[0].startswith(f"train.py: error: checkpoint {ckpt / CKPT2} does not fit this model/optimizer")
    assert "use a new --checkpoint-dir" in err[0]
    assert "Traceback" not in out and not events(proc.stdout, "train_step")
    assert "starting over" not in out                  # a valid checkpoint is never thrown away
    assert [p.name for p in ck.list_checkpoints(ckpt)] == [CKPT2, "ckpt-000000001.pt"]
    assert not list(ckpt.glob("*.corrupt")) and latest(models) == before


# --- 3. a checkpoint write that fails half way -------------------------------------------------------

FAILING_SAVE = """
import errno, io, os, runpy, sys
sys.path.insert(0, {d!r})
from workloads.training import checkpoint
orig = checkpoint.torch.save
def half_written(obj, f, *a, **kw):
    if isinstance(obj, dict) and obj.get("global_step") == {step}:
        buf = io.BytesIO()
        orig(obj, buf, *a, **kw)
        f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
        f.flush()
        if {mode!r} == "kill":
            os._exit(137)
        raise OSError(errno.ENOSPC, "No space left on device")
    return orig(obj, f, *a, **kw)
checkpoint.torch.save = half_written
sys.argv = [{t!r}, *sys.argv[1:]]
runpy.run_path({t!r}, run_name="__main__")
"""


def failing_train(models, ckpt, mode: str, step: int, *extra: str) -> subprocess.CompletedProcess:
    code = FAILING_SAVE.format(d=str(REPO), t=str(TRAIN), step=step, mode=mode)
    cmd = [sys.executable, "-c", code, "--data", str(SAMPLE), "--model-dir", str(models), "--checkpoint-dir",
           str(ckpt), *TINY, *BASE, *extra]
    return subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=120)


def test_a_checkpoint_write_that_fails_midway_keeps_the_previous_one(tiny_run, tmp_path):
    from workloads.training import checkpoint as ck

    models, ckpt = copy_run(tiny_run, tmp_path)
    before = latest(models)
    good = ck.load_checkpoint(ckpt / CKPT2)
    args = ("--epochs", "2", "--checkpoint-every-steps", "1", "--num-workers", "0")

    proc = failing_train(models, ckpt, "raise", 3, *args)   # disk full while writing step 3
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "train.py: error: cannot write a checkpoint" in proc.stderr and "No space left" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert sorted(p.name for p in ckpt.iterdir() if p.name.startswith((".ckpt", "ckpt-000000003"))) == []

    proc = failing_train(models, ckpt, "kill", 3, *args)    # killed inside the write: its temporary stays
    assert proc.returncode == 137, proc.stdout[-3000:] + proc.stderr[-3000:]
    partial = [p.name for p in ckpt.iterdir() if p.name.startswith(".ckpt-000000003.pt.tmp-")]
    assert len(partial) == 1, sorted(p.name for p in ckpt.iterdir())
    assert [p.name for p in ck.list_checkpoints(ckpt)] == [CKPT2, "ckpt-000000001.pt"]
    assert ck.load_checkpoint(ckpt / CKPT2)["global_step"] == good["global_step"] == 2

    proc = train(models, ckpt, *args)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert f"removed partial checkpoint {ckpt / partial[0]}" in proc.stdout
    assert f"resuming from {ckpt / CKPT2} at epoch 2 step 0 (global step 2)" in proc.stdout
    assert "skipping corrupt checkpoint" not in out and not list(ckpt.glob("*.corrupt"))
    assert [e["global_step"] for e in events(proc.stdout, "train_step")] == [3, 4]
    assert latest(models) != before
    assert [p.name for p in ck.list_checkpoints(ckpt)][:2] == ["ckpt-000000004.pt", "ckpt-000000003.pt"]
    assert not [p for p in ckpt.iterdir() if p.name.startswith(".")]
