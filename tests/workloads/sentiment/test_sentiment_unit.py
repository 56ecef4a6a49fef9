"""Unit tests of the sentiment server's pure parts: settings, model-dir resolution,
request parsing, padding plan, import boundaries. No model is loaded."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from workloads.sentiment.config import ENV_DOC, Settings
from workloads.sentiment.artifacts import ModelNotFound, resolve_model_dir
from workloads.sentiment.model import _plan_groups
from workloads.sentiment.payload import BadRequest, is_json, parse_payload

pytestmark = pytest.mark.workload

REPO = Path(__file__).resolve().parents[3]
PKG = REPO / "workloads" / "sentiment"
#: What runs in the server image (component.py beside them is the Pulumi side and is not shipped).
APP_MODULES = ["__init__.py", "server.py", "app.py", "payload.py", "lifecycle.py", "batcher.py", "config.py",
               "metrics.py", "model.py", "predictor.py", "artifacts.py", "neuron_backend.py", "neuron_compile.py"]


def test_settings_defaults_and_validation():
    s = Settings.from_env({})
    assert s.port == 8080 and s.backend == "auto" and s.workers == 1 and s.max_batch_size >= 1
    s = Settings.from_env({"PORT": "9000", "BACKEND": "CPU", "MAX_BATCH_WAIT_MS": "2.5", "WARMUP": "false"})
    assert (s.port, s.backend, s.max_batch_wait_ms, s.warmup) == (9000, "cpu", 2.5, False)
    for bad in ({"PORT": "http"}, {"BACKEND": "tpu"}, {"MAX_BATCH_SIZE": "0"}, {"WARMUP": "maybe"},
                {"REQUEST_TIMEOUT_S": "0"}, {"CPU_QUANTIZE": "int4"}):
        with pytest.raises(ValueError):
            Settings.from_env(bad)
    assert set(ENV_DOC) >= {"MODEL_DIR", "PORT", "MAX_BATCH_SIZE", "MAX_BATCH_WAIT_MS", "MAX_QUEUE",
                            "MAX_TEXT_CHARS", "MAX_TEXTS", "MAX_BODY_BYTES", "REQUEST_TIMEOUT_S", "WORKERS",
                            "BACKEND", "HOST"}


def _saved(path: Path, version: str = None) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    if version:
        (path / "metadata.json").write_text(json.dumps({"version": version}))
    return path


def test_resolve_model_dir_follows_latest(tmp_path):
    _saved(tmp_path / "v1")
    _saved(tmp_path / "v2", version="v2-meta")
    (tmp_path / "latest").write_text("v2\n")
    r = resolve_model_dir(str(tmp_path))
    assert r.path == tmp_path / "v2" and r.version == "v2" and r.metadata == {"version": "v2-meta"}
    # a directory that is itself a saved model
    r = resolve_model_dir(str(tmp_path / "v2"))
    assert r.path == tmp_path / "v2" and r.version == "v2-meta"
    assert resolve_model_dir(str(tmp_path / "v1")).version == "v1"


@pytest.mark.parametrize("latest", ["", "../etc", "a/b", "missing"])
def test_resolve_model_dir_rejects_bad_latest(tmp_path, latest):
    _saved(tmp_path / "v1")
    (tmp_path / "latest").write_text(latest)
    with pytest.raises(ModelNotFound):
        resolve_model_dir(str(tmp_path))


def test_resolve_model_dir_without_a_model(tmp_path):
    with pytest.raises(ModelNotFound):
        resolve_model_dir(str(tmp_path))
    with pytest.raises(ModelNotFound):
        resolve_model_dir(str(tmp_path / "absent"))


def test_parse_payload():
    s = Settings.from_env({"MAX_TEXTS": "3", "MAX_TEXT_CHARS": "10"})
    assert parse_payload(b'{"text": "hi"}', s) == (["hi"], True)
    assert parse_payload('{"texts": ["a", "b\u00e9"]}'.encode(), s) == (["a", "b\u00e9"], False)
    cases = {b'{"text": "hi", "extra": 1}': None, b"nope": 400, b"\xff": 400, b"[]": 400, b'{"texts": ["a"] }': None,
             b'{"text": "12345678901"}': 413, b'{"texts": ["a","b","c","d"]}': 413, b'{"text": true}': 400}
    for body, status in cases.items():
        if status is None:
            parse_payload(body, s)
            continue
        with pytest.raises(BadRequest) as info:
            parse_payload(body, s)
        assert info.value.status == status, body


def test_content_types():
    assert is_json("application/json") and is_json("application/json; charset=utf-8")
    assert is_json("Application/JSON") and is_json("application/vnd.api+json")
    assert not is_json(None) and not is_json("") and not is_json("text/plain")
    assert not is_json("application/x-www-form-urlencoded")


def test_plan_groups_sorts_and_keeps_every_index_once():
    assert _plan_groups([5, 5, 5, 5]) == [[0, 1, 2, 3]]
    lengths = [12] * 31 + [256]
    groups = _plan_groups(lengths)
    assert sorted(i for g in groups for i in g) == list(range(32))
    assert groups[-1] == [31], "one long text must not pad 31 short ones to 256 tokens"
    for g in groups:
        assert len(g) * max(lengths[i] for i in g) <= 2.0 * sum(lengths[i] for i in g) or len(g) == 1


def test_metrics_module_imports_no_torch_and_the_app_no_pulumi():
    code = ("import sys; import workloads.sentiment.metrics as m, workloads.sentiment.server, "
            "workloads.sentiment.batcher, workloads.sentiment.config;"
            "bad = [x for x in ('torch', 'transformers', 'pulumi', 'infra') if x in sys.modules];"
            "assert not bad, bad; assert all(n.startswith('sentiment_') for n in m.METRIC_NAMES)")
    subprocess.run([sys.executable, "-c", code], cwd=str(REPO), check=True, timeout=60)
    for py in (PKG / m for m in APP_MODULES):
        for node in ast.walk(ast.parse(py.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for n in names:
                assert n.split(".")[0] not in ("pulumi", "infra", "components"), f"{py.name} imports {n}"
