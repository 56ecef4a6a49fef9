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
from workloads.sentiment.predictor import plan_groups as _plan_groups
from workloads.sentiment.payload import BadRequest, is_json, parse_payload

pytestmark = pytest.mark.workload

REPO = Path(__file__).resolve().parents[3]
PKG = REPO / "workloads" / "sentiment"
#: What runs in the server image (component.py beside them is the Pulumi side and is not shipped).
APP_MODULES = ["__init__.py", "server.py", "app.py", "payload.py", "lifecycle.py", "batcher.py", "config.py",
               "metrics.py", "model.py", "predictor.py", "artifacts.py", "neuron_backend.py", "neuron_compile.py",
               "http_guard.py", "shedding.py"]


def test_settings_defaults_and_validation():
    s = Settings.from_env({})
    assert s.port == 8080 and s.backend == "auto" and s.workers == 1 and s.max_batch_size >= 1
    s = Settings.from_env({"PORT": "9000", "BACKEND": "CPU", "MAX_BATCH_WAIT_MS": "2.5", "WARMUP": "false"})
    assert (s.port, s.backend, s.max_batch_wait_ms, s.warmup) == (9000, "cpu", 2.5, False)
    for bad in ({"PORT": "http"}, {"BACKEND": "tpu"}, {"MAX_BATCH_SIZE": "0"}, {"WARMUP": "maybe"},
                {"REQUEST_TIMEOUT_S": "0"}, {"CPU_ENGINE": "int4"}):
        with pytest.raises(ValueError):
            Settings.from_env(bad)
    assert set(ENV_DOC) >= {"MODEL_DIR", "PORT", "MAX_BATCH_SIZE", "MAX_BATCH_WAIT_MS", "MAX_QUEUE",
                            "MAX_TEXT_CHARS", "MAX_TEXTS", "MAX_BODY_BYTES", "REQUEST_TIMEOUT_S", "WORKERS",
                            "BACKEND", "HOST"}


def test_connection_limits_and_queue_work_bounds_from_the_env():
    s = Settings.from_env({})
    assert (s.max_header_bytes, s.max_headers, s.header_timeout_s, s.body_timeout_s, s.keepalive_timeout_s) == (
        16384, 100, 10.0, 30.0, 15.0)
    assert (s.queue_tokens, s.queue_wait_s) == (512 * 64, 5.0)  # 0: MAX_QUEUE x 64, REQUEST_TIMEOUT_S / 2
    s = Settings.from_env({"MAX_QUEUE_TOKENS": "900", "MAX_QUEUE_WAIT_S": "1.5", "MAX_HEADER_BYTES": "8192"})
    assert (s.queue_tokens, s.queue_wait_s, s.max_header_bytes) == (900, 1.5, 8192)
    for bad in ({"MAX_HEADER_BYTES": "10"}, {"MAX_HEADERS": "0"}, {"HEADER_TIMEOUT_S": "0"},
                {"BODY_TIMEOUT_S": "soon"}, {"KEEPALIVE_TIMEOUT_S": "-1"}, {"MAX_QUEUE_TOKENS": "-5"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            Settings.from_env(bad)


def test_text_cost_and_the_estimate_from_content_length():
    from workloads.sentiment.payload import body_cost_estimate, text_cost

    assert text_cost("abcd", 256) == 1 + 2 and text_cost("abcde", 256) == 2 + 2
    assert text_cost("x" * 5000, 256) == 256 + 2  # truncated by the tokenizer: costs no more
    s = Settings.from_env({"MAX_TEXTS": "4", "MAX_SEQ_LEN": "64"})
    assert body_cost_estimate(None, s) == 3 and body_cost_estimate(400, s) == 102
    assert body_cost_estimate(10 ** 9, s) == 4 * 66  # at most MAX_TEXTS full-length texts


def test_shed_answers_are_prompt_up_to_the_rate_then_held_for_their_retry_after(monkeypatch):
    from workloads.sentiment import shedding

    now = [100.0]
    monkeypatch.setattr(shedding.time, "monotonic", lambda: now[0])
    shedder = shedding.Shedder(prompt_per_s=2)
    answers = [shedder.queue_full(3, 40.4, 2.2, close=True) for _ in range(3)]
    assert [a.hold_s for a in answers] == [0.0, 0.0, 2.2]  # a burst of one second's worth, then held
    assert answers[0].status == 503 and answers[0].message == shedding.BUSY
    assert answers[0].detail == {"queued_texts": 3, "queued_tokens": 40}
    assert answers[0].headers == {"Retry-After": "3", "Connection": "close"}
    now[0] += 0.5  # one more token a half second later
    assert shedder.queue_full(1, 1, 0.1, close=False).hold_s == 0.0
    late = shedder.queue_full(1, 1, 60.0, close=False)
    assert late.hold_s == shedding.MAX_HOLD_S and "Connection" not in late.headers


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
