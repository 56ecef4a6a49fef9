"""Real-world Karpenter YAML (public upstream examples) through ``check --manifests``.

The examples live outside this repository, in the folder named by ``EKS_ML_PLATFORM_EXAMPLES``
(``<that folder>/karpenter/``, with a ``SOURCES.md`` that lists every file, where it comes from and
the schema+CEL verdict of each of its objects). Without the variable the tests are skipped (with
``EKS_ML_PLATFORM_REQUIRE_UPSTREAM=1`` they fail instead).

For every file listed, checked alone in its own folder without checkov, as
``python -m infra check --manifests DIR --no-checkov`` does:

* schema + CEL (``[crd-schema]``/``[cel]``): the objects SOURCES.md calls accepted have no finding;
  the two files upstream's CRDs really reject fail with the CRD's own message;
* ``[unchecked]``: exactly the ``eks.amazonaws.com/v1 NodeClass`` documents (EKS Auto Mode; no CRD);
* ``[policy]``: only the platform rules the file really breaks, judged on the raw YAML here: an AMI
  alias that floats (``@latest``, or no version), a NodePool without a cpu limit, and an
  EC2NodeClass that *sets* ``metadataOptions.httpTokens`` to something other than ``required``.
  A class that leaves httpTokens out gets the CRD's default (``required``), so it is never flagged.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.check.report import resource_id
from infra.check.run import check_manifests, read_manifest_dir
from tests.conftest import REPO, REQUIRE_UPSTREAM

pytestmark = pytest.mark.manifests

ENV = "EKS_ML_PLATFORM_EXAMPLES"
K8S = "1.34"
AUTO_MODE_NODECLASS = "eks.amazonaws.com/v1/NodeClass"
# The two files upstream's CRDs reject, and the CRD's messages check must give for them.
REJECTED = {
    "karpenter-blueprints/blueprints/update-nodes-with-drift/latest-current-ami.yaml": [
        ("crd-schema", "EC2NodeClass/latest-current-ami",
         "spec.amiSelectorTerms[0].id: '<<AMD64PREVAMI>>' does not match 'ami-[0-9a-z]+'"),
        ("crd-schema", "EC2NodeClass/latest-current-ami",
         "spec.amiSelectorTerms[1].id: '<<ARM64PREVAMI>>' does not match 'ami-[0-9a-z]+'"),
        ("cel", "EC2NodeClass/latest-current-ami",
         "spec: must specify amiFamily if amiSelectorTerms does not contain an alias"),
    ],
    "karpenter-provider-aws/examples/v1/windows-custom-userdata.yaml": [
        ("crd-schema", "NodePool/windows2022",
         "spec.template.spec.nodeClassRef.group: 'karpenter.k8s.aws/v1' does not match '^[^/]*$'"),
    ],
}


@dataclass(frozen=True)
class Row:
    file: str                               # relative to <examples>/karpenter
    objects: tuple[tuple[str, str, int], ...]  # (apiVersion/kind, verdict, count)

    def __str__(self) -> str:
        return self.file


def _root() -> Path | None:
    value = os.environ.get(ENV, "")
    if not value:
        return None
    root = Path(value) / "karpenter"
    return root if (root / "SOURCES.md").is_file() else None


def parse_sources(text: str) -> list[Row]:
    """The per-file table of SOURCES.md: `file here` and its objects' schema+CEL verdicts."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("| ") or line.startswith("| repo ") or line.startswith("|---"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 6:
            continue
        file = cells[3].strip("`")
        objects = []
        for part in cells[5].split(";"):
            m = re.match(r"^\s*(\d+) (\S+) (\S+) (accepted|rejected|not checked)", part)
            assert m, f"SOURCES.md: unreadable objects cell {cells[5]!r}"
            objects.append((f"{m[2]}/{m[3]}", m[4], int(m[1])))
        rows.append(Row(file, tuple(objects)))
    return rows


def _rows() -> list[Row]:
    root = _root()
    return parse_sources((root / "SOURCES.md").read_text()) if root else []


ROWS = _rows()


def examples_root() -> Path:
    root = _root()
    if root is None:
        why = (f"{ENV} is not set" if not os.environ.get(ENV) else
               f"{ENV}={os.environ[ENV]} has no karpenter/SOURCES.md")
        msg = f"{why}: set {ENV} to the folder that holds karpenter/ (the upstream Karpenter examples)"
        if REQUIRE_UPSTREAM:
            pytest.fail(msg)
        pytest.skip(msg)
    return root


# --- what the platform's policy rules must say, judged on the raw YAML --------------------------


def expected_policy(objs: list[dict[str, Any]]) -> set[tuple[str, str]]:
    out = set()
    for obj in objs:
        kind, spec = obj.get("kind"), obj.get("spec") or {}
        rid = resource_id(obj)
        if obj.get("apiVersion") == "karpenter.k8s.aws/v1" and kind == "EC2NodeClass":
            for term in spec.get("amiSelectorTerms") or []:
                alias = (term or {}).get("alias")
                if alias is not None and ("@" not in alias or alias.split("@", 1)[1].lower() == "latest"):
                    out.add(("ami-alias-pinned", rid))
            tokens = (spec.get("metadataOptions") or {}).get("httpTokens")
            if tokens is not None and tokens != "required":  # absent: the CRD defaults it to required
                out.add(("imdsv2-required", rid))
        if obj.get("apiVersion") == "karpenter.sh/v1" and kind == "NodePool":
            if "cpu" not in (spec.get("limits") or {}):
                out.add(("nodepool-limits", rid))
    return out


