"""The run's checkpoints across ranks: which one a run resumes from, what it restores, what it saves.

checkpoint.py owns the file format (atomic writes, sha256 sidecars, verification); this module
decides what goes into a checkpoint and keeps the ranks in step: rank 0 picks the folder and the
file, writes every checkpoint and everyone waits for it; every rank's RNG state is in each one.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from workloads.training import checkpoint as ckpt
from workloads.training.args import TrainArgs
from workloads.training.callbacks import CallbackList, TrainState
from workloads.training.distributed import Collectives, FatalError

log = logging.getLogger("trainer")

Found = tuple[Path, dict[str, Any]]  # a checkpoint file and its loaded state


@dataclass
class Parts:
    """What a checkpoint holds the state of."""

    model: Any
    optimizer: Any
    scheduler: Any


class Checkpointer:
    """Resume and save for one run; `ckpt_dir` is where its checkpoints are (see resolve_run_dir)."""

    def __init__(self, a: TrainArgs, coll: Collectives, data_hash: str, callbacks: CallbackList):
        self.a = a
        self.coll = coll
        self.rank = coll.env.rank
        self.world = coll.env.world_size
        self.data_hash = data_hash
        self.cb = callbacks
        self.ckpt_dir: Path = a.checkpoint_dir

    def load(self) -> Found | None:
        """Rank 0 picks the checkpoint folder of this data and its newest valid checkpoint;
        the others load the same file."""
        a = self.a
        found, err = None, None
        if self.rank == 0:
            where, err = ckpt.resolve_run_dir(a.checkpoint_dir, self.data_hash, a.on_data_change)
            if where is not None:
                self.ckpt_dir = where
                found, err = ckpt.load_for_resume(where, a.allow_fresh_start)
        box = self.coll.broadcast([str(found[0]) if found else None, err, str(self.ckpt_dir)])
        err, self.ckpt_dir = box[1], Path(box[2])
        if err:
            raise FatalError(err)
        if not self.coll.env.distributed:
            return found
        if box[0] is None:
            return None
        return self._share(Path(box[0]), found)

    def _share(self, path: Path, found: Found | None) -> Found | None:
        """Every rank reads `path` itself; if any cannot (the folder is not shared), rank 0 sends its copy."""
        if self.rank != 0:
            try:
                found = (path, ckpt.load_checkpoint(path))
            except ckpt.CheckpointError as exc:  # checkpoint dir not shared: take rank 0's copy
                log.warning("cannot read %s on this rank (%s); receiving it from rank 0", path, exc)
                found = None
        if not all(self.coll.gather(found is not None)):
            state_box = self.coll.broadcast([found[1] if self.rank == 0 else None])
            if found is None:
                found = (path, state_box[0])
        return found

    def restore(self, found: Found | None, parts: Parts, state: TrainState) -> int:
        """Load `found` into `parts` and `state`; the samples of its epoch this rank skips (0: none)."""
        a = self.a
        if found is None:
            log.info("no checkpoint in %s: starting from %s", self.ckpt_dir, a.base_model)
            return 0
        path, st = found
        if st.get("data_hash") != self.data_hash:  # resolve_run_dir keeps data apart; never mix them
            raise FatalError(f"checkpoint {path} was trained on other data (data hash {st.get('data_hash')}, "
                             f"this run's {self.data_hash}); use a new --checkpoint-dir")
        try:
            parts.model.load_state_dict(st["model"])
            parts.optimizer.load_state_dict(st["optimizer"])
            parts.scheduler.load_state_dict(st["scheduler"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise FatalError(
                f"checkpoint {path} does not fit this model/optimizer (another --base-model or "
                f"--freeze-embeddings setting?): {str(exc).splitlines()[0]}; use a new --checkpoint-dir") from None
        state.epoch, state.step_in_epoch = int(st["epoch"]), int(st["step_in_epoch"])
        state.global_step = int(st["global_step"])
        log.info("resuming from %s at epoch %d step %d (global step %d)", path, state.epoch + 1,
                 state.step_in_epoch, state.global_step)
        self.cb.on_log("resume", {"path": str(path), "epoch": state.epoch + 1, "step": state.step_in_epoch,
                                  "global_step": state.global_step})
        state.history = list(st.get("eval_history", []))
        return self._skip(st, state)

    def _skip(self, st: dict[str, Any], state: TrainState) -> int:
        """Same world and batch size: skip exactly the batches done, with this rank's RNG state back.
        Otherwise continue the epoch after about as many samples as were done in all."""
        a = self.a
        old_world, old_bs = int(st.get("world_size", self.world)), int(st.get("batch_size", a.batch_size))
        if (old_world, old_bs) == (self.world, a.batch_size):
            rngs = st.get("rng") or []
            if self.rank < len(rngs):
                ckpt.set_rng_state(rngs[self.rank])
            return state.step_in_epoch * a.batch_size
        skip = state.step_in_epoch * old_bs * old_world // self.world
        state.step_in_epoch = skip // a.batch_size
        log.warning("world size/batch size changed (%dx%d -> %dx%d): continuing the epoch after ~%d samples "
                    "per rank (its step %d)", old_world, old_bs, self.world, a.batch_size, skip,
                    state.step_in_epoch)
        return skip

    def _state(self, parts: Parts, rngs: list, state: TrainState, epoch: int, step_in_epoch: int,
               reason: str) -> dict[str, Any]:
        a = self.a
        return {
            "model": parts.model.state_dict(),
            "optimizer": parts.optimizer.state_dict(),
            "scheduler": parts.scheduler.state_dict(),
            "epoch": epoch, "step_in_epoch": step_in_epoch, "global_step": state.global_step,
            "world_size": self.world, "batch_size": a.batch_size,
            "sampler": {"seed": a.seed, "epoch": epoch, "samples_done_per_rank": step_in_epoch * a.batch_size},
            "rng": rngs, "eval_history": state.history, "data_hash": self.data_hash,
            "base_model": a.base_model, "reason": reason,
            "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }

    def save(self, parts: Parts, state: TrainState, epoch: int, step_in_epoch: int, reason: str) -> Path | None:
        """Collective: gathers every rank's RNG state, rank 0 writes, everyone waits. A run started from
        it continues at `epoch` (from 0), after `step_in_epoch` steps."""
        rngs = self.coll.gather(ckpt.rng_state())
        path = None
        if self.rank == 0:
            st = self._state(parts, rngs, state, epoch, step_in_epoch, reason)
            if bad := ckpt.nonfinite_tensors(st["model"]):
                raise FatalError(f"refusing to checkpoint a model with NaN/inf weights ({bad[0]})")
            try:
                path = ckpt.save_checkpoint(self.ckpt_dir, st, keep=self.a.keep_checkpoints)
            except (OSError, RuntimeError) as exc:  # disk full, quota, file size limit...
                raise FatalError(f"cannot write a checkpoint to {self.ckpt_dir}: "
                                 f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
            self.cb.on_save(state, str(path), reason, epoch + 1, step_in_epoch)
        self.coll.barrier()
        return path
