"""The CPU images for real, without Docker: built by scripts/build_images.sh (buildah), run by an OCI runtime.

- scripts/build_images.sh builds localhost/eks-ml-platform/{trainer,sentiment}:dev from the repository's
  Dockerfiles (a rerun with unchanged inputs is served from buildah's layer cache);
- each image runs from its own configuration (Entrypoint/Cmd, Env, WorkingDir, User) the way Kubernetes
  runs it under Pod Security `restricted`: runc (or crun) with a config.json written here, as UID/GID 10001,
  a read-only root filesystem, every capability dropped, no new privileges, a tmpfs /tmp (and /dev/shm);
- the trainer image trains one epoch on its shipped sample, in a network namespace of its own (so offline),
  and exports the model into a host folder mounted at /models;
- the server image serves that model, mounted read-only, in the host's network namespace on 127.0.0.1 only,
  and answers the seed's curl with [{"label": "POSITIVE", "score": ...}]; probes run inside the container
  show the server process is UID 10001 and that /, /app, /etc, /opt/venv and /models are read-only (EROFS);
- the server image has no compiler, a CPU torch build, and nothing of the build machine (pip config, mounts).

Needs root, buildah, debootstrap (for the base stand-in) and runc or crun. Skipped only
where buildah is missing and CI is unset; in CI (which installs buildah) every problem is a failure.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "build_images.sh"
TAG = "dev"
TRAINER = f"localhost/eks-ml-platform/trainer:{TAG}"
SERVER = f"localhost/eks-ml-platform/sentiment:{TAG}"
APP_UID = APP_GID = 10001
BUILD_TIMEOUT_S = 45 * 60
SEED_TEXT = "I love using this product!"

pytestmark = [pytest.mark.workload, pytest.mark.slow]

if shutil.which("buildah") is None and not os.environ.get("CI"):
    pytest.skip("buildah is not installed (apt-get install -y buildah debootstrap); CI installs it and runs these",
                allow_module_level=True)


# --------------------------------------------------------------------------- helpers
def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("building and running the images needs root (buildah's chroot isolation, debootstrap, the OCI "
                    "runtime, the image mounts): run this module as root, e.g. `sudo -E .venv/bin/python -m pytest ...`")


def _run(cmd: list[str], timeout: float = 120, check: bool = True, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def _runtime() -> list[str]:
    """An OCI runtime, as a command line: runc (Docker's, on CI runners too), else crun without cgroup setup
    (crun refuses a cgroup v1/v2 hybrid host even then: there, apt-get install -y runc)."""
    if shutil.which("runc"):
        return ["runc"]
    if shutil.which("crun"):
        return ["crun", "--cgroup-manager=disabled"]
    pytest.fail("no OCI runtime: install runc or crun (buildah recommends them)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def image_config(image: str) -> dict:
    data = json.loads(_run(["buildah", "inspect", "--type", "image", image]).stdout)
    return (data.get("Docker") or {}).get("config") or data["OCIv1"]["config"]


def image_size(image: str) -> str:
    return _run(["buildah", "images", "--format", "{{.Size}}", image]).stdout.strip().splitlines()[0]


@contextmanager
def rootfs(image: str) -> Iterator[Path]:
    """The image's root filesystem, mounted on the host (a buildah working container, removed afterwards)."""
    ctr = _run(["buildah", "from", "--pull=false", "--name", f"test-{uuid.uuid4().hex[:10]}", image]).stdout.strip()
    try:
        yield Path(_run(["buildah", "mount", ctr]).stdout.strip())
    finally:
        _run(["buildah", "umount", ctr], check=False)
        _run(["buildah", "rm", ctr], check=False)


def oci_config(root: Path, cfg: dict, *, args: list[str] | None = None, env: dict[str, str] | None = None,
               mounts: list[dict] | None = None, host_network: bool = False) -> dict:
    """An OCI runtime config for the image: its own process settings, hardened like a `restricted` pod."""
    user = cfg.get("User") or ""
    assert re.fullmatch(r"\d+:\d+", user), f"the image's USER must be numeric uid:gid, is {user!r}"
    uid, gid = (int(x) for x in user.split(":"))
    environ = dict(e.split("=", 1) for e in cfg.get("Env") or [])
    environ.update(env or {})
    namespaces = [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
    if not host_network:
        namespaces.append({"type": "network"})
    no_caps = {k: [] for k in ("bounding", "effective", "inheritable", "permitted", "ambient")}
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": uid, "gid": gid},
            "args": args if args is not None else [*(cfg.get("Entrypoint") or []), *(cfg.get("Cmd") or [])],
            "env": [f"{k}={v}" for k, v in environ.items()],
            "cwd": cfg.get("WorkingDir") or "/",
            "capabilities": no_caps,
            "noNewPrivileges": True,
        },
        "root": {"path": str(root), "readonly": True},
        "hostname": "eks-ml-platform-test",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=1g"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "bind", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777", "size=2g"]},
            *(mounts or []),
        ],
        "linux": {
            "namespaces": namespaces,
            "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                            "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"],
            "readonlyPaths": ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
    }


