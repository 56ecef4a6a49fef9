"""The trainer's process environment: torch.distributed (env, process group, collectives) and SIGTERM.

Distributed only when WORLD_SIZE, RANK, MASTER_ADDR and MASTER_PORT are all set (the Kubeflow
PyTorchJob operator sets them; torchrun also sets LOCAL_RANK/LOCAL_WORLD_SIZE). Then the process
joins a group (gloo on CPU, nccl on CUDA); in a single process every collective here is a no-op or
the identity, so the training loop never asks which case it is in.

torch is imported only inside the functions that need it: train.py reads the environment before
torch loads.
"""
from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Iterator


class FatalError(Exception):
    """An error worth one clear line, not a traceback."""


# Exit code after a SIGTERM checkpoint: the job is stopped, not finished (the operator restarts it).
EXIT_PREEMPTED = 128 + 15


@dataclass
class DistEnv:
    distributed: bool
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1


def dist_env(environ: dict[str, str] | None = None) -> DistEnv:
    """Read the operator's / torchrun's variables. Distributed only when all four are set."""
    e = os.environ if environ is None else environ
    keys = ("WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT")
    if not all(e.get(k) for k in keys):
        return DistEnv(False)
    try:
        world, rank = int(e["WORLD_SIZE"]), int(e["RANK"])
        local_rank = int(e.get("LOCAL_RANK", "0"))
        local_world = int(e.get("LOCAL_WORLD_SIZE", "1"))
        int(e["MASTER_PORT"])
    except ValueError as exc:
        raise FatalError(f"bad distributed environment: {exc}") from None
    if world < 1 or not 0 <= rank < world:
        raise FatalError(f"bad distributed environment: RANK={rank} WORLD_SIZE={world}")
    return DistEnv(True, rank, world, local_rank, max(1, local_world))


class StopFlag:
    """SIGTERM sets a flag; the training loop checks it at every step boundary."""

    def __init__(self) -> None:
        self.requested = False

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame) -> None:  # noqa: ARG002
        self.requested = True


@contextlib.contextmanager
def process_group(env: DistEnv, device: Any) -> Iterator[None]:
    """Join the group for the block (nccl with a CUDA device, else gloo) and always leave it."""
    if not env.distributed:
        yield
        return
    import torch.distributed as dist

    use_cuda = device.type == "cuda"
    kw = {"device_id": device} if use_cuda else {}
    dist.init_process_group("nccl" if use_cuda else "gloo", init_method="env://", rank=env.rank,
                            world_size=env.world_size, timeout=timedelta(minutes=30), **kw)
    try:
        yield
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


class Collectives:
    """The few collectives the trainer uses; the same call works in one process."""

    def __init__(self, env: DistEnv, device: Any = None):
        self.env = env
        self.device = device

    def barrier(self) -> None:
        if self.env.distributed:
            import torch.distributed as dist
            dist.barrier()

    def any_of(self, *flags: bool) -> tuple[bool, ...]:
        """Each flag OR-ed over all ranks: every rank gets the same answer (all_reduce MAX)."""
        if not self.env.distributed:
            return tuple(flags)
        import torch
        import torch.distributed as dist
        t = torch.tensor([int(f) for f in flags], dtype=torch.int32, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return tuple(bool(x) for x in t)

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's `obj`, in rank order (all_gather_object)."""
        if not self.env.distributed:
            return [obj]
        import torch.distributed as dist
        out: list[Any] = [None] * self.env.world_size
        dist.all_gather_object(out, obj)
        return out

    def broadcast(self, objs: list[Any]) -> list[Any]:
        """Rank 0's `objs` on every rank (broadcast_object_list)."""
        if self.env.distributed:
            import torch.distributed as dist
            dist.broadcast_object_list(objs, src=0)
        return objs

    def sum_ints(self, *values: int) -> tuple[int, ...]:
        """Integers summed over all ranks (all_reduce SUM)."""
        if not self.env.distributed:
            return tuple(values)
        import torch
        import torch.distributed as dist
        t = torch.tensor(list(values), dtype=torch.int64, device=self.device)
        dist.all_reduce(t)
        return tuple(int(x) for x in t)
