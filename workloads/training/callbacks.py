"""What the training loop reports, as callbacks (the shape of transformers' ``TrainerCallback``).

The loop calls the hooks of ``TrainerCallback`` at fixed points and knows nothing of how they are
reported; two callbacks ship:

- ``JsonLogCallback``: one JSON object per line (after the usual log prefix) for machines to parse.
  The event names and fields are the trainer's log contract (README, tests): change none of them.
- ``PrometheusCallback``: the ``trainer_*`` metrics of metrics.py, served by rank 0.

No torch here: the hooks get plain numbers.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from workloads.training import metrics as tmetrics

log = logging.getLogger("trainer")


@dataclass
class TrainState:
    """Where the run is: the loop updates it, callbacks read it."""

    epochs: int
    steps_per_epoch: int
    epoch: int = 0          # the epoch in progress, from 0
    step_in_epoch: int = 0  # optimizer steps done in it
    global_step: int = 0    # optimizer steps done in all, resumed ones included
    history: list[dict] = field(default_factory=list)  # per finished epoch: epoch, global_step, eval_accuracy


class TrainerCallback:
    """Hooks of the training loop; each does nothing unless overridden."""

    def on_log(self, event: str, fields: dict[str, Any]) -> None:
        """A fact about the run outside the loop: start, data, model, resume."""

    def on_train_begin(self, state: TrainState) -> None:
        """Resumed (or fresh) and about to train; not called when a finished run has nothing to do."""

    def on_epoch_begin(self, state: TrainState) -> None:
        pass

    def on_step_end(self, state: TrainState, samples: int) -> None:
        """After each optimizer step (or skipped non-finite step); `samples` over all ranks."""

    def on_step_log(self, state: TrainState, loss: float | None, lr: float, samples_per_s: float) -> None:
        """Every --log-every-steps steps and at an epoch's last step: the window since the last one."""

    def on_evaluate(self, state: TrainState, accuracy: float) -> None:
        pass

    def on_epoch_end(self, state: TrainState, accuracy: float | None, samples: int, samples_per_s: float) -> None:
        pass

    def on_save(self, state: TrainState, path: str, reason: str, resume_epoch: int, resume_step: int) -> None:
        """Rank 0 wrote a checkpoint (a run started from it continues at resume_epoch/resume_step)."""

    def on_export(self, version: str, path: str, accuracy: float | None) -> None:
        pass

    def on_train_end(self, state: TrainState, version: str | None, seconds: float) -> None:
        pass


class CallbackList:
    """Calls a hook of TrainerCallback on every callback, in order."""

    def __init__(self, callbacks: list[TrainerCallback]):
        self.callbacks = list(callbacks)

    def __getattr__(self, name: str) -> Any:
        if not (name.startswith("on_") and hasattr(TrainerCallback, name)):
            raise AttributeError(name)

        def call(*args: Any, **kw: Any) -> None:
            for cb in self.callbacks:
                getattr(cb, name)(*args, **kw)
        return call


def jlog(event: str, **fields: Any) -> None:
    """One JSON object per line (after the usual prefix) for machines to parse."""
    log.info("%s", json.dumps({"event": event, **fields}, sort_keys=False))


class JsonLogCallback(TrainerCallback):
    """The trainer's JSON event lines (ranks > 0 log at WARNING, so only rank 0's appear)."""

    def on_log(self, event: str, fields: dict[str, Any]) -> None:
        jlog(event, **fields)

    def on_epoch_begin(self, state: TrainState) -> None:
        jlog("epoch_start", epoch=state.epoch + 1, epochs=state.epochs, step=state.step_in_epoch,
             steps=state.steps_per_epoch, global_step=state.global_step)

    def on_step_log(self, state: TrainState, loss: float | None, lr: float, samples_per_s: float) -> None:
        jlog("train_step", epoch=state.epoch + 1, step=state.step_in_epoch, steps=state.steps_per_epoch,
             global_step=state.global_step, loss=loss, lr=lr, samples_per_s=round(samples_per_s, 2))

    def on_epoch_end(self, state: TrainState, accuracy: float | None, samples: int, samples_per_s: float) -> None:
        jlog("epoch_end", epoch=state.epoch + 1, global_step=state.global_step, eval_accuracy=accuracy,
             samples=samples, samples_per_s=round(samples_per_s, 2))

    def on_save(self, state: TrainState, path: str, reason: str, resume_epoch: int, resume_step: int) -> None:
        jlog("checkpoint", path=path, global_step=state.global_step, reason=reason,
             resume_epoch=resume_epoch, resume_step=resume_step)

    def on_export(self, version: str, path: str, accuracy: float | None) -> None:
        jlog("export", version=version, path=path, eval_accuracy=accuracy)

    def on_train_end(self, state: TrainState, version: str | None, seconds: float) -> None:
        jlog("done", version=version, global_step=state.global_step, seconds=round(seconds, 1))


class PrometheusCallback(TrainerCallback):
    """The trainer_* metrics; the server starts when training does (rank 0 only, port 0 disables)."""

    def __init__(self, port: int, enabled: bool = True):
        self.port = port
        self.enabled = enabled
        self.m = tmetrics.noop_metrics()

    def on_train_begin(self, state: TrainState) -> None:
        self.m = tmetrics.start_metrics(self.port) if self.enabled else tmetrics.noop_metrics()
        self.m.global_step.set(state.global_step)
        if state.history and state.history[-1].get("eval_accuracy") is not None:
            self.m.eval_accuracy.set(state.history[-1]["eval_accuracy"])

    def on_epoch_begin(self, state: TrainState) -> None:
        self.m.epoch.set(state.epoch + 1)

    def on_step_end(self, state: TrainState, samples: int) -> None:
        self.m.samples.inc(samples)
        self.m.global_step.set(state.global_step)

    def on_step_log(self, state: TrainState, loss: float | None, lr: float, samples_per_s: float) -> None:
        if loss is not None:
            self.m.loss.set(loss)
        self.m.samples_per_second.set(samples_per_s)

    def on_evaluate(self, state: TrainState, accuracy: float) -> None:
        self.m.eval_accuracy.set(accuracy)

    def on_save(self, state: TrainState, path: str, reason: str, resume_epoch: int, resume_step: int) -> None:
        self.m.checkpoints.inc()


def default_callbacks(metrics_port: int, rank: int) -> CallbackList:
    """The JSON lines, then the metrics (served by rank 0 only)."""
    return CallbackList([JsonLogCallback(), PrometheusCallback(metrics_port, enabled=rank == 0)])
