"""The coverage gate of `make test` hides nothing: every exclusion names its reason, and the README lists
each one with the lines coverage drops, generated from the code (python -m infra.readme_sync)."""
from __future__ import annotations

import configparser
import json
import os
import re
import subprocess
import sys

import pytest

from infra.readme_sync import (EXCLUSIONS_END, EXCLUSIONS_START, MEASURED, README, exclusions,
                               exclusions_markdown, file_exclusions)
from tests.conftest import REPO

pytestmark = pytest.mark.unit

PRAGMA = re.compile(r"#\s*pragma:\s*no\s*cover", re.I)


def _coveragerc() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / ".coveragerc")
    return cfg


def test_readme_lists_every_exclusion_as_generated():
    text = README.read_text()
    assert text.count(EXCLUSIONS_START) == 1 and text.count(EXCLUSIONS_END) == 1, "README lost its exclusions block"
    block = text.split(EXCLUSIONS_START, 1)[1].split(EXCLUSIONS_END, 1)[0]
    assert block == "\n" + exclusions_markdown(exclusions()), "run: python -m infra.readme_sync"


def test_every_pragma_names_why():
    """A bare `# pragma: no cover` would hide code without saying why: each one carries `- <reason>`."""
    bare = []
    for pkg in MEASURED:
        for path in sorted((REPO / pkg).rglob("*.py")):
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if PRAGMA.search(line) and not re.search(r"pragma:\s*no\s*cover\s*-\s*\S", line, re.I):
                    bare.append(f"{path.relative_to(REPO)}:{n}")
    assert bare == []
    assert all(e.reason for e in exclusions())


def test_the_gate_measures_the_four_packages_and_omits_nothing():
    cfg = _coveragerc()
    assert cfg.get("run", "source").split() == list(MEASURED)
    assert not cfg.has_option("run", "omit") and not cfg.has_option("report", "omit")
    # only coverage's default exclusions (the pragma, `...` stubs, `if TYPE_CHECKING:`) apply
    assert not any(cfg.has_option(s, o) for s in ("report", "run") for o in ("exclude_lines", "exclude_also"))
    assert {"subprocess", "_exit"} <= set(cfg.get("run", "patch").split())


def test_readme_states_the_gate_the_makefile_enforces():
    gate = re.search(r"^COVERAGE_GATE := (\d+)$", (REPO / "Makefile").read_text(), re.M)
    assert gate, "the Makefile lost its coverage gate"
    assert "--cov-fail-under=$(COVERAGE_GATE)" in (REPO / "Makefile").read_text()
    text = README.read_text()
    m = re.search(r"fails below (\d+)% of the product\s+statements", text)
    assert m and m.group(1) == gate.group(1)
    measured = re.search(r"measured (\d+\.\d)% of\s+(\d[\d,]*)\s+statements", text)
    assert measured and int(gate.group(1)) <= float(measured.group(1)) <= 100


SAMPLE = '''\
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import os


class P(Protocol):
    def a(self) -> int: ...

    # a comment between the stub and the next line of code
X = 1


def f(x):
    if x:  # pragma: no cover - needs a CUDA device
        y = x + 1

        return y
    return 0
'''


def test_file_exclusions_count_blocks_like_coverage():
    from coverage import Coverage
    from coverage.misc import join_regex

    exclude = join_regex(Coverage(config_file=str(REPO / ".coveragerc")).config.exclude_list)
    got = [(e.line, e.lines, e.statements, e.reason) for e in file_exclusions("sample.py", SAMPLE, exclude)]
    assert got == [
        (3, 2, 2, "typing only: `if TYPE_CHECKING:` (coverage's default rule)"),
        (8, 1, 1, "stub bodies `...` of a Protocol (coverage's default rule)"),
        (15, 3, 3, "needs a CUDA device"),  # the `if` and its body, the blank line inside not counted
    ]


def test_excluded_statements_are_what_a_real_coverage_run_leaves_out(tmp_path):
    """Run coverage for real on the sample: the statements it reports plus ours are all the statements."""
    (tmp_path / "sample.py").write_text(SAMPLE)
    (tmp_path / "main.py").write_text("import sample\nsample.f(0)\n")
    # not measured by the gate's own run (which hands its settings down through the environment)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    proc = subprocess.run([sys.executable, "-m", "coverage", "run", "--data-file", str(tmp_path / ".cov"),
                           "--rcfile", str(REPO / ".coveragerc"), "--source", str(tmp_path), "main.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    subprocess.run([sys.executable, "-m", "coverage", "combine", "--data-file", str(tmp_path / ".cov"),
                    "--rcfile", str(REPO / ".coveragerc")], cwd=tmp_path, env=env, check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "coverage", "json", "--data-file", str(tmp_path / ".cov"), "-o",
                    str(tmp_path / "c.json"), "--rcfile", str(REPO / ".coveragerc")], cwd=tmp_path, env=env,
                   check=True, capture_output=True)
    report = json.loads((tmp_path / "c.json").read_text())["files"]["sample.py"]
    assert report["missing_lines"] == []  # the excluded `if x:` block is not reported missing
    from coverage.parser import PythonParser

    parser = PythonParser(text=SAMPLE, exclude="$^")  # nothing excluded: every statement of the file
    parser.parse_source()
    from coverage import Coverage
    from coverage.misc import join_regex

    exclude = join_regex(Coverage(config_file=str(REPO / ".coveragerc")).config.exclude_list)
    ours = sum(e.statements for e in file_exclusions("sample.py", SAMPLE, exclude))
    assert report["summary"]["num_statements"] + ours == len(parser.statements)
