"""infra/upstream.py: the pinned upstream files and their loader (cache, mirror, download), and its CLI.

Downloads are tested against a local HTTP server on 127.0.0.1 (tests have no network).
"""
from __future__ import annotations

import hashlib
import http.server
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from infra import upstream
from tests.conftest import REPO, REQUIRE_UPSTREAM

pytestmark = pytest.mark.tooling

BODY = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: demo}\n"
FAKE = upstream.Artifact("test/demo", "example/widgets", "v1.2.3", "deploy/demo.yaml",
                         hashlib.sha256(BODY).hexdigest())


@pytest.fixture
def fake(monkeypatch, tmp_path):
    """One fake pinned artifact, an empty cache, no mirror, and downloads to a closed local port."""
    monkeypatch.setitem(upstream.ARTIFACTS, FAKE.key, FAKE)
    monkeypatch.setenv(upstream.ENV_CACHE, str(tmp_path / "cache"))
    monkeypatch.delenv(upstream.ENV_MIRROR, raising=False)
    monkeypatch.delenv(upstream.ENV_OFFLINE, raising=False)
    monkeypatch.setenv(upstream.ENV_BASE_URL, "http://127.0.0.1:9")
    upstream.set_mirrors(None)
    yield FAKE
    upstream.set_mirrors(None)


def _mirror(root: Path, data: bytes = BODY, rel: str = FAKE.rel) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return root


class _Server:
    def __init__(self, files: dict[str, bytes]):
        files_ = files
        self.hits: list[str] = []
        hits = self.hits

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                hits.append(self.path)
                body = files_.get(self.path.lstrip("/"))
                self.send_response(200 if body is not None else 404)
                self.end_headers()
                self.wfile.write(body or b"not found")

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# ------------------------------------------------------------------------------ the registry
def test_every_pin_is_a_release_tag_with_a_checksum_and_a_license():
    for key, art in upstream.ARTIFACTS.items():
        assert art.key == key
        assert re.fullmatch(r"[0-9a-f]{64}", art.sha256), key
        assert art.tag not in ("main", "master", "HEAD") and not art.tag.startswith("release-"), key
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", art.repo) and not art.path.startswith("/"), key
        assert art.url == f"https://raw.githubusercontent.com/{art.repo}/{art.tag}/{art.path}"
        assert art.license == "Apache-2.0" and art.purpose, key


def test_kueue_crds_are_pinned():
    kinds = {k.split("/")[-1] for k in upstream.ARTIFACTS if k.startswith("kueue/crd/")}
    assert {"clusterqueues", "localqueues", "resourceflavors", "workloadpriorityclasses", "cohorts",
            "admissionchecks", "topologies", "provisioningrequestconfigs"} == kinds
    assert {upstream.artifact(f"kueue/crd/{k}").tag for k in kinds} == {"v0.19.2"}


def test_no_repository_file_is_an_upstream_copy():
    """Nothing that the registry pins (or the mirror holds) is committed here, byte for byte."""
    pinned = {a.sha256: a.key for a in upstream.ARTIFACTS.values()}
    for folder in upstream.mirrors():
        for path in folder.rglob("*"):
            if path.is_file() and path.stat().st_size < 4 * 1024 * 1024:
                pinned.setdefault(hashlib.sha256(path.read_bytes()).hexdigest(), str(path))
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    copies = []
    for name in tracked.decode().split("\0"):
        path = REPO / name
        if name and path.is_file():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest in pinned:
                copies.append(f"{name} is {pinned[digest]}")
    assert copies == []


# ------------------------------------------------------------------------------ the loader
def test_mirror_file_is_verified_and_read(fake, tmp_path):
    upstream.set_mirrors([_mirror(tmp_path / "m")])
    loc = upstream.locate(fake.key)
    assert loc.source == "mirror" and loc.data == BODY and loc.where.endswith(FAKE.rel)
    assert upstream.read_yaml_docs(fake.key) == [{"apiVersion": "v1", "kind": "ConfigMap",
                                                  "metadata": {"name": "demo"}}]


def test_mirror_from_the_environment_with_several_folders(fake, tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv(upstream.ENV_MIRROR, os.pathsep.join([str(empty), str(_mirror(tmp_path / "m"))]))
    assert upstream.locate(fake.key).data == BODY


def test_a_file_under_another_name_is_found_by_its_checksum(fake, tmp_path):
    folder = tmp_path / "flat"
    folder.mkdir()
    (folder / "demo-1.2.3.yaml").write_bytes(BODY)
    (folder / "other.yaml").write_bytes(b"something else\n")
    upstream.set_mirrors([folder])
    loc = upstream.locate(fake.key)
    assert loc.source == "mirror" and loc.where == str(folder.resolve() / "demo-1.2.3.yaml")


def test_a_mirror_file_with_another_checksum_is_refused(fake, tmp_path):
    upstream.set_mirrors([_mirror(tmp_path / "m", data=BODY + b"# edited\n")])
    with pytest.raises(upstream.ChecksumMismatch) as err:
        upstream.locate(fake.key)
    msg = str(err.value)
    assert "\n" not in msg and fake.key in msg and fake.sha256 in msg and "refusing" in msg


def test_download_fills_the_cache_then_the_cache_serves(fake, monkeypatch):
    server = _Server({FAKE.rel: BODY})
    try:
        monkeypatch.setenv(upstream.ENV_BASE_URL, server.url)
        first = upstream.locate(fake.key)
        assert first.source == "download" and first.data == BODY and server.hits == [f"/{FAKE.rel}"]
        cached = upstream.cache_dir() / FAKE.rel
        assert cached.read_bytes() == BODY
        second = upstream.locate(fake.key)
        assert second.source == "cache" and len(server.hits) == 1
    finally:
        server.close()


def test_download_with_the_wrong_bytes_is_refused_and_not_cached(fake, monkeypatch):
    server = _Server({FAKE.rel: b"tampered\n"})
    try:
        monkeypatch.setenv(upstream.ENV_BASE_URL, server.url)
        with pytest.raises(upstream.ChecksumMismatch, match="served sha256"):
            upstream.locate(fake.key)
        assert not (upstream.cache_dir() / FAKE.rel).exists()
    finally:
        server.close()


def test_a_corrupt_cache_entry_is_dropped_never_used(fake, tmp_path):
    cached = upstream.cache_dir() / FAKE.rel
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"bit rot\n")
    upstream.set_mirrors([_mirror(tmp_path / "m")])
    loc = upstream.locate(fake.key)
    assert loc.source == "mirror" and loc.data == BODY and not cached.exists()


