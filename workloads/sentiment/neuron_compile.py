"""Compile the sentiment model for AWS Inferentia (inf1, NeuronCore v1) with torch-neuron.

    python -m workloads.sentiment.neuron_compile --model-dir /models --out /tmp/neuron/model.neuron.pt \\
        [--batch-size 8] [--seq-len 128]

inf1 runs a TorchScript graph that neuron-cc compiled ahead of time for fixed
input shapes. This step traces the trainer's model (the version ``latest``
names, or a saved-model directory) with ``torch.neuron.trace`` on int64
inputs of exactly ``batch_size x seq_len`` (input_ids, attention_mask,
token_type_ids) and writes:

- ``model.neuron.pt``: the compiled TorchScript module;
- ``neuron.json`` beside it: the shapes and the model version it was built from.

At serving time (BACKEND=neuron) ``neuron_backend.NeuronPredictor`` pads every batch to
those shapes: texts are truncated/padded to ``seq_len`` tokens and a short batch
is filled with padding rows. If no compiled model for the current version is
found, the server runs this compile itself into NEURON_CACHE_DIR (/tmp by
default) before /readyz turns 200 (a few minutes on inf1; the Deployment's
startupProbe must allow it). Running this module as an init step (Job or init
container) avoids that per-pod cost.

Runs only where torch-neuron is installed: it comes from AWS's Neuron pip
repository (``pip install torch-neuron neuron-cc[tensorflow]
--extra-index-url=https://pip.repos.neuron.amazonaws.com``), pins PyTorch 1.13
and Python <= 3.10 (see Dockerfile.neuron); the PyPI name ``torch-neuron`` is an
empty placeholder. Nothing in this module runs on import.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Optional

from workloads.sentiment.artifacts import NEURON_META_FILE, NEURON_MODEL_FILE, resolve_model_dir

log = logging.getLogger("sentiment.neuron_compile")


def compile_model(model_path: Path, out: Path, *, batch_size: int = 8, seq_len: int = 128,
                  version: str = "", compiler_args: Optional[list] = None) -> Path:
    """Trace ``model_path`` (a saved HF model) for inf1 and save it at ``out``; returns ``out``."""
    import torch
    import torch_neuron  # noqa: F401  adds torch.neuron
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    class Logits(torch.nn.Module):
        """Positional int64 inputs -> logits tensor: the traceable signature (any transformers version)."""

        def __init__(self, model) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                              return_dict=False)[0]

    tokenizer = AutoTokenizer.from_pretrained(str(model_path), local_files_only=True)
    model = Logits(AutoModelForSequenceClassification.from_pretrained(str(model_path), local_files_only=True))
    model.eval()
    enc = tokenizer(["a representative review of reasonable length"] * batch_size, padding="max_length",
                    truncation=True, max_length=seq_len, return_tensors="pt")
    example = (enc["input_ids"].long(), enc["attention_mask"].long(), enc["token_type_ids"].long())
    t0 = time.time()
    kwargs = {"compiler_args": compiler_args} if compiler_args else {}
    compiled = torch.neuron.trace(model, example_inputs=example, **kwargs)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    compiled.save(str(tmp))
    os.replace(tmp, out)  # atomic: a reader never sees a half-written model
    meta = {"batch_size": batch_size, "seq_len": seq_len, "source": str(model_path), "version": version,
            "torch": torch.__version__, "torch_neuron": getattr(torch_neuron, "__version__", "unknown"),
            "compile_seconds": round(time.time() - t0, 1)}
    (out.parent / NEURON_META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    log.info("compiled %s for inf1 (batch %d x seq %d) in %.0fs -> %s", model_path, batch_size, seq_len,
             meta["compile_seconds"], out)
    return out


def main(argv: Optional[list] = None) -> int:
    ap = argparse.ArgumentParser(description="Compile the sentiment model for inf1 (torch-neuron).")
    ap.add_argument("--model-dir", default=os.environ.get("MODEL_DIR", "/models"),
                    help="trainer --model-dir root (uses `latest`) or a saved-model directory")
    ap.add_argument("--out", type=Path, help=f"output file (default: <version dir>/{NEURON_MODEL_FILE})")
    ap.add_argument("--batch-size", type=int, default=int(os.environ.get("NEURON_BATCH_SIZE", "8")))
    ap.add_argument("--seq-len", type=int, default=int(os.environ.get("NEURON_SEQ_LEN", "128")))
    args = ap.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    resolved = resolve_model_dir(args.model_dir)
    out = args.out or resolved.path / NEURON_MODEL_FILE
    compile_model(resolved.path, out, batch_size=args.batch_size, seq_len=args.seq_len, version=resolved.version)
    return 0


if __name__ == "__main__":
    sys.exit(main())
