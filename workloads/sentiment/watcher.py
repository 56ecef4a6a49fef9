"""Following ``MODEL_DIR/latest``: notice a newly promoted version, load it on the side, hand it over.

With ``MODEL_VERSION=latest`` the server serves the version `latest` names at start-up, and this
watcher (a daemon thread) checks the pointer every MODEL_WATCH_INTERVAL_S: a stat, and a read of the
small file only when its inode, size or mtime changed. When it names a version other than the one
served, the watcher loads and warms that version on its own thread, while the batch worker keeps
serving the old one, then calls ``swap`` (``lifecycle.AppState`` switches the batch worker over
between two batches and frees the old model). A version that fails to load is reported through
``failed`` and the old one stays; it is tried again only when `latest` is written again (a new
promotion, or ``promote.py`` of the same version once it is fixed), unless the failure says it may
clear by itself (``retry_on_poll`` on the exception: a Neuron version whose compiled model the compile
CronJob has not written yet, which it does without touching `latest`). That version is then tried again
on every poll (a few stats and small reads: the artifact check runs before anything loads), reported again only
when the reason changes.

Standard library only; the loading itself is injected (``load``), so the logic is tested with fakes.
"""
from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any, Callable, Optional, Tuple

from workloads.sentiment.artifacts import LATEST, pointed_version

log = logging.getLogger("sentiment.server")

#: version name -> (a loaded, warmed predictor, seconds the load took)
VersionLoader = Callable[[str], Tuple[Any, float]]


def _pointer_key(latest: Path) -> Optional[Tuple[int, int, int]]:
    """What changes whenever `latest` is rewritten (promote.py and the trainer replace it by rename)."""
    try:
        st = os.lstat(latest)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


class ModelWatcher:
    """Polls ``root/latest``; see the module docstring. ``current()`` is the version served now."""

    def __init__(self, root: str, interval_s: float, *, current: Callable[[], str], load: VersionLoader,
                 swap: Callable[[Any, float], None], failed: Callable[[str, BaseException], None]) -> None:
        self.latest = Path(root) / LATEST
        self.interval_s = interval_s
        self.current = current
        self.load = load
        self.swap = swap
        self.failed = failed
        self._seen: Optional[Tuple[int, int, int]] = None
        self._retry: Optional[Tuple[str, str]] = None  # (version, last error) that asked to be retried
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def check_once(self) -> Optional[str]:
        """One poll: None (nothing new), "switched" or "failed"."""
        key = _pointer_key(self.latest)
        if key is None or (key == self._seen and self._retry is None):
            return None
        self._seen = key
        name = pointed_version(self.latest.parent)
        if name is None or name == self.current():
            self._retry = None
            return None
        retry, self._retry = self._retry, None
        if retry is None or retry[0] != name:
            log.info("%s now names %s (serving %s): loading it on the side", self.latest, name, self.current())
        try:
            predictor, seconds = self.load(name)
        except BaseException as exc:  # noqa: BLE001 - any load failure keeps the old model serving
            error = f"{type(exc).__name__}: {exc}"
            if getattr(exc, "retry_on_poll", False):
                self._retry = (name, error)
            if retry == (name, error):
                log.debug("%s still fails to load (%s); retrying on the next poll", name, error)
            else:
                self.failed(name, exc)
            return "failed"
        self.swap(predictor, seconds)
        return "switched"

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.check_once()
            except Exception:  # noqa: BLE001 - a failing poll (a callback's bug) must not end the watching
                log.exception("checking %s failed", self.latest)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sentiment-model-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