def bind(source: Path, destination: str, *, readonly: bool) -> dict:
    return {"destination": destination, "type": "bind", "source": str(source),
            "options": ["rbind", "nosuid", "nodev", "ro" if readonly else "rw"]}


def write_bundle(path: Path, config: dict) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config, indent=1))
    return path


def _http(url: str, data: bytes | None = None, timeout: float = 10) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def images(request) -> dict[str, str]:
    """Build both images with the script (cached layers make a rerun fast); their sizes by name."""
    if shutil.which("buildah") is None:
        pytest.fail("buildah is not installed, and CI is set: CI must install it (apt-get install -y buildah debootstrap)")
    t0 = time.monotonic()
    _require_root()
    proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=BUILD_TIMEOUT_S,
                          cwd=str(REPO), env=dict(os.environ, TAG=TAG))
    took = time.monotonic() - t0
    assert proc.returncode == 0, f"scripts/build_images.sh exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    sizes = {image: image_size(image) for image in (TRAINER, SERVER)}
    report(request, f"images built by scripts/build_images.sh in {took:.0f} s: "
           + ", ".join(f"{k} {v}" for k, v in sizes.items()))
    return sizes


REPORT: list[str] = []


def report(request, line: str) -> None:
    """Show a line in the test output even when output is captured; the tests also attach all of them to their
    report as the user property `images` (JUnit XML; under xdist the workers' terminal output is not shown)."""
    REPORT.append(line)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capman = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capman is not None:
        with capman.global_and_fixture_disabled():
            reporter.write_line(f"[test_images] {line}")
    print(line)


@pytest.fixture(scope="module")
def trained_models(images, tmp_path_factory, request) -> Path:
    """The trainer image's default command for one epoch: the host folder it exported the model into."""
    base = tmp_path_factory.mktemp("image-trainer")
    models = base / "models"
    models.mkdir()
    os.chown(models, APP_UID, APP_GID)  # the trainer runs as 10001 and writes only /models, /tmp, /dev/shm
    cfg = image_config(TRAINER)
    assert cfg.get("User") == f"{APP_UID}:{APP_GID}", cfg.get("User")
    assert not cfg.get("Entrypoint"), cfg.get("Entrypoint")
    # The image's CMD (train on the shipped sample into /models), one epoch, metrics off: in its own network
    # namespace (offline) it could bind nothing the host would see anyway.
    args = [*cfg["Cmd"], "--epochs", "1", "--metrics-port", "0"]
    with rootfs(TRAINER) as root:
        bundle = write_bundle(base / "bundle", oci_config(root, cfg, args=args,
                                                          mounts=[bind(models, "/models", readonly=False)]))
        cid = f"test-trainer-{uuid.uuid4().hex[:8]}"
        t0 = time.monotonic()
        try:
            proc = _run([*_runtime(), "run", "--bundle", str(bundle), cid], timeout=1500, check=False,
                        stdin=subprocess.DEVNULL)
        finally:
            _run([*_runtime(), "delete", "--force", cid], check=False)
        took = time.monotonic() - t0
    assert proc.returncode == 0, f"the trainer image exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    report(request, f"trainer image: one epoch on the shipped sample in {took:.0f} s")
    return models


# --------------------------------------------------------------------------- tests
def test_trainer_image_exports_a_model(trained_models: Path) -> None:
    version = (trained_models / "latest").read_text().strip()
    export = trained_models / version
    for name in ("config.json", "model.safetensors", "metadata.json"):
        assert (export / name).is_file(), sorted(p.name for p in export.iterdir())
    assert export.stat().st_uid == APP_UID, "the export was not written by UID 10001"
    meta = json.loads((export / "metadata.json").read_text())
    assert meta, meta


def test_server_image_has_no_compiler_and_cpu_torch(images, request) -> None:
    request.node.user_properties.append(("images", "; ".join(REPORT)))
    cfg = image_config(SERVER)
    with rootfs(SERVER) as root:
        path_dirs = [d for e in cfg.get("Env") or [] if e.startswith("PATH=") for d in e[5:].split(":")]
        compilers = []
        for d in {*path_dirs, "/usr/bin", "/usr/local/bin", "/bin"}:
            folder = root / d.lstrip("/")
            if folder.is_dir():
                compilers += [str(p) for p in folder.iterdir()
                              if re.fullmatch(r"(cc|c\+\+|gcc|g\+\+|clang|clang\+\+|tcc)(-[\d.]+)?|.*-(gcc|g\+\+)(-[\d.]+)?",
                                              p.name)]
        assert not compilers, f"a compiler in the server image: {compilers}"
        status = (root / "var/lib/dpkg/status").read_text()
        assert not re.findall(r"^Package: (gcc(-\d+)?|g\+\+(-\d+)?|build-essential)$", status, re.M)
        versions = list((root / "opt/venv/lib").glob("python3*/site-packages/torch/version.py"))
        assert versions, "no torch in /opt/venv"
        torch_version = versions[0].read_text()
        assert re.search(r"^cuda(: Optional\[str\])?\s*=\s*None", torch_version, re.M), "torch is not the CPU build"
        site = versions[0].parents[1]
        assert not list(site.glob("nvidia*")) and not list(site.glob("triton*")), "CUDA wheels in the server image"
        # Nothing of the build machine: no pip configuration, pip cache or mount points of the build's volumes.
        assert not (root / "etc/pip.conf").exists()
        assert not (root / "root/.cache").exists()
        assert sorted(p.name for p in (root / "opt").iterdir()) == ["venv"]


