"""Compile the sentiment model for AWS Neuron, and decide whether a compiled model is still usable.

    python -m workloads.sentiment.neuron_compile --target inf1|inf2 --model-dir /models \\
        --version latest|<name> --batch-size 8 --seq-len 128 [--force] [--out FILE]

Neuron runs a graph compiled ahead of time for fixed input shapes. This step
traces the trainer's model (the version ``--version`` names; ``latest``: the
one ``MODEL_DIR/latest`` names) on int64 inputs of exactly
``batch_size x seq_len`` (input_ids, attention_mask, token_type_ids) and writes,
next to that version (``/models/<version>/``):

- inf1 (NeuronCore v1, torch-neuron, PyTorch 1.13): ``model.neuron.pt`` + ``neuron.json``;
- inf2 and trn (NeuronCore v2, torch-neuronx, PyTorch 2.x): ``model.neuronx.pt`` + ``neuronx.json``.

The metadata (target, version, batch_size, seq_len, source, torch, compiler,
compile_seconds) is what makes an artifact usable: ``artifact_status`` accepts
it only for the version AND the shapes the server is configured with, because a
model compiled at 4 x 64 would otherwise silently cut every text at 64 tokens.
The same check decides here whether a run has anything to do ("up to date"),
so the compile CronJob is cheap when nothing changed. Both files are written
atomically (a temporary file, then a rename): a reader never sees a half-written
model, and a failed compile leaves nothing behind.

Exit status: 0 compiled or up to date; 2 a user error (bad flag, no such
version), one line on stderr; 1 the compiler failed, one line on stderr.

The compilers exist only in the Neuron images (AWS's Neuron pip repository,
see Dockerfile.neuron and Dockerfile.neuronx); they are imported inside
``_trace_inf1`` / ``_trace_inf2`` only, so the rest of this module (standard
library) is what the CPU image and the tests use. Nothing runs on import.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, NoReturn, Optional, Tuple

from workloads.sentiment.artifacts import LATEST, NEURON_ARTIFACTS, ModelNotFound, resolve_model_dir

log = logging.getLogger("sentiment.neuron_compile")

TARGETS = tuple(NEURON_ARTIFACTS)  # ("inf1", "inf2")
FOUND, STALE_VERSION, STALE_SHAPES, MISSING, UNREADABLE = "found", "stale-version", "stale-shapes", "missing", \
    "unreadable"
COMPILE_JOB_HINT = "kubectl -n <ns> create job --from=cronjob/sentiment-neuron-compile <name>"
COMPILE_AT_START_HINT = "serving.neuron.compileAtStartup: true"


# --------------------------------------------------------------------------- is a compiled model usable?
@dataclass(frozen=True)
class Status:
    """What ``artifact_status`` found at ``path``: ``state`` (one of the five above) and why, in words."""

    state: str
    path: Path
    reason: str

    @property
    def usable(self) -> bool:
        return self.state == FOUND


def meta_path(path: Path, target: str) -> Path:
    """The metadata file that belongs to the compiled model ``path`` (beside it)."""
    return path.with_name(NEURON_ARTIFACTS[target][1])


def _read_meta(meta_file: Path) -> Dict:
    """The metadata as a dict; ValueError (with the reason) when it is not a JSON object with int shapes."""
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{meta_file} is unreadable ({type(exc).__name__})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{meta_file} is not a JSON object")
    for key in ("batch_size", "seq_len"):
        if isinstance(meta.get(key), bool) or not isinstance(meta.get(key), int):
            raise ValueError(f"{meta_file} has no integer {key}")
    return meta


def artifact_status(path: Path, target: str, version: str, batch_size: int, seq_len: int, *,
                    trust_unlabelled: bool = False) -> Status:
    """Is ``path`` a compiled model for ``target``, model ``version`` and exactly ``batch_size x seq_len``?

    Pure (reads two small files, imports nothing): the server calls it before loading anything, the
    compile CLI to skip work that is done, the watcher's retries to stay cheap. An artifact without its
    metadata file is trusted only when ``trust_unlabelled`` (NEURON_MODEL names it explicitly): nothing
    else says which version or shapes it was built for.
    """
    path = Path(path)
    if not path.is_file():
        return Status(MISSING, path, f"{path} does not exist")
    meta_file = meta_path(path, target)
    if not meta_file.is_file():
        if trust_unlabelled:
            return Status(FOUND, path, f"{path} has no {meta_file.name}; trusted because NEURON_MODEL names it")
        return Status(UNREADABLE, path, f"{path} has no {meta_file.name} beside it (only NEURON_MODEL may name "
                                        "a compiled model without metadata)")
    try:
        meta = _read_meta(meta_file)
    except ValueError as exc:
        return Status(UNREADABLE, path, str(exc))
    if meta.get("target", target) != target:
        return Status(UNREADABLE, path, f"{path} was compiled for {meta['target']}, not {target}")
    if meta.get("version") != version:
        return Status(STALE_VERSION, path, f"{path} was compiled for model version {meta.get('version')!r}, "
                                           f"not {version!r}")
    if (meta["batch_size"], meta["seq_len"]) != (batch_size, seq_len):
        return Status(STALE_SHAPES, path, f"{path} was compiled for batch {meta['batch_size']} x seq "
                                          f"{meta['seq_len']}, not {batch_size} x {seq_len}")
    return Status(FOUND, path, f"{path} matches version {version}, batch {batch_size} x seq {seq_len}")


def not_ready_message(target: str, version: str, batch_size: int, seq_len: int, statuses: List[Status]) -> str:
    """The one line a pod logs when it may not compile and nothing usable is there: what it looked at,
    what it needs and both ways out (the compile job, or compiling in the pod)."""
    looked = "; ".join(f"{s.state}: {s.reason}" for s in statuses)
    return (f"no usable {target} compiled model for model version {version} at batch {batch_size} x seq "
            f"{seq_len} ({looked}). Compile it with the compile job ({COMPILE_JOB_HINT}) or set "
            f"{COMPILE_AT_START_HINT} (NEURON_COMPILE_AT_START=1) to compile in the pod at start-up")


# --------------------------------------------------------------------------- the compilers (Neuron images only)
def _traceable(model_path: Path, batch_size: int, seq_len: int) -> Tuple[Any, tuple]:
    """The HF model as a positional-int64 -> logits module, and example inputs at the fixed shapes."""
    import torch
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
    return model, (enc["input_ids"].long(), enc["attention_mask"].long(), enc["token_type_ids"].long())


def _trace_inf1(model, example: tuple, compiler_args: Optional[list]) -> Tuple[Any, str]:
    """torch-neuron (neuron-cc): NeuronCore v1."""
    import torch
    import torch_neuron  # noqa: F401  adds torch.neuron

    kwargs = {"compiler_args": compiler_args} if compiler_args else {}
    return torch.neuron.trace(model, example_inputs=example, **kwargs), getattr(torch_neuron, "__version__", "?")


def _trace_inf2(model, example: tuple, compiler_args: Optional[list]) -> Tuple[Any, str]:
    """torch-neuronx (neuronx-cc): NeuronCore v2 (inf2, trn1, trn2)."""
    import torch_neuronx

    kwargs = {"compiler_args": compiler_args} if compiler_args else {}
    return torch_neuronx.trace(model, example, **kwargs), getattr(torch_neuronx, "__version__", "?")


COMPILERS: Dict[str, Callable[[Any, tuple, Optional[list]], Tuple[Any, str]]] = {"inf1": _trace_inf1,
                                                                                "inf2": _trace_inf2}


def trace(target: str, model_path: Path, batch_size: int, seq_len: int,
          compiler_args: Optional[list] = None) -> Tuple[Callable[[str], None], Dict[str, str]]:
    """Compile ``model_path`` for ``target``: (a function saving the result to a path, version facts)."""
    import torch

    model, example = _traceable(model_path, batch_size, seq_len)
    compiled, compiler_version = COMPILERS[target](model, example, compiler_args)
    return (lambda dest: torch.jit.save(compiled, dest)), {"torch": torch.__version__, "compiler": compiler_version}


def _replace_atomically(dest: Path, write: Callable[[str], None]) -> None:
    tmp = dest.with_name(f".{dest.name}.partial")
    try:
        write(str(tmp))
        os.replace(tmp, dest)  # a reader sees the old file or the new one, never half of one
    finally:
        tmp.unlink(missing_ok=True)


def compile_artifact(model_path: Path, out: Path, *, target: str, version: str, batch_size: int, seq_len: int,
                     compiler_args: Optional[list] = None) -> Path:
    """Compile, then write ``out`` and its metadata beside it (each by rename); returns ``out``.

    The model goes first: between the two renames a reader sees the new model with the old metadata,
    which names the old version or shapes when anything changed, so it is refused, never misread.
    A failing compile raises before anything is written.
    """
    t0 = time.time()
    save, versions = trace(target, Path(model_path), batch_size, seq_len, compiler_args)
    meta = {"target": target, "version": version, "batch_size": batch_size, "seq_len": seq_len,
            "source": str(model_path), **versions, "compile_seconds": round(time.time() - t0, 1)}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _replace_atomically(out, save)
    text = json.dumps(meta, indent=2, sort_keys=True) + "\n"
    _replace_atomically(meta_path(out, target), lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    log.info("compiled %s for %s (batch %d x seq %d) in %.0fs -> %s", model_path, target, batch_size, seq_len,
             meta["compile_seconds"], out)
    return out


# --------------------------------------------------------------------------- the CLI (the compile CronJob)
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line, exit 2 (argparse's own prints the whole usage first)."""
        self.exit(2, f"{self.prog}: error: {message}\n")


