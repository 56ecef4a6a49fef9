#!/usr/bin/env python3
"""Fine-tune a pretrained transformer into a NEGATIVE/POSITIVE sentiment classifier.

    python workloads/training/train.py --data DIR --model-dir DIR --checkpoint-dir DIR --epochs N \
        [--base-model ID_OR_DIR] [--batch-size 16] [--lr 1e-4] [--min-accuracy X] [--max-regression Y] ...

Data: DIR/train.jsonl (and DIR/eval.jsonl, held out), one {"text", "label"} per line.

Single process by default. When WORLD_SIZE, RANK, MASTER_ADDR and MASTER_PORT are
set (the Kubeflow PyTorchJob operator sets them; torchrun also sets LOCAL_RANK),
it joins a torch.distributed group (gloo on CPU, nccl on CUDA), wraps the model
in DistributedDataParallel and gives each rank its shard with a DistributedSampler.

Checkpoints (rank 0 writes them, atomically, each with a sha256 sidecar verified before any
tensor is loaded; see checkpoint.py) go to --checkpoint-dir (or <it>/data-<data hash>/ when it
holds another data set's checkpoints: those are never resumed) after every
epoch, every --checkpoint-every-steps steps, and on SIGTERM at the next step
boundary, then it exits cleanly with code 143 (128 + SIGTERM): "stopped, not done",
so a PyTorchJob with restartPolicy OnFailure restarts the replica instead of marking
the job Succeeded with no model. A new run resumes from the newest checkpoint that loads,
skipping the batches of the current epoch it already trained on.

At the end rank 0 exports model + tokenizer + metadata.json to
--model-dir/<version>/ and points --model-dir/latest (a text file holding the
version name) at it, atomically, if it passes the promotion gate (--min-accuracy,
--max-regression: promote.py); a version that does not is kept, not promoted, with
the reason in its metadata.json and the log, and the run still exits 0.
Rank 0 serves Prometheus metrics on --metrics-port.

The pieces: args.py (the command line), distributed.py (torch.distributed, SIGTERM), trainer.py
(the loop), run_state.py (resume and checkpoints across ranks), export.py, callbacks.py (the JSON
log lines and the Prometheus metrics). None imports pulumi or infra: they run in the training image.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

if not __package__:  # run as a file (the image's command): import the package, not this folder's files
    _HERE = Path(__file__).resolve().parent
    sys.path[:] = [str(_HERE.parents[1]), *(p for p in sys.path if Path(p or os.curdir).resolve() != _HERE)]

from workloads.training.args import PROG, TrainArgs, build_parser, parse_args  # noqa: E402
from workloads.training.distributed import EXIT_PREEMPTED, DistEnv, FatalError, StopFlag, dist_env  # noqa: E402

__all__ = ["EXIT_PREEMPTED", "PROG", "DistEnv", "FatalError", "StopFlag", "TrainArgs", "build_parser", "dist_env",
           "main", "parse_args"]

log = logging.getLogger("trainer")


def setup_logging(rank: int) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s [rank{rank}] %(message)s"))
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.INFO if rank == 0 else logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # OpenMP threads sleep instead of spinning while they wait. Spinning wins a little on an idle
    # machine and collapses when the cores are shared or CFS-throttled (a pod at its CPU limit):
    # measured here on 2 shared cores, 4.4 samples/s spinning vs 15-43 passive. Read when torch loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        env = dist_env()
    except FatalError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    setup_logging(env.rank)
    stop = StopFlag()
    stop.install()
    trainer = None
    try:
        from workloads.training.trainer import Trainer  # torch loads here, after the checks and the environment

        trainer = Trainer(args, env, stop)
        return trainer.run()
    except FatalError as exc:
        log.error("%s", exc)
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except BaseException as exc:  # noqa: BLE001 - unhandled: report, then make sure the process ends
        log.exception("unhandled error: %s", exc)
        return 130 if isinstance(exc, KeyboardInterrupt) else 1
    finally:
        if trainer is not None:
            trainer.teardown()


def _exit(code: int) -> None:
    """Flush and end now: nothing at interpreter exit (multiprocessing joining DataLoader workers,
    a hung collective) may keep the process alive after main() returned."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken pipe must not stop the exit
            pass
    os._exit(code)


if __name__ == "__main__":
    _exit(main())
