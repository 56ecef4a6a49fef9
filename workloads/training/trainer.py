"""The training loop, in steps: setup (device, data, model, optimizer), resume, epochs of steps,
evaluation, checkpoints and the export. What it reports goes to callbacks (callbacks.py).

Imported by train.py only after the arguments are valid and the environment is set: it imports torch.
"""
from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import transformers
from torch.utils.data import DataLoader, Subset
from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

from workloads.common.cpus import usable_cpus
from workloads.common.hashing import data_hash
from workloads.training import dataset as ds
from workloads.training import export as tx
from workloads.training import workers
from workloads.training.args import TrainArgs
from workloads.training.callbacks import CallbackList, TrainState, default_callbacks
from workloads.training.distributed import EXIT_PREEMPTED, Collectives, DistEnv, FatalError, StopFlag, process_group
from workloads.training.run_state import Checkpointer, Parts

log = logging.getLogger("trainer")


@dataclass
class _Window:
    """The steps since the last step log line: their time, samples and (finite) losses."""

    t: float = field(default_factory=time.perf_counter)
    samples: int = 0
    loss: float = 0.0
    n: int = 0


class Trainer:
    def __init__(self, args: TrainArgs, env: DistEnv, stop: StopFlag, callbacks: CallbackList | None = None):
        self.args = args
        self.env = env
        self.stop = stop
        self.rank = env.rank
        self.world = env.world_size
        self.cb = callbacks if callbacks is not None else default_callbacks(args.metrics_port, env.rank)
        self.coll = Collectives(env)
        self.loaders: list = []
        self.nonfinite = 0
        self.train_seconds, self.train_samples = 0.0, 0

    def teardown(self) -> None:
        """Stop DataLoader workers at once (they ignore SIGTERM, so a plain terminate would not)."""
        try:
            workers.kill_loader_workers(self.loaders)
        except Exception:  # noqa: BLE001 - never let the cleanup mask the exit code
            log.exception("stopping the DataLoader workers failed")

    def stop_agreed(self, bad: bool = False) -> tuple[bool, bool]:
        """(any rank got SIGTERM, any rank's step was non-finite), the same on every rank."""
        stop, bad = self.coll.any_of(self.stop.requested, bad)  # always both: the same collective on every rank
        return stop, bad

    # -- setup -------------------------------------------------------------
    def run(self) -> int:
        a = self.args
        t_start = time.time()
        if a.device == "cuda" and not torch.cuda.is_available():
            raise FatalError("--device cuda given but CUDA is not available")
        use_cuda = a.device == "cuda" or (a.device == "auto" and torch.cuda.is_available())
        if use_cuda:
            self.device = torch.device("cuda", self.env.local_rank % torch.cuda.device_count())
            torch.cuda.set_device(self.device)
        else:
            self.device = torch.device("cpu")
        self.coll.device = self.device
        self.amp = use_cuda if a.amp is None else (a.amp and use_cuda)
        if "OMP_NUM_THREADS" not in os.environ:
            torch.set_num_threads(max(1, usable_cpus() // self.env.local_world_size))
        with process_group(self.env, self.device):
            return self._run(t_start)

    def _run(self, t_start: float) -> int:
        a = self.args
        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        self.cb.on_log("start", {
            "rank": self.rank, "world_size": self.world, "device": str(self.device), "amp": self.amp,
            "threads": torch.get_num_threads(), "base_model": a.base_model, "data": str(a.data),
            "epochs": a.epochs, "batch_size": a.batch_size, "lr": a.lr, "max_length": a.max_length})
        train_rows, eval_rows = self._load_data()
        self.eval_rows = eval_rows
        self._load_model()
        state = self._prepare(len(train_rows))
        self.ckpts = Checkpointer(a, self.coll, self.data_hash, self.cb)
        found = self.ckpts.load()
        skip = self.ckpts.restore(found, self.parts, state)
        del found
        if state.epoch >= a.epochs and tx.already_exported(self.ckpts.ckpt_dir, a.model_dir, state.global_step,
                                                           self.data_hash):
            return 0
        self.cb.on_train_begin(state)
        self._make_loaders(train_rows, eval_rows)
        if (code := self._train(state, skip)) is not None:
            return code
        version = None
        if self.rank == 0:
            version = self._export(state, len(train_rows), len(eval_rows))
        self.coll.barrier()
        self.cb.on_train_end(state, version, time.time() - t_start)
        return 0

    def _load_data(self) -> tuple[list[dict], list[dict]]:
        a = self.args
        try:
            train_rows = ds.subsample(ds.read_jsonl(a.data / "train.jsonl"), a.max_samples, a.seed)
            eval_path = a.data / "eval.jsonl"
            eval_rows = (ds.subsample(ds.read_jsonl(eval_path), a.eval_max_samples, a.seed)
                         if eval_path.is_file() else [])
        except (ds.DataError, OSError, UnicodeDecodeError) as exc:
            raise FatalError(str(exc)) from None
        if not eval_rows:
            log.warning("no eval.jsonl in %s: accuracy will not be measured", a.data)
        self.data_hash = data_hash(train_rows, eval_rows)
        counts = [sum(r["label"] == k for r in train_rows) for k in (0, 1)]
        self.cb.on_log("data", {"train": len(train_rows), "eval": len(eval_rows), "train_negative": counts[0],
                                "train_positive": counts[1], "data_hash": self.data_hash})
        return train_rows, eval_rows

    def _load_model(self) -> None:
        """A hub id is fetched by rank 0 first (one download per shared cache); a local folder is read
        by all ranks at once."""
        a = self.args
        serial = self.env.distributed and not Path(a.base_model).is_dir()
        if serial and self.rank != 0:
            self.coll.barrier()
        torch.manual_seed(a.seed)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(a.base_model)
            model = AutoModelForSequenceClassification.from_pretrained(
                a.base_model, num_labels=2, id2label=dict(ds.ID2LABEL), label2id=dict(ds.LABEL2ID))
        except (OSError, ValueError, KeyError) as exc:
            raise FatalError(f"cannot load base model {a.base_model!r}: {str(exc).splitlines()[0]}") from None
        finally:
            if serial and self.rank == 0:
                self.coll.barrier()
        if a.freeze_embeddings:
            model.get_input_embeddings().weight.requires_grad_(False)
        model.to(self.device)
        n_params = sum(p.numel() for p in model.parameters())
        n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
        self.cb.on_log("model", {"parameters": n_params, "trainable": n_train,
                                 "freeze_embeddings": a.freeze_embeddings})
        self.model = model

    def _prepare(self, n_train: int) -> TrainState:
        """Optimizer (no weight decay on biases and norms), sampler and the linear warm-up schedule."""
        a = self.args
        decay, no_decay = [], []
        for name, p in self.model.named_parameters():
            if p.requires_grad:
                (no_decay if p.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(p)
        optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                                       {"params": no_decay, "weight_decay": 0.0}], lr=a.lr)
        steps_per_epoch = math.ceil(ds.shard_len(n_train, self.world) / a.batch_size)
        total_steps = steps_per_epoch * a.epochs
        scheduler = get_linear_schedule_with_warmup(optimizer, int(a.warmup_ratio * total_steps), total_steps)
        self.parts = Parts(self.model, optimizer, scheduler)
        return TrainState(epochs=a.epochs, steps_per_epoch=steps_per_epoch)

    def _make_loaders(self, train_rows: list[dict], eval_rows: list[dict]) -> None:
        a = self.args
        self.ddp_model = self.model
        if self.env.distributed:
            from torch.nn.parallel import DistributedDataParallel as DDP
            self.ddp_model = DDP(self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        cuda = self.device.type == "cuda"
        collate = ds.Collator(self.tokenizer, a.max_length, pad_to_multiple_of=8 if cuda else None)
        train_ds = ds.ReviewDataset(train_rows)
        self.sampler = ds.ResumableDistributedSampler(train_ds, num_replicas=self.world, rank=self.rank, seed=a.seed)
        self.loader = DataLoader(train_ds, batch_size=a.batch_size, sampler=self.sampler, collate_fn=collate,
                                 num_workers=a.num_workers, persistent_workers=a.num_workers > 0,
                                 pin_memory=cuda, worker_init_fn=workers.worker_init)
        self.loaders.append(self.loader)
        self.eval_loader = None
        if eval_rows:
            eval_ds = Subset(ds.ReviewDataset(eval_rows), ds.eval_indices(len(eval_rows), self.rank, self.world))
            self.eval_loader = DataLoader(eval_ds, batch_size=max(64, a.batch_size), shuffle=False,
                                          collate_fn=collate)

    # -- training ----------------------------------------------------------
    def _train(self, state: TrainState, skip: int) -> int | None:
        """All remaining epochs; an exit code when the run stops early (SIGTERM), else None."""
        self.ddp_model.train()
        start = state.epoch
        for epoch in range(start, self.args.epochs):
            code = self._train_epoch(state, epoch, skip if epoch == start else 0)
            if code is not None:
                return code
        return None

    def _train_epoch(self, state: TrainState, epoch: int, skip: int) -> int | None:
        a = self.args
        self.sampler.set_epoch(epoch, skip)
        state.epoch, state.step_in_epoch = epoch, skip // a.batch_size
        self.cb.on_epoch_begin(state)
        win = _Window()
        ep_t, ep_samples, ckpt_time = time.perf_counter(), 0, 0.0
        for batch in self.loader:
            loss, stop_req, n = self._step(state, batch)
            if loss is not None:
                win.loss += loss
                win.n += 1
            win.samples += n
            ep_samples += n
            self.cb.on_step_end(state, n)
            if state.global_step % a.log_every_steps == 0 or state.step_in_epoch == state.steps_per_epoch:
                self._log_window(state, win)
                win = _Window()
            if stop_req:
                path = self.ckpts.save(self.parts, state, epoch, state.step_in_epoch, "sigterm")
                log.info("SIGTERM: checkpoint written to %s (epoch %d step %d, global step %d); exiting",
                         path if path else a.checkpoint_dir, epoch + 1, state.step_in_epoch, state.global_step)
                return EXIT_PREEMPTED
            if (a.checkpoint_every_steps and state.global_step % a.checkpoint_every_steps == 0
                    and state.step_in_epoch < state.steps_per_epoch):
                t0 = time.perf_counter()
                self.ckpts.save(self.parts, state, epoch, state.step_in_epoch, "steps")
                dt = time.perf_counter() - t0
                ckpt_time += dt
                win.t += dt
        return self._end_epoch(state, ep_samples, time.perf_counter() - ep_t - ckpt_time)

    def _step(self, state: TrainState, batch: dict) -> tuple[float | None, bool, int]:
        """One optimizer step (none when the loss or gradient is not finite on any rank):
        (its loss, None when skipped; SIGTERM on any rank; samples over all ranks)."""
        a = self.args
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            out = self.ddp_model(**batch)
        loss = out.loss
        loss.backward()
        loss_f = float(loss.detach())
        bad = not math.isfinite(loss_f)
        if a.grad_clip > 0:
            bad |= not math.isfinite(float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), a.grad_clip)))
        stop_req, bad = self.stop_agreed(bad)
        state.step_in_epoch += 1
        state.global_step += 1
        self.nonfinite = self.nonfinite + 1 if bad else 0
        optimizer = self.parts.optimizer
        if bad:  # no update from a NaN/inf step; too many in a row and the run is broken
            optimizer.zero_grad(set_to_none=True)
            log.warning("non-finite loss/gradient at global step %d: step skipped", state.global_step)
            if self.nonfinite >= a.max_nonfinite_steps:
                raise FatalError(f"loss/gradient not finite for {self.nonfinite} consecutive steps (to global "
                                 f"step {state.global_step}): stopping, no checkpoint or export")
        else:
            optimizer.step()
            self.parts.scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        return (None if bad else loss_f), stop_req, int(batch["labels"].shape[0]) * self.world

    def _log_window(self, state: TrainState, win: _Window) -> None:
        sps = win.samples / max(time.perf_counter() - win.t, 1e-9)
        mean_loss = round(win.loss / win.n, 5) if win.n else None
        lr = float(f"{self.parts.scheduler.get_last_lr()[0]:.3g}")
        self.cb.on_step_log(state, mean_loss, lr, sps)

    def _end_epoch(self, state: TrainState, samples: int, seconds: float) -> int | None:
        """Evaluate, record, checkpoint; EXIT_PREEMPTED if a SIGTERM came meanwhile."""
        self.train_seconds += seconds
        self.train_samples += samples
        epoch = state.epoch
        acc = self._evaluate() if self.eval_loader is not None else None
        state.history.append({"epoch": epoch + 1, "global_step": state.global_step, "eval_accuracy": acc})
        if acc is not None:
            self.cb.on_evaluate(state, acc)
        self.cb.on_epoch_end(state, acc, samples, samples / max(seconds, 1e-9))
        path = self.ckpts.save(self.parts, state, epoch + 1, 0, "epoch")
        if self.stop_agreed()[0]:
            log.info("SIGTERM: checkpoint written to %s (end of epoch %d, global step %d); exiting",
                     path if path else self.args.checkpoint_dir, epoch + 1, state.global_step)
            return EXIT_PREEMPTED
        return None

    def _evaluate(self) -> float:
        model = self.model
        model.eval()
        correct = total = 0
        with torch.inference_mode():
            for batch in self.eval_loader:
                labels = batch.pop("labels").to(self.device)
                batch = {k: v.to(self.device) for k, v in batch.items()}
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                    logits = model(**batch).logits
                correct += int((logits.argmax(-1) == labels).sum())
                total += int(labels.numel())
        model.train()
        correct, total = self.coll.sum_ints(correct, total)
        return round(correct / total, 5) if total else 0.0

    def _export(self, state: TrainState, n_train: int, n_eval: int) -> str:
        sps = self.train_samples / self.train_seconds if self.train_seconds else None
        run = tx.RunSummary(data_hash=self.data_hash, world_size=self.world, global_step=state.global_step,
                            samples=n_train, eval_samples=n_eval, train_samples_per_second=sps,
                            history=state.history)
        out = tx.export(self.model, self.tokenizer, self.args, run, self.ckpts.ckpt_dir, self.eval_rows)
        self.cb.on_export(out.version, str(out.path), out.accuracy)
        d = out.promotion  # the gate's verdict: `latest` names the new version, or still the one before
        self.cb.on_log("promotion", {"version": out.version, "promoted": d.promoted, "reason": d.reason,
                                     "latest": out.version if d.promoted else d.baseline_version})
        return out.version
