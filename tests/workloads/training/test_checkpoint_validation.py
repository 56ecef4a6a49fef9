"""workloads/training/checkpoint.py without training: every reason a checkpoint is refused (each a
CheckpointError whose message says why, so the resume log names the cause), the folder housekeeping (sidecars
of pruned checkpoints, half-written temporaries, files moved aside), the data-keyed run folder and the export
guard. The trainer's own runs over these paths are in test_train_safety.py and test_train_restart.py."""
from __future__ import annotations

import json
import logging
import os

import pytest
import torch

from workloads.training import checkpoint as ck
from workloads.training.checkpoint import CheckpointError

pytestmark = pytest.mark.workload


def _state(step: int, data_hash: str | None = "h1", **extra) -> dict:
    return {"model": {"w": torch.full((4,), float(step))}, "optimizer": {}, "scheduler": {}, "epoch": 0,
            "step_in_epoch": step, "global_step": step, "data_hash": data_hash, **extra}


def _raw(path, obj) -> None:
    """A file with a valid digest whose content is ``obj``: only the content checks can refuse it."""
    torch.save(obj, path)
    ck.write_digest(path)


def _refusal(path) -> str:
    with pytest.raises(CheckpointError) as info:
        ck.load_checkpoint(path)
    return str(info.value)


def test_a_saved_checkpoint_loads_with_its_digest_and_format(tmp_path):
    path = ck.save_checkpoint(tmp_path, _state(7))
    assert path == tmp_path / "ckpt-000000007.pt"
    state = ck.load_checkpoint(path)
    assert state["format"] == ck.FORMAT and state["global_step"] == 7 and torch.equal(state["model"]["w"],
                                                                                        torch.full((4,), 7.0))
    digest = json.loads(ck.digest_path(path).read_text())
    assert digest["global_step"] == 7 and digest["data_hash"] == "h1" and digest["bytes"] == path.stat().st_size


def test_a_state_without_the_required_keys_is_not_written(tmp_path):
    state = _state(1)
    del state["optimizer"], state["epoch"]
    with pytest.raises(CheckpointError, match=r"checkpoint state lacks \['optimizer', 'epoch'\]"):
        ck.save_checkpoint(tmp_path, state)
    assert list(tmp_path.iterdir()) == []  # nothing, not even a temporary


