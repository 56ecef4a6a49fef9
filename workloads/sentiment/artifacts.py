"""Where a trained model lives on disk: MODEL_DIR resolution and the compiled-artefact file names.

Standard library only, and imported by both the serving backends (``model.py``,
``neuron_backend.py``) and the Neuron compile step (``neuron_compile.py``), so
neither of those has to import the other to find a model.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict

log = logging.getLogger("sentiment.model")

NEURON_MODEL_FILE = "model.neuron.pt"    # inf1: torch-neuron's compiled TorchScript
NEURON_META_FILE = "neuron.json"
NEURONX_MODEL_FILE = "model.neuronx.pt"  # inf2/trn: torch_neuronx.trace's output, torch.jit-saved
NEURONX_META_FILE = "neuronx.json"
#: compile target -> (compiled model file, its metadata file), both next to the model version they come from
NEURON_ARTIFACTS = {"inf1": (NEURON_MODEL_FILE, NEURON_META_FILE), "inf2": (NEURONX_MODEL_FILE, NEURONX_META_FILE)}
LATEST = "latest"  # MODEL_VERSION's default, and the pointer file the trainer writes


class ModelNotFound(RuntimeError):
    """MODEL_DIR holds no usable model (missing, malformed `latest`, or refused weights)."""


@dataclass(frozen=True)
class ResolvedModel:
    path: Path              # the saved-model directory (has config.json)
    version: str            # what `latest` named, or metadata's version, or the dir name
    metadata: Dict = field(default_factory=dict)


def _bad_name(name: str) -> bool:
    return not name or "/" in name or "\\" in name or name in (".", "..")


def pointed_version(root: str | Path) -> str | None:
    """The version name ``root/latest`` holds now (a text file, or a symlink to the folder); None when there
    is none or it is malformed. Cheap (one small read): the watcher calls it whenever `latest` changed."""
    latest = Path(root) / LATEST
    try:
        name = Path(os.readlink(latest)).name if latest.is_symlink() else latest.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return None if _bad_name(name) else name


def _version_dir(root: Path, pinned: str | None = None) -> tuple[Path, str | None]:
    """The saved-model directory under ``root`` and its version (None: root is the model): ``pinned``
    (MODEL_VERSION) when given, else the one `latest` names."""
    if pinned is not None:
        path = root / pinned
        if not (path / "config.json").is_file():
            raise ModelNotFound(f"MODEL_VERSION={pinned}: {path} is not a saved model (no config.json)")
        return path, pinned
    if (root / "config.json").is_file():
        return root, None
    latest = root / LATEST
    if latest.is_dir():  # a symlink to the version directory
        path = latest.resolve()
        version = path.name
    elif latest.is_file():
        name = latest.read_text(encoding="utf-8").strip()
        if _bad_name(name):
            raise ModelNotFound(f"{latest} must hold one version directory name, got {name!r}")
        path, version = root / name, name
    else:
        raise ModelNotFound(f"{root} has neither config.json nor a `latest` file")
    if not (path / "config.json").is_file():
        raise ModelNotFound(f"{path} (named by {latest}) is not a saved model: no config.json")
    return path, version


def _read_metadata(path: Path) -> Dict:
    """``metadata.json`` of a saved model, or {} when absent or unreadable (it is informational)."""
    meta_file = path / "metadata.json"
    if not meta_file.is_file():
        return {}
    try:
        metadata = json.loads(meta_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        log.warning("ignoring unreadable %s", meta_file)
        return {}
    return metadata if isinstance(metadata, dict) else {}


def resolve_model_dir(model_dir: str, version: str = LATEST) -> ResolvedModel:
    """MODEL_DIR (and MODEL_VERSION) -> the version directory to load.

    - ``version`` names a version (a pin): ``MODEL_DIR/<version>``;
    - else ``MODEL_DIR/config.json`` exists: MODEL_DIR is the model;
    - else ``MODEL_DIR/latest`` is a text file naming a version directory
      under MODEL_DIR (a symlink to that directory works too).
    """
    root = Path(model_dir)
    if not root.is_dir():
        raise ModelNotFound(f"MODEL_DIR {root} is not a directory")
    path, version = _version_dir(root, None if version == LATEST else version)
    metadata = _read_metadata(path)
    if version is None:
        version = str(metadata.get("version") or path.name)
    return ResolvedModel(path=path, version=version, metadata=metadata)
