"""The trainer image's HEALTHCHECK (workloads/training/healthcheck.py) against a live and a dead metrics
endpoint, with PID 1's /proc files faked in a folder."""
from __future__ import annotations

import http.server
import socket
import threading

import pytest

from workloads.training import healthcheck

pytestmark = pytest.mark.workload


def _proc(tmp_path, argv, env=None):
    (tmp_path / "cmdline").write_bytes("\0".join(argv).encode() + b"\0")
    (tmp_path / "environ").write_bytes("".join(f"{k}={v}\0" for k, v in (env or {}).items()).encode())
    return str(tmp_path)


@pytest.fixture
def live_port():
    class Metrics(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"# HELP up\n")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Metrics)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


def test_a_trainer_with_a_live_metrics_endpoint_is_healthy(tmp_path, live_port):
    argv = ["python", "workloads/training/train.py", "--metrics-port", str(live_port)]
    assert healthcheck.main(_proc(tmp_path, argv, {"RANK": "0"})) == 0
    assert healthcheck.main(_proc(tmp_path, ["python", "train.py", f"--metrics-port={live_port}"])) == 0


def test_a_trainer_whose_endpoint_is_dead_is_unhealthy(tmp_path, capsys):
    port = _dead_port()
    assert healthcheck.main(_proc(tmp_path, ["python", "workloads/training/train.py", "--metrics-port", str(port)])) == 1
    assert "not answering" in capsys.readouterr().err


@pytest.mark.parametrize("argv, env", [
    (["python", "workloads/training/data_prep.py"], {}),                         # not the trainer
    (["python", "workloads/training/train.py", "--metrics-port", "0"], {}),      # metrics off
    (["python", "workloads/training/train.py"], {"RANK": "1"}),                  # only rank 0 serves metrics
    (["python", "workloads/training/train.py"], {"PET_NODE_RANK": "2"}),
])
def test_nothing_to_probe_is_healthy(tmp_path, argv, env):
    assert healthcheck.main(_proc(tmp_path, argv, env)) == 0


def test_no_proc_folder_is_healthy(tmp_path):
    assert healthcheck.main(str(tmp_path / "missing")) == 0
