"""Which compiled Neuron model a pod may use, without torch: artifact_status, the lookup, the failure message,
compile-at-start, backend selection and the watcher waiting for the compile job.

The compiler is faked (``neuron_compile.trace`` writes a marker file), torch_neuron / torch_neuronx are never
imported: the real compile and load paths are test_sentiment_neuron.py (slow, torch.jit.trace standing in).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from workloads.sentiment import model, neuron_backend, neuron_compile
from workloads.sentiment.artifacts import ModelNotFound, resolve_model_dir
from workloads.sentiment.config import Settings
from workloads.sentiment.neuron_backend import ArtifactNotReady, locate_artifact
from workloads.sentiment.neuron_compile import artifact_status
from workloads.sentiment.watcher import ModelWatcher

pytestmark = pytest.mark.workload

FILES = {"inf1": ("model.neuron.pt", "neuron.json"), "inf2": ("model.neuronx.pt", "neuronx.json")}


def saved_model(root: Path, version: str) -> Path:
    path = root / version
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    return path


def artifact(directory: Path, target: str, meta: dict | None = None, **fields) -> Path:
    """A compiled model file and its metadata beside it: ``meta`` verbatim, else a matching one with ``fields``."""
    model_file, meta_file = FILES[target]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / model_file).write_bytes(b"compiled")
    content = {"target": target, "version": directory.name, "batch_size": 8, "seq_len": 128, **fields}
    if meta is not None:
        content = meta
    (directory / meta_file).write_text(json.dumps(content))
    return directory / model_file


@pytest.fixture()
def fake_compiler(monkeypatch):
    """``neuron_compile.trace`` replaced: records the call, 'compiles' by writing the shapes into the file."""
    calls: list[tuple] = []

    def trace(target, model_path, batch_size, seq_len, compiler_args=None):
        calls.append((target, Path(model_path).name, batch_size, seq_len))
        return (lambda dest: Path(dest).write_text(f"{target} {batch_size}x{seq_len}")), \
            {"torch": "fake-torch", "compiler": f"fake-{target}"}

    monkeypatch.setattr(neuron_compile, "trace", trace)
    return calls


# --------------------------------------------------------------------------- artifact_status
@pytest.mark.parametrize("target", ["inf1", "inf2"])
def test_artifact_status_found_stale_missing_unreadable(tmp_path, target):
    d = tmp_path / "v2"
    path = d / FILES[target][0]
    assert artifact_status(path, target, "v2", 8, 128).state == "missing"
    artifact(d, target)
    found = artifact_status(path, target, "v2", 8, 128)
    assert found.usable and found.state == "found" and found.path == path

    stale_version = artifact_status(path, target, "v3", 8, 128)
    assert stale_version.state == "stale-version" and not stale_version.usable
    assert "'v2', not 'v3'" in stale_version.reason and str(path) in stale_version.reason

    # The bug this guards against: compiled at 4 x 64, served at 8 x 128, texts silently cut at 64 tokens.
    artifact(d, target, batch_size=4, seq_len=64)
    stale_shapes = artifact_status(path, target, "v2", 8, 128)
    assert stale_shapes.state == "stale-shapes" and "batch 4 x seq 64, not 8 x 128" in stale_shapes.reason
    assert artifact_status(path, target, "v2", 4, 64).usable
    assert artifact_status(path, target, "v2", 4, 128).state == "stale-shapes"  # one shape off is enough


@pytest.mark.parametrize("meta_text, why", [
    ("{not json", "unreadable"), ("[1, 2]", "not a JSON object"), ('{"version": "v2", "seq_len": 128}', "batch_size"),
    ('{"version": "v2", "batch_size": "8", "seq_len": 128}', "batch_size"),
    ('{"version": "v2", "batch_size": true, "seq_len": 128}', "batch_size"),
])
def test_artifact_status_unreadable_metadata(tmp_path, meta_text, why):
    path = artifact(tmp_path / "v2", "inf2")
    (tmp_path / "v2" / "neuronx.json").write_text(meta_text)
    status = artifact_status(path, "inf2", "v2", 8, 128)
    assert status.state == "unreadable" and why in status.reason and not status.usable


def test_artifact_status_metadata_rules(tmp_path):
    path = artifact(tmp_path / "v2", "inf2", meta={"target": "inf1", "version": "v2", "batch_size": 8, "seq_len": 128})
    assert artifact_status(path, "inf2", "v2", 8, 128).reason.endswith("was compiled for inf1, not inf2")
    path = artifact(tmp_path / "v2", "inf2", meta={"batch_size": 8, "seq_len": 128})  # no version recorded
    assert artifact_status(path, "inf2", "v2", 8, 128).state == "stale-version"
    (tmp_path / "v2" / "neuronx.json").unlink()  # hand-made, no metadata: only NEURON_MODEL may name it
    assert artifact_status(path, "inf2", "v2", 8, 128).state == "unreadable"
    assert artifact_status(path, "inf2", "v2", 8, 128, trust_unlabelled=True).usable
    # the inf1 metadata file is not the inf2 one: each target reads its own
    inf1 = artifact(tmp_path / "v3", "inf1")
    assert artifact_status(inf1, "inf1", "v3", 8, 128).usable
    assert artifact_status(tmp_path / "v3" / "model.neuronx.pt", "inf2", "v3", 8, 128).state == "missing"


# --------------------------------------------------------------------------- the server's lookup
@pytest.mark.parametrize("target", ["inf1", "inf2"])
def test_lookup_prefers_the_version_dir_then_the_cache(tmp_path, target):
    resolved = resolve_model_dir(str(saved_model(tmp_path / "models", "v2")))
    cache = tmp_path / "cache"
    cached = artifact(cache / "v2", target)
    assert locate_artifact(resolved, target, cache_dir=str(cache)) == cached
    in_version_dir = artifact(resolved.path, target)
    assert locate_artifact(resolved, target, cache_dir=str(cache)) == in_version_dir
    artifact(resolved.path, target, version="v1")  # stale: the cache's is used, with a warning
    assert locate_artifact(resolved, target, cache_dir=str(cache)) == cached


@pytest.mark.parametrize("target", ["inf1", "inf2"])
def test_no_usable_artifact_and_no_compile_at_start_is_one_line_naming_everything(tmp_path, target, fake_compiler):
    resolved = resolve_model_dir(str(saved_model(tmp_path / "models", "v2")))
    artifact(resolved.path, target, batch_size=4, seq_len=64)
    with pytest.raises(ArtifactNotReady) as info:
        locate_artifact(resolved, target, batch_size=8, seq_len=128, cache_dir=str(tmp_path / "cache"))
    message = str(info.value)
    assert "\n" not in message and isinstance(info.value, ModelNotFound) and info.value.retry_on_poll
    assert f"no usable {target} compiled model for model version v2 at batch 8 x seq 128" in message
    assert str(resolved.path / FILES[target][0]) in message and "stale-shapes" in message
    assert str(tmp_path / "cache" / "v2" / FILES[target][0]) in message and "missing" in message
    assert "kubectl -n <ns> create job --from=cronjob/sentiment-neuron-compile <name>" in message
    assert "serving.neuron.compileAtStartup: true" in message and "NEURON_COMPILE_AT_START=1" in message
    assert fake_compiler == []  # the pod never compiled


@pytest.mark.parametrize("target", ["inf1", "inf2"])
def test_compile_at_start_compiles_into_the_cache_at_the_configured_shapes(tmp_path, target, fake_compiler):
    resolved = resolve_model_dir(str(saved_model(tmp_path / "models", "v2")))
    artifact(resolved.path, target, batch_size=4, seq_len=64)  # stale shapes: not used, not overwritten
    got = locate_artifact(resolved, target, batch_size=8, seq_len=128, cache_dir=str(tmp_path / "cache"),
                          compile_at_start=True)
    assert got == tmp_path / "cache" / "v2" / FILES[target][0] and got.read_text() == f"{target} 8x128"
    assert fake_compiler == [(target, "v2", 8, 128)]
    meta = json.loads(got.with_name(FILES[target][1]).read_text())
    assert meta == {"target": target, "version": "v2", "batch_size": 8, "seq_len": 128, "source": str(resolved.path),
                    "torch": "fake-torch", "compiler": f"fake-{target}", "compile_seconds": meta["compile_seconds"]}
    assert json.loads((resolved.path / FILES[target][1]).read_text())["batch_size"] == 4
    # the next start finds it and compiles nothing
    assert locate_artifact(resolved, target, cache_dir=str(tmp_path / "cache"), compile_at_start=True) == got
    assert len(fake_compiler) == 1


def test_neuron_model_explicit(tmp_path, fake_compiler):
    resolved = resolve_model_dir(str(saved_model(tmp_path / "models", "v2")))
    hand_made = tmp_path / "mine.pt"
    hand_made.write_bytes(b"compiled")
    assert locate_artifact(resolved, "inf2", neuron_model=str(hand_made)) == hand_made  # no metadata: trusted
    with pytest.raises(ModelNotFound, match=r"NEURON_MODEL=.*absent\.pt: .* does not exist") as info:
        locate_artifact(resolved, "inf2", neuron_model=str(tmp_path / "absent.pt"), compile_at_start=True)
    assert not isinstance(info.value, ArtifactNotReady) and fake_compiler == []  # named explicitly: never compiled
    (tmp_path / "neuronx.json").write_text(json.dumps({"version": "v2", "batch_size": 4, "seq_len": 64}))
    with pytest.raises(ModelNotFound, match="not 8 x 128"):  # with metadata, it must match like any other
        locate_artifact(resolved, "inf2", neuron_model=str(hand_made))


@pytest.mark.parametrize("cls", [neuron_backend.NeuronPredictor, neuron_backend.NeuronxPredictor])
def test_predictor_checks_the_artifact_before_importing_the_neuron_runtime(tmp_path, cls):
    """torch_neuron(x) is not installed here: the refusal must come first (and cheaply, for the watcher)."""
    resolved = resolve_model_dir(str(saved_model(tmp_path / "models", "v2")))
    with pytest.raises(ArtifactNotReady, match=f"no usable {cls.target} compiled model"):
        cls(resolved, cache_dir=str(tmp_path / "cache"))


# --------------------------------------------------------------------------- settings and backend choice
def test_compile_at_start_setting():
    assert Settings.from_env({}).neuron_compile_at_start is False
    assert Settings.from_env({"NEURON_COMPILE_AT_START": "1", "BACKEND": "neuronx"}).neuron_compile_at_start
    with pytest.raises(ValueError, match="NEURON_COMPILE_AT_START='sometimes' is not a boolean"):
        Settings.from_env({"NEURON_COMPILE_AT_START": "sometimes"})


def test_auto_backend_prefers_neuronx_and_needs_a_device(tmp_path, monkeypatch):
    installed: set[str] = set()
    monkeypatch.setattr(neuron_backend, "_importable", lambda name: name in installed)
    installed.update({"torch_neuron", "torch_neuronx"})
    assert neuron_backend.available_backend(tmp_path) is None  # no /dev/neuron*: not a Neuron node
    (tmp_path / "neuron0").touch()
    assert neuron_backend.available_backend(tmp_path) == "neuronx"
    installed.discard("torch_neuronx")
    assert neuron_backend.available_backend(tmp_path) == "neuron"
    installed.clear()
    assert neuron_backend.available_backend(tmp_path) is None

    monkeypatch.setattr(model, "available_backend", lambda: "neuronx")
    assert model.pick_backend("auto") == "neuronx" and model.neuron_available()
    assert model.pick_backend("neuron") == "neuron"  # explicit: as asked


@pytest.mark.parametrize("backend, cls", [("neuron", "NeuronPredictor"), ("neuronx", "NeuronxPredictor")])
def test_load_predictor_hands_the_neuron_settings_over(tmp_path, monkeypatch, backend, cls):
    built = []

    class Recorder:
        quantization, path, version = "q", tmp_path, "v2"

        def __init__(self, resolved, **kwargs):
            built.append((resolved.version, kwargs))
            self.backend = backend

    monkeypatch.setitem(neuron_backend.PREDICTORS, backend, Recorder)
    saved_model(tmp_path, "v2")
    (tmp_path / "latest").write_text("v2")
    s = Settings.from_env({"MODEL_DIR": str(tmp_path), "BACKEND": backend, "WARMUP": "0", "NEURON_MODEL": "/x.pt",
                           "NEURON_BATCH_SIZE": "4", "NEURON_SEQ_LEN": "64", "NEURON_CACHE_DIR": "/c",
                           "NEURON_COMPILE_AT_START": "1"})
    predictor, _ = model.load_predictor(s)
    assert isinstance(predictor, Recorder)
    assert getattr(neuron_backend, cls).target == neuron_backend.NEURON_BACKENDS[backend]
    assert built == [("v2", {"neuron_model": "/x.pt", "batch_size": 4, "seq_len": 64, "cache_dir": "/c",
                             "compile_at_start": True})]


# --------------------------------------------------------------------------- the watcher waits for the compile job
def test_watcher_keeps_serving_until_the_compile_job_writes_the_new_versions_artifact(tmp_path):
    """MODEL_VERSION=latest on inf2, compile-at-start off: `latest` moves to v2 before the CronJob compiled it.
    The old version keeps serving, v2 is retried on each poll (reported once per reason), and the switch
    happens on the first poll after the artifact appears, although `latest` was not written again."""
    root = tmp_path / "models"
    saved_model(root, "v1")
    saved_model(root, "v2")
    serving, loads, failures, swaps = ["v1"], [], [], []

    def load(version):
        loads.append(version)
        resolved = resolve_model_dir(str(root), version)
        locate_artifact(resolved, "inf2", batch_size=8, seq_len=128, cache_dir=str(tmp_path / "cache"))
        return version, 1.0

    w = ModelWatcher(str(root), 5, current=lambda: serving[0], load=load,
                     swap=lambda p, s: (swaps.append(p), serving.__setitem__(0, p)),
                     failed=lambda name, exc: failures.append((name, str(exc))))
    tmp = root / ".latest.tmp"
    tmp.write_text("v2")
    os.replace(tmp, root / "latest")
    assert w.check_once() == "failed" and serving == ["v1"]
    assert len(failures) == 1 and failures[0][0] == "v2" and "no usable inf2 compiled model" in failures[0][1]
    assert w.check_once() == "failed" and w.check_once() == "failed"
    assert loads == ["v2"] * 3 and len(failures) == 1  # retried each poll, reported once

    artifact(root / "v2", "inf2", batch_size=4, seq_len=64)  # a compile at the wrong shapes: a new reason
    assert w.check_once() == "failed" and len(failures) == 2 and "stale-shapes" in failures[1][1]
    artifact(root / "v2", "inf2")  # the CronJob's compile at the served shapes
    assert w.check_once() == "switched" and serving == ["v2"] and swaps == ["v2"]
    assert w.check_once() is None and len(loads) == 5  # nothing left to retry


def test_watcher_does_not_retry_a_failure_that_will_not_clear_by_itself(tmp_path):
    (tmp_path / "latest").write_text("v2")
    loads = []

    def load(version):
        loads.append(version)
        raise ModelNotFound("weights hold NaN")

    w = ModelWatcher(str(tmp_path), 5, current=lambda: "v1", load=load, swap=lambda p, s: None,
                     failed=lambda name, exc: None)
    assert w.check_once() == "failed" and w.check_once() is None and loads == ["v2"]
