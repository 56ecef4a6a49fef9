"""Atomic, self-validating training checkpoints.

A checkpoint is one file `ckpt-<global step, 9 digits>.pt` in the checkpoint
directory. It is written to a hidden temporary file in the same directory,
fsynced, then renamed over the final name with os.replace (atomic on POSIX), and
the directory is fsynced. A reader therefore sees either a whole checkpoint or
none; a file that is still corrupt (disk full, truncated copy, bit rot) fails
validation and the next older one is used, with a warning.

Checkpoints load with torch.load(weights_only=True): no pickled code runs.
"""
from __future__ import annotations

import logging
import os
import random
import re
from pathlib import Path
from typing import Any

import torch

FORMAT = "eks-ml-platform/trainer-checkpoint/v1"
REQUIRED_KEYS = ("format", "model", "optimizer", "scheduler", "epoch", "step_in_epoch", "global_step")
_NAME_RE = re.compile(r"^ckpt-(\d{9})\.pt$")
DEFAULT_KEEP = 3

log = logging.getLogger("trainer")


class CheckpointError(ValueError):
    pass


def checkpoint_name(global_step: int) -> str:
    return f"ckpt-{global_step:09d}.pt"


def list_checkpoints(ckpt_dir: str | os.PathLike) -> list[Path]:
    """Checkpoint files, newest (highest global step, then newest mtime) first."""
    d = Path(ckpt_dir)
    if not d.is_dir():
        return []
    found = []
    for p in d.iterdir():
        m = _NAME_RE.match(p.name)
        if m and p.is_file():
            try:
                mtime = p.stat().st_mtime_ns
            except FileNotFoundError:  # pruned by someone else meanwhile
                continue
            found.append((int(m.group(1)), mtime, p))
    found.sort(key=lambda t: (t[0], t[1]), reverse=True)
    return [p for _, _, p in found]


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a small file atomically (tmp in the same dir, fsync, os.replace)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def save_checkpoint(ckpt_dir: str | os.PathLike, state: dict[str, Any], keep: int = DEFAULT_KEEP) -> Path:
    """Atomically write `state` as the checkpoint for state['global_step'] and prune old ones."""
    d = Path(ckpt_dir)
    d.mkdir(parents=True, exist_ok=True)
    state = dict(state, format=FORMAT)
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"checkpoint state lacks {missing}")
    final = d / checkpoint_name(int(state["global_step"]))
    tmp = d / f".{final.name}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(d)
    prune(d, keep)
    return final


def prune(ckpt_dir: str | os.PathLike, keep: int = DEFAULT_KEEP) -> list[Path]:
    """Delete all but the `keep` newest checkpoints; return what was deleted."""
    removed = []
    for p in list_checkpoints(ckpt_dir)[max(1, keep):]:
        try:
            p.unlink()
            removed.append(p)
        except FileNotFoundError:
            pass
    return removed


def clean_temporaries(ckpt_dir: str | os.PathLike) -> list[Path]:
    """Remove leftovers of writes that were killed half way (only call from the writer, before writing)."""
    d = Path(ckpt_dir)
    removed = []
    if d.is_dir():
        for p in d.iterdir():
            if p.name.startswith(".ckpt-") and ".tmp-" in p.name:
                try:
                    p.unlink()
                    removed.append(p)
                except FileNotFoundError:
                    pass
    return removed


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Load and validate one checkpoint; CheckpointError if it is unusable."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True, mmap=True)
    except Exception as exc:  # truncated zip, bad pickle, I/O error...
        raise CheckpointError(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
    if not isinstance(state, dict):
        raise CheckpointError("not a checkpoint dictionary")
    if state.get("format") != FORMAT:
        raise CheckpointError(f"unknown format {state.get('format')!r}")
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"missing keys {missing}")
    m = _NAME_RE.match(Path(path).name)
    if m and int(m.group(1)) != int(state["global_step"]):
        raise CheckpointError(f"file name says step {int(m.group(1))}, content says {state['global_step']}")
    return state


def load_latest(ckpt_dir: str | os.PathLike, map_location: Any = "cpu") -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint that loads, skipping (with a warning) those that do not."""
    for path in list_checkpoints(ckpt_dir):
        try:
            return path, load_checkpoint(path, map_location)
        except CheckpointError as exc:
            log.warning("skipping corrupt checkpoint %s: %s", path, exc)
    return None


# --- RNG state -------------------------------------------------------------
# Stored as tensors, ints and tuples only, so weights_only loading accepts them.

def rng_state() -> dict[str, Any]:
    st: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    try:
        import numpy as np
        kind, keys, pos, has_gauss, cached = np.random.get_state()
        st["numpy"] = (kind, torch.from_numpy(keys.astype("int64")), int(pos), int(has_gauss), float(cached))
    except ImportError:  # pragma: no cover
        pass
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state()
    return st


def set_rng_state(st: dict[str, Any]) -> None:
    if "python" in st:
        version, internal, gauss = st["python"]
        random.setstate((version, tuple(internal), gauss))
    if "torch" in st:
        torch.set_rng_state(st["torch"].cpu())
    if "numpy" in st:
        try:
            import numpy as np
            kind, keys, pos, has_gauss, cached = st["numpy"]
            np.random.set_state((kind, keys.numpy().astype("uint32"), pos, has_gauss, cached))
        except ImportError:  # pragma: no cover
            pass
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state(st["cuda"].cpu())