def test_a_failed_write_leaves_no_temporary_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    ck.save_checkpoint(tmp_path, _state(1))

    def full_disk(obj, fh):
        fh.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ck.torch, "save", full_disk)
    with pytest.raises(OSError):
        ck.save_checkpoint(tmp_path, _state(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-000000001.pt", "ckpt-000000001.pt.sha256"]


@pytest.mark.parametrize("content, reason", [
    ("", "unreadable digest file ckpt-000000001.pt.sha256"),
    ("{not json", "unreadable digest file ckpt-000000001.pt.sha256"),
    ("[1, 2]", "malformed digest file ckpt-000000001.pt.sha256"),
    ('{"sha256": "abc"}', "malformed digest file ckpt-000000001.pt.sha256"),
    ('{"sha256": 5, "bytes": 1}', "malformed digest file ckpt-000000001.pt.sha256"),
])
def test_a_bad_digest_sidecar_is_refused(tmp_path, content, reason):
    path = ck.save_checkpoint(tmp_path, _state(1))
    ck.digest_path(path).write_text(content)
    assert _refusal(path).startswith(reason)


def test_a_missing_sidecar_is_an_interrupted_write(tmp_path):
    path = ck.save_checkpoint(tmp_path, _state(1))
    ck.digest_path(path).unlink()
    assert _refusal(path) == "no digest file ckpt-000000001.pt.sha256 (interrupted write or an older trainer)"


def test_a_truncated_file_is_refused_by_its_size_before_hashing(tmp_path):
    path = ck.save_checkpoint(tmp_path, _state(1))
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.truncate(size - 10)
    assert _refusal(path) == f"size {size - 10} != {size} recorded in ckpt-000000001.pt.sha256"


def test_a_file_that_cannot_be_read_is_refused(tmp_path, monkeypatch):
    path = ck.save_checkpoint(tmp_path, _state(1))
    real_open = open

    def failing_open(file, mode="r", *a, **k):
        if str(file) == str(path) and "b" in mode:
            raise PermissionError(13, "Permission denied")
        return real_open(file, mode, *a, **k)

    monkeypatch.setattr("builtins.open", failing_open)
    assert _refusal(path).startswith("cannot read: [Errno 13] Permission denied")


def test_bytes_that_are_not_a_torch_file_are_refused_in_one_line(tmp_path):
    path = tmp_path / "ckpt-000000001.pt"
    path.write_bytes(b"this is not a zip file at all\n" * 10)
    ck.write_digest(path)  # the digest matches: only torch.load can tell
    msg = _refusal(path)
    kind = msg.split(":")[0]
    assert "\n" not in msg and kind.isidentifier() and kind.endswith("Error")  # the loader's exception, one line


@pytest.mark.parametrize("obj, reason", [
    ([1, 2, 3], "not a checkpoint dictionary"),
    ({**_state(1), "format": "someone-else/v9"}, "unknown format 'someone-else/v9'"),
    ({k: v for k, v in _state(1).items() if k not in ("scheduler", "epoch")} | {"format": ck.FORMAT},
     "missing keys ['scheduler', 'epoch']"),
    ({**_state(2), "format": ck.FORMAT}, "file name says step 1, content says 2"),
])
def test_content_that_is_not_this_checkpoint_is_refused(tmp_path, obj, reason):
    path = tmp_path / "ckpt-000000001.pt"
    _raw(path, obj)
    assert _refusal(path) == reason


def test_pickled_code_is_never_run(tmp_path):
    path = tmp_path / "ckpt-000000001.pt"
    _raw(path, {**_state(1), "format": ck.FORMAT, "evil": ck.CheckpointError("x")})  # an arbitrary class
    assert "Weights only load failed" in _refusal(path) or "Unsupported" in _refusal(path)


def test_list_checkpoints_orders_by_step_and_ignores_other_names(tmp_path):
    for step in (3, 12, 1):
        ck.save_checkpoint(tmp_path, _state(step), keep=10)
    (tmp_path / "ckpt-12.pt").write_bytes(b"")               # not 9 digits
    (tmp_path / "ckpt-000000099.pt.corrupt").write_bytes(b"")
    (tmp_path / "ckpt-000000050.pt").mkdir()                 # a folder with the name
    assert [p.name for p in ck.list_checkpoints(tmp_path)] == ["ckpt-000000012.pt", "ckpt-000000003.pt",
                                                                "ckpt-000000001.pt"]
    assert ck.list_checkpoints(tmp_path / "missing") == []


def test_prune_keeps_at_least_one_and_drops_orphan_sidecars(tmp_path):
    for step in (1, 2, 3):
        ck.save_checkpoint(tmp_path, _state(step), keep=10)
    ck.digest_path(tmp_path / "ckpt-000000077.pt").write_text("{}")  # its checkpoint never arrived
    removed = ck.prune(tmp_path, keep=0)
    assert [p.name for p in removed] == ["ckpt-000000002.pt", "ckpt-000000001.pt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-000000003.pt", "ckpt-000000003.pt.sha256"]
    assert ck.prune(tmp_path / "missing") == []


def test_clean_temporaries_removes_only_half_written_checkpoints(tmp_path):
    (tmp_path / ".ckpt-000000001.pt.tmp-123").write_bytes(b"x")
    (tmp_path / ".ckpt-000000001.pt.sha256.tmp-9").write_bytes(b"x")
    (tmp_path / ".other.tmp-1").write_bytes(b"x")
    ck.save_checkpoint(tmp_path, _state(2))
    removed = ck.clean_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == [".ckpt-000000001.pt.sha256.tmp-9", ".ckpt-000000001.pt.tmp-123"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.tmp-1", "ckpt-000000002.pt",
                                                         "ckpt-000000002.pt.sha256"]
    assert ck.clean_temporaries(tmp_path / "missing") == []


def test_quarantine_moves_the_file_and_its_sidecar_and_tolerates_a_vanished_file(tmp_path):
    path = ck.save_checkpoint(tmp_path, _state(1))
    dest = ck.quarantine(path)
    assert dest == tmp_path / "ckpt-000000001.pt.corrupt"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-000000001.pt.corrupt",
                                                         "ckpt-000000001.pt.corrupt.sha256"]
    assert ck.quarantine(path) is None  # already gone: nothing to move, no exception


def test_load_latest_reports_what_it_skipped(tmp_path, caplog):
    ck.save_checkpoint(tmp_path, _state(1))
    newest = ck.save_checkpoint(tmp_path, _state(2))
    ck.digest_path(newest).write_text("{}")
    skipped: list = []
    with caplog.at_level(logging.WARNING, logger="trainer"):
        path, state = ck.load_latest(tmp_path, skipped=skipped)
    assert path.name == "ckpt-000000001.pt" and state["global_step"] == 1 and skipped == [newest]
    assert newest.exists()  # without quarantine_bad the file stays
    assert any("skipping corrupt checkpoint" in r.getMessage() for r in caplog.records)
    assert ck.load_latest(tmp_path / "missing") is None


def test_newest_data_hash_reads_the_newest_readable_sidecar(tmp_path):
    assert ck.newest_data_hash(tmp_path) == (False, None)
    ck.save_checkpoint(tmp_path, _state(1, "old"))
    newest = ck.save_checkpoint(tmp_path, _state(2, "new"))
    assert ck.newest_data_hash(tmp_path) == (True, "new")
    ck.digest_path(newest).unlink()
    assert ck.newest_data_hash(tmp_path) == (True, "old")  # falls back to the next one
    ck.digest_path(tmp_path / "ckpt-000000001.pt").unlink()
    assert ck.newest_data_hash(tmp_path) == (True, None)   # files, but no readable hash


def test_resolve_run_dir_finds_a_data_folder_by_its_export_and_cleans_temporaries(tmp_path, caplog):
    sub = tmp_path / "data-abcd"
    sub.mkdir()
    (sub / "exported.json").write_text("{}")  # a finished run on this data: no checkpoints left, still its folder
    (sub / ".ckpt-000000001.pt.tmp-5").write_bytes(b"x")
    with caplog.at_level(logging.WARNING, logger="trainer"):
        assert ck.resolve_run_dir(tmp_path, "abcd") == (sub, None)
    assert not (sub / ".ckpt-000000001.pt.tmp-5").exists()
    assert any("removed partial checkpoint" in r.getMessage() for r in caplog.records)


def test_resolve_run_dir_on_other_data_warns_and_uses_its_own_folder(tmp_path, caplog):
    ck.save_checkpoint(tmp_path, _state(1, "other"))
    with caplog.at_level(logging.WARNING, logger="trainer"):
        where, err = ck.resolve_run_dir(tmp_path, "mine")
    assert (where, err) == (tmp_path / "data-mine", None) and where.is_dir()
    assert any("not resuming them" in r.getMessage() for r in caplog.records)


def test_resolve_run_dir_with_checkpoints_of_unknown_data_resumes_them(tmp_path):
    ck.save_checkpoint(tmp_path, _state(1, None))  # an older trainer recorded no data hash
    assert ck.resolve_run_dir(tmp_path, "mine") == (tmp_path, None)


def test_resolve_run_dir_that_cannot_be_created_is_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    where, err = ck.resolve_run_dir(tmp_path / "file", "abcd")
    assert where is None and err.startswith(f"--checkpoint-dir {tmp_path / 'file'}: ") and "\n" not in err


def test_load_for_resume_moves_bad_ones_aside_once_a_good_one_is_found(tmp_path):
    ck.save_checkpoint(tmp_path, _state(1))
    bad = ck.save_checkpoint(tmp_path, _state(2))
    ck.digest_path(bad).write_text("[]")
    (path, state), err = ck.load_for_resume(tmp_path)
    assert err is None and path.name == "ckpt-000000001.pt" and state["global_step"] == 1
    assert (tmp_path / "ckpt-000000002.pt.corrupt").exists() and not bad.exists()


@pytest.mark.parametrize("weights, accuracy, reason", [
    ({"a": torch.ones(2), "b": torch.tensor([1.0, float("nan")])}, 0.9, "1 weight tensor(s) hold NaN/inf (first: b)"),
    ({"a": torch.tensor([float("inf")])}, None, "1 weight tensor(s) hold NaN/inf (first: a)"),
    ({"a": torch.ones(2)}, float("nan"), "eval accuracy nan is not finite"),
    ({"a": torch.ones(2)}, "0.9", "eval accuracy '0.9' is not a number"),
    ({"a": torch.ones(2)}, True, "eval accuracy True is not a number"),
])
def test_export_refusal_says_why(weights, accuracy, reason):
    assert ck.export_refusal(weights, accuracy) == reason


def test_export_refusal_accepts_finite_weights_and_ignores_integer_tensors():
    weights = {"a": torch.ones(2), "steps": torch.tensor([2**40]), "note": "text"}
    assert ck.export_refusal(weights, 0.75) is None and ck.export_refusal(weights, None) is None
    assert ck.nonfinite_tensors(weights) == []


def test_atomic_write_bytes_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "exported.json"
    target.write_text("old")
    ck.atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new" and os.listdir(tmp_path) == ["exported.json"]
