#!/usr/bin/env python3
"""Which trained version is `latest`: the trainer's promotion gate, and promoting a version by hand.

    python workloads/training/promote.py --model-dir DIR VERSION

`latest` (a text file in the model root holding one version name) is what the server follows with
``serving.modelVersion: latest``. The trainer exports every run as DIR/<version>/, but moves
`latest` only when the gate passes (``Gate.decide``): the new version's held-out accuracy is at
least --min-accuracy, and not more than --max-regression below the accuracy of the version `latest`
names now. A version that loses is still on disk, with the reason in its metadata.json
(``promotion``), and this command promotes it, or any earlier one (a rollback), by hand: it checks
that DIR/VERSION is a complete export, then replaces `latest` atomically (write, fsync, rename).

Standard library only: it runs in the trainer image without loading torch, and export.py imports it.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if not __package__:  # run as a file (the image's command): import the package, not this folder's files
    _HERE = Path(__file__).resolve().parent
    sys.path[:] = [str(_HERE.parents[1]), *(p for p in sys.path if Path(p or os.curdir).resolve() != _HERE)]

log = logging.getLogger("trainer")

PROG = "promote.py"
LATEST = "latest"
#: What a complete export holds (export.py writes them before the folder gets its final name).
REQUIRED_FILES = ("config.json", "metadata.json", "tokenizer_config.json")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


class PromotionError(Exception):
    """The version cannot be promoted (missing, partial, a bad name): the message says why, in one line."""


def _bad_name(version: str) -> bool:
    return (not version or version in (".", "..", LATEST) or "/" in version or "\\" in version
            or version.startswith("."))  # .tmp-* folders are exports still being written


def current_version(root: Path) -> str | None:
    """The version `latest` names now (a text file, or a symlink to the folder); None when there is none."""
    latest = Path(root) / LATEST
    try:
        if latest.is_symlink():
            return Path(os.readlink(latest)).name
        name = latest.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return None if _bad_name(name) else name


def incomplete(root: Path, version: str) -> str | None:
    """Why DIR/VERSION is not a complete export (None: it is)."""
    if _bad_name(version):
        return f"{version!r} is not a version name (a folder name under the model root, not {LATEST!r} or hidden)"
    folder = Path(root) / version
    if not folder.is_dir():
        return f"{folder} does not exist"
    missing = [f for f in REQUIRED_FILES if not (folder / f).is_file()]
    if not any((folder / f).is_file() for f in WEIGHT_FILES):
        missing.append(" or ".join(WEIGHT_FILES))
    if missing:
        return f"{folder} is not a complete export: no {', '.join(missing)}"
    try:
        json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"{folder} is not a complete export: metadata.json is unreadable ({exc})"
    return None


def recorded_accuracy(root: Path, version: str) -> float | None:
    """The eval accuracy metadata.json records for a version (None: absent, unreadable or not a number)."""
    try:
        acc = json.loads((Path(root) / version / "metadata.json").read_text(encoding="utf-8")).get("eval_accuracy")
    except (OSError, ValueError, AttributeError):
        return None
    ok = isinstance(acc, (int, float)) and not isinstance(acc, bool) and math.isfinite(acc)
    return float(acc) if ok else None


@dataclass(frozen=True)
class Decision:
    """The gate's verdict on one version; recorded as metadata.json's ``promotion``."""

    promoted: bool
    reason: str
    baseline_version: str | None = None
    baseline_accuracy: float | None = None

    def as_metadata(self, gate: "Gate") -> dict[str, Any]:
        return {"promoted": self.promoted, "reason": self.reason, "min_accuracy": gate.min_accuracy,
                "max_regression": gate.max_regression, "baseline_version": self.baseline_version,
                "baseline_accuracy": self.baseline_accuracy}


@dataclass(frozen=True)
class Gate:
    """--min-accuracy and --max-regression (None: that check is off; both None: every version is promoted)."""

    min_accuracy: float | None = None
    max_regression: float | None = None

    def decide(self, accuracy: float | None, baseline: str | None, baseline_accuracy: float | None) -> Decision:
        """Promote `accuracy` over `baseline` (the version `latest` names now, None for the first one)?"""
        base = {"baseline_version": baseline, "baseline_accuracy": baseline_accuracy}
        shown = "none" if accuracy is None else f"{accuracy:.4f}"
        if self.min_accuracy is not None:
            if accuracy is None:
                return Decision(False, "no held-out accuracy was measured (no eval.jsonl), so --min-accuracy "
                                       f"{self.min_accuracy:g} cannot be met", **base)
            if accuracy < self.min_accuracy:
                return Decision(False, f"eval accuracy {shown} is below --min-accuracy {self.min_accuracy:g}", **base)
        if self.max_regression is not None and baseline_accuracy is not None:
            floor = baseline_accuracy - self.max_regression
            if accuracy is None or accuracy < floor - 1e-12:
                return Decision(False, f"eval accuracy {shown} is more than --max-regression {self.max_regression:g} "
                                       f"below {baseline}'s {baseline_accuracy:.4f}", **base)
        if baseline is None:
            return Decision(True, "the first version: nothing promoted to compare with", **base)
        if self.min_accuracy is None and self.max_regression is None:
            return Decision(True, "no promotion gate (--min-accuracy and --max-regression not given)", **base)
        return Decision(True, f"eval accuracy {shown} passes the gate over {baseline}'s "
                              f"{'unknown' if baseline_accuracy is None else f'{baseline_accuracy:.4f}'}", **base)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def point_latest(root: Path, version: str) -> None:
    """Replace `latest` with `version`, atomically: a reader sees the old name or the new one, never a mix."""
    root = Path(root)
    tmp = root / f".{LATEST}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(version)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, root / LATEST)
    _fsync_dir(root)


def promote(root: Path, version: str) -> str | None:
    """Point `latest` at a complete export `version` (PromotionError otherwise); the version it named before."""
    root = Path(root)
    if not root.is_dir():
        raise PromotionError(f"--model-dir {root}: not a directory")
    if why := incomplete(root, version):
        raise PromotionError(f"refusing to promote {version}: {why}; {root / LATEST} is unchanged")
    before = current_version(root)
    point_latest(root, version)
    return before


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description="Point the model root's `latest` at VERSION (a complete "
                                "export under --model-dir), atomically: serving with modelVersion latest follows.")
    p.add_argument("--model-dir", required=True, type=Path, help="the trainer's --model-dir (holds <version>/ folders)")
    p.add_argument("version", metavar="VERSION", help="a version folder name, e.g. v20260101T000000Z-0123abcd")
    a = p.parse_args(argv)
    try:
        before = promote(a.model_dir, a.version)
    except (PromotionError, OSError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    print(f"{a.model_dir / LATEST} now names {a.version} (was {before or 'nothing'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
