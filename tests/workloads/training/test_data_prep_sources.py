"""data_prep.py's S3 and Hugging Face hub loaders, end to end through main(): moto for S3, a fake
``datasets`` module for the hub (no network). Each checks the files written, the manifest, and that a
user's mistake is one line and exit 1."""
from __future__ import annotations

import json
import sys
import types

import boto3
import pytest
from moto import mock_aws

from workloads.common.hashing import data_hash
from workloads.training import data_prep

pytestmark = pytest.mark.workload

ROWS = [{"text": f"review number {i} was {'great' if i % 2 else 'awful'}", "label": i % 2} for i in range(40)]


def _jsonl(rows) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


@pytest.fixture
def s3(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("s3", region_name="us-west-2")
        client.create_bucket(Bucket="ml-data", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
        yield client


def _read(out):
    return ([json.loads(x) for x in (out / "train.jsonl").read_text().splitlines()],
            [json.loads(x) for x in (out / "eval.jsonl").read_text().splitlines()],
            json.loads((out / "DATASET.json").read_text()))


def test_s3_with_its_own_eval_split(s3, tmp_path):
    s3.put_object(Bucket="ml-data", Key="reviews/train.jsonl", Body=_jsonl(ROWS[:30]))
    s3.put_object(Bucket="ml-data", Key="reviews/eval.jsonl", Body=_jsonl(ROWS[30:]))
    out = tmp_path / "data"
    assert data_prep.main(["--out", str(out), "--source", "s3", "--s3-uri", "s3://ml-data/reviews"]) == 0
    train, evals, manifest = _read(out)
    assert len(train) == 30 and len(evals) == 10
    assert manifest["source"] == "s3" and manifest["origin"] == "s3://ml-data/reviews"
    assert manifest["data_hash"] == data_hash(train, evals)


def test_s3_without_eval_is_split_and_train_never_leaks_into_eval(s3, tmp_path):
    s3.put_object(Bucket="ml-data", Key="p/train.jsonl", Body=_jsonl(ROWS + ROWS[:5]))  # 5 duplicates
    out = tmp_path / "data"
    assert data_prep.main(["--out", str(out), "--source", "s3", "--s3-uri", "s3://ml-data/p/",
                           "--eval-fraction", "0.25"]) == 0
    train, evals, _ = _read(out)
    assert evals and not ({r["text"] for r in train} & {r["text"] for r in evals})
    assert len({r["text"] for r in train}) == len(train)  # duplicates dropped


def test_s3_mistakes_are_one_line(s3, tmp_path, capsys):
    out = tmp_path / "data"
    assert data_prep.main(["--out", str(out), "--source", "s3", "--s3-uri", "s3://ml-data/empty"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no train.jsonl under this prefix" in err
    s3.put_object(Bucket="ml-data", Key="bad/train.jsonl", Body="{not json}\n")
    assert data_prep.main(["--out", str(out), "--source", "s3", "--s3-uri", "s3://ml-data/bad"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "s3://ml-data/bad/train.jsonl" in err
    assert data_prep.main(["--out", str(out), "--source", "s3", "--s3-uri", "s3://no-such-bucket/x"]) == 1
    assert "s3://no-such-bucket/x/train.jsonl" in capsys.readouterr().err


class _Split(list):
    """A hub split: iterable rows, and ``features`` with a ClassLabel-like label column."""

    def __init__(self, rows, names=None):
        super().__init__(rows)
        self.features = {"label": types.SimpleNamespace(names=names)} if names else {}


@pytest.fixture
def fake_hub(monkeypatch):
    calls = []
    splits = {"train": _Split([{"sentence": r["text"], "label": r["label"]} for r in ROWS[:32]], ["neg", "pos"]),
              "validation": _Split([{"sentence": r["text"], "label": r["label"]} for r in ROWS[32:]], ["neg", "pos"])}

    def load_dataset(name, config=None, split=None, revision=None):
        calls.append((name, config, split, revision))
        if split not in splits:
            raise ValueError(f'Unknown split "{split}". Should be one of {sorted(splits)}.\nmore detail')
        return splits[split]

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    return calls


def test_hub_dataset_with_class_label_names_and_a_pinned_revision(fake_hub, tmp_path):
    out = tmp_path / "data"
    assert data_prep.main(["--out", str(out), "--source", "hf", "--hf-dataset", "stanfordnlp/sst2",
                           "--hf-revision", "abc123", "--eval-split", "validation", "--text-column", "sentence"]) == 0
    train, evals, manifest = _read(out)
    assert len(train) == 32 and len(evals) == 8 and {r["label"] for r in train} == {0, 1}
    assert all(set(r) == {"text", "label"} for r in train)  # normalised to the trainer's columns
    assert fake_hub == [("stanfordnlp/sst2", None, "train", "abc123"), ("stanfordnlp/sst2", None, "validation", "abc123")]
    assert manifest["origin"] == "stanfordnlp/sst2" and manifest["source"] == "hf"


def test_hub_errors_are_one_line(fake_hub, tmp_path, capsys):
    out = tmp_path / "data"
    assert data_prep.main(["--out", str(out), "--source", "hf", "--hf-dataset", "x/y", "--eval-split", "test",
                           "--text-column", "sentence"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "cannot load 'x/y' split 'test'" in err and "more detail" not in err


def test_hub_without_the_datasets_package_says_what_to_install(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets -> ImportError
    assert data_prep.main(["--out", str(tmp_path / "d"), "--source", "hf", "--hf-dataset", "x/y"]) == 1
    assert "needs the `datasets` package" in capsys.readouterr().err
