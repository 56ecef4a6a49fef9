"""The DataLoader worker processes: they ignore the signals meant for the trainer, die with it, and
are killed by it on any exit (they never outlive the trainer or keep it from exiting).

Linux-specific where it matters (prctl); torch is imported only to unregister the workers.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import sys


def worker_init(_worker_id: int) -> None:
    """DataLoader workers ignore SIGTERM and SIGINT: a signal sent to the whole process group
    (docker stop, kill -TERM -PGID, Ctrl-C) must not kill them under the trainer, which
    checkpoints and then shuts them down itself. They must never outlive it, though: on Linux
    the kernel SIGKILLs a worker as soon as its parent dies (PR_SET_PDEATHSIG), however the
    parent ends, and the trainer kills them itself on any error."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    set_parent_death_signal(signal.SIGKILL)
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:  # the parent died before prctl took effect
        os._exit(1)


def set_parent_death_signal(sig: int) -> bool:
    """prctl(PR_SET_PDEATHSIG, sig) on Linux; False where unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(1, int(sig), 0, 0, 0) == 0  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return False


def kill_loader_workers(loaders: list) -> None:
    """SIGKILL and reap the worker processes of these DataLoaders' live iterators, at once: they
    ignore SIGTERM, so torch's own shutdown (join, then terminate) and multiprocessing's exit
    handler (join) would wait for them forever after an error. Safe to call more than once."""
    for loader in loaders:
        it = getattr(loader, "_iterator", None)
        workers = list(getattr(it, "_workers", None) or [])
        if getattr(it, "_worker_pids_set", False):  # torch's SIGCHLD handler must not raise on these kills
            from torch.utils.data import _utils

            _utils.signal_handling._remove_worker_pids(id(it))
            it._worker_pids_set = False
        for w in workers:
            if w.is_alive():
                w.kill()
        for w in workers:
            w.join(timeout=2)
        if it is not None and workers:
            it._shutdown = True  # its __del__ must not wait for them again
    loaders.clear()
