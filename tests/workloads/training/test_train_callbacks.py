"""The trainer's callbacks (workloads/training/callbacks.py), without torch: the JSON lines and the metrics."""
from __future__ import annotations

import json
import logging

from workloads.training.callbacks import (CallbackList, JsonLogCallback, PrometheusCallback, TrainerCallback,
                                          TrainState)
import pytest

pytestmark = pytest.mark.workload


def _events(caplog) -> list[dict]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.getMessage().startswith("{")]


def test_json_lines_keep_their_names_and_fields(caplog):
    st = TrainState(epochs=2, steps_per_epoch=5, epoch=1, step_in_epoch=3, global_step=8)
    cb = JsonLogCallback()
    with caplog.at_level(logging.INFO, logger="trainer"):
        cb.on_log("data", {"train": 4, "eval": 1})
        cb.on_epoch_begin(st)
        cb.on_step_log(st, 0.25, 1e-4, 12.3456)
        cb.on_epoch_end(st, 0.9, 40, 7.891)
        cb.on_save(st, "/c/ckpt-000000008.pt", "steps", 2, 3)
        cb.on_export("v1", "/m/v1", 0.9)
        cb.on_train_end(st, "v1", 12.345)
    assert _events(caplog) == [
        {"event": "data", "train": 4, "eval": 1},
        {"event": "epoch_start", "epoch": 2, "epochs": 2, "step": 3, "steps": 5, "global_step": 8},
        {"event": "train_step", "epoch": 2, "step": 3, "steps": 5, "global_step": 8, "loss": 0.25, "lr": 1e-4,
         "samples_per_s": 12.35},
        {"event": "epoch_end", "epoch": 2, "global_step": 8, "eval_accuracy": 0.9, "samples": 40,
         "samples_per_s": 7.89},
        {"event": "checkpoint", "path": "/c/ckpt-000000008.pt", "global_step": 8, "reason": "steps",
         "resume_epoch": 2, "resume_step": 3},
        {"event": "export", "version": "v1", "path": "/m/v1", "eval_accuracy": 0.9},
        {"event": "done", "version": "v1", "global_step": 8, "seconds": 12.3},
    ]


class _Recorder:
    def __init__(self) -> None:
        self.values: dict[str, list] = {}

    def metric(self, name: str):
        rec = self

        class M:
            def set(self, v):
                rec.values.setdefault(name, []).append(("set", v))

            def inc(self, v=1):
                rec.values.setdefault(name, []).append(("inc", v))
        return M()


def test_prometheus_callback_sets_the_metrics_and_stays_off_when_disabled():
    from workloads.training import metrics as tm

    off = PrometheusCallback(9464, enabled=False)
    off.on_train_begin(TrainState(epochs=1, steps_per_epoch=1))
    assert off.m.port is None  # ranks > 0: no server
    rec = _Recorder()
    cb = PrometheusCallback(0)
    cb.on_train_begin(TrainState(epochs=1, steps_per_epoch=1))
    assert cb.m.port is None   # port 0: no server either
    cb.m = tm.TrainerMetrics(*(rec.metric(n) for n in ("loss", "sps", "acc", "epoch", "step", "samples", "ckpts")))
    st = TrainState(epochs=2, steps_per_epoch=4, epoch=1, global_step=5)
    cb.on_epoch_begin(st)
    cb.on_step_end(st, 32)
    cb.on_step_log(st, None, 1e-4, 10.0)      # no finite loss in the window: the loss gauge keeps its value
    cb.on_step_log(st, 0.5, 1e-4, 11.0)
    cb.on_evaluate(st, 0.75)
    cb.on_save(st, "p", "epoch", 2, 0)
    assert rec.values == {"epoch": [("set", 2)], "samples": [("inc", 32)], "step": [("set", 5)],
                          "sps": [("set", 10.0), ("set", 11.0)], "loss": [("set", 0.5)], "acc": [("set", 0.75)],
                          "ckpts": [("inc", 1)]}


def test_callback_list_calls_every_callback_in_order():
    calls: list[tuple[str, str]] = []

    class Named(TrainerCallback):
        def __init__(self, name: str) -> None:
            self.name = name

        def on_epoch_begin(self, state: TrainState) -> None:
            calls.append((self.name, "epoch_begin"))

    cbs = CallbackList([Named("a"), TrainerCallback(), Named("b")])
    cbs.on_epoch_begin(TrainState(epochs=1, steps_per_epoch=1))
    cbs.on_train_end(TrainState(epochs=1, steps_per_epoch=1), None, 1.0)  # the base class: no-ops
    assert calls == [("a", "epoch_begin"), ("b", "epoch_begin")]