def _int_in(lo: int, hi: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{raw!r} is not an integer") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value} is out of range [{lo}, {hi}]")
        return value
    return parse


def _parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="neuron_compile", description="Compile the sentiment model for AWS Neuron (inf1 or inf2).")
    ap.add_argument("--target", choices=TARGETS, default="inf1",
                    help="inf1: torch-neuron (NeuronCore v1); inf2: torch-neuronx (inf2, trn1, trn2)")
    ap.add_argument("--model-dir", default=os.environ.get("MODEL_DIR", "/models"),
                    help="trainer --model-dir root (holds <version>/ and `latest`) or a saved-model directory")
    ap.add_argument("--version", default=LATEST, help="latest (what MODEL_DIR/latest names) or a version name")
    ap.add_argument("--batch-size", type=_int_in(1, 1024), default=os.environ.get("NEURON_BATCH_SIZE", "8"))
    ap.add_argument("--seq-len", type=_int_in(8, 512), default=os.environ.get("NEURON_SEQ_LEN", "128"))
    ap.add_argument("--force", action="store_true", help="compile even when an up-to-date artifact is there")
    ap.add_argument("--out", type=Path, help="output file (default: <version dir>/<model.neuron.pt|model.neuronx.pt>)")
    return ap


def main(argv: Optional[list] = None) -> int:
    ap = _parser()
    args = ap.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        resolved = resolve_model_dir(args.model_dir, args.version)
    except ModelNotFound as exc:
        ap.error(f"--model-dir/--version: {exc}")
    out = args.out or resolved.path / NEURON_ARTIFACTS[args.target][0]
    status = artifact_status(out, args.target, resolved.version, args.batch_size, args.seq_len)
    if status.usable and not args.force:
        print(f"up to date: {out} ({args.target}, model version {resolved.version}, "
              f"batch {args.batch_size} x seq {args.seq_len})")
        return 0
    log.info("compiling: %s", "--force" if status.usable else status.reason)
    try:
        compile_artifact(resolved.path, out, target=args.target, version=resolved.version,
                         batch_size=args.batch_size, seq_len=args.seq_len)
    except Exception as exc:  # noqa: BLE001 - any compiler failure is exit 1 with one line
        log.debug("compile failed", exc_info=True)
        print(f"{ap.prog}: compile failed ({args.target}, model version {resolved.version}): "
              f"{type(exc).__name__}: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    print(f"compiled: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