def test_unavailable_is_one_line_naming_the_artifact_and_both_ways(fake):
    with pytest.raises(upstream.ArtifactUnavailable) as err:
        upstream.locate(fake.key)
    msg = str(err.value)
    assert "\n" not in msg
    assert fake.key in msg and fake.url in msg
    assert "--upstream DIR" in msg and upstream.ENV_MIRROR in msg and "python -m infra upstream fetch" in msg
    assert "127.0.0.1:9" in msg  # the download that was tried


def test_offline_turns_downloads_off(fake, monkeypatch):
    server = _Server({FAKE.rel: BODY})
    try:
        monkeypatch.setenv(upstream.ENV_BASE_URL, server.url)
        monkeypatch.setenv(upstream.ENV_OFFLINE, "1")
        with pytest.raises(upstream.ArtifactUnavailable, match="downloads are off"):
            upstream.locate(fake.key)
        assert server.hits == []
    finally:
        server.close()


def test_unknown_key_names_itself():
    with pytest.raises(KeyError, match="no pinned upstream artifact 'nope'"):
        upstream.artifact("nope")


# ------------------------------------------------------------------------------ the CLI
def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "infra", *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})}, timeout=300)


def _need_mirror() -> None:
    """These read the real pinned files: skipped (naming the variable) without a mirror, failed in CI."""
    if not upstream.mirrors():
        msg = f"needs the offline mirror of the pinned files (${upstream.ENV_MIRROR})"
        if REQUIRE_UPSTREAM:
            pytest.fail(msg)
        pytest.skip(msg)


def _no_upstream(tmp_path: Path) -> dict[str, str]:
    return {upstream.ENV_MIRROR: "", upstream.ENV_CACHE: str(tmp_path / "empty-cache"),
            upstream.ENV_BASE_URL: "http://127.0.0.1:9"}


def test_verify_lists_every_pin_as_verified_against_the_mirror():
    _need_mirror()
    proc = _cli("upstream", "verify")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    rows = [ln for ln in proc.stdout.splitlines() if ln.split() and ln.split()[0] in upstream.ARTIFACTS]
    assert len(rows) == len(upstream.ARTIFACTS) and all(" verified " in r for r in rows)
    assert f"{len(upstream.ARTIFACTS)} of {len(upstream.ARTIFACTS)} pinned artifacts verified" in proc.stdout


def test_verify_without_a_mirror_reports_each_missing_file(tmp_path):
    empty = tmp_path / "mirror"
    empty.mkdir()
    proc = _cli("upstream", "verify", "--upstream", str(empty), env=_no_upstream(tmp_path))
    assert proc.returncode == 1
    assert proc.stdout.count(" MISSING ") == len(upstream.ARTIFACTS)
    assert "Traceback" not in proc.stderr


def test_fetch_fills_the_cache_from_a_mirror(tmp_path):
    _need_mirror()
    env = {upstream.ENV_CACHE: str(tmp_path / "cache")}
    proc = _cli("upstream", "fetch", env=env)
    assert proc.returncode == 0, proc.stdout[-2000:]
    for art in upstream.ARTIFACTS.values():
        assert hashlib.sha256((tmp_path / "cache" / art.rel).read_bytes()).hexdigest() == art.sha256
    # the cache alone now serves everything: no mirror, no network
    proc = _cli("upstream", "verify", env={**env, upstream.ENV_MIRROR: "", upstream.ENV_BASE_URL: "http://127.0.0.1:9"})
    assert proc.returncode == 0 and proc.stdout.count("cache: ") == len(upstream.ARTIFACTS)


@pytest.mark.parametrize("args", [("check", "--stack", "dev", "--no-checkov"), ("render", "--stack", "prod"),
                                  ("check", "--manifests", "workloads")])
def test_no_mirror_no_network_is_one_line_and_no_traceback(args, tmp_path):
    proc = _cli(*args, "--out", str(tmp_path / "out"), env=_no_upstream(tmp_path)) if "--stack" in args else \
        _cli(*args, env=_no_upstream(tmp_path))
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert lines[0].startswith("error: upstream artifact ") and "--upstream DIR" in lines[0]
    assert upstream.ENV_MIRROR in lines[0] and "python -m infra upstream fetch" in lines[0]


def test_upstream_option_must_be_a_folder(tmp_path):
    proc = _cli("upstream", "verify", "--upstream", str(tmp_path / "nope"))
    assert proc.returncode == 2 and "not a folder" in proc.stderr
