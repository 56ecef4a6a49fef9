"""The trainer for real: workloads/training/train.py in fresh processes, no mocks.

- the shared `trained_model_dir` export has the layout the server loads;
- two ranks over torch.distributed (gloo, env vars set the way the PyTorchJob
  operator sets them) are SIGKILLed right after their first checkpoint and
  resume without repeating a saved step;
- SIGTERM to one rank stops both at the same step with a checkpoint, exit 143
  (so the PyTorchJob's OnFailure policy restarts them rather than marking the job done),
  and a later run resumes from it; rank 0 serves the Prometheus metrics meanwhile;
- the defaults reach >= 85% held-out accuracy on the shipped sample.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from workloads.training.metrics import METRIC_NAMES

REPO = Path(__file__).resolve().parents[3]
TRAIN = REPO / "workloads" / "training" / "train.py"
SAMPLE = REPO / "workloads" / "training" / "data" / "sample"
pytestmark = [pytest.mark.workload, pytest.mark.slow]  # trains a real model (still part of `make test`)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def events(log: str, kind: str | None = None) -> list[dict]:
    """The JSON objects the trainer logs, one per line after the prefix."""
    out = []
    for line in log.splitlines():
        i = line.find("{\"event\"")
        if i >= 0:
            ev = json.loads(line[i:])
            if kind is None or ev["event"] == kind:
                out.append(ev)
    return out


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "LOCAL_WORLD_SIZE")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
    env.update(extra)
    return env


class Ranks:
    """World-size-N run on localhost, one process per rank with the operator's env vars,
    all in one process group (so the group can be SIGKILLed at once)."""

    def __init__(self, tmp: Path, tag: str, args: list[str], world: int = 2):
        port = str(free_port())
        self.logs = [tmp / f"{tag}-rank{r}.log" for r in range(world)]
        self.procs: list[subprocess.Popen] = []
        for r in range(world):
            env = base_env(WORLD_SIZE=str(world), RANK=str(r), MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
            group = {"process_group": 0 if r == 0 else self.procs[0].pid}
            with open(self.logs[r], "w") as fh:
                self.procs.append(subprocess.Popen([sys.executable, str(TRAIN), *args], env=env, stdout=fh,
                                                   stderr=subprocess.STDOUT, **group))

    def log(self, rank: int = 0) -> str:
        return self.logs[rank].read_text()

    def wait(self, timeout: float) -> list[int]:
        deadline = time.monotonic() + timeout
        try:
            return [p.wait(timeout=max(1.0, deadline - time.monotonic())) for p in self.procs]
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("ranks did not finish:\n" + self.log(0)[-3000:] + self.log(1)[-2000:])

    def kill(self) -> None:
        try:
            os.killpg(self.procs[0].pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for p in self.procs:
            p.wait(timeout=30)

    def wait_for(self, what: str, cond, timeout: float = 240):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = cond()
            if got:
                return got
            if any(p.poll() is not None for p in self.procs):
                self.kill()
                raise AssertionError(f"a rank exited before {what}:\n{self.log(0)[-3000:]}\n{self.log(1)[-2000:]}")
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"timed out waiting for {what}:\n{self.log(0)[-3000:]}")


def run_trainer(model_dir: Path, ckpt_dir: Path, *extra: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """Single process, as a user runs it (same as conftest.run_trainer)."""
    cmd = [sys.executable, str(TRAIN), "--data", str(SAMPLE), "--model-dir", str(model_dir),
           "--checkpoint-dir", str(ckpt_dir), *extra]
    return subprocess.run(cmd, env=base_env(), capture_output=True, text=True, timeout=timeout)


def ckpt_files(d: Path) -> list[Path]:
    return sorted(d.glob("ckpt-*.pt")) if d.is_dir() else []


def assert_loadable_export(models: Path) -> dict:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    version = (models / "latest").read_text().strip()
    vdir = models / version
    assert re.fullmatch(r"v\d{8}T\d{6}Z-[0-9a-f]{8}(-\d+)?", version), version
    model = AutoModelForSequenceClassification.from_pretrained(vdir)
    AutoTokenizer.from_pretrained(vdir)
    assert model.config.id2label == {0: "NEGATIVE", 1: "POSITIVE"}
    meta = json.loads((vdir / "metadata.json").read_text())
    for key in ("base_model", "data_hash", "eval_accuracy", "epochs", "samples", "created_at",
                "torch_version", "transformers_version"):
        assert key in meta, key
    assert version.endswith(meta["data_hash"][:8]) or meta["data_hash"][:8] in version
    return meta


def test_shared_export_has_the_layout_the_server_loads(trained_model_dir):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    meta = assert_loadable_export(trained_model_dir)
    assert meta["epochs"] == 2 and meta["samples"] == 480 and meta["eval_accuracy"] >= 0.8
    assert [p.name for p in trained_model_dir.iterdir() if p.name.startswith(".") or p.name.endswith(".tmp")] == []
    vdir = trained_model_dir / (trained_model_dir / "latest").read_text().strip()
    tok, model = AutoTokenizer.from_pretrained(vdir), AutoModelForSequenceClassification.from_pretrained(vdir)
    texts = ["Absolutely love it, works perfectly. Five stars.", "It broke after two days. Avoid.",
             "The staff were friendly and the food was great.", "Terrible film, I nearly fell asleep."]
    with torch.inference_mode():
        pred = model(**tok(texts, padding=True, return_tensors="pt")).logits.argmax(-1).tolist()
    assert sum(model.config.id2label[p] == want for p, want in
               zip(pred, ["POSITIVE", "NEGATIVE", "POSITIVE", "NEGATIVE"])) >= 3, pred


def test_two_ranks_killed_after_first_checkpoint_resume_without_repeating(tmp_path):
    models, ckpt = tmp_path / "models", tmp_path / "ckpt"
    args = ["--data", str(SAMPLE), "--model-dir", str(models), "--checkpoint-dir", str(ckpt),
            "--epochs", "2", "--max-samples", "48", "--eval-max-samples", "32", "--batch-size", "8",
            "--checkpoint-every-steps", "2", "--log-every-steps", "1", "--num-workers", "1",
            "--metrics-port", "0"]
    # 48 samples / 2 ranks / batch 8 = 3 steps per epoch, 6 in all; checkpoints at steps 2, 3 (epoch), 4, 6 (epoch).
    first = Ranks(tmp_path, "first", args)
    first.wait_for("the first checkpoint", lambda: ckpt_files(ckpt))
    first.kill()  # SIGKILL, both ranks and their DataLoader workers, no chance to clean up
    run1 = first.log(0)
    assert "resuming" not in run1
    saved = ckpt_files(ckpt)[-1]   # ckpt-000000002.pt unless the kill came late
    saved_step = int(saved.stem.split("-")[1])
    assert saved_step in (2, 3)
    epoch, step = saved_step // 3 + 1, saved_step % 3

    second = Ranks(tmp_path, "second", args)
    assert second.wait(300) == [0, 0], second.log(0)[-3000:]
    run2 = second.log(0)
    assert f"resuming from {saved} at epoch {epoch} step {step} (global step {saved_step})" in run2

    steps1 = [e["global_step"] for e in events(run1, "train_step")]
    steps2 = [e["global_step"] for e in events(run2, "train_step")]
    assert steps1[:saved_step] == list(range(1, saved_step + 1))
    assert steps2 == list(range(saved_step + 1, 7))          # nothing saved is trained again, nothing skipped
    starts = [(e["epoch"], e["step"]) for e in events(run2, "epoch_start")]
    assert starts[0] == (epoch, step) and starts[-1] == (2, 0)  # the epoch continues after its seen batches
    assert [e["epoch"] for e in events(run2, "epoch_end")] == list(range(epoch, 3))
    assert [e["global_step"] for e in events(run2, "checkpoint")] == [s for s in (3, 4, 6) if s > saved_step]
    assert "Traceback" not in second.log(1) + run2
    assert len(ckpt_files(ckpt)) == 3                          # pruned to the newest three
    meta = assert_loadable_export(models)
    assert meta["world_size"] == 2 and meta["global_steps"] == 6
    shutil.rmtree(ckpt)  # ~180 MB a checkpoint: do not leave them in pytest's kept temp dirs


def test_sigterm_to_one_rank_checkpoints_exits_preempted_and_resumes(tmp_path):
    models, ckpt = tmp_path / "models", tmp_path / "ckpt"
    port = free_port()
    args = ["--data", str(SAMPLE), "--model-dir", str(models), "--checkpoint-dir", str(ckpt),
            "--epochs", "1", "--max-samples", "160", "--eval-max-samples", "32", "--batch-size", "8",
            "--checkpoint-every-steps", "0", "--log-every-steps", "1", "--num-workers", "0",
            "--metrics-port", str(port)]
    # 160 / 2 ranks / 8 = 10 steps; only SIGTERM writes a checkpoint before the epoch ends.
    run = Ranks(tmp_path, "term", args)
    run.wait_for("training to start", lambda: events(run.log(0), "train_step"))
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    exposed = {line.split("{")[0].split(" ")[0] for line in body.splitlines() if line and not line.startswith("#")}
    assert set(METRIC_NAMES) <= exposed, sorted(exposed)

    run.procs[1].send_signal(signal.SIGTERM)                 # one pod is being evicted
    assert run.wait(120) == [143, 143], run.log(0)[-3000:]  # clean exit, "not done": OnFailure restarts it
    log0 = run.log(0)
    m = re.search(r"SIGTERM: checkpoint written to (\S+) \(epoch 1 step (\d+), global step (\d+)\)", log0)
    assert m, log0[-3000:]
    path, step = Path(m.group(1)), int(m.group(3))
    assert path == ckpt / f"ckpt-{step:09d}.pt" and path.is_file()
    assert 1 <= step < 10
    assert max(e["global_step"] for e in events(log0, "train_step")) == step   # stopped at that step boundary
    assert not models.exists() or not (models / "latest").exists()

    proc = run_trainer(models, ckpt, "--epochs", "1", "--max-samples", "160", "--eval-max-samples", "32",
                       "--batch-size", "8", "--log-every-steps", "1", "--num-workers", "0", "--metrics-port", "0")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"resuming from {path} at epoch 1 step {step}" in proc.stdout
    assert "world size/batch size changed" in proc.stdout     # 2 ranks -> 1: the epoch's position is kept
    steps = [e["global_step"] for e in events(proc.stdout, "train_step")]
    assert steps and steps[0] == step + 1
    assert (models / "latest").is_file()
    shutil.rmtree(ckpt)


def test_defaults_reach_85_percent_on_the_shipped_sample(tmp_path):
    t0 = time.monotonic()
    proc = run_trainer(tmp_path / "models", tmp_path / "ckpt", "--metrics-port", "0", timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    meta = assert_loadable_export(tmp_path / "models")
    print(f"defaults: eval accuracy {meta['eval_accuracy']}, {meta['train_samples_per_second']} samples/s, "
          f"{time.monotonic() - t0:.0f}s")
    assert meta["samples"] == 1200 and meta["eval_samples"] == 300
    assert meta["eval_accuracy"] >= 0.85
    shutil.rmtree(tmp_path / "ckpt")