def _check_alone(root: Path, row: Row, tmp_path: Path):
    src = root / row.file
    assert src.is_file(), f"SOURCES.md lists {row.file}, which is not in {root}"
    folder = tmp_path / "one"
    folder.mkdir(parents=True)
    shutil.copy(src, folder / src.name)
    return folder, check_manifests(folder, None, K8S, with_checkov=False)


def _rule(f) -> str:
    return f.message.split(":", 1)[0]


@pytest.mark.parametrize("row", ROWS or [None], ids=str)
def test_upstream_example(row: Row | None, tmp_path: Path):
    root = examples_root()
    assert row is not None, f"{root}/SOURCES.md lists no files"
    folder, report = _check_alone(root, row, tmp_path)
    objs, bad = read_manifest_dir(folder)
    assert not bad
    by = Counter(f.check for f in report.findings)
    assert set(by) <= {"crd-schema", "cel", "policy", "unchecked"}, report.findings

    # the objects and their verdicts are those SOURCES.md states
    kinds = Counter(f"{o['apiVersion']}/{o['kind']}" for o in objs)
    stated: Counter[tuple[str, str]] = Counter()
    for kind, verdict, n in row.objects:
        stated[(kind, verdict)] += n
    api = [f for f in report.findings if f.check in ("crd-schema", "cel")]
    rejected_ids = {f.resource for f in api}
    actual: Counter[tuple[str, str]] = Counter()
    for o in objs:
        kind = f"{o['apiVersion']}/{o['kind']}"
        if kind == AUTO_MODE_NODECLASS:
            actual[(kind, "not checked")] += 1
        else:
            actual[(kind, "rejected" if resource_id(o) in rejected_ids else "accepted")] += 1
    assert actual == stated, f"{row.file}: check says {dict(actual)}, SOURCES.md {dict(stated)}: {api}"

    # unchecked: exactly the EKS Auto Mode NodeClass documents, each reported
    unchecked = [f for f in report.findings if f.check == "unchecked"]
    assert {f.message.split(" has no schema")[0] for f in unchecked} <= {AUTO_MODE_NODECLASS}, unchecked
    assert len(unchecked) == kinds.get(AUTO_MODE_NODECLASS, 0)
    assert set(report.unchecked_kinds) <= {AUTO_MODE_NODECLASS}

    # schema + CEL: nothing on the valid files, the CRD's own messages on the two invalid ones
    expected_api = REJECTED.get(row.file, [])
    assert sorted((f.check, f.resource, f.message) for f in api) == sorted(expected_api), api

    # policy: only what the file really breaks; never imdsv2-required on a defaulted httpTokens
    policy = {(_rule(f), f.resource) for f in report.findings if f.check == "policy"}
    assert policy == expected_policy(objs), report.findings


def test_sources_table_lists_every_example_once():
    root = examples_root()
    listed = Counter(r.file for r in ROWS)
    assert all(n == 1 for n in listed.values()), [f for f, n in listed.items() if n > 1]
    on_disk = {str(p.relative_to(root)) for p in [*root.rglob("*.yaml"), *root.rglob("*.yml")]}
    assert on_disk == set(listed), (sorted(on_disk - set(listed)), sorted(set(listed) - on_disk))
    assert set(REJECTED) == {r.file for r in ROWS if any(v == "rejected" for _, v, _ in r.objects)}


def test_rejection_messages_are_the_crds_own():
    """The messages expected for the two invalid files are those the pinned CRDs carry."""
    examples_root()
    from infra import upstream

    text = "\n".join(upstream.read_text(k) for k in ("karpenter/crd/nodepools", "karpenter/crd/ec2nodeclasses"))
    assert "pattern: ^[^/]*$" in text and "pattern: ami-[0-9a-z]+" in text
    assert "message: must specify amiFamily if amiSelectorTerms does not contain an alias" in text


def test_defaulted_httptokens_is_never_an_imdsv2_finding(tmp_path: Path):
    """Most examples leave metadataOptions out: the server defaults httpTokens to required."""
    root = examples_root()
    leave_out = [r for r in ROWS if r.file not in REJECTED and any(
        d.get("kind") == "EC2NodeClass" and "httpTokens" not in ((d.get("spec") or {}).get("metadataOptions") or {})
        for d in yaml.safe_load_all((root / r.file).read_text()) if isinstance(d, dict))]
    assert len(leave_out) >= 10
    for n, row in enumerate(leave_out):
        _, report = _check_alone(root, row, tmp_path / str(n))
        assert not [f for f in report.findings if "imdsv2-required" in f.message], row.file


def test_cli_on_one_valid_and_one_invalid_example(tmp_path: Path):
    """The command itself, as SOURCES.md runs it: a clean file exits 0, an invalid one 1 with the CRD's message."""
    root = examples_root()
    env = dict(os.environ)
    for name, rc, needle in (
            ("karpenter-blueprints/blueprints/dynamic-disk-ebs-volume/ebs-dynamic-resize.yaml", 0, "no findings"),
            ("karpenter-provider-aws/examples/v1/windows-custom-userdata.yaml", 1,
             "[crd-schema] NodePool/windows2022: spec.template.spec.nodeClassRef.group: "
             "'karpenter.k8s.aws/v1' does not match '^[^/]*$'")):
        folder = tmp_path / Path(name).stem
        folder.mkdir()
        shutil.copy(root / name, folder)
        proc = subprocess.run([sys.executable, "-m", "infra", "check", "--manifests", str(folder), "--no-checkov"],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == rc, proc.stdout + proc.stderr
        assert needle in proc.stdout, proc.stdout
