"""data_prep.py in process: the shipped sample, a re-run, the caps, argument errors (exit 2, one line), label
and row normalisation, the optional imports and the failures of S3 and of the target folder (exit 1, one line,
no half-written file). The S3 and hub happy paths are in test_data_prep_sources.py."""
from __future__ import annotations

import json
import sys
import types

import pytest

from workloads.common.hashing import data_hash
from workloads.training import data_prep
from workloads.training.data_prep import PrepError, normalise_label, normalise_rows

pytestmark = pytest.mark.workload

SAMPLE = data_prep.SAMPLE_DIR


def _lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def _clean_env(monkeypatch):
    for name in ("DATA_DIR", "DATA_SOURCE", "S3_URI", "HF_DATASET", "MAX_TRAIN", "MAX_EVAL", "FORCE", "SEED",
                 "EVAL_FRACTION"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    _clean_env(monkeypatch)


def test_the_sample_is_copied_with_a_manifest_that_hashes_the_files(tmp_path, capsys):
    out = tmp_path / "data"
    assert data_prep.main(["--out", str(out)]) == 0
    train, evals = _lines(out / "train.jsonl"), _lines(out / "eval.jsonl")
    assert train == _lines(SAMPLE / "train.jsonl") and evals == _lines(SAMPLE / "eval.jsonl")
    manifest = json.loads((out / "DATASET.json").read_text())
    assert manifest == {"source": "sample", "origin": str(SAMPLE), "train": len(train), "eval": len(evals),
                        "train_positive": sum(r["label"] for r in train),
                        "eval_positive": sum(r["label"] for r in evals), "data_hash": data_hash(train, evals)}
    assert f"wrote {len(train)} train + {len(evals)} eval examples from {SAMPLE}" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["DATASET.json", "eval.jsonl", "train.jsonl"]  # no temporaries
    assert all((p.stat().st_mode & 0o777) == 0o644 for p in out.iterdir())


def test_a_rerun_keeps_the_dataset_unless_forced(tmp_path, capsys):
    out = tmp_path / "data"
    assert data_prep.main(["--out", str(out)]) == 0
    (out / "train.jsonl").write_text('{"text": "kept", "label": 1}\n')
    capsys.readouterr()
    assert data_prep.main(["--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "dataset already present" in said and "(sample, 1200 train / 300 eval); use --force" in said
    assert (out / "train.jsonl").read_text() == '{"text": "kept", "label": 1}\n'
    assert data_prep.main(["--out", str(out), "--force"]) == 0
    assert len(_lines(out / "train.jsonl")) == 1200


def test_force_and_the_caps_come_from_the_environment_too(tmp_path, monkeypatch):
    out = tmp_path / "data"
    monkeypatch.setenv("DATA_DIR", str(out))
    monkeypatch.setenv("MAX_TRAIN", "50")
    monkeypatch.setenv("MAX_EVAL", "7")
    assert data_prep.main([]) == 0
    assert len(_lines(out / "train.jsonl")) == 50 and len(_lines(out / "eval.jsonl")) == 7
    monkeypatch.setenv("MAX_TRAIN", "20")
    monkeypatch.setenv("FORCE", "true")
    assert data_prep.main([]) == 0
    assert json.loads((out / "DATASET.json").read_text())["train"] == 20


def test_caps_keep_a_seeded_subset_in_the_original_order(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for out, seed in ((a, "1"), (b, "1"), (c, "2")):
        assert data_prep.main(["--out", str(out), "--max-train", "30", "--seed", seed]) == 0
    kept = _lines(a / "train.jsonl")
    assert kept == _lines(b / "train.jsonl") != _lines(c / "train.jsonl")  # reproducible, and the seed matters
    full = _lines(SAMPLE / "train.jsonl")
    positions = [full.index(r) for r in kept]
    assert positions == sorted(positions) and len(kept) == 30


def test_cap_of_zero_or_more_than_there_are_keeps_everything():
    rows = [{"text": str(i), "label": i % 2} for i in range(5)]
    assert data_prep.cap(rows, 0, 1) is rows and data_prep.cap(rows, 9, 1) is rows


@pytest.mark.parametrize("args, message", [
    ([], "--out is required (or set DATA_DIR)"),
    (["--out", "{out}", "--source", "s3"], "--source s3 needs --s3-uri s3://bucket/prefix/ (or S3_URI)"),
    (["--out", "{out}", "--source", "s3", "--s3-uri", "s3://"], "--s3-uri must look like s3://bucket/prefix/"),
    (["--out", "{out}", "--source", "hf"], "--source hf needs --hf-dataset ID (or HF_DATASET)"),
    (["--out", "{out}", "--eval-fraction", "0"], "--eval-fraction must be between 0 and 1, got 0.0"),
    (["--out", "{out}", "--eval-fraction", "1"], "--eval-fraction must be between 0 and 1, got 1.0"),
    (["--out", "{out}", "--max-train", "-1"], "--max-train/--max-eval must be >= 0"),
    (["--out", "{out}", "--max-eval", "-3"], "--max-train/--max-eval must be >= 0"),
    (["--out", "{file}"], "exists and is not a directory"),
])
def test_bad_arguments_are_exit_2_with_one_line(tmp_path, capsys, args, message):
    (tmp_path / "file").write_text("x")
    args = [x.format(out=tmp_path / "out", file=tmp_path / "file") for x in args]
    with pytest.raises(SystemExit) as info:
        data_prep.main(args)
    assert info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("data_prep.py: error: ") and message in last
    assert not (tmp_path / "out").exists()


def test_a_missing_shipped_sample_is_an_argument_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(data_prep, "SAMPLE_DIR", tmp_path / "nowhere")
    with pytest.raises(SystemExit):
        data_prep.main(["--out", str(tmp_path / "out")])
    assert "the shipped sample is missing" in capsys.readouterr().err


@pytest.mark.parametrize("value, label", [(0, 0), (1, 1), (1.0, 1), ("POSITIVE", 1), (" neg ", 0), ("Negative", 0),
                                          ("1", 1), ("pos", 1)])
def test_labels_are_normalised_to_0_and_1(value, label):
    assert normalise_label(value, "x") == label


@pytest.mark.parametrize("value", [True, False, 2, -1, 0.5, "maybe", None])
def test_other_labels_are_refused_naming_the_row(value):
    with pytest.raises(PrepError, match=r"^f row 3: label must be 0/1 or NEGATIVE/POSITIVE, got "):
        normalise_label(value, "f row 3")


def test_rows_need_both_columns_and_blank_texts_are_dropped():
    rows = normalise_rows([{"t": "  good  ", "l": 1}, {"t": "   ", "l": 0}, {"t": "bad", "l": "negative"}], "t", "l", "f")
    assert rows == [{"text": "good", "label": 1}, {"text": "bad", "label": 0}]
    with pytest.raises(PrepError) as info:
        normalise_rows([{"t": "ok", "l": 1}, {"text": "x"}], "t", "l", "f")
    assert str(info.value) == "f row 2: needs columns 't' and 'l', has ['text']"
    with pytest.raises(PrepError, match="^f: no rows$"):
        normalise_rows([{"t": "", "l": 1}], "t", "l", "f")


def test_a_bad_json_line_names_the_file_and_line():
    with pytest.raises(PrepError, match=r"^f.jsonl:2: not valid JSON \("):
        data_prep.read_jsonl_text('{"text": "a", "label": 1}\n{oops\n', "f.jsonl")


def test_s3_without_boto3_says_what_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "boto3", None)  # import boto3 -> ImportError
    assert data_prep.main(["--out", str(tmp_path / "d"), "--source", "s3", "--s3-uri", "s3://b/p"]) == 1
    err = capsys.readouterr().err
    assert err == "data_prep.py: error: --source s3 needs boto3 (pip install boto3)\n"
    assert not (tmp_path / "d").exists()


def test_s3_unreachable_is_one_line_naming_the_object(tmp_path, monkeypatch, capsys):
    import boto3
    from botocore.exceptions import EndpointConnectionError

    class Client:
        def get_object(self, Bucket, Key):
            raise EndpointConnectionError(endpoint_url=f"https://{Bucket}.s3.amazonaws.com/{Key}")

    monkeypatch.setattr(boto3, "client", lambda *a, **k: Client())
    assert data_prep.main(["--out", str(tmp_path / "d"), "--source", "s3", "--s3-uri", "s3://bkt/pre"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("data_prep.py: error: s3://bkt/pre/train.jsonl: Could not connect")


def test_s3_access_denied_is_an_error_not_a_missing_file(tmp_path, monkeypatch, capsys):
    import boto3
    from botocore.exceptions import ClientError

    class Client:
        def get_object(self, Bucket, Key):
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "GetObject")

    monkeypatch.setattr(boto3, "client", lambda *a, **k: Client())
    assert data_prep.main(["--out", str(tmp_path / "d"), "--source", "s3", "--s3-uri", "s3://bkt/"]) == 1
    err = capsys.readouterr().err
    assert "s3://bkt/train.jsonl:" in err and "AccessDenied" in err and "no train.jsonl" not in err


def test_eval_rows_that_swallow_all_of_train_are_an_error(tmp_path, monkeypatch, capsys):
    rows = [{"text": f"row {i}", "label": i % 2} for i in range(4)]
    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=lambda *a, **k: list(rows)))
    assert data_prep.main(["--out", str(tmp_path / "d"), "--source", "hf", "--hf-dataset", "x/y",
                           "--eval-split", "validation"]) == 1  # the same rows in both splits: no train left
    assert capsys.readouterr().err == "data_prep.py: error: the train split is empty after preparation\n"


def test_hub_config_is_part_of_the_origin(tmp_path, monkeypatch):
    calls = []

    def load_dataset(name, config=None, split=None, revision=None):
        calls.append((name, config, split))
        return [{"text": f"{split} row {i}", "label": i % 2} for i in range(10)]

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    out = tmp_path / "d"
    assert data_prep.main(["--out", str(out), "--source", "hf", "--hf-dataset", "glue", "--hf-config", "sst2"]) == 0
    manifest = json.loads((out / "DATASET.json").read_text())
    assert manifest["origin"] == "glue/sst2" and calls == [("glue", "sst2", "train")]
    assert manifest["train"] + manifest["eval"] == 10 and manifest["eval"] == 2  # the default 20% split


def test_an_unwritable_target_is_exit_1_in_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert data_prep.main(["--out", str(tmp_path / "file" / "sub")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("data_prep.py: error: ") and err.count("\n") == 1


def test_a_failed_write_leaves_no_temporary_and_no_manifest(tmp_path, monkeypatch, capsys):
    out = tmp_path / "d"
    real_replace = data_prep.os.replace

    def replace(src, dst):
        if str(dst).endswith("eval.jsonl"):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(data_prep.os, "replace", replace)
    assert data_prep.main(["--out", str(out)]) == 1
    assert "No space left on device" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["train.jsonl"]  # no .eval.jsonl.* left, no DATASET.json
