"""Where a trained model lives on disk: MODEL_DIR resolution and the compiled-artefact file names.

Standard library only, and imported by both the serving backends (``model.py``,
``neuron_backend.py``) and the inf1 compile step (``neuron_compile.py``), so
neither of those has to import the other to find a model.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict

log = logging.getLogger("sentiment.model")

NEURON_MODEL_FILE = "model.neuron.pt"
NEURON_META_FILE = "neuron.json"


class ModelNotFound(RuntimeError):
    """MODEL_DIR holds no usable model (missing, malformed `latest`, or refused weights)."""


@dataclass(frozen=True)
class ResolvedModel:
    path: Path              # the saved-model directory (has config.json)
    version: str            # what `latest` named, or metadata's version, or the dir name
    metadata: Dict = field(default_factory=dict)


def _version_dir(root: Path) -> tuple[Path, str | None]:
    """The saved-model directory under ``root`` and the version `latest` names (None: root is the model)."""
    if (root / "config.json").is_file():
        return root, None
    latest = root / "latest"
    if latest.is_dir():  # a symlink to the version directory
        path = latest.resolve()
        version = path.name
    elif latest.is_file():
        name = latest.read_text(encoding="utf-8").strip()
        if not name or "/" in name or "\\" in name or name in (".", ".."):
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


def resolve_model_dir(model_dir: str) -> ResolvedModel:
    """MODEL_DIR -> the version directory to load.

    - ``MODEL_DIR/config.json`` exists: MODEL_DIR is the model;
    - else ``MODEL_DIR/latest`` is a text file naming a version directory
      under MODEL_DIR (a symlink to that directory works too).
    """
    root = Path(model_dir)
    if not root.is_dir():
        raise ModelNotFound(f"MODEL_DIR {root} is not a directory")
    path, version = _version_dir(root)
    metadata = _read_metadata(path)
    if version is None:
        version = str(metadata.get("version") or path.name)
    return ResolvedModel(path=path, version=version, metadata=metadata)
