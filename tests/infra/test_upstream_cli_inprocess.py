"""``python -m infra upstream fetch | verify`` (infra/upstream_cli.py) in process, with the loader replaced by a
fake that answers per artifact: the table shows every pin with its status, ``fetch`` writes only what is not
cached yet, ``verify`` never downloads, and the exit code is 1 as soon as one pin is not verified. The real
mirror and subprocess runs are in test_upstream.py; these pin the report's rows and the ``--upstream`` option."""
from __future__ import annotations

import pytest

from infra import upstream, upstream_cli
from infra.upstream import Located

pytestmark = pytest.mark.tooling

KEYS = sorted(upstream.ARTIFACTS)


@pytest.fixture(autouse=True)
def _restore_mirrors():
    yield
    upstream.set_mirrors(None)  # --upstream installs folders process-wide: give the next test the environment


class FakeLoader:
    """Stands in for upstream.locate / write_cache: ``outcome[key]`` is a Located or an exception to raise."""

    def __init__(self, monkeypatch, outcome):
        self.outcome, self.calls, self.written, self.mirrors_seen = outcome, [], [], []
        monkeypatch.setattr(upstream, "locate", self.locate)
        monkeypatch.setattr(upstream, "write_cache", self.write_cache)

    def locate(self, key, *, download=True):
        self.calls.append((key, download))
        self.mirrors_seen.append(upstream.mirrors())
        result = self.outcome(key)
        if isinstance(result, Exception):
            raise result
        return result

    def write_cache(self, art, data):
        self.written.append((art.key, data))


def _rows(out: str) -> dict[str, str]:
    return {line.split()[0]: line for line in out.splitlines() if line.split() and line.split()[0] in upstream.ARTIFACTS}


def test_verify_lists_every_pin_and_never_downloads(monkeypatch, capsys):
    fake = FakeLoader(monkeypatch, lambda key: Located("mirror", f"/m/{key}", b"x"))
    assert upstream_cli.main(["verify"]) == 0
    out = capsys.readouterr().out
    assert [k for k, _ in fake.calls] == KEYS and not any(download for _, download in fake.calls)
    rows = _rows(out)
    assert sorted(rows) == KEYS
    for key in KEYS:
        art = upstream.ARTIFACTS[key]
        assert " verified " in rows[key] and rows[key].endswith(f"mirror: /m/{key}")
        assert art.tag in rows[key] and art.sha256[:12] in rows[key] and art.license in rows[key]
    assert out.splitlines()[0].split() == ["artifact", "tag", "sha256", "license", "status", "source"]
    assert f"{len(KEYS)} of {len(KEYS)} pinned artifacts verified\n" in out
    assert fake.written == []  # verify only reads


def test_fetch_caches_what_came_from_elsewhere_but_not_what_was_cached(monkeypatch, capsys):
    cached = set(KEYS[::2])
    fake = FakeLoader(monkeypatch, lambda key: Located("cache" if key in cached else "download", key, key.encode()))
    assert upstream_cli.main(["fetch"]) == 0
    assert all(download for _, download in fake.calls)
    assert fake.written == [(k, k.encode()) for k in KEYS if k not in cached]
    assert capsys.readouterr().out.count(" verified ") == len(KEYS)


def test_each_kind_of_failure_is_a_row_and_exit_1(monkeypatch, capsys):
    bad_sum, missing, broken = KEYS[0], KEYS[1], KEYS[2]

    def outcome(key):
        if key == bad_sum:
            return upstream.ChecksumMismatch(f"{key}: sha256 abc, pinned def")
        if key == missing:
            return upstream.ArtifactUnavailable("not anywhere")
        if key == broken:
            return PermissionError(13, "Permission denied")
        return Located("cache", key, b"")

    FakeLoader(monkeypatch, outcome)
    assert upstream_cli.main(["verify"]) == 1
    out = capsys.readouterr().out
    rows = _rows(out)
    assert " CHECKSUM MISMATCH " in rows[bad_sum] and rows[bad_sum].endswith(f"{bad_sum}: sha256 abc, pinned def")
    assert " MISSING " in rows[missing] and rows[missing].endswith(upstream.ARTIFACTS[missing].url)
    assert " ERROR " in rows[broken] and "PermissionError: [Errno 13] Permission denied" in rows[broken]
    assert sum(" verified " in r for r in rows.values()) == len(KEYS) - 3
    summary = out.strip().splitlines()[-1]
    assert summary.startswith(f"{len(KEYS) - 3} of {len(KEYS)} pinned artifacts verified; 3 not: provide them with "
                              f"--upstream DIR or ${upstream.ENV_MIRROR}")
    assert "python -m infra upstream fetch" in summary


def test_a_failed_fetch_writes_nothing_for_the_failed_pin(monkeypatch, capsys):
    fake = FakeLoader(monkeypatch, lambda key: upstream.ArtifactUnavailable("x") if key == KEYS[0]
                      else Located("mirror", key, b"d"))
    assert upstream_cli.main(["fetch"]) == 1
    assert KEYS[0] not in [k for k, _ in fake.written] and len(fake.written) == len(KEYS) - 1
    capsys.readouterr()


def test_the_columns_are_aligned(monkeypatch, capsys):
    FakeLoader(monkeypatch, lambda key: Located("mirror", "w", b""))
    upstream_cli.main(["verify"])
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln and not ln[0].isdigit()]
    starts = {ln.index(" verified ") for ln in lines if " verified " in ln}
    assert len(starts) == 1  # the status column starts at the same place on every row


def test_upstream_folders_are_installed_for_the_run(monkeypatch, tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    fake = FakeLoader(monkeypatch, lambda key: Located("mirror", key, b""))
    assert upstream_cli.main(["verify", "--upstream", str(a), "--upstream", str(b)]) == 0
    assert all(seen == [a, b] for seen in fake.mirrors_seen)
    capsys.readouterr()


def test_an_upstream_option_that_is_not_a_folder_is_exit_2_in_one_line(monkeypatch, tmp_path, capsys):
    fake = FakeLoader(monkeypatch, lambda key: Located("mirror", key, b""))
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x")
    with pytest.raises(SystemExit) as info:
        upstream_cli.main(["verify", "--upstream", str(not_a_folder)])
    assert info.value.code == 2
    assert capsys.readouterr().err == f"error: --upstream {not_a_folder}: not a folder\n"
    assert fake.calls == []  # refused before anything is read


def test_an_unknown_action_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as info:
        upstream_cli.main(["download"])
    assert info.value.code == 2
    assert "invalid choice: 'download'" in capsys.readouterr().err


def test_parse_args_without_upstream_leaves_the_environment_mirrors(monkeypatch, tmp_path):
    import argparse

    monkeypatch.setenv(upstream.ENV_MIRROR, str(tmp_path))
    ap = argparse.ArgumentParser()
    upstream_cli.add_upstream_arg(ap)
    args = upstream_cli.parse_args(ap, [])
    assert args.upstream is None and upstream.mirrors() == [tmp_path]
