"""Fast checks of the trainer's parts: checkpoints, sampler, argument errors, data prep, the sample.

No model is trained here; the real runs are in test_train.py.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.workload

REPO = Path(__file__).resolve().parents[3]
TRAIN = REPO / "workloads" / "training" / "train.py"
PREP = REPO / "workloads" / "training" / "data_prep.py"
SAMPLE = REPO / "workloads" / "training" / "data" / "sample"
ENV = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")


def _run(*cmd: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *cmd], env=ENV, capture_output=True, text=True, timeout=timeout)


# --- checkpoints --------------------------------------------------------------------------

def _state(step: int) -> dict:
    import torch
    return {"model": {"w": torch.full((3,), float(step))}, "optimizer": {}, "scheduler": {},
            "epoch": 0, "step_in_epoch": step, "global_step": step}


def test_corrupt_newest_checkpoint_is_skipped_with_warning(tmp_path, caplog):
    from workloads.training import checkpoint as ck

    ck.save_checkpoint(tmp_path, _state(5))
    newest = ck.save_checkpoint(tmp_path, _state(10))
    assert [p.name for p in ck.list_checkpoints(tmp_path)] == ["ckpt-000000010.pt", "ckpt-000000005.pt"]
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2])  # a truncated write

    with caplog.at_level(logging.WARNING, logger="trainer"):
        path, state = ck.load_latest(tmp_path)
    assert path.name == "ckpt-000000005.pt"
    assert state["global_step"] == 5 and float(state["model"]["w"][0]) == 5.0
    assert any("skipping corrupt checkpoint" in r.message and "ckpt-000000010.pt" in r.message
               for r in caplog.records)


def test_checkpoint_rejects_garbage_wrong_step_and_ignores_temporaries(tmp_path, caplog):
    import torch
    from workloads.training import checkpoint as ck

    ck.save_checkpoint(tmp_path, _state(1))
    (tmp_path / "ckpt-000000009.pt").write_bytes(b"not a checkpoint")
    torch.save({"format": ck.FORMAT, **_state(3)}, tmp_path / "ckpt-000000007.pt")  # name/content disagree
    ck.write_digest(tmp_path / "ckpt-000000007.pt")  # ... with a valid digest: rejected by the step check
    (tmp_path / ".ckpt-000000011.pt.tmp-123").write_bytes(b"half written")
    with caplog.at_level(logging.WARNING, logger="trainer"):
        path, state = ck.load_latest(tmp_path)
    assert path.name == "ckpt-000000001.pt"
    assert sum("skipping corrupt checkpoint" in r.message for r in caplog.records) == 2
    assert [p.name for p in ck.clean_temporaries(tmp_path)] == [".ckpt-000000011.pt.tmp-123"]
    assert ck.load_latest(tmp_path / "missing") is None


def test_checkpoint_keeps_the_newest_few_and_writes_atomically(tmp_path):
    from workloads.training import checkpoint as ck

    for step in (2, 4, 6, 8, 10):
        ck.save_checkpoint(tmp_path, _state(step), keep=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ckpt-000000006.pt", "ckpt-000000006.pt.sha256", "ckpt-000000008.pt", "ckpt-000000008.pt.sha256",
        "ckpt-000000010.pt", "ckpt-000000010.pt.sha256"]  # each with its digest, no temporaries left
    with pytest.raises(ck.CheckpointError):
        ck.save_checkpoint(tmp_path, {"model": {}})


def test_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    import random

    import torch
    from workloads.training import checkpoint as ck

    random.seed(1)
    torch.manual_seed(1)
    ck.save_checkpoint(tmp_path, {**_state(1), "rng": [ck.rng_state()]})
    expect = (random.random(), torch.rand(2))
    _, st = ck.load_latest(tmp_path)
    ck.set_rng_state(st["rng"][0])
    assert random.random() == expect[0]
    assert torch.equal(torch.rand(2), expect[1])


# --- sampler -------------------------------------------------------------------------------

def test_resumable_sampler_shards_and_skips():
    from workloads.training.dataset import ResumableDistributedSampler

    data = list(range(21))
    shards = [ResumableDistributedSampler(data, num_replicas=2, rank=r, seed=7) for r in (0, 1)]
    for s in shards:
        s.set_epoch(3)
    full = [list(s) for s in shards]
    assert len(full[0]) == len(full[1]) == 11                     # padded: ranks take equal steps
    assert set(full[0]) | set(full[1]) == set(data)
    shards[0].set_epoch(3, skip=4)
    assert list(shards[0]) == full[0][4:] and len(shards[0]) == 7  # resume skips what was seen
    shards[0].set_epoch(4)
    assert list(shards[0]) != full[0]                              # reshuffled per epoch


# --- train.py argument errors (fail before torch is imported) -----------------------------

@pytest.mark.parametrize("extra, message", [
    (["--data", "/nonexistent/data"], "not a directory"),
    (["--data", "{empty}"], "no train.jsonl"),
    (["--epochs", "0"], "--epochs: must be >= 1"),
    (["--lr", "-1"], "--lr: must be > 0.0"),
    (["--batch-size", "many"], "--batch-size: expected an integer"),
    (["--warmup-ratio", "1"], "--warmup-ratio"),
    (["--metrics-port", "70000"], "--metrics-port"),
    (["--checkpoint-dir", "{file}"], "is not a directory"),
    (["--base-model", "/nonexistent/model"], "no such directory"),
])
def test_train_bad_arguments_fail_with_one_clear_line(tmp_path, extra, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("x")
    args = {"--data": str(SAMPLE), "--model-dir": str(tmp_path / "m"), "--checkpoint-dir": str(tmp_path / "c"),
            "--epochs": "1"}
    for k, v in zip(extra[::2], extra[1::2]):
        args[k] = v.format(empty=tmp_path / "empty", file=tmp_path / "file")
    proc = _run(str(TRAIN), *[x for kv in args.items() for x in kv], timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("train.py: error:") and message in last, proc.stderr
    assert not (tmp_path / "m").exists()


def test_train_missing_required_argument(tmp_path):
    proc = _run(str(TRAIN), "--data", str(SAMPLE), "--epochs", "1", timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "the following arguments are required: --model-dir, --checkpoint-dir" in proc.stderr


def test_train_bad_data_line_is_one_clear_error(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.jsonl").write_text('{"text": "fine", "label": 1}\n{"text": "odd", "label": 7}\n')
    proc = _run(str(TRAIN), "--data", str(data), "--model-dir", str(tmp_path / "m"),
                "--checkpoint-dir", str(tmp_path / "c"), "--metrics-port", "0", timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr + proc.stdout
    assert proc.stderr.strip().splitlines()[-1] == (
        f"train.py: error: {data / 'train.jsonl'}:2: 'label' must be 0, 1, NEGATIVE or POSITIVE, got 7")


# --- data_prep.py ----------------------------------------------------------------------------

def test_data_prep_copies_the_sample_offline_and_is_idempotent(tmp_path):
    out = tmp_path / "pvc"
    proc = _run(str(PREP), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    for name in ("train.jsonl", "eval.jsonl"):
        assert (out / name).read_text() == (SAMPLE / name).read_text()
    manifest = json.loads((out / "DATASET.json").read_text())
    assert manifest["source"] == "sample" and manifest["train"] == 1200 and manifest["eval"] == 300
    assert not [p for p in out.iterdir() if p.name.startswith(".")]

    (out / "train.jsonl").write_text('{"text": "kept", "label": 1}\n')
    again = _run(str(PREP), "--out", str(out))
    assert again.returncode == 0 and "already present" in again.stdout
    assert (out / "train.jsonl").read_text() == '{"text": "kept", "label": 1}\n'
    forced = _run(str(PREP), "--out", str(out), "--force", "--max-train", "100", "--max-eval", "40")
    assert forced.returncode == 0, forced.stderr
    assert len((out / "train.jsonl").read_text().splitlines()) == 100


@pytest.mark.parametrize("args, message", [
    ([], "--out is required"),
    (["--out", "{out}", "--source", "s3"], "--source s3 needs --s3-uri"),
    (["--out", "{out}", "--source", "s3", "--s3-uri", "bucket/prefix"], "--s3-uri must look like s3://"),
    (["--out", "{out}", "--source", "hf"], "--source hf needs --hf-dataset"),
    (["--out", "{out}", "--source", "ftp"], "invalid choice: 'ftp'"),
    (["--out", "{out}", "--eval-fraction", "1.5"], "--eval-fraction must be between 0 and 1"),
    (["--out", "{file}"], "is not a directory"),
])
def test_data_prep_bad_arguments(tmp_path, args, message):
    (tmp_path / "file").write_text("x")
    args = [a.format(out=tmp_path / "out", file=tmp_path / "file") for a in args]
    proc = _run(str(PREP), *args, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("data_prep.py: error:")
    assert message in proc.stderr


# --- the shipped sample ----------------------------------------------------------------------

def test_shipped_sample_is_balanced_deduplicated_and_reproducible():
    rows = {n: [json.loads(line) for line in (SAMPLE / f"{n}.jsonl").read_text().splitlines()]
            for n in ("train", "eval")}
    assert 1200 <= len(rows["train"]) + len(rows["eval"]) <= 2000
    assert 0.15 <= len(rows["eval"]) / (len(rows["train"]) + len(rows["eval"])) <= 0.25
    for split in rows.values():
        assert {r["label"] for r in split} == {0, 1}
        assert abs(sum(r["label"] for r in split) - len(split) / 2) <= 1
        assert all(set(r) == {"text", "label"} and r["text"].strip() for r in split)
    norm = lambda t: " ".join("".join(c if c.isalnum() else " " for c in t.lower()).split())  # noqa: E731
    train = [norm(r["text"]) for r in rows["train"]]
    assert len(set(train)) == len(train)
    assert not set(train) & {norm(r["text"]) for r in rows["eval"]}
    check = _run(str(SAMPLE.parent / "make_sample.py"), "--check", timeout=60)
    assert check.returncode == 0, check.stderr


def test_metric_names_module_does_not_import_torch():
    code = ("import sys; from workloads.training.metrics import METRIC_NAMES; "
            "assert 'torch' not in sys.modules; print(','.join(METRIC_NAMES))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=ENV, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().split(",") == [
        "trainer_loss", "trainer_samples_per_second", "trainer_eval_accuracy", "trainer_epoch",
        "trainer_global_step", "trainer_samples_total", "trainer_checkpoints_total"]
