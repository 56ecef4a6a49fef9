"""Every upstream file the platform reads, pinned by raw URL at a release tag and by sha256 (the table is
``infra.upstream_pins``, re-exported here), and its loader.

Nothing upstream is committed to this repository. The program (the training operator's manifests,
the Load Balancer Controller's IAM policy), ``check`` (CRDs, chart values) and the tests obtain
each file through :func:`read_bytes`, which looks in this order and always verifies the sha256:

1. the cache: ``$EKS_ML_PLATFORM_CACHE`` or ``$XDG_CACHE_HOME/eks-ml-platform/upstream``
   (``~/.cache/eks-ml-platform/upstream``), laid out like a mirror;
2. the mirror folders: ``--upstream DIR`` on the commands that read artifacts, else
   ``$EKS_ML_PLATFORM_UPSTREAM`` (several folders separated by ``os.pathsep``). A mirror is laid out
   like the raw URL without its host, ``<owner>/<repo>/<tag>/<path>``; a file under another name
   is found by its sha256 (so a folder of hand-downloaded files works too);
3. a download from ``https://raw.githubusercontent.com/<owner>/<repo>/<tag>/<path>`` (the base is
   ``$EKS_ML_PLATFORM_UPSTREAM_URL``; ``EKS_ML_PLATFORM_OFFLINE=1`` turns downloads off), which is
   written to the cache.

A file whose sha256 differs from the pin is refused (:class:`ChecksumMismatch`). A file that none
of the three can provide raises :class:`ArtifactUnavailable`, whose message is one line naming the
artifact and both ways to provide it. ``python -m infra upstream fetch`` fills the cache and
``python -m infra upstream verify`` checks every pin.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Iterator

from infra.upstream_pins import ARTIFACTS, RAW_BASE, Artifact  # the pin table (data), re-exported

__all__ = [
    "Artifact", "ARTIFACTS", "ArtifactUnavailable", "ChecksumMismatch", "UpstreamError",
    "artifact", "cache_dir", "mirrors", "set_mirrors", "read_bytes", "read_text", "read_yaml_docs", "locate",
    "write_cache",
]

ENV_MIRROR = "EKS_ML_PLATFORM_UPSTREAM"
ENV_CACHE = "EKS_ML_PLATFORM_CACHE"
ENV_BASE_URL = "EKS_ML_PLATFORM_UPSTREAM_URL"
ENV_OFFLINE = "EKS_ML_PLATFORM_OFFLINE"
DOWNLOAD_TIMEOUT_S = 30
MAX_BYTES = 16 * 1024 * 1024  # the largest pinned file is Rook's crds.yaml (~1 MB)



class UpstreamError(Exception):
    """An artifact that cannot be used; the message is one line, for the user."""


class ArtifactUnavailable(UpstreamError):
    pass


class ChecksumMismatch(UpstreamError):
    pass


def artifact(key: str) -> Artifact:
    try:
        return ARTIFACTS[key]
    except KeyError:
        raise KeyError(f"no pinned upstream artifact {key!r}") from None


# ------------------------------------------------------------------ where to look
_MIRRORS_OVERRIDE: list[Path] | None = None


def set_mirrors(folders: Iterable[Path | str] | None) -> None:
    """Mirror folders from the command line (``--upstream``); None goes back to the environment."""
    global _MIRRORS_OVERRIDE
    _MIRRORS_OVERRIDE = None if folders is None else [Path(f) for f in folders]
    read_bytes.cache_clear()
    _parsed.cache_clear()


def mirrors() -> list[Path]:
    if _MIRRORS_OVERRIDE is not None:
        return list(_MIRRORS_OVERRIDE)
    raw = os.environ.get(ENV_MIRROR, "")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]


def cache_dir() -> Path:
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "eks-ml-platform" / "upstream"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@lru_cache(maxsize=32)
def _hash_index(folder: str, mtime_ns: int) -> dict[str, str]:
    """sha256 -> file, for a mirror folder holding files under other names (small folders only)."""
    index: dict[str, str] = {}
    count = 0
    for path in sorted(Path(folder).rglob("*")):
        if not path.is_file() or path.stat().st_size > MAX_BYTES:
            continue
        count += 1
        if count > 5000:
            break
        index.setdefault(_sha256(path.read_bytes()), str(path))
    return index


@dataclass(frozen=True)
class Located:
    source: str    # cache | mirror | download
    where: str
    data: bytes


def _from_cache(a: Artifact) -> Located | None:
    path = cache_dir() / a.rel
    if path.is_file():
        data = path.read_bytes()
        if _sha256(data) == a.sha256:
            return Located("cache", str(path), data)
        path.unlink(missing_ok=True)  # a cache entry that fails its checksum is dropped, never used
    return None


def _from_mirrors(a: Artifact, folders: list[Path]) -> tuple[Located | None, list[str]]:
    problems: list[str] = []
    for folder in folders:
        if not folder.is_dir():
            problems.append(f"mirror {folder} is not a folder")
            continue
        path = folder / a.rel
        if path.is_file():
            data = path.read_bytes()
            got = _sha256(data)
            if got != a.sha256:
                raise ChecksumMismatch(f"upstream artifact {a.key}: {path} has sha256 {got}, the pin is {a.sha256} "
                                       f"({a.url}); refusing it")
            return Located("mirror", str(path), data), problems
        hit = _hash_index(str(folder.resolve()), folder.stat().st_mtime_ns).get(a.sha256)
        if hit:
            return Located("mirror", hit, Path(hit).read_bytes()), problems
    return None, problems


def _download(a: Artifact) -> tuple[Located | None, str]:
    if os.environ.get(ENV_OFFLINE, "").strip() not in ("", "0", "false"):
        return None, f"downloads are off ({ENV_OFFLINE})"
    base = os.environ.get(ENV_BASE_URL, RAW_BASE).rstrip("/")
    url = f"{base}/{a.rel}"
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as resp:  # noqa: S310 - pinned https URL
            data = resp.read(MAX_BYTES + 1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        return None, f"download of {url} failed ({str(reason).splitlines()[0][:120]})"
    got = _sha256(data)
    if got != a.sha256:
        raise ChecksumMismatch(f"upstream artifact {a.key}: {url} served sha256 {got}, the pin is {a.sha256}; "
                               "refusing it")
    try:
        write_cache(a, data)
    except OSError:
        pass  # a read-only cache still serves this run
    return Located("download", url, data), ""


def write_cache(a: Artifact, data: bytes) -> Path:
    """Put verified bytes in the cache, atomically (a reader never sees a partial file)."""
    dest = cache_dir() / a.rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".part-")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, dest)
    return dest


def locate(key: str, *, download: bool = True) -> Located:
    """Find and verify one artifact (cache, mirrors, download)."""
    a = artifact(key)
    hit = _from_cache(a)
    if hit:
        return hit
    folders = mirrors()
    hit, problems = _from_mirrors(a, folders)
    if hit:
        return hit
    tried = [f"not in the cache {cache_dir()}"]
    tried.append(f"not in the mirror(s) {os.pathsep.join(map(str, folders))}" if folders else "no mirror given")
    tried += problems
    if download:
        hit, why = _download(a)
        if hit:
            return hit
        tried.append(why)
    raise ArtifactUnavailable(
        f"upstream artifact {a.key} ({a.url}) is not available: {'; '.join(tried)}. Provide it with "
        f"--upstream DIR or {ENV_MIRROR}=DIR (a mirror laid out as <owner>/<repo>/<tag>/<path>), or run "
        "`python -m infra upstream fetch` where there is network")


@lru_cache(maxsize=128)
def read_bytes(key: str) -> bytes:
    return locate(key).data


def read_text(key: str) -> str:
    return read_bytes(key).decode("utf-8")


@lru_cache(maxsize=128)
def _parsed(key: str, mirrors_: tuple[Path, ...]) -> tuple[Any, ...]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: some CRDs are ~1 MB
    return tuple(d for d in yaml.load_all(read_text(key), Loader=loader) if d is not None)


def read_yaml_docs(key: str) -> list[Any]:
    """Every non-empty YAML document of an artifact, parsed once per process.

    The documents are shared: a caller that changes one must ``copy.deepcopy`` it first."""
    return list(_parsed(key, tuple(mirrors())))


def iter_keys(prefix: str = "") -> Iterator[str]:
    return (k for k in sorted(ARTIFACTS) if k.startswith(prefix))
