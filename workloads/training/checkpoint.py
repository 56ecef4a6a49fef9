"""Atomic, self-validating training checkpoints.

A checkpoint is one file `ckpt-<global step, 9 digits>.pt` in the checkpoint
directory. It is written to a hidden temporary file in the same directory,
fsynced, then renamed over the final name with os.replace (atomic on POSIX), and
the directory is fsynced. A reader therefore sees either a whole checkpoint or
none; a file that is still corrupt (disk full, truncated copy, bit rot) fails
validation and the next older one is used, with a warning.

Each checkpoint has a sidecar `ckpt-<step>.pt.sha256` (JSON: sha256 and size of
the .pt, its global step and data hash). The sidecar is written (tmp, fsync,
rename) BEFORE the .pt is renamed into place, so a visible .pt always has its
digest; a .pt without one is an interrupted or foreign write and is not used.
On load the file is read once into memory, its digest checked, and only then
are those same bytes unpickled: bit rot never reaches a tensor.

Checkpoints load with torch.load(weights_only=True) and without mmap (the zip
record checks run too): no pickled code runs.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import math
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
DIGEST_SUFFIX = ".sha256"
CORRUPT_SUFFIX = ".corrupt"

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
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
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


def digest_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(path.name + DIGEST_SUFFIX)


def file_sha256(path: str | os.PathLike) -> tuple[str, int]:
    h, n = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
            n += len(chunk)
    return h.hexdigest(), n


def write_digest(path: str | os.PathLike, data_file: str | os.PathLike | None = None,
                 global_step: int | None = None, data_hash: str | None = None) -> Path:
    """Atomically write the digest sidecar of checkpoint `path` (hashing `data_file`, default `path`)."""
    sha, size = file_sha256(data_file or path)
    side = digest_path(path)
    atomic_write_bytes(side, json.dumps({"sha256": sha, "bytes": size, "global_step": global_step,
                                         "data_hash": data_hash}).encode() + b"\n")
    return side


def read_digest(path: str | os.PathLike) -> dict[str, Any]:
    """The sidecar of checkpoint `path`; CheckpointError if it is missing or unreadable."""
    side = digest_path(path)
    try:
        info = json.loads(side.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"no digest file {side.name} (interrupted write or an older trainer)") from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"unreadable digest file {side.name}: {exc}") from None
    if not isinstance(info, dict) or not isinstance(info.get("sha256"), str) or not isinstance(info.get("bytes"), int):
        raise CheckpointError(f"malformed digest file {side.name}")
    return info


def save_checkpoint(ckpt_dir: str | os.PathLike, state: dict[str, Any], keep: int = DEFAULT_KEEP) -> Path:
    """Atomically write `state` as the checkpoint for state['global_step'] (with its digest
    sidecar, written first) and prune old ones."""
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
        write_digest(final, tmp, int(state["global_step"]), state.get("data_hash"))
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
        digest_path(p).unlink(missing_ok=True)
    d = Path(ckpt_dir)
    if d.is_dir():  # sidecars whose checkpoint is gone (killed between the two writes, or pruned by hand)
        for side in d.glob("ckpt-*.pt" + DIGEST_SUFFIX):
            if not side.with_name(side.name[: -len(DIGEST_SUFFIX)]).exists():
                side.unlink(missing_ok=True)
    return removed


def quarantine(path: str | os.PathLike) -> Path | None:
    """Rename an unusable checkpoint (and its sidecar) out of the ckpt-*.pt namespace, kept for
    inspection: it no longer counts for pruning or resuming. Only the writer calls this."""
    path = Path(path)
    dest = path.with_name(path.name + CORRUPT_SUFFIX)
    try:
        os.replace(path, dest)
    except OSError:
        return None
    side = digest_path(path)
    if side.exists():
        os.replace(side, dest.with_name(dest.name + DIGEST_SUFFIX))
    return dest


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
    """Verify the digest, then load and validate one checkpoint; CheckpointError if it is unusable."""
    info = read_digest(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise CheckpointError(f"cannot read: {exc}") from None
    if len(data) != info["bytes"]:
        raise CheckpointError(f"size {len(data)} != {info['bytes']} recorded in {digest_path(path).name}")
    if hashlib.sha256(data).hexdigest() != info["sha256"]:
        raise CheckpointError(f"sha256 digest mismatch (recorded in {digest_path(path).name}): the file is corrupt")
    try:
        state = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
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


def load_latest(ckpt_dir: str | os.PathLike, map_location: Any = "cpu", *, quarantine_bad: bool = False,
                skipped: list[Path] | None = None) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint that verifies and loads, skipping (with a warning) those that do not
    (collected in `skipped`; renamed to *.corrupt when `quarantine_bad`, so they stop counting)."""
    for path in list_checkpoints(ckpt_dir):
        try:
            return path, load_checkpoint(path, map_location)
        except CheckpointError as exc:
            log.warning("skipping corrupt checkpoint %s: %s", path, exc)
            if skipped is not None:
                skipped.append(path)
            if quarantine_bad and (dest := quarantine(path)) is not None:
                log.warning("moved %s aside to %s", path.name, dest.name)
    return None