def test_server_image_serves_the_trained_model_read_only_as_10001(images, trained_models, tmp_path, request) -> None:
    cfg = image_config(SERVER)
    assert cfg.get("User") == f"{APP_UID}:{APP_GID}", cfg.get("User")
    port = _free_port()
    env = {"PORT": str(port), "HOST": "127.0.0.1", "SHUTDOWN_DELAY_S": "0"}
    with rootfs(SERVER) as root:
        bundle = write_bundle(tmp_path / "bundle", oci_config(
            root, cfg, env=env, host_network=True, mounts=[bind(trained_models, "/models", readonly=True)]))
        cid = f"test-sentiment-{uuid.uuid4().hex[:8]}"
        log = tmp_path / "server.log"
        t0 = time.monotonic()
        with open(log, "wb") as out:
            server = subprocess.Popen([*_runtime(), "run", "--bundle", str(bundle), cid],
                                      stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{port}"
            while True:
                if server.poll() is not None:
                    pytest.fail(f"the server image exited {server.returncode}:\n{log.read_text(errors='replace')[-4000:]}")
                try:
                    status, _ = _http(f"{base}/readyz", timeout=2)
                except OSError:
                    status = 0
                if status == 200:
                    break
                if time.monotonic() - t0 > 300:
                    pytest.fail(f"/readyz not 200 after 300 s:\n{log.read_text(errors='replace')[-4000:]}")
                time.sleep(1)
            ready_s = time.monotonic() - t0

            # The seed's curl, unchanged but for the port.
            body = json.dumps({"text": SEED_TEXT}, separators=(",", ":"))
            if shutil.which("curl"):
                proc = subprocess.run(["curl", "-sS", "--fail", "-X", "POST", "-H", "Content-Type: application/json",
                                       "-d", body, f"{base}/analyze"], capture_output=True, text=True, timeout=30)
                assert proc.returncode == 0, proc.stderr
                answer = json.loads(proc.stdout)
            else:
                status, raw = _http(f"{base}/analyze", body.encode(), timeout=30)
                assert status == 200, raw
                answer = json.loads(raw)
            assert isinstance(answer, list) and len(answer) == 1, answer
            assert set(answer[0]) == {"label", "score"}, answer
            assert answer[0]["label"] == "POSITIVE", answer
            assert 0.5 <= answer[0]["score"] <= 1.0, answer

            # Inside the running container: who the server is, and what it can write.
            probe = (
                "import errno, json, os\n"
                "st = dict(l.split(':', 1) for l in open('/proc/1/status') if ':' in l)\n"
                "res = {'uid': st['Uid'].split(), 'gid': st['Gid'].split(), 'cap_eff': st['CapEff'].strip()}\n"
                "for d in ('/', '/app', '/etc', '/opt/venv', '/models', '/tmp'):\n"
                "    p = os.path.join(d, '.write-probe')\n"
                "    try:\n"
                "        open(p, 'w').close(); os.unlink(p); res[d] = 'writable'\n"
                "    except OSError as e:\n"
                "        res[d] = errno.errorcode.get(e.errno, str(e.errno))\n"
                "print(json.dumps(res))\n")
            proc = _run([*_runtime(), "exec", cid, "python", "-c", probe], timeout=60)
            seen = json.loads(proc.stdout.strip().splitlines()[-1])
            assert seen["uid"] == [str(APP_UID)] * 4 and seen["gid"] == [str(APP_GID)] * 4, seen
            assert int(seen["cap_eff"], 16) == 0, seen
            assert {d: seen[d] for d in ("/", "/app", "/etc", "/opt/venv", "/models")} == dict.fromkeys(
                ("/", "/app", "/etc", "/opt/venv", "/models"), "EROFS"), seen
            assert seen["/tmp"] == "writable", seen

            # SIGTERM: it drains and exits 0.
            _run([*_runtime(), "kill", cid, "TERM"], timeout=30)
            assert server.wait(timeout=90) == 0, log.read_text(errors="replace")[-4000:]
        finally:
            if server.poll() is None:
                _run([*_runtime(), "kill", cid, "KILL"], check=False)
                try:
                    server.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    server.kill()
            _run([*_runtime(), "delete", "--force", cid], check=False)
    report(request, f"server image: ready {ready_s:.0f} s after start; sizes: "
           + ", ".join(f"{k} {v}" for k, v in images.items()))
    request.node.user_properties.append(("images", "; ".join(REPORT)))