def newest_data_hash(ckpt_dir: str | os.PathLike) -> tuple[bool, str | None]:
    """(any checkpoint files?, data hash recorded by the newest readable digest sidecar)."""
    paths = list_checkpoints(ckpt_dir)
    for p in paths:
        try:
            return True, read_digest(p).get("data_hash")
        except CheckpointError:
            continue
    return bool(paths), None


# --- RNG state -------------------------------------------------------------
# Stored as tensors, ints and tuples only, so weights_only loading accepts them.

def rng_state() -> dict[str, Any]:
    st: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    try:
        import numpy as np
        kind, keys, pos, has_gauss, cached = np.random.get_state()
        st["numpy"] = (kind, torch.from_numpy(keys.astype("int64")), int(pos), int(has_gauss), float(cached))
    except ImportError:
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
        except ImportError:
            pass
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state(st["cuda"].cpu())


# --- guards ------------------------------------------------------------------

def nonfinite_tensors(state_dict: dict[str, Any]) -> list[str]:
    """Names of floating-point tensors in `state_dict` that hold a NaN or an infinity."""
    return [k for k, t in state_dict.items()
            if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(torch.isfinite(t).all())]


def export_refusal(state_dict: dict[str, Any], eval_accuracy: Any) -> str | None:
    """Why a model must not be exported (non-finite weights or accuracy), or None."""
    bad = nonfinite_tensors(state_dict)
    if bad:
        return f"{len(bad)} weight tensor(s) hold NaN/inf (first: {bad[0]})"
    if eval_accuracy is not None:
        if isinstance(eval_accuracy, bool) or not isinstance(eval_accuracy, (int, float)):
            return f"eval accuracy {eval_accuracy!r} is not a number"
        if not math.isfinite(eval_accuracy):
            return f"eval accuracy {eval_accuracy!r} is not finite"
    return None


def resolve_run_dir(root: Path, data_hash: str, on_data_change: str = "new-subdir") -> tuple[Path | None, str | None]:
    """(checkpoint folder for a run on data `data_hash`, error). Checkpoints of other data are never
    resumed: when `root` holds another data set's checkpoints, the run uses root/data-<data_hash>/
    (or fails with on_data_change="fail"). Creates the folder and removes half-written temporaries."""
    root = Path(root)
    sub = root / f"data-{data_hash}"
    where = root
    if list_checkpoints(sub) or (sub / "exported.json").exists():
        where = sub
    else:
        has, theirs = newest_data_hash(root)
        if has and theirs is not None and theirs != data_hash:
            if on_data_change == "fail":
                return None, (f"checkpoints in {root} are for other training data (data hash {theirs}, "
                              f"this run's {data_hash}); use a --checkpoint-dir of its own")
            log.warning("checkpoints in %s are for other training data (data hash %s, this run's %s): not "
                        "resuming them; starting a fresh run in %s", root, theirs, data_hash, sub)
            where = sub
    try:
        where.mkdir(parents=True, exist_ok=True)
        for p in clean_temporaries(where):
            log.warning("removed partial checkpoint %s", p)
    except OSError as exc:
        return None, f"--checkpoint-dir {where}: {exc}"
    log.info("%s", json.dumps({"event": "checkpoint_dir", "path": str(where), "data_hash": data_hash}))
    return where, None


def load_for_resume(ckpt_dir: str | os.PathLike, allow_fresh_start: bool = False):
    """((path, state) of the newest valid checkpoint or None, error). When checkpoints exist but none
    is valid that is an error unless `allow_fresh_start` (and they stay where they are, so every later
    run fails the same way). Otherwise the invalid ones are moved aside as *.corrupt."""
    bad: list[Path] = []
    found = load_latest(ckpt_dir, skipped=bad)
    if found is None and bad and not allow_fresh_start:
        return None, (f"{len(bad)} checkpoint(s) in {ckpt_dir} but none is valid (see the warnings); refusing "
                      f"to start over: pass --allow-fresh-start to train from the base model")
    if found is None and bad:
        log.warning("no valid checkpoint in %s: --allow-fresh-start given, starting over", ckpt_dir)
    for path in bad:
        if (dest := quarantine(path)) is not None:
            log.warning("moved %s aside to %s", path.name, dest.name)
    return found, None
